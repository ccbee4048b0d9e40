// The real VS Code test: Debian's chromium (through playwright-core) drives code-server with the
// Swarm extension installed from its .vsix, against the real swarm-lsp server.
//
// Run by tests/editors/test_vscode_e2e.py, which starts code-server and the swarm and passes a
// JSON config in E2E_CONFIG: { url, file, results, screenshots, timeoutMs }. Every step writes
// its outcome to `results` as it finishes, so a failure still leaves the steps before it (and a
// screenshot of the failing moment) for the Python side to report.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.env.E2E_CONFIG ?? '{}');
const LONG = config.timeoutMs ?? 120_000;
const results = { steps: {}, timings: {}, ok: false };
let shot = 0;

// Without the background-networking flags chromium keeps calling out to a closed network.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function save() {
  writeFileSync(config.results, JSON.stringify(results, null, 1));
}

async function screenshot(page, name) {
  shot += 1;
  const path = join(config.screenshots, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path }).catch(() => undefined);
  return path;
}

/** Run one step; record its result or error and a screenshot either way. */
async function step(page, name, run) {
  const started = performance.now();
  try {
    const value = await run();
    results.steps[name] = { ok: true, value: value ?? null, ms: Math.round(performance.now() - started) };
    await screenshot(page, name);
  } catch (err) {
    results.steps[name] = { ok: false, error: String(err?.stack ?? err), ms: Math.round(performance.now() - started) };
    await screenshot(page, `${name}-failed`);
    await page.keyboard.press('Escape').catch(() => undefined);
  }
  save();
  return results.steps[name];
}

/** The active editor's rendered text, lines in order (Monaco positions line nodes by `top`). */
async function editorLines(page) {
  return page.evaluate(() => {
    const editor = document.querySelector('.editor-instance .monaco-editor .view-lines');
    if (!editor) {
      return '';
    }
    return [...editor.querySelectorAll('.view-line')]
      .map((node) => [parseFloat(node.style.top) || 0, node.textContent.replace(/\u00a0/g, ' ')])
      .sort((a, b) => a[0] - b[0])
      .map(([, text]) => text)
      .join('\n');
  });
}

async function command(page, title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible' });
  await input.press('Enter');
}

async function goToLine(page, line) {
  await page.keyboard.press('Control+G');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`:${line}`);
  await input.press('Enter');
  await input.waitFor({ state: 'hidden' });
}

/** The visible ghost text (inline completion) of the active editor, '' when none. */
async function waitForGhost(page, timeout) {
  const ghost = page.locator('.editor-instance .monaco-editor .ghost-text-decoration, .editor-instance .monaco-editor .ghost-text');
  await ghost.first().waitFor({ state: 'visible', timeout });
  return (await ghost.allInnerTexts()).join('\n').replace(/\u00a0/g, ' ');
}

/** Type `text`, then time from the last keystroke to the ghost text. */
async function ghostAfterTyping(page, text, timeout) {
  await page.keyboard.type(text, { delay: 30 });
  const started = performance.now();
  const ghost = await waitForGhost(page, timeout);
  return { ghost, ms: Math.round(performance.now() - started) };
}

/**
 * No server anywhere: the error says what was searched, and its button opens the settings scope
 * where swarm.server.path takes effect (code-server is a remote window: the Remote settings).
 */
async function missingServer(page) {
  const toast = page.locator('.notification-toast', { hasText: 'swarm-lsp was not found' });
  await step(page, 'missing_server_error', async () => {
    await toast.first().waitFor({ timeout: LONG });
    const buttons = await toast.first().locator('.monaco-button').allInnerTexts();
    const message = await toast.first().locator('.notification-list-item-message').innerText();
    return { message: message.trim(), buttons };
  });
  await step(page, 'settings_button', async () => {
    const button = toast.first().locator('.monaco-button', { hasText: /^Open .* Settings$/ });
    const label = (await button.innerText()).trim();
    await button.click();
    const editor = page.locator('.settings-editor');
    await editor.waitFor({ timeout: LONG });
    const setting = editor.locator('.setting-item-contents', { hasText: 'Server: Path' }).first();
    await setting.waitFor({ timeout: LONG });
    // The selected scope tab (User / Remote [host] / Workspace).
    const tab = await page.evaluate(() => {
      const selected = [...document.querySelectorAll('.settings-editor .settings-tabs-widget *')].find(
        (node) =>
          node.classList.contains('checked') ||
          node.getAttribute('aria-checked') === 'true' ||
          node.getAttribute('aria-selected') === 'true',
      );
      return selected ? selected.textContent.trim() : '';
    });
    const query = await editor.locator('.settings-header .search-container .view-line').first().innerText();
    return { label, tab, query: query.replace(/\u00a0/g, ' ').trim() };
  });
}

