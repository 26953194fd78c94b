/**
 * diffgem for VS Code: a thin client that starts diffgem-lsp, passes the `diffgem.*` settings as
 * initializationOptions, shows the worker state in the status bar and adds a few commands.
 * Inline completion, completion and code actions come from vscode-languageclient (10.x enables
 * inline completion by default); the model logic all lives in the server.
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import * as vscode from 'vscode';
import {
  CloseAction,
  CodeActionRequest,
  CodeActionResolveRequest,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
  type ClientCapabilities,
  type CloseHandlerResult,
  type ErrorHandlerResult,
  type FeatureState,
  type StaticFeature,
} from 'vscode-languageclient/node';
import {
  INSTRUCTION_COMMAND,
  INSTRUCTION_TITLE,
  LANGUAGES,
  RestartPolicy,
  checkInstruction,
  instructionTarget,
  SERVER_SETTING_KEYS,
  packSettings,
  resolveServerPath,
  rewriteOutcome,
  serverLogLine,
  statusView,
  type LogLevel,
  type WorkerState,
} from './config';
import { DraftView } from './drafts';

/** The client, except that its own notifications stay in the log once we have told the user. */
class DiffgemClient extends LanguageClient {
  quiet = false;

  override error(message: string, data?: unknown, showNotification: boolean | 'force' = true): void {
    super.error(message, data, this.quiet ? false : showNotification);
  }
}

let client: DiffgemClient | undefined;
let output: vscode.LogOutputChannel;
let statusItem: vscode.StatusBarItem;
let drafts: DraftView;
// What the server last said (diffgem/status); `inFlight` inline requests show "generating…" before the
// server's own status arrives (the debounce, a cold prompt cache), and the server's state after.
let serverStatus: { state: WorkerState; message: string; model: string } = { state: 'starting', message: '', model: '' };
let inFlight = 0;
// diffgem/status notifications received: an answer to diffgem.status that crossed one is older than it.
let statusNotes = 0;

const executable = {
  isExecutable(file: string): boolean {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  },
};

function settings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration('diffgem');
  return packSettings((key) => config.get(key));
}

function showServerStatus(state: WorkerState, message = '', model = ''): void {
  serverStatus = { state, message, model };
  showStatus(inFlight > 0 && state === 'ready' ? 'generating' : state, message, model);
}

function showStatus(state: WorkerState, message = '', model = ''): void {
  const view = statusView(state, message, model);
  statusItem.text = view.text;
  statusItem.tooltip = view.tooltip;
  statusItem.accessibilityInformation = { label: view.accessibilityLabel };
  statusItem.backgroundColor = view.isError ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  statusItem.show();
}

async function setRunning(running: boolean): Promise<void> {
  await vscode.commands.executeCommand('setContext', 'diffgem.running', running);
  if (!running) {
    await setInstructions(false);
  }
}

/** Whether the server says "Rewrite selection…" can run now (a chat model, ready): shows its command. */
async function setInstructions(can: boolean | undefined): Promise<void> {
  if (can !== undefined) {
    await vscode.commands.executeCommand('setContext', 'diffgem.instructions', can);
  }
}

/** Tells the server this client asks the user for an instruction (diffgem_lsp/instructions.py reads
 * `capabilities.experimental.diffgem.instructionPrompt`), so it lists "Rewrite selection…". */
const instructionPrompt: StaticFeature = {
  fillClientCapabilities(capabilities: ClientCapabilities): void {
    const experimental = (capabilities.experimental ?? {}) as Record<string, unknown>;
    capabilities.experimental = { ...experimental, diffgem: { instructionPrompt: true } };
  },
  initialize(): void {},
  getState(): FeatureState {
    return { kind: 'static' };
  },
  clear(): void {},
};

/** Ask for the instruction in an input box; undefined when the user cancels. */
async function askInstruction(): Promise<string | undefined> {
  const answer = await vscode.window.showInputBox({
    title: `diffgem: ${INSTRUCTION_TITLE}`,
    prompt: 'How should the selected code change?',
    placeHolder: 'e.g. use a list comprehension',
    ignoreFocusOut: true,
    validateInput: (value) => checkInstruction(value),
  });
  return answer !== undefined && checkInstruction(answer) === undefined ? answer.trim() : undefined;
}

