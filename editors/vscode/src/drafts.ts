/**
 * Live refinement: the diffusion model's intermediate canvases (diffgem/draft, server setting
 * streamDrafts) drawn after the cursor while the inline request runs, dimmed, so the user watches the
 * suggestion settle; VS Code's ghost text replaces it when the answer arrives.
 */
import * as vscode from 'vscode';

export interface Draft {
  uri: string;
  line: number;
  character: number;
  text: string;
}

export class DraftView implements vscode.Disposable {
  // A subtle style for uncommitted tokens: the ghost-text colour, italic, half opacity (an `after`
  // decoration is the only way to draw text that is not in the document outside an inline provider).
  private readonly decoration = vscode.window.createTextEditorDecorationType({
    after: {
      color: new vscode.ThemeColor('editorGhostText.foreground'),
      fontStyle: 'italic',
      textDecoration: 'none; opacity: 0.55',
    },
  });
  private editor: vscode.TextEditor | undefined;
  /** How many drafts were drawn (the end-to-end test reads it from the log). */
  shown = 0;

  show(draft: Draft): void {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.uri.toString() !== draft.uri) {
      return;
    }
    const cursor = editor.selection.active;
    if (cursor.line !== draft.line || cursor.character !== draft.character) {
      return; // the user moved on: a stale canvas
    }
    // One line: an `after` decoration cannot break lines; the rest shows once the answer lands.
    const first = draft.text.split('\n')[0];
    this.editor = editor;
    editor.setDecorations(this.decoration, [
      { range: new vscode.Range(cursor, cursor), renderOptions: { after: { contentText: first || '…' } } },
    ]);
    this.shown++;
  }

  clear(): void {
    this.editor?.setDecorations(this.decoration, []);
    this.editor = undefined;
  }

  dispose(): void {
    this.decoration.dispose();
  }
}
