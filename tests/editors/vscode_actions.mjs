// Drives a real VS Code (code-server) through the diffusion-native features; prints one JSON object.
// Usage: node vscode_actions.mjs <playwright-core dir> <url>
// DIFFGEM_ACTIONS (JSON), files in the workspace, positions 0-based:
//   drafts: {file, line, character, type}: `file` lacks the character `type` just before (line, character);
//     typed there with streamDrafts on, the dimmed draft canvases are recorded until the ghost text lands.
//   holes / repair: {file, title, line, character}: the code action run from VS Code's refactor menu
//     (Ctrl+Shift+R) / quick-fix menu (Ctrl+.) at that position, until the text changes.
//   candidates: {file, line, character}: "Trigger Inline Suggestion" asks there; Alt+] shows each next
//     candidate; Tab accepts the second one.
// DIFFGEM_ONLY=candidates skips to the candidates (for debugging that part alone). DIFFGEM_SHOTS: a folder
// for screenshots (the refactor menu listing "Fill the holes"; the second candidate's ghost text).
import { createRequire } from 'node:module';
import { ghostText, gotoLine, lineTexts, openFile, openWorkbench, pickAction, runCommand, until, waitForDiffgem } from './vscode_lib.mjs';

const [playwrightDir, url] = process.argv.slice(2);
const require = createRequire(playwrightDir + '/');
const { chromium } = require('playwright-core');
const specs = JSON.parse(process.env.DIFFGEM_ACTIONS);
const result = { steps: [] };
const step = (name) => result.steps.push([name, Math.round(performance.now())]);
const at = (spec) => `${spec.line + 1}:${spec.character + 1}`;
const shot = async (page, name) => {
  if (process.env.DIFFGEM_SHOTS) await page.screenshot({ path: `${process.env.DIFFGEM_SHOTS}/${name}.png` });
};

// Every draft the editor draws: the extension's `after` decoration (src/drafts.ts), whose text is the
// CSS content of a `ced-…` class (VS Code's decoration class names). Recorded on each DOM change, so
// drafts that live a few milliseconds are seen too.
function watchDrafts() {
  window.__drafts = [];
  const scan = () => {
    for (const node of document.querySelectorAll('.editor-instance .view-lines [class*="ced-"]')) {
      const style = getComputedStyle(node, '::after');
      const own = getComputedStyle(node);
      const content = style.content !== 'none' && style.content !== 'normal' ? style.content : own.content;
      if (!content || content === 'none' || content === 'normal' || content === '""') continue;
      const entry = { content, opacity: style.opacity !== '1' ? style.opacity : own.opacity, italic: style.fontStyle || own.fontStyle };
      const last = window.__drafts.at(-1);
      if (!last || last.content !== entry.content) window.__drafts.push(entry);
    }
  };
  new MutationObserver(scan).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
}

async function codeAction(page, spec, menuKey) {
  await openFile(page, spec.file);
  const rec = { before: await lineTexts(page) };
  if (spec.title === 'Repair syntax') {
    // The user sees the error first: the server's diagnostic drawn as a squiggle.
    rec.squiggle = Boolean(await until(page, () => page.$('.editor-instance .squiggly-error'), 60000));
  }
  await gotoLine(page, at(spec));
  await page.keyboard.press(menuKey);
  if (spec.title === 'Fill the holes') {
    await page.waitForSelector(`.action-widget :text("${spec.title}")`, { timeout: 30000 }).catch(() => {});
    await shot(page, 'fill-the-holes-menu');
  }
  rec.listed = await pickAction(page, spec.title, 30000);
  const before = JSON.stringify(rec.before);
  const started = Date.now();
  await until(page, async () => ((JSON.stringify(await lineTexts(page)) !== before) ? true : null), 120000);
  await page.waitForTimeout(500); // an outcome toast after the edit would show up meanwhile
  rec.after = await lineTexts(page);
  rec.toasts = await page.$$eval('.notifications-toasts .notification-list-item-message', (n) => n.map((x) => x.textContent));
  rec.ms = Date.now() - started;
  await runCommand(page, 'Notifications: Clear All Notifications');
  return rec;
}

const { browser, page } = await openWorkbench(chromium, url);
try {
  step('workbench');

  // Live drafts: type at the hole as a user would (an automatic request, streamDrafts on).
  const drafts = specs.drafts;
  await openFile(page, drafts.file);
  await waitForDiffgem(page, 'ready', 120000);
  step('diffgem ready');
  if (process.env.DIFFGEM_ONLY !== 'candidates') {
  await page.evaluate(watchDrafts);
  await gotoLine(page, `${drafts.line + 1}:${drafts.character}`);
  await page.keyboard.type(drafts.type, { delay: 80 });
  let ghost = await until(page, async () => (await ghostText(page)) || null, 30000);
  if (!ghost) {
    await runCommand(page, 'Trigger Inline Suggestion'); // invoked
    ghost = await until(page, async () => (await ghostText(page)) || null, 60000);
  }
  result.drafts = {
    seen: await page.evaluate(() => window.__drafts),
    ghost,
    // Once the answer lands, VS Code's ghost text replaces the draft: none is drawn any more.
    left: await page.$$eval('.editor-instance .view-lines [class*="ced-"]', (nodes) =>
      nodes.map((n) => getComputedStyle(n, '::after').content).filter((c) => c && c !== 'none' && c !== 'normal'),
    ),
  };
  await page.keyboard.press('Escape');
  step('drafts');

  result.holes = await codeAction(page, specs.holes, 'Control+Shift+R');
  step('holes');
  result.repair = await codeAction(page, specs.repair, 'Control+.');
  step('repair');
  } // DIFFGEM_ONLY=candidates (debugging the last part alone)

  // K candidates: asked for (invoked), then Alt+] round the list and back to the first.
  const cand = specs.candidates;
  await openFile(page, cand.file);
  await gotoLine(page, at(cand));
  const rec = { before: await lineTexts(page), shown: [] };
  // editor.action.inlineSuggest.trigger from the palette: its Alt+\ key never reached the editor
  // through Chromium here (tried: no request), while Alt+] does.
  await runCommand(page, 'Trigger Inline Suggestion');
  rec.shown.push(await until(page, async () => (await ghostText(page)) || null, 90000));
  for (let i = 0; i < 6 && rec.shown[0]; i++) {
    const previous = rec.shown.at(-1);
    await page.keyboard.press('Alt+BracketRight'); // editor.action.inlineSuggest.showNext
    // The next candidate's ghost (the same text again means there is no other one).
    const next = await until(page, async () => {
      const text = await ghostText(page);
      return text && text !== previous ? text : null;
    }, 60000);
    if (next === null || next === rec.shown[0]) break;
    rec.shown.push(next);
  }
  // Back on the first (the list wraps), then one step: the second candidate, accepted with Tab.
  rec.wrapped = await until(page, async () => ((await ghostText(page)) === rec.shown[0] ? true : null), 60000);
  await page.keyboard.press('Alt+BracketRight');
  rec.accepting = await until(page, async () => ((await ghostText(page)) === rec.shown[1] ? rec.shown[1] : null), 60000);
  await shot(page, 'candidates');
  await page.keyboard.press('Tab');
  const before = JSON.stringify(rec.before);
  await until(page, async () => ((JSON.stringify(await lineTexts(page)) !== before) ? true : null), 60000);
  rec.after = await lineTexts(page);
  result.candidates = rec;
  step('candidates');
} catch (error) {
  result.error = String(error && error.stack ? error.stack : error);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
