// Helpers shared by the code-server drivers (vscode_e2e.mjs, vscode_actions.mjs): open the workbench, read
// the editor's lines, open a file from the Explorer, go to a line, run a palette command, wait for the
// diffgem status item, pick a code action, read the ghost text.

// Debian's Chromium driven by playwright-core (`chromium --headless --screenshot` alone renders the
// workbench blank), then the workbench at `url` with its workspace loaded.
export async function openWorkbench(chromium, url) {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({ viewport: { width: 1100, height: 560 } });
  await page.goto(url);
  await page.waitForSelector('.monaco-workbench .part.editor', { timeout: 60000 });
  await page.waitForSelector('.explorer-folders-view .monaco-list-row', { timeout: 60000 }); // workspace loaded
  return { browser, page };
}

export async function lineTexts(page) {
  // Visible editor lines in document order (`top` of each .view-line), spaces normalised.
  return page.$$eval('.editor-instance .monaco-editor .view-lines .view-line', (nodes) =>
    nodes
      .map((n) => [parseFloat(n.style.top) || 0, n.textContent.replace(/\u00a0/g, ' ')])
      .sort((a, b) => a[0] - b[0])
      .map((pair) => pair[1]),
  );
}

export async function openFile(page, name) {
  // Click it in the Explorer (no file search involved, which is slow to warm up on a busy machine);
  // retry, since a click during a re-render of the tree can miss.
  const isActive = () =>
    page.evaluate((n) => Boolean(document.querySelector('.tab.active')?.textContent?.includes(n)), name);
  for (let attempt = 0; attempt < 5 && !(await isActive()); attempt++) {
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: name }).first().click();
    await page.waitForTimeout(1000);
  }
  await page.waitForFunction((n) => document.querySelector('.tab.active')?.textContent?.includes(n), name);
  await page.waitForSelector('.editor-instance .monaco-editor .view-line');
  await page.locator('.editor-instance .monaco-editor .view-lines').first().click(); // focus the editor
}

export async function gotoLine(page, spec) {
  await page.keyboard.press('Control+G');
  await page.waitForSelector('.quick-input-widget .quick-input-box input', { state: 'visible' });
  await page.keyboard.type(spec, { delay: 20 });
  await page.keyboard.press('Enter');
  await page.waitForTimeout(200);
}

export async function runCommand(page, title) {
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget .quick-input-box input', { state: 'visible' });
  await page.keyboard.type(title, { delay: 10 });
  await page.waitForTimeout(500);
  await page.keyboard.press('Enter');
}

export async function waitForDiffgem(page, state, timeout) {
  try {
    await page.waitForFunction(
      (label) => [...document.querySelectorAll('[aria-label]')].some((n) => n.getAttribute('aria-label') === label),
      `diffgem ${state}`,
      { timeout },
    );
  } catch (error) {
    // Say what the status item showed instead (a timeout alone told nothing in CI).
    const shown = await page
      .evaluate(() => [...document.querySelectorAll('[aria-label^="diffgem"]')].map((n) => n.getAttribute('aria-label')))
      .catch(() => []);
    throw new Error(`no "diffgem ${state}" within ${timeout} ms; the status item said ${JSON.stringify(shown)}: ${error}`);
  }
}

// Pick `title` in VS Code's open code-action menu (refactor menu, quick fix): focus it with the keyboard
// (the menu's pointer block swallows clicks) and apply it with Enter. False when it is not listed.
export async function pickAction(page, title, timeout) {
  try {
    await page.waitForSelector(`.action-widget :text("${title}")`, { timeout });
  } catch {
    await page.keyboard.press('Escape');
    return false;
  }
  const rows = await page.$$eval('.action-widget .monaco-list-row', (n) => n.length);
  for (let i = 0; i <= rows; i++) {
    const focused = await page.$eval('.action-widget .monaco-list-row.focused', (n) => n.textContent).catch(() => '');
    if (focused.includes(title)) break;
    await page.keyboard.press('ArrowDown');
  }
  await page.keyboard.press('Enter');
  return true;
}

// The ghost text shown in the editor now ('' when none).
export async function ghostText(page) {
  return page.$eval('.editor-instance .monaco-editor', (editor) =>
    [...editor.querySelectorAll('.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text')]
      .map((n) => n.textContent)
      .join('')
      .replace(/\u00a0/g, ' '),
  );
}

// Poll `probe` (async, returns a value or null) until it returns non-null or `timeout` ms pass.
export async function until(page, probe, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) return null;
    await page.waitForTimeout(200);
  }
}