/** Run the server's diffgem.rewriteWithInstruction on `target` with the user's words: the server applies
 * the edit (workspace/applyEdit) or shows why not (window/showMessage); this shows the progress. */
async function rewriteWith(
  target: Record<string, unknown>,
  run: (args: unknown[]) => Promise<unknown>,
): Promise<unknown> {
  const instruction = await askInstruction();
  if (instruction === undefined) {
    return undefined;
  }
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'diffgem: rewriting…' },
    () => run([{ ...target, instruction }]),
  );
}

function lines(input: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false }).on('line', onLine);
}

/** One clear message with a way out; never a modal loop. */
function reportStartFailure(message: string): void {
  output.error(message);
  showStatus('error', message);
  void vscode.window.showErrorMessage(message, 'Open Settings', 'Show Log').then((choice) => {
    if (choice === 'Open Settings') {
      void vscode.commands.executeCommand('workbench.action.openSettings', 'diffgem.serverPath');
    } else if (choice === 'Show Log') {
      output.show();
    }
  });
}

async function startClient(): Promise<void> {
  const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const configured = vscode.workspace.getConfiguration('diffgem').get<string>('serverPath');
  const server = resolveServerPath(configured, folders, process.env.PATH, executable);
  if (!server.ok) {
    reportStartFailure(server.message);
    return;
  }
  output.info(`starting ${server.path} (found via ${server.source})`);
  showStatus('starting');

  const serverOptions: ServerOptions = { command: server.path, args: [], transport: TransportKind.stdio };
  let everRunning = false;
  let reported = false;
  // eslint-disable-next-line prefer-const -- assigned below; the handlers above close over it
  let next: DiffgemClient;
  const policy = new RestartPolicy();
  // A server that dies before it answers initialize trips several client callbacks (initialize
  // failure, connection error, close); the user gets one message for it.
  const failedAtStart = (detail: string): void => {
    next.quiet = true;
    if (!reported) {
      reported = true;
      reportStartFailure(
        `diffgem: the server (${server.path}) exited at start (${detail}). See "diffgem: Show Log" for its output.`,
      );
    }
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: 'file', language },
      { scheme: 'untitled', language },
    ]),
    initializationOptions: settings(),
    outputChannel: output,
    // The server logs to stderr, which the client would write entirely at `error` level.
    stdioOptions: {
      stdout: (input, channel) => lines(input, (line) => channel.info(line)),
      stderr: (input, channel) => {
        let level: LogLevel = 'info';
        lines(input, (line) => {
          const entry = serverLogLine(line, level);
          level = entry.level;
          channel[entry.level](entry.text);
        });
      },
    },
    middleware: {
      // "Rewrite selection…" picked from the lightbulb or Refactor… menu runs the server's command with
      // the selection (the action carries no instruction): ask for it first.
      executeCommand: (command, args, next): unknown => {
        const target = instructionTarget(command, args);
        const run = (withWords: unknown[]): Promise<unknown> => Promise.resolve(next(command, withWords) as unknown);
        return target ? rewriteWith(target, run) : run(args);
      },
      // Ghost text is how VS Code shows diffgem; the same fill in the suggest widget as well popped up
      // a second copy of it on every trigger character. The popup is for those who turn ghost text off.
      provideCompletionItem: (document, position, context, token, next) =>
        vscode.workspace.getConfiguration('editor', document).get<boolean>('inlineSuggest.enabled', true)
          ? undefined
          : next(document, position, context, token),
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        inFlight++;
        showServerStatus(serverStatus.state, serverStatus.message, serverStatus.model);
        try {
          return await next(document, position, context, token);
        } finally {
          inFlight--;
          drafts.clear();
          showServerStatus(serverStatus.state, serverStatus.message, serverStatus.model);
        }
      },
      // VS Code's own code-action menu (lightbulb, Refactor…) applies a resolved edit but shows nothing
      // while the model runs, nor when the server keeps the text (`disabled`): say both.
      resolveCodeAction: async (item, token, next) => {
        if (item.title === INSTRUCTION_TITLE) {
          return next(item, token); // a command: it asks for the instruction when it runs, not here
        }
        // Every diffgem action runs the model on resolve ("Rewrite selection", "Fill the holes", ...).
        const title = item.title === 'Rewrite selection' ? 'diffgem: rewriting…' : `diffgem: ${item.title.toLowerCase()}…`;
        const resolved = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title },
          async () => next(item, token),
        );
        if (resolved && !resolved.edit && !token.isCancellationRequested) {
          void vscode.window.showInformationMessage(rewriteOutcome(resolved.disabled?.reason));
        }
        return resolved;
      },
    },
    initializationFailedHandler: (error) => {
      failedAtStart(String(error));
      return false;
    },
    errorHandler: {
      error: (error): ErrorHandlerResult => {
        if (!everRunning) {
          failedAtStart(String(error));
          return { action: ErrorAction.Shutdown, handled: true };
        }
        output.warn(`connection error: ${String(error)}`);
        return { action: ErrorAction.Continue, handled: true };
      },
      closed: (): CloseHandlerResult => {
        void setRunning(false);
        if (policy.shouldRestart(everRunning, Date.now())) {
          output.warn('the server stopped; restarting it');
          return { action: CloseAction.Restart, handled: true };
        }
        if (everRunning) {
          reportStartFailure(
            'diffgem: the server stopped repeatedly and will not be restarted. Use "diffgem: Restart Language Server" after fixing it.',
          );
        } else {
          failedAtStart('the process closed');
        }
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
  };

  next = new DiffgemClient('diffgem', 'diffgem', serverOptions, clientOptions);
  next.registerFeature(instructionPrompt);
  next.onDidChangeState((event) => {
    if (event.newState === State.Running) {
      everRunning = true;
      void setRunning(true);
    }
  });
  client = next;
  try {
    await next.start();
  } catch (error) {
    output.error(`start failed: ${String(error)}`);
    if (!everRunning) {
      showStatus('error', String(error));
    }
    return;
  }
  next.onNotification(
    'diffgem/status',
    (params: { state?: WorkerState; message?: string; model?: string; instructions?: boolean }) => {
      statusNotes++;
      showServerStatus(params.state ?? 'ready', params.message ?? '', params.model ?? '');
      void setInstructions(params.instructions);
    },
  );
  // streamDrafts: the canvas of the running inline request, drawn dimmed until the answer replaces it.
  next.onNotification('diffgem/draft', (params: { uri: string; line: number; character: number; text: string }) => {
    if (inFlight > 0) {
      drafts.show(params);
    }
  });
  try {
    const notesBefore = statusNotes;
    const status: { state?: WorkerState; model?: string; instructions?: boolean } = await next.sendRequest(
      'workspace/executeCommand',
      { command: 'diffgem.status', arguments: [] },
    );
    if (statusNotes === notesBefore) {
      showServerStatus(status.state ?? 'loading', '', status.model ?? '');
      void setInstructions(status.instructions);
    }
  } catch (error) {
    output.warn(`diffgem.status failed: ${String(error)}`);
  }
}

