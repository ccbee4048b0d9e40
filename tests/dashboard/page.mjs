// Drives the dashboard page in Debian's chromium (playwright-core from the VS Code test's
// install) on behalf of tests/dashboard/test_dashboard.py: one JSON command per stdin line,
// one JSON answer per stdout line. Nothing is downloaded: executablePath is /usr/bin/chromium.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const SHOTS = process.env.SCREENSHOTS;
// Without the background-networking flags chromium keeps calling out to a closed network.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let browser;
let page;
const consoleErrors = [];

const commands = {
  async open({ url }) {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(url);
    await page.waitForSelector('#link.live', { timeout: 15000 });
    return { requests };
  },
  async machines({ names, health = 'ok', timeoutMs = 15000 }) {
    await page.waitForFunction(([want, h]) => want.every((n) =>
      document.querySelector(`#machines tr[data-machine="${n}"]`)?.dataset.health === h),
    [names, health], { timeout: timeoutMs, polling: 50 });
    return page.$$eval('#machines tbody tr', (rows) => rows.map((r) => r.dataset.machine));
  },
  async task({ table, id, state, timeoutMs = 15000 }) {
    const started = Date.now();
    await page.waitForSelector(`#${table} tr[data-task="${id}"][data-state="${state}"]`, { timeout: timeoutMs });
    const text = await page.$eval(`#${table} tr[data-task="${id}"]`, (r) => r.innerText);
    return { ms: Date.now() - started, text };
  },
  async cancel({ id }) {
    await page.click(`#tasks tr[data-task="${id}"] button.cancel`);
    return null;
  },
  async red({ name, timeoutMs = 3000 }) {
    const started = Date.now();
    await page.waitForFunction((n) => {
      const row = document.querySelector(`#machines tr[data-machine="${n}"]`);
      return row && ['late', 'lost'].includes(row.dataset.health);
    }, name, { timeout: timeoutMs, polling: 50 });
    const color = await page.$eval(`#machines tr[data-machine="${name}"] .dot`,
      (d) => getComputedStyle(d).backgroundColor);
    return { ms: Date.now() - started, color };
  },
  async plot() {
    return page.$$eval('#plot polyline', (lines) => lines.map((l) => l.getAttribute('class')));
  },
  async shot({ name }) {
    const path = join(SHOTS, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    return path;
  },
  async errors() {
    return consoleErrors;
  },
  async quit() {
    await browser?.close();
    return null;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const { cmd, ...args } = JSON.parse(line);
  let answer;
  try {
    answer = { ok: true, value: await commands[cmd](args) };
  } catch (err) {
    if (page) await page.screenshot({ path: join(SHOTS, `failed-${cmd}.png`), fullPage: true }).catch(() => {});
    answer = { ok: false, error: String(err?.stack ?? err) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (cmd === 'quit') break;
}
process.exit(0);
