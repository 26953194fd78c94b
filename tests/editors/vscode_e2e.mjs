// Drives a real VS Code (code-server) in Chromium through playwright-core; prints one JSON object.
// Usage: node vscode_e2e.mjs <playwright-core dir> <url> <screenshot.png> <User/settings.json> <broken server>
// The workspace holds hole.py and the files to rewrite (DIFFGEM_REWRITES). hole.py lacks the character just before the
// hole: DIFFGEM_GOTO ("line:col", 1-based) is where it goes, DIFFGEM_TYPE the character, typed as a user
// would so that VS Code sends an automatic inline completion request; DIFFGEM_LINE is the 0-based line.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { gotoLine, lineTexts, openFile, openWorkbench, runCommand, waitForDiffgem } from './vscode_lib.mjs';

const [playwrightDir, url, screenshot, settingsFile, brokenServer] = process.argv.slice(2);
const require = createRequire(playwrightDir + '/');
const { chromium } = require('playwright-core');

const result = { steps: [] };
const step = (name) => result.steps.push([name, Math.round(performance.now())]);

const { browser, page } = await openWorkbench(chromium, url);
try {
  await page.waitForTimeout(1000);
  step('workbench');
  // Everything the diffgem status item says, in order (text, not only its accessibility label).
  await page.evaluate(() => {
    window.__diffgemTexts = [];
    new MutationObserver(() => {
      for (const node of document.querySelectorAll('[aria-label^="diffgem "]')) {
        const text = node.textContent.trim();
        if (text && window.__diffgemTexts.at(-1) !== text) window.__diffgemTexts.push(text);
      }
    }).observe(document.body, { subtree: true, characterData: true, childList: true, attributes: true });
  });

  // Case 1: ghost text while typing, accepted with Tab.
  await openFile(page, 'hole.py');
  await waitForDiffgem(page, 'ready', 90000); // the extension activated and the model loaded
  step('diffgem ready');
  const holeLine = Number(process.env.DIFFGEM_LINE);
  await gotoLine(page, process.env.DIFFGEM_GOTO);
  result.before = (await lineTexts(page))[holeLine];
  await page.keyboard.type(process.env.DIFFGEM_TYPE, { delay: 80 });
  let ghost = null;
  for (let attempt = 0; attempt < 3 && !ghost; attempt++) {
    try {
      await page.waitForSelector('.ghost-text-decoration, .ghost-text-decoration-preview', { timeout: 20000 });
      ghost = await page.$eval('.monaco-editor', (editor) =>
        [...editor.querySelectorAll('.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text')]
          .map((n) => n.textContent)
          .join(''),
      );
    } catch {
      await page.keyboard.press('Alt+Backslash'); // editor.action.inlineSuggest.trigger
    }
  }
  result.ghost = ghost;
  step('ghost text');
  // The suggest widget must not show diffgem's fill a second time: the typed character is a trigger
  // character, so before the fix it popped up with the ghost text. Watch for it for a few seconds.
  result.suggest_rows = 0;
  for (let i = 0; i < 16 && ghost !== null; i++) {
    result.suggest_rows = Math.max(
      result.suggest_rows,
      await page.$$eval('.editor-widget.suggest-widget.visible .monaco-list-row', (rows) => rows.length),
    );
    await page.waitForTimeout(500);
  }
  result.status_texts = await page.evaluate(() => window.__diffgemTexts);
  if (ghost !== null) {
    await page.screenshot({ path: screenshot });
    await page.keyboard.press('Tab');
    await page.waitForTimeout(500);
  }
  result.after = (await lineTexts(page))[holeLine];
  result.lines_after_accept = await lineTexts(page);

  // Commands from the palette: restart the model worker (the status bar goes through loading back to
  // ready), toggle automatic suggestions (a confirmation toast).
  await page.evaluate(() => {
    window.__diffgemStates = [];
    new MutationObserver(() => {
      for (const node of document.querySelectorAll('[aria-label^="diffgem "]')) {
        const label = node.getAttribute('aria-label');
        if (window.__diffgemStates.at(-1) !== label) window.__diffgemStates.push(label);
      }
    }).observe(document.body, { subtree: true, attributes: true, childList: true, attributeFilter: ['aria-label'] });
  });
  // Start from "ready" (as-you-type requests may still be running after the Tab).
  await waitForDiffgem(page, 'ready', 90000);
  await page.evaluate(() => {
    window.__diffgemStates = [];
  });
  await runCommand(page, 'diffgem: Restart Model Worker');
  await page
    .waitForFunction(() => window.__diffgemStates.some((s) => /loading|stopped|starting/.test(s)), null, { timeout: 60000 })
    .catch(() => {});
  await waitForDiffgem(page, 'ready', 90000);
  await page.waitForTimeout(300);
  result.restart_states = await page.evaluate(() => window.__diffgemStates);
  await runCommand(page, 'diffgem: Toggle Automatic Suggestions');
  await page
    .waitForSelector('.notifications-toasts .notification-list-item-message:has-text("automatic suggestions")', { timeout: 15000 })
    .catch(() => {});
  result.toggle_toasts = await page.$$eval('.notifications-toasts .notification-list-item-message', (n) => n.map((x) => x.textContent));
  await runCommand(page, 'Notifications: Clear All Notifications');
  step('commands');

  // Case 2: "Rewrite selection" from VS Code's refactor menu and from the command palette on a
  // selection the model changes (the edit applied), then from the palette on one it keeps (explained).
  // DIFFGEM_REWRITES: {changed: [file, first line, last line], kept: [...]} (1-based, whole lines).
  const samples = JSON.parse(process.env.DIFFGEM_REWRITES);
  const select = async ([file, first, last]) => {
    await openFile(page, file);
    await gotoLine(page, `${first}:1`);
    for (let i = first; i < last; i++) await page.keyboard.press('Shift+ArrowDown');
    await page.keyboard.press('Shift+End');
    return lineTexts(page);
  };
  // Until the edit lands or the outcome is shown ("diffgem: the model…"); "diffgem: rewriting…" is the
  // progress notification meanwhile.
  const rewriteOutcome = async (name, beforeLines) => {
    const before = JSON.stringify(beforeLines);
    const started = Date.now();
    const deadline = started + 120000;
    let toasts = [];
    let rewriting = false;
    while (Date.now() < deadline) {
      const lines = JSON.stringify(await lineTexts(page));
      toasts = await page.$$eval('.notifications-toasts .notification-list-item-message', (n) => n.map((x) => x.textContent));
      rewriting ||= toasts.some((t) => t.startsWith('diffgem: rewriting'));
      if (lines !== before || toasts.some((t) => t.startsWith('diffgem: the model') || t.startsWith('diffgem: rewrite'))) break;
      await page.waitForTimeout(250);
    }
    await page.waitForTimeout(500); // an outcome toast after the edit would show up meanwhile
    toasts = await page.$$eval('.notifications-toasts .notification-list-item-message', (n) => n.map((x) => x.textContent));
    result[name] = { before: beforeLines, toasts, rewriting, after: await lineTexts(page), ms: Date.now() - started };
  };
  // VS Code's own refactor menu (lightbulb / Ctrl+Shift+R) lists the server's action; picking it
  // resolves it and applies the edit.
  let before = await select(samples.changed);
  await page.keyboard.press('Control+Shift+R');
  try {
    await page.waitForSelector('.action-widget :text("Rewrite selection")', { timeout: 15000 });
    result.refactor_menu = true;
    // Focus it with the keyboard (the menu's pointer block swallows clicks) and apply it with Enter.
    for (let i = 0; i < 5; i++) {
      const focused = await page.$eval('.action-widget .monaco-list-row.focused', (n) => n.textContent).catch(() => '');
      if (focused.includes('Rewrite selection')) break;
      await page.keyboard.press('ArrowDown');
    }
    await page.keyboard.press('Enter');
    await rewriteOutcome('menu_rewrite', before);
  } catch (error) {
    result.refactor_menu = result.refactor_menu ?? false;
    result.menu_error = String(error);
    await page.keyboard.press('Escape');
  }
  await runCommand(page, 'Notifications: Clear All Notifications');
  if (JSON.stringify(await lineTexts(page)) !== JSON.stringify(before)) {
    await page.keyboard.press('Control+Z'); // undo the menu's edit, so the palette path starts alike
  }
  before = await select(samples.changed);
  await runCommand(page, 'diffgem: Rewrite Selection');
  await rewriteOutcome('palette_rewrite', before);
  await runCommand(page, 'Notifications: Clear All Notifications');
  before = await select(samples.kept);
  await runCommand(page, 'diffgem: Rewrite Selection');
  await rewriteOutcome('palette_kept', before);
  step('rewrite');

  // Case 3: bad server paths give one clear message each (no crash loop): a server that exits at
  // start, then a path that does not exist. The settings file changes on disk, as a user's edit would.
  const toasts = () =>
    page.$$eval('.notifications-toasts .notification-list-item-message', (n) => n.map((x) => x.textContent));
  await page.keyboard.press('Escape');
  for (const [name, serverPath, pattern] of [
    ['exits_at_start', brokenServer, 'exited at start'],
    ['missing', '/nonexistent/diffgem-lsp', 'does not exist or is not executable'],
  ]) {
    const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
    settings['diffgem.serverPath'] = serverPath;
    fs.writeFileSync(settingsFile, JSON.stringify(settings, null, 2));
    const until = Date.now() + 30000;
    while (Date.now() < until && !(await toasts()).some((t) => t.includes(pattern))) await page.waitForTimeout(250);
    await page.waitForTimeout(4000); // a crash loop would add more messages meanwhile
    await page.screenshot({ path: `${screenshot}.${name}.png` });
    const all = await toasts();
    result[name] = { matching: all.filter((t) => t.includes(pattern)).length, toasts: all };
    result[name].status_error = await page.evaluate(() =>
      [...document.querySelectorAll('[aria-label]')].some((n) => n.getAttribute('aria-label') === 'diffgem error'),
    );
    await runCommand(page, 'Notifications: Clear All Notifications');
    await page.waitForTimeout(500);
  }
  step('bad paths');
} catch (error) {
  result.error = String(error && error.stack ? error.stack : error);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
