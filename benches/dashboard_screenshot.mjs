// The browser half of benches/dashboard_screenshot.sh (run that, not this): in Debian's
// Chromium, driven by the playwright-core that tests/dashboard/ installs, it opens the
// dashboard of a running server, selects the finished training job so that its curves show,
// classifies one photo with the given model from the Predict panel, checks the label, and
// screenshots the whole page.
//
//   node benches/dashboard_screenshot.mjs URL TRAIN_JOB_ID EPOCHS MODEL_ID PHOTO LABEL OUT.png

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(new URL('../tests/dashboard/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const [url, trainId, epochsArg, modelId, photo, label, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node benches/dashboard_screenshot.mjs URL TRAIN_JOB_ID EPOCHS MODEL_ID PHOTO LABEL OUT.png');
  process.exit(2);
}
const epochs = Number(epochsArg);
const say = (text) => console.log(`[dashboard_screenshot.mjs] ${text}`);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  // The size the browser test uses: two columns, the panels side by side.
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
  page.on('pageerror', (err) => errors.push(err.message));

  await page.goto(`${url}/`);
  const row = `[data-testid="job-row"][data-job-id="${trainId}"]`;
  await page.click(`${row} [data-testid="job-select"]`, { timeout: 30_000 });
  await page.waitForFunction((n) => window.vggserve.charts.acc.data[0].length === n, epochs, { timeout: 30_000, polling: 200 });
  say(`selected training job ${trainId}: ${epochs} epochs on the charts`);

  await page.waitForSelector(`#predict-model option[value="${modelId}"]`, { state: 'attached', timeout: 30_000 });
  await page.selectOption('#predict-model', modelId);
  await page.setInputFiles('#predict-files', photo);
  const handle = await page.waitForFunction(() => {
    const err = document.querySelector('#predict-error');
    if (err && !err.hidden) return { error: err.textContent };
    const card = document.querySelector('[data-testid="prediction"]:not(.pending)');
    if (!card) return false;
    return {
      label: card.querySelector('[data-testid="prediction-label"]').textContent,
      probability: card.querySelector('[data-testid="prediction-probability"]')?.textContent,
    };
  }, null, { timeout: 120_000, polling: 200 });
  const shown = await handle.jsonValue();
  if (shown.error) throw new Error(`the dashboard could not classify ${photo}: ${shown.error}`);
  if (shown.label !== label) throw new Error(`the dashboard shows ${photo} as ${shown.label}, not ${label}`);
  say(`classified ${path.basename(photo)} with model ${modelId}: ${shown.label} ${shown.probability ?? ''}`.trim());

  // Let the last poll and chart resize settle, then the whole page from the top.
  await page.waitForTimeout(1000);
  await page.evaluate(() => window.scrollTo(0, 0));
  if (errors.length) throw new Error(`the page logged errors:\n${errors.join('\n')}`);
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  say(`wrote ${out}`);
} finally {
  await browser.close();
}
