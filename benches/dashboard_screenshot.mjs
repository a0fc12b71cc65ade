// The browser half of benches/dashboard_screenshot.sh (run that, not this): in Debian's
// Chromium, driven by the playwright-core that tests/dashboard/ installs, it opens the
// dashboard of a running server, selects the finished training job so that its curves show,
// classifies one photo with the given model from the Predict panel, checks the label, and
// screenshots the whole page. Then it ticks "why?", classifies a cat and a dog together, checks
// both labels and that each card shows its Grad-CAM overlay, and screenshots the Predict panel.
//
//   node benches/dashboard_screenshot.mjs URL TRAIN_JOB_ID EPOCHS MODEL_ID PHOTO LABEL OUT.png \
//     CAT_PHOTO DOG_PHOTO GRADCAM_OUT.png

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(new URL('../tests/dashboard/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const [url, trainId, epochsArg, modelId, photo, label, out, catPhoto, dogPhoto, gradcamOut] = process.argv.slice(2);
if (!gradcamOut) {
  console.error('usage: node benches/dashboard_screenshot.mjs URL TRAIN_JOB_ID EPOCHS MODEL_ID PHOTO LABEL OUT.png CAT_PHOTO DOG_PHOTO GRADCAM_OUT.png');
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

  // The cat and the dog, then "why?" (as a person would): ticking it classifies the chosen
  // photos again with ?explain=gradcam&overlay=png, and the plain answer, if still on its way,
  // is dropped. Wait until both cards are filled and each overlay is decoded (Grad-CAM takes a
  // while on CPU).
  await page.locator('#predict-panel').scrollIntoViewIfNeeded();
  await page.setInputFiles('#predict-files', [catPhoto, dogPhoto]);
  await page.getByRole('checkbox', { name: 'why?', exact: true }).check();
  const camHandle = await page.waitForFunction((names) => {
    const err = document.querySelector('#predict-error');
    if (err && !err.hidden) return { error: err.textContent };
    const cards = [...document.querySelectorAll('[data-testid="prediction"]')];
    const fnames = cards.map((c) => c.querySelector('.fname')?.textContent);
    if (cards.length !== 2 || fnames.join('/') !== names.join('/')) return false; // still the old photo's
    if (cards.some((c) => c.classList.contains('pending'))) return false;
    const overlays = cards.map((c) => c.querySelector('[data-testid="explanation-overlay"]'));
    if (overlays.some((img) => !img || !img.complete)) {
      const missing = cards.some((c) => c.querySelector('[data-testid="explanation-missing"]'));
      return missing ? { error: 'a card has no explanation' } : false;
    }
    return {
      cards: cards.map((c, i) => ({
        label: c.querySelector('[data-testid="prediction-label"]').textContent,
        probability: c.querySelector('[data-testid="prediction-probability"]')?.textContent,
        explained: c.querySelector('[data-testid="explanation"]').dataset.class,
        w: overlays[i].naturalWidth,
        h: overlays[i].naturalHeight,
      })),
    };
  }, [path.basename(catPhoto), path.basename(dogPhoto)], { timeout: 300_000, polling: 200 });
  const cam = await camHandle.jsonValue();
  if (cam.error) throw new Error(`the dashboard could not explain the cat and the dog: ${cam.error}`);
  [[catPhoto, 'cats'], [dogPhoto, 'dogs']].forEach(([file, want], i) => {
    const c = cam.cards[i];
    if (c.label !== want) throw new Error(`with "why?" the dashboard shows ${file} as ${c.label}, not ${want}`);
    if (c.explained !== want || !(c.w > 0 && c.h > 0)) throw new Error(`${file}: no overlay for ${want} (${JSON.stringify(c)})`);
    say(`explained ${path.basename(file)}: ${c.label} ${c.probability ?? ''}, overlay ${c.w}×${c.h}`);
  });

  await page.waitForTimeout(500);
  if (errors.length) throw new Error(`the page logged errors:\n${errors.join('\n')}`);
  fs.mkdirSync(path.dirname(path.resolve(gradcamOut)), { recursive: true });
  await page.locator('#predict-panel').screenshot({ path: gradcamOut });
  say(`wrote ${gradcamOut}`);
} finally {
  await browser.close();
}