async function stopClient(): Promise<void> {
  const running = client;
  client = undefined;
  await setRunning(false);
  if (running && running.state !== State.Stopped) {
    try {
      await running.stop(5000);
    } catch (error) {
      output.warn(`stopping the server: ${String(error)}`);
    }
  }
  showStatus('stopped');
}

async function restartClient(): Promise<void> {
  await stopClient();
  await startClient();
}

/** "Rewrite selection" on the current selection: list, resolve, apply, or say why nothing changed. */
async function rewriteSelection(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!client || !editor || editor.selection.isEmpty) {
    void vscode.window.showInformationMessage('diffgem: select the code to rewrite first.');
    return;
  }
  const c2p = client.code2ProtocolConverter;
  const p2c = client.protocol2CodeConverter;
  const actions = await client.sendRequest(CodeActionRequest.type, {
    textDocument: c2p.asTextDocumentIdentifier(editor.document),
    range: c2p.asRange(editor.selection),
    context: { diagnostics: [], only: ['refactor.rewrite'] },
  });
  const action = actions?.find((a) => 'title' in a && a.title === 'Rewrite selection' && 'kind' in a);
  if (!action || !('kind' in action)) {
    void vscode.window.showInformationMessage('diffgem: nothing to rewrite here.');
    return;
  }
  const resolved = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'diffgem: rewriting…' },
    () => client!.sendRequest(CodeActionResolveRequest.type, action),
  );
  if (resolved.edit) {
    await vscode.workspace.applyEdit(await p2c.asWorkspaceEdit(resolved.edit));
  } else {
    void vscode.window.showInformationMessage(rewriteOutcome(resolved.disabled?.reason));
  }
}

