// Drives "Rewrite selection…" (rewrite with an instruction) in a real VS Code (code-server); prints one
// JSON object. Usage: node vscode_instruct.mjs <playwright-core dir> <url>
// DIFFGEM_INSTRUCT (JSON): {file, start: [line, character], end: [line, character], instruction}, 0-based,
// the selection on one line. The model behind the server follows instructions (a chat checkpoint):
//   1) the palette lists "diffgem: Rewrite Selection…" (shown only when the server says so);
//   2) Refactor… (Ctrl+Shift+R) → "Rewrite selection…" → VS Code's input box → the instruction typed →
//      the server's edit in the editor;
//   3) undo, and the same from the palette command.
import { createRequire } from 'node:module';
import { gotoLine, lineTexts, openFile, openWorkbench, pickAction, until, waitForDiffgem } from './vscode_lib.mjs';

const [playwrightDir, url] = process.argv.slice(2);
const require = createRequire(playwrightDir + '/');
const { chromium } = require('playwright-core');
const spec = JSON.parse(process.env.DIFFGEM_INSTRUCT);
const PALETTE_LABEL = 'Rewrite Selection…';
const result = { steps: [] };
const step = (name) => result.steps.push([name, Math.round(performance.now())]);

async function select(page) {
  await gotoLine(page, `${spec.start[0] + 1}:${spec.start[1] + 1}`);
  for (let i = spec.start[1]; i < spec.end[1]; i++) await page.keyboard.press('Shift+ArrowRight');
}

// The palette rows for `query` (typed into F1), then the palette closed or left open on them.
async function paletteRows(page, query) {
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget .quick-input-box input', { state: 'visible' });
  await page.keyboard.type(query, { delay: 10 });
  await page.waitForTimeout(700);
  return page.$$eval('.quick-input-list .monaco-list-row', (rows) => rows.map((r) => r.textContent));
}

// Focus the palette row whose text includes `label` and run it (another row may match the query too).
async function runPaletteRow(page, label) {
  const rows = await page.$$eval('.quick-input-list .monaco-list-row', (n) => n.length);
  for (let i = 0; i <= rows; i++) {
    const focused = await page.$eval('.quick-input-list .monaco-list-row.focused', (n) => n.textContent).catch(() => '');
    if (focused.includes(label)) break;
    await page.keyboard.press('ArrowDown');
  }
  await page.keyboard.press('Enter');
}

// VS Code's input box asks for the instruction: type it as a user would, then Enter; the edit follows.
async function answerPrompt(page, before) {
  await page.waitForSelector('.quick-input-widget .quick-input-box input', { state: 'visible', timeout: 30000 });
  const rec = {
    title: await page.$eval('.quick-input-widget .quick-input-title', (n) => n.textContent).catch(() => ''),
  };
  await page.keyboard.type(spec.instruction, { delay: 20 });
  await page.keyboard.press('Enter');
  const changed = await until(page, async () => ((JSON.stringify(await lineTexts(page)) !== before) ? true : null), 120000);
  rec.changed = Boolean(changed);
  rec.after = await lineTexts(page);
  rec.toasts = await page.$$eval('.notifications-toasts .notification-list-item-message', (n) => n.map((x) => x.textContent));
  return rec;
}

const { browser, page } = await openWorkbench(chromium, url);
try {
  step('workbench');
  await openFile(page, spec.file);
  await waitForDiffgem(page, 'ready', 120000);
  step('diffgem ready');
  result.before = await lineTexts(page);
  const before = JSON.stringify(result.before);

  // 1) The palette shows the command: the server said this model takes instructions.
  await select(page);
  result.palette = await paletteRows(page, `diffgem: ${PALETTE_LABEL}`);
  await page.keyboard.press('Escape');

  // 2) Refactor… menu → "Rewrite selection…" → the input box.
  await select(page);
  await page.keyboard.press('Control+Shift+R');
  result.listed = await pickAction(page, 'Rewrite selection…', 30000);
  result.menu = result.listed ? await answerPrompt(page, before) : null;
  step('refactor menu');

  // 3) Undo, then the palette command on the same selection.
  await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+Z');
  result.undone = Boolean(await until(page, async () => ((JSON.stringify(await lineTexts(page)) === before) ? true : null), 30000));
  await select(page);
  await paletteRows(page, `diffgem: ${PALETTE_LABEL}`);
  await runPaletteRow(page, PALETTE_LABEL);
  result.fromPalette = await answerPrompt(page, before);
  step('palette');
} catch (error) {
  result.error = String(error && error.stack ? error.stack : error);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