async function main() {
  const browser = await chromium.launch({
    executablePath: config.chromium ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30_000);
  const consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') {
      consoleErrors.push(message.text().slice(0, 300));
    }
  });
  try {
    await step(page, 'workbench', async () => {
      await page.goto(config.url, { waitUntil: 'domcontentloaded', timeout: LONG });
      await page.locator('.monaco-workbench .part.statusbar').waitFor({ timeout: LONG });
    });

    if (config.mode === 'missing-server') {
      await missingServer(page);
      return;
    }

    const status = await step(page, 'status', async () => {
      // "Swarm 1/1": the server started (found in the workspace's .venv) and reported the swarm.
      const item = page.locator('.statusbar-item', { hasText: /Swarm \d+\/\d+/ }).first();
      await item.waitFor({ timeout: LONG });
      return (await item.innerText()).trim();
    });
    if (!status.ok) {
      return;
    }

    await step(page, 'open', async () => {
      await page.keyboard.press('Control+P');
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible' });
      await input.fill(config.file);
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'geometry.py' }).first().waitFor();
      await input.press('Enter');
      await page.locator('.tab.active', { hasText: 'geometry.py' }).waitFor();
      await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
      return (await editorLines(page)).split('\n').length;
    });

    await step(page, 'ghost_text', async () => {
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Enter');
      const first = await ghostAfterTyping(page, 'def circle_circumference(radius: float) -> float:\n', LONG);
      results.timings.firstGhostTextMs = first.ms;
      save();
      await screenshot(page, 'ghost-text-shown');
      await page.keyboard.press('Tab');
      await page.waitForTimeout(200); // the accepted text is rendered on the next frame
      const after = await editorLines(page);
      const accepted = first.ghost.trim().split('\n')[0].trim();
      if (!after.includes(accepted)) {
        throw new Error(`Tab did not accept ${JSON.stringify(accepted)}; buffer:\n${after}`);
      }
      // A second ghost text in the same session: the warm figure.
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Shift+Tab');
      const second = await ghostAfterTyping(page, 'def square_area(side: float) -> float:\n', LONG);
      results.timings.secondGhostTextMs = second.ms;
      await page.keyboard.press('Escape');
      return { first: first.ghost, accepted, second: second.ghost };
    });

    await step(page, 'completion_item', async () => {
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      await page.keyboard.type('x = Rect', { delay: 30 });
      const started = performance.now();
      await page.keyboard.press('Control+Space');
      const row = page.locator('.suggest-widget.visible .monaco-list-row').first();
      await row.waitFor({ timeout: LONG });
      results.timings.completionListMs = Math.round(performance.now() - started);
      const labels = await page.locator('.suggest-widget.visible .monaco-list-row').allInnerTexts();
      await screenshot(page, 'completion-list');
      await page.keyboard.press('Escape');
      return labels.map((label) => label.trim()).filter(Boolean);
    });

    await step(page, 'code_actions', async () => {
      await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
      await goToLine(page, '22:12'); // on the name perimeter
      const widget = page.locator('.action-widget');
      const swarmRow = widget.locator('.monaco-list-row', { hasText: 'Swarm' }).first();
      // Ctrl+. once the editor has focus; again if the light bulb menu did not open (a key
      // pressed while the quick input was still closing goes nowhere).
      const deadline = Date.now() + LONG;
      for (let tries = 1; ; tries++) {
        await page.keyboard.press('Control+.');
        try {
          await swarmRow.waitFor({ timeout: 20_000 });
          break;
        } catch (err) {
          if (Date.now() > deadline) {
            throw err;
          }
          await screenshot(page, `code-actions-retry-${tries}`);
          await page.keyboard.press('Escape');
        }
      }
      const titles = await widget.locator('.monaco-list-row').allInnerTexts();
      await screenshot(page, 'code-actions-menu');
      await page.keyboard.press('Escape');
      return titles.map((title) => title.trim()).filter(Boolean);
    });

    await step(page, 'revert', async () => {
      await command(page, 'File: Revert File');
      await page.waitForFunction(() => !document.querySelector('.tab.active.dirty'));
      return (await editorLines(page)).split('\n').length;
    });

    await step(page, 'diagnostics_after_save', async () => {
      // A real edit (a comment at the end), then save: the test run reports test_perimeter.
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      await page.keyboard.type('# saved by the VS Code test');
      await page.keyboard.press('Control+S');
      await page.keyboard.press('Control+Shift+M');
      const rows = page.locator('.markers-panel .monaco-list-row');
      await rows.filter({ hasText: /perimeter|assert/ }).first().waitFor({ timeout: LONG });
      return (await rows.allInnerTexts()).map((text) => text.trim());
    });

    await step(page, 'refactor_apply', async () => {
      // Select perimeter() (lines 22-24) and run Swarm: Refactor… from the palette.
      await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
      await goToLine(page, 25);
      for (let i = 0; i < 3; i++) {
        await page.keyboard.press('Shift+ArrowUp');
      }
      await command(page, 'Swarm: Refactor…');
      const box = page.locator('.quick-input-widget input');
      await box.waitFor({ state: 'visible' });
      await box.fill('count each side twice');
      await box.press('Enter');
      // "Apply" (or "Wait" when the swarm is busy) arrives as a notification with buttons.
      const deadline = Date.now() + LONG;
      let asked = false;
      for (;;) {
        const lines = await editorLines(page);
        if (lines.includes(config.fix)) {
          if (!asked) {
            throw new Error('the buffer changed before Apply was clicked');
          }
          return lines.split('\n').find((line) => line.includes(config.fix)).trim();
        }
        if (Date.now() > deadline) {
          throw new Error(`the buffer never got ${config.fix}`);
        }
        for (const label of ['Apply', 'Wait']) {
          const button = page.locator('.notification-toast .monaco-button', { hasText: new RegExp(`^${label}$`) });
          if (await button.count()) {
            if (label === 'Apply') {
              asked = true;
              await screenshot(page, 'refactor-asks-apply');
            }
            await button.first().click();
          }
        }
        await page.waitForTimeout(250);
      }
    });

    await step(page, 'diagnostics_clear_after_fix', async () => {
      await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
      await page.keyboard.press('Control+S');
      await page.waitForFunction(
        () =>
          ![...document.querySelectorAll('.markers-panel .monaco-list-row')].some((row) =>
            /perimeter|assert/.test(row.textContent ?? ''),
          ),
        undefined,
        { timeout: LONG },
      );
      return (await page.locator('.markers-panel .monaco-list-row').allInnerTexts()).map((t) => t.trim());
    });

    await step(page, 'chat', async () => {
      await command(page, 'Swarm: Open Chat');
      const frame = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
      const prompt = frame.locator('#prompt');
      await prompt.waitFor({ timeout: LONG });
      await prompt.fill('What does perimeter compute?');
      await prompt.press('Enter');
      const answer = frame.locator('section.message.assistant:not(.streaming) .body').first();
      await answer.waitFor({ timeout: LONG });
      const error = await frame.locator('section.message.assistant.error').count();
      const text = (await answer.innerText()).trim();
      if (error || !text) {
        throw new Error(`chat answered with an error or nothing: ${JSON.stringify(text)}`);
      }
      return text;
    });
  } finally {
    results.consoleErrors = consoleErrors.slice(0, 20);
    results.ok = Object.values(results.steps).every((s) => s.ok);
    save();
    await browser.close();
  }
}

main().catch((err) => {
  results.fatal = String(err?.stack ?? err);
  save();
  process.exitCode = 1;
});