/** "diffgem: Rewrite Selection…" from the palette: the server's "Rewrite selection…" action on the
 * selection (listed only for a model that follows instructions), then the input box. */
async function rewriteSelectionWithInstruction(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!client || !editor || editor.selection.isEmpty) {
    void vscode.window.showInformationMessage('diffgem: select the code to rewrite first.');
    return;
  }
  const c2p = client.code2ProtocolConverter;
  const actions = await client.sendRequest(CodeActionRequest.type, {
    textDocument: c2p.asTextDocumentIdentifier(editor.document),
    range: c2p.asRange(editor.selection),
    context: { diagnostics: [], only: ['refactor.rewrite'] },
  });
  const action = actions?.find((a) => 'title' in a && a.title === INSTRUCTION_TITLE && 'kind' in a);
  const target = action && 'kind' in action ? instructionTarget(INSTRUCTION_COMMAND, action.command?.arguments ?? []) : undefined;
  if (!target) {
    void vscode.window.showInformationMessage('diffgem: this model does not take instructions: use Rewrite Selection.');
    return;
  }
  const running = client;
  await rewriteWith(target, (args) =>
    running.sendRequest(ExecuteCommandRequest.type, { command: INSTRUCTION_COMMAND, arguments: args }),
  );
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('diffgem', { log: true });
  statusItem = vscode.window.createStatusBarItem('diffgem.status', vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'diffgem';
  statusItem.command = 'diffgem.showLog';
  drafts = new DraftView();
  context.subscriptions.push(output, statusItem, drafts);

  context.subscriptions.push(
    vscode.commands.registerCommand('diffgem.showLog', () => output.show()),
    vscode.commands.registerCommand('diffgem.restartServer', restartClient),
    vscode.commands.registerCommand('diffgem.rewriteSelection', rewriteSelection),
    vscode.commands.registerCommand('diffgem.rewriteSelectionWithInstruction', rewriteSelectionWithInstruction),
    vscode.commands.registerCommand('diffgem.toggleAutomatic', async () => {
      const config = vscode.workspace.getConfiguration('diffgem');
      const next = !config.get<boolean>('automaticSuggestions', true);
      await config.update('automaticSuggestions', next, vscode.ConfigurationTarget.Global);
      void vscode.window.showInformationMessage(`diffgem: automatic suggestions ${next ? 'on' : 'off'}.`);
    }),
    // diffgem.restartWorker is the server's own command: vscode-languageclient registers it from the
    // server's executeCommandProvider while the server runs (package.json only gives it a title).
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration('diffgem')) {
        return;
      }
      if (event.affectsConfiguration('diffgem.serverPath') || !client || client.state !== State.Running) {
        await restartClient();
        return;
      }
      if (SERVER_SETTING_KEYS.some((key) => event.affectsConfiguration(`diffgem.${key}`))) {
        await client.sendNotification('workspace/didChangeConfiguration', { settings: { diffgem: settings() } });
      }
    }),
  );
  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
