// Browser test of the dashboard (static/) against the real vggserve server: Debian's Chromium,
// driven by playwright-core, clicks through the page as a person would. It extracts features of
// a tiny dataset and trains on them from the form (with early stopping and the best epoch judged
// by the form's choice), watches the curves fill from the event stream and mark the server's
// best epoch, checks that the detail says whether training stopped early,
// shows the trained model's evaluation on the test split (confusion matrix, per-class figures,
// thumbnails of the wrong photos), moves the smoothing slider, classifies a photo, ticks "why?"
// and sees each photo's Grad-CAM overlay (and plain predictions again with it off), uploads a zip
// in the Datasets view (progress, report, thumbnails) and extracts features of it from the form,
// starts whole recipe 1 as one chain (POST /v1/pipelines) and follows its row and steps to the
// end, and saves screenshots to bench-out/ (ignored by git; docs/dashboard.png, the README's
// picture, is made on purpose by benches/dashboard_screenshot.sh; docs/img/gradcam-overlay.png only
// with VGGSERVE_SCREENSHOTS=1). The form's defaults and ranges are the server's
// (GET /v1/jobs/defaults): the test reads them from the server too and repeats none.
// Run it with tests/dashboard/run.sh (it installs Chromium and node_modules when missing);
// VGGSERVE_BIN names another server binary than target/release/vggserve.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER_BIN = path.resolve(process.env.VGGSERVE_BIN || path.join(REPO, 'target/release/vggserve'));
const SCREENSHOT = path.join(REPO, 'bench-out', 'dashboard-test.png');
const DATASETS_SCREENSHOT = path.join(REPO, 'bench-out', 'dashboard-datasets.png');
const CURVES_SCREENSHOT = path.join(REPO, 'bench-out', 'dashboard-curves.png');
const GRADCAM_SCREENSHOT = path.join(REPO, 'bench-out', 'dashboard-gradcam.png');
// A tracked file (the README's picture of "why?"): written only when asked, never by a plain run.
const GRADCAM_DOC = process.env.VGGSERVE_SCREENSHOTS === '1' ? path.join(REPO, 'docs', 'img', 'gradcam-overlay.png') : null;
const CHROMIUM = '/usr/bin/chromium';
const EPOCHS = 3;
// Per class and split: enough for every recipe to run, few enough for two CPU cores. The test
// split makes a training job evaluate its model (result.test).
const TINY = { train: 8, validation: 4, test: 4 };
const CLASSES = ['cats', 'dogs'];
// The dataset uploaded through the page: photos per class and split of the zip, and its name.
const UPLOAD = { train: 4, validation: 4, test: 4 };
const UPLOAD_NAME = 'uploaded_pets';

// Minutes, not seconds: the first job loads VGG16 on the CPU of a 2-core machine.
const SERVER_START_MS = 120_000;
const EXTRACT_MS = 300_000;
const TRAIN_MS = 300_000;
const PREDICT_MS = 120_000;
const CHAIN_MS = EXTRACT_MS + TRAIN_MS; // whole recipe 1: extract, train and evaluate in a row

let tmp;
let server; // { proc, url, log: string[] }
let browser;
let page;
const consoleErrors = [];
let jobDefaults; // GET /v1/jobs/defaults, as the server answers it

// The dashboard's recipes and the server's names for their defaults.
const RECIPE_DEFAULTS = {
  extract_features: 'extract_features',
  train_features: 'train_on_features',
  train_augment: 'train_augmented',
  fine_tune: 'fine_tune',
  evaluate: 'evaluate',
};
// The whole recipes: the steps whose fields the form shows, and the server's defaults each takes.
const WHOLE_RECIPE_DEFAULTS = {
  whole_1: { extract: 'extract_features', train: 'train_on_features' },
  whole_2: { train: 'train_augmented' },
  whole_3: { train: 'train_augmented', fine_tune: 'fine_tune' },
};

function sharedDir() {
  const shared = process.env.VGGSERVE_SHARED;
  assert.ok(shared, 'VGGSERVE_SHARED is not set: it must name the shared/ folder (make test-dashboard sets it)');
  return shared;
}

/** A tiny dataset in the `<name>/<split>/<class>/<image>` layout: a few shared photos, copied
 * so that the dataset is self-contained in the test's temporary folder. */
function makeTinyDataset(datasetsDir) {
  const source = path.join(sharedDir(), 'datasets', 'cats_and_dogs_small');
  for (const [split, count] of Object.entries(TINY)) {
    for (const cls of CLASSES) {
      const from = path.join(source, split, cls);
      assert.ok(fs.existsSync(from), `shared photos missing: ${from}`);
      const photos = fs.readdirSync(from).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, count);
      assert.equal(photos.length, count, `need ${count} photos in ${from}`);
      const to = path.join(datasetsDir, 'tiny', split, cls);
      fs.mkdirSync(to, { recursive: true });
      for (const p of photos) fs.copyFileSync(path.join(from, p), path.join(to, p));
    }
  }
}

/** A zip such as one made from a folder: `<top>/<split>/<class>/<image>`, a few shared photos per
 * class and split, plus one train photo copied into validation (a leak the report must call an
 * error) and a .DS_Store (left out as hidden). Written by Python's zipfile: no npm dependency. */
function makeUploadZip(dir) {
  const source = path.join(sharedDir(), 'datasets', 'cats_and_dogs_small');
  const entries = [];
  for (const [split, count] of Object.entries(UPLOAD)) {
    for (const cls of CLASSES) {
      const from = path.join(source, split, cls);
      const photos = fs.readdirSync(from).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, count);
      assert.equal(photos.length, count, `need ${count} photos in ${from}`);
      for (const p of photos) entries.push([path.join(from, p), `pets/${split}/${cls}/${p}`]);
    }
  }
  const leaked = entries[0]; // the first train/cats photo
  entries.push([leaked[0], `pets/validation/cats/copy-${path.basename(leaked[0])}`]);
  const zip = path.join(dir, 'pets.zip');
  const script = [
    'import json, sys, zipfile',
    'with zipfile.ZipFile(sys.argv[1], "w") as z:',
    '    for src, name in json.loads(sys.argv[2]):',
    '        z.write(src, name)',
    '    z.writestr("pets/.DS_Store", b"finder")',
  ].join('\n');
  const r = spawnSync('python3', ['-c', script, zip, JSON.stringify(entries)], { encoding: 'utf8' });
  assert.equal(r.status, 0, `python3 could not write the zip: ${r.stderr || r.error}`);
  return zip;
}

/** Start the server on a free port and wait for its "listening on http://…" line. */
function startServer(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(SERVER_BIN, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = [];
    const state = { proc, log, url: null };
    server = state; // known at once, so that after() stops it even when it never gets ready
    const timer = setTimeout(() => {
      reject(new Error(`server printed no "listening on" line within ${SERVER_START_MS / 1000} s; its output:\n${log.join('\n')}`));
    }, SERVER_START_MS);
    const onLine = (line) => {
      log.push(line);
      if (log.length > 400) log.shift();
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m && !state.url) {
        state.url = m[1].replace(/\/$/, '');
        clearTimeout(timer);
        resolve(state);
      }
    };
    // Output arrives in chunks that need not end at a line break: split it into whole lines.
    for (const stream of [proc.stdout, proc.stderr]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop();
        lines.forEach(onLine);
      });
      stream.on('end', () => rest && onLine(rest));
    }
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${SERVER_BIN}: ${e.message}`));
    });
    // 'close' (not 'exit') comes after the last output, so the report below is complete.
    proc.on('close', (code, signal) => {
      if (!state.url) {
        clearTimeout(timer);
        reject(new Error(`server exited (code ${code}, signal ${signal}) before listening; its output:\n${log.join('\n')}`));
      }
    });
  });
}

async function stopServer() {
  if (!server || server.proc.exitCode !== null || server.proc.signalCode !== null) return;
  const exited = new Promise((resolve) => server.proc.once('exit', resolve));
  server.proc.kill('SIGTERM');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

const serverLog = () => (server ? `\n--- last server output ---\n${server.log.slice(-40).join('\n')}` : '');

/** Wait until the job finishes in the page's job list; fail with the job's own error if it fails. */
async function waitForJob(id, timeout) {
  const handle = await page.waitForFunction((jobId) => {
    const row = document.querySelector(`[data-testid="job-row"][data-job-id="${jobId}"]`);
    const status = row?.dataset.status;
    return ['succeeded', 'failed', 'cancelled'].includes(status) ? status : false;
  }, id, { timeout, polling: 250 });
  const status = await handle.jsonValue();
  if (status !== 'succeeded') {
    const error = await page.evaluate((jobId) => window.vggserve.state.runs.get(jobId)?.job.error ?? '', id);
    assert.fail(`job ${id} ${status}: ${error}${serverLog()}`);
  }
}

/** Start the job described by the form and return its id (the page selects a job it started). */
async function startJobFromForm() {
  const before = await page.evaluate(() => window.vggserve.state.selected);
  await page.click('#start-job');
  const handle = await page.waitForFunction((prev) => {
    const err = document.querySelector('#form-error');
    if (err && !err.hidden) return { error: err.textContent };
    const sel = window.vggserve.state.selected;
    return sel && sel !== prev ? { id: sel } : false;
  }, before, { timeout: 30_000 });
  const { id, error } = await handle.jsonValue();
  assert.ok(id, `the server refused the job: ${error}${serverLog()}`);
  return id;
}

before(async () => {
  const weights = path.join(sharedDir(), 'weights', 'vgg16-standin.safetensors');
  assert.ok(fs.existsSync(weights), `VGG16 weights not found at ${weights}: the test needs them (it is never skipped)`);
  assert.ok(fs.existsSync(SERVER_BIN), `${SERVER_BIN} not found: build it first (make build)`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} not found: run tests/dashboard/run.sh, which installs it`);

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vggserve-dashboard-'));
  const datasetsDir = path.join(tmp, 'datasets');
  const dataDir = path.join(tmp, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  makeTinyDataset(datasetsDir);

  await startServer([
    'serve', '--addr', '127.0.0.1:0', '--data-dir', dataDir, '--datasets-dir', datasetsDir,
    '--weights', weights, '--device', 'cpu',
  ]);
  const res = await fetch(`${server.url}/v1/jobs/defaults`);
  assert.equal(res.status, 200, `GET /v1/jobs/defaults: ${res.status} ${await res.clone().text()}`);
  jobDefaults = await res.json();
  for (const key of Object.values(RECIPE_DEFAULTS)) {
    assert.equal(typeof jobDefaults.defaults?.[key], 'object', `GET /v1/jobs/defaults names no defaults.${key}`);
  }

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));
});

after(async () => {
  // Always runs, also after a failure: nothing may outlive the test.
  await browser?.close().catch(() => {});
  await stopServer();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// The steps below build on each other (the training uses the extracted features, and so on), so
// they run in order; node's runner runs the tests of one file one after the other.

let extractId;
let trainId;

test('the page loads and lists the tiny dataset', async () => {
  await page.goto(`${server.url}/`);
  assert.match(await page.title(), /vggserve/);
  await page.waitForSelector('#dataset option[value="tiny"]', { state: 'attached', timeout: 30_000 });
  await page.waitForSelector('[data-testid="datasets-list"] [data-testid="dataset-row"][data-dataset="tiny"]', { timeout: 30_000 });
});

// Fields whose options the form fills from the API rather than from the defaults.
const API_PICKERS = new Set(['split']);
// The single recipes' reference pickers, which a whole recipe's steps never show.
const REFERENCE_PICKERS = ['features', 'from_model', 'model'];

/** What the form shows for one parameter: a number, a boolean (checkbox) or the text. */
async function formValue(name) {
  const sel = `#${name.replaceAll('_', '-')}`;
  return page.$eval(sel, (el) => (el.type === 'checkbox' ? el.checked : el.type === 'number' ? Number(el.value) : el.value));
}

test('the form shows the server\'s defaults for every recipe, and "Reset to defaults" restores them', async () => {
  // Before the defaults are in the form cannot be submitted; they are in within moments.
  await page.waitForFunction(() => !document.querySelector('#start-job').disabled, null, { timeout: 30_000 });
  for (const [recipe, key] of Object.entries(RECIPE_DEFAULTS)) {
    await page.selectOption('#recipe', recipe);
    for (const [name, value] of Object.entries(jobDefaults.defaults[key])) {
      // Pickers filled from the API (the split, from the dataset) are not compared; selects of
      // fixed choices (the best epoch's `monitor`) start at the server's default like any field.
      if (API_PICKERS.has(name)) continue;
      assert.equal(await formValue(name), value, `${recipe}: ${name}`);
    }
  }
  // Recipe 3 ("train with data augmentation") shows the server's epochs.
  await page.selectOption('#recipe', 'train_augment');
  assert.equal(Number(await page.inputValue('#epochs')), jobDefaults.defaults.train_augmented.epochs);
  // A typed value survives switching recipes; "Reset to defaults" brings back the server's.
  const typed = jobDefaults.defaults.train_augmented.epochs + 1;
  await page.fill('#epochs', String(typed));
  await page.selectOption('#recipe', 'extract_features');
  await page.selectOption('#recipe', 'train_augment');
  assert.equal(Number(await page.inputValue('#epochs')), typed);
  await page.click('#reset-defaults');
  assert.equal(Number(await page.inputValue('#epochs')), jobDefaults.defaults.train_augmented.epochs);
  // The server's ranges bound the number fields.
  const { minimum, maximum } = jobDefaults.limits.epochs;
  assert.deepEqual(await page.$eval('#epochs', (el) => [el.min, el.max]), [String(minimum), String(maximum)]);
});

test('without the job defaults the form says why and cannot be submitted; it retries', async () => {
  // A page of its own (its console is not watched: the refused request logs an error there).
  const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    let refused = 0;
    await other.route('**/v1/jobs/defaults', (route) => {
      refused += 1;
      return route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: 'defaults unavailable (test)' }) });
    });
    await other.goto(`${server.url}/`);
    await other.waitForSelector('#form-error:not([hidden])', { timeout: 30_000 });
    assert.match(await other.textContent('#form-error'), /defaults unavailable \(test\)/);
    assert.equal(await other.isDisabled('#start-job'), true);
    assert.equal(await other.isDisabled('#reset-defaults'), true);
    assert.equal((await other.$$('#recipe-fields [data-field]')).length, 0, 'fields shown without defaults');
    // Once the server answers, the form fills in and can be submitted.
    await other.unroute('**/v1/jobs/defaults');
    await other.waitForFunction(() => !document.querySelector('#start-job').disabled, null, { timeout: 30_000 });
    assert.ok(refused >= 1);
    assert.equal(await other.isHidden('#form-error'), true);
  } finally {
    await other.close();
  }
});

test('extract features of the tiny dataset from the form', { timeout: EXTRACT_MS + 60_000 }, async () => {
  await page.selectOption('#recipe', 'extract_features');
  await page.selectOption('#dataset', 'tiny');
  assert.equal(Number(await page.inputValue('#image-size')), jobDefaults.defaults.extract_features.image_size);
  assert.equal(Number(await page.inputValue('#batch-size')), jobDefaults.defaults.extract_features.batch_size);
  extractId = await startJobFromForm();
  await waitForJob(extractId, EXTRACT_MS);
});

test(`train on the features for up to ${EPOCHS} epochs with early stopping; the charts fill as epochs arrive and mark the best epoch`, { timeout: TRAIN_MS + 60_000 }, async (t) => {
  await page.selectOption('#recipe', 'train_features');
  await page.selectOption('#dataset', 'tiny');
  // The features picker is filled from the job list: it offers the job that just succeeded.
  await page.waitForFunction((id) => document.querySelector('#features')?.value === id, extractId, { timeout: 30_000 });
  assert.equal(Number(await page.inputValue('#learning-rate')), jobDefaults.defaults.train_on_features.learning_rate);
  await page.fill('#epochs', String(EPOCHS));
  // The best epoch by the other validation figure than the server's default, and stop after one
  // epoch without improvement (the server's range allows it).
  const serverMonitor = jobDefaults.defaults.train_on_features.monitor;
  assert.equal(await page.inputValue('#monitor'), serverMonitor);
  const monitors = await page.$$eval('#monitor option', (options) => options.map((o) => o.value));
  const monitor = monitors.find((m) => m !== serverMonitor);
  assert.ok(monitor, `the monitor picker offers no choice besides ${serverMonitor}: ${monitors}`);
  await page.selectOption('#monitor', monitor);
  const patience = 1;
  assert.ok(patience >= jobDefaults.limits.early_stopping_patience.minimum && patience <= jobDefaults.limits.early_stopping_patience.maximum);
  await page.fill('#early-stopping-patience', String(patience));
  trainId = await startJobFromForm();

  // Points on the chart as they arrive, counted in its data (series 1: the selected job's
  // training accuracy); the best-epoch line comes with the first epoch.
  await page.waitForFunction(() => window.vggserve.charts.acc.data[1].filter((v) => v != null).length >= 1, null, { timeout: TRAIN_MS, polling: 100 });
  await page.waitForSelector('[data-testid="best-epoch-acc"]:not([hidden])', { timeout: 10_000 });
  await waitForJob(trainId, TRAIN_MS);

  // What the server says about the training (nothing below is hard-coded).
  const res = await fetch(`${server.url}/v1/jobs/${trainId}`);
  assert.equal(res.status, 200);
  const job = await res.json();
  assert.equal(job.params.monitor, monitor, 'the job did not get the form\'s monitor');
  assert.equal(job.params.early_stopping_patience, patience, 'the job did not get the form\'s patience');
  const training = job.result?.training;
  assert.ok(training && Number.isInteger(training.best_epoch), `the job reports no result.training: ${JSON.stringify(job.result)}`);
  assert.equal(training.epochs_run, job.epochs.length);
  // The page has read the finished job (its result) once the detail says how training ended.
  await page.waitForFunction((id) => window.vggserve.state.runs.get(id)?.job.result?.training != null, trainId, { timeout: 30_000 });

  const { x, acc, loss } = await page.evaluate(() => ({
    x: window.vggserve.charts.acc.data[0],
    acc: window.vggserve.charts.acc.data[1],
    loss: window.vggserve.charts.loss.data[1],
  }));
  // Exactly one point per epoch run: events replayed on (re)connect must not duplicate any.
  assert.equal(x.length, training.epochs_run, `epochs on the x axis: ${JSON.stringify(x)}`);
  assert.equal(new Set(x).size, training.epochs_run);
  assert.equal(acc.filter((v) => v != null).length, training.epochs_run);
  assert.equal(loss.filter((v) => v != null).length, training.epochs_run);

  // Both charts draw their line at the server's best epoch, and label it so.
  const registered = training.restore_best && training.registered_epoch === training.best_epoch;
  for (const metric of ['acc', 'loss']) {
    const marked = await page.$eval(`[data-testid="chart-${metric}"] .uplot`, (el) => el.dataset.markedEpoch);
    assert.equal(marked, String(training.best_epoch), `${metric} chart: the line is drawn at epoch ${marked}`);
    const label = page.locator(`[data-testid="best-epoch-${metric}"]`);
    assert.equal(await label.getAttribute('data-epoch'), String(training.best_epoch));
    const text = await label.textContent();
    assert.match(text, new RegExp(`best epoch ${training.best_epoch}\\b`), `${metric} label: ${text}`);
    assert.equal(/\(registered\)/.test(text), registered, `${metric} label: ${text}, restore_best ${training.restore_best}`);
  }
  // The detail says whether training stopped early, as the server does.
  const detail = page.locator('[data-testid="detail-training"]');
  const early = training.stopped === 'early_stopped';
  assert.equal(await detail.getAttribute('data-stopped-early'), String(early));
  const said = await detail.textContent();
  assert.match(said, early ? new RegExp(`stopped early after ${training.epochs_run} epochs`) : new RegExp(`ran all ${training.epochs_run} epochs`));
  assert.match(said, new RegExp(`best epoch ${training.best_epoch}\\b`));
  t.diagnostic(`training: monitor ${training.monitor}, best epoch ${training.best_epoch}, registered ${training.registered_epoch}, ${training.stopped} after ${training.epochs_run} epochs`);
});

test('the finished training job shows its evaluation: confusion matrix, per-class table, wrong photos', async (t) => {
  // What the server says the job's evaluation is (nothing below is hard-coded).
  const res = await fetch(`${server.url}/v1/jobs/${trainId}`);
  assert.equal(res.status, 200);
  const evaluation = (await res.json()).result?.test;
  assert.ok(evaluation && Array.isArray(evaluation.confusion), `the training job reports no test evaluation: ${JSON.stringify(evaluation)}`);
  assert.ok(evaluation.count > 0);

  // Another job (extract features has no evaluation) hides it; selecting the training job again shows it.
  await page.click(`[data-testid="job-row"][data-job-id="${extractId}"] [data-testid="job-select"]`);
  await page.waitForSelector('[data-testid="evaluation"]', { state: 'hidden', timeout: 10_000 });
  assert.equal(await page.isHidden('[data-testid="show-evaluation"]'), true);
  await page.click(`[data-testid="job-row"][data-job-id="${trainId}"] [data-testid="job-select"]`);
  await page.waitForSelector('[data-testid="confusion-matrix"]', { state: 'visible', timeout: 10_000 });
  assert.equal(await page.evaluate(() => window.vggserve.state.selected), trainId);

  // The matrix: one cell per (true, predicted) pair, summing to the evaluated photos.
  const counts = await page.$$eval('[data-testid="confusion-matrix"] [data-testid="confusion-cell"]', (cells) => cells.map((c) => Number(c.dataset.count)));
  assert.equal(counts.length, evaluation.classes.length ** 2);
  assert.equal(counts.reduce((a, b) => a + b, 0), evaluation.count);
  assert.deepEqual(counts, evaluation.confusion.flat());
  const colHeads = await page.$$eval('[data-testid="confusion-matrix"] thead th[scope="col"]', (ths) => ths.map((t) => t.textContent));
  assert.deepEqual(colHeads.slice(0, evaluation.classes.length), evaluation.classes);
  assert.equal(await page.$$eval('[data-testid="confusion-matrix"] caption', (c) => c.length), 1);
  assert.equal((await page.$$('[data-testid="per-class"] [data-testid="per-class-row"]')).length, evaluation.per_class.length);

  // The wrong photos, if any: one thumbnail each, actually decoded.
  const wrong = evaluation.most_confident_wrong ?? [];
  assert.equal((await page.$$('[data-testid="wrong-photo"]')).length, wrong.length);
  if (wrong.length) {
    const loaded = await page.waitForFunction((n) => {
      const failed = document.querySelector('[data-testid="wrong-photo"] .thumb-error');
      if (failed) return { error: failed.textContent };
      const imgs = [...document.querySelectorAll('[data-testid="wrong-photo"] img')];
      return imgs.length === n && imgs.every((img) => img.complete && img.naturalWidth > 0) ? { ok: true } : false;
    }, wrong.length, { timeout: 30_000 });
    const { error } = await loaded.jsonValue();
    assert.ok(!error, `a wrong photo's thumbnail did not load: ${error}${serverLog()}`);
    const captions = await page.$$eval('[data-testid="wrong-photo"] figcaption', (fc) => fc.map((f) => f.textContent));
    wrong.forEach((w, i) => assert.ok(captions[i].includes(`${w.true} → ${w.predicted}`), `caption ${i}: ${captions[i]}`));
  }

  t.diagnostic(`confusion matrix: ${evaluation.count} photos, ${evaluation.classes.length} classes; ${wrong.length} wrong photos shown`);

  // The detail's button takes the keyboard to the evaluation.
  await page.click('[data-testid="show-evaluation"]');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'evaluation-h');
});

test('the smoothing slider changes the smoothed series (an EMA, first point unchanged)', async () => {
  const read = () => page.evaluate(() => ({ raw: window.vggserve.charts.loss.data[1], smooth: window.vggserve.charts.loss.data[2] }));
  const before = await read();
  await page.fill('#smoothing', '0.2');
  const after = await read();
  assert.equal(await page.textContent('#smoothing-value'), '0.20');
  assert.notDeepEqual(after.smooth, before.smooth, 'the smoothed loss did not change with the slider');
  // smoothed[i] = smoothed[i-1] * f + raw[i] * (1 - f); smoothed[0] = raw[0]
  let prev = null;
  after.raw.forEach((v, i) => {
    const want = prev == null ? v : prev * 0.2 + v * 0.8;
    assert.ok(Math.abs(after.smooth[i] - want) < 1e-9, `smoothed[${i}] = ${after.smooth[i]}, want ${want}`);
    prev = want;
  });
  await page.fill('#smoothing', '0.8');
});

test('a photo from the test split is classified as cats or dogs', { timeout: PREDICT_MS + 30_000 }, async () => {
  const modelId = await page.evaluate((id) => window.vggserve.state.runs.get(id)?.job.model_id, trainId);
  assert.ok(modelId, 'the training job names no model_id');
  // The model list and the predict picker refresh when the job ends.
  await page.waitForSelector(`[data-testid="model-row"][data-model-id="${modelId}"]`, { timeout: 30_000 });
  await page.selectOption('#predict-model', modelId);
  const testCats = path.join(sharedDir(), 'datasets', 'cats_and_dogs_small', 'test', 'cats');
  const photo = path.join(testCats, fs.readdirSync(testCats).filter((f) => /\.jpe?g$/i.test(f)).sort()[0]);
  await page.setInputFiles('#predict-files', photo);
  const handle = await page.waitForFunction(() => {
    const err = document.querySelector('#predict-error');
    if (err && !err.hidden) return { error: err.textContent };
    const card = document.querySelector('[data-testid="prediction"]:not(.pending)');
    return card ? { label: card.querySelector('[data-testid="prediction-label"]').textContent } : false;
  }, null, { timeout: PREDICT_MS });
  const { label, error } = await handle.jsonValue();
  assert.ok(!error, `prediction failed: ${error}${serverLog()}`);
  assert.ok(CLASSES.includes(label), `label ${JSON.stringify(label)} is neither cats nor dogs`);
});

/** The first photo of a class in the shared test split. */
function testPhoto(cls) {
  const dir = path.join(sharedDir(), 'datasets', 'cats_and_dogs_small', 'test', cls);
  return path.join(dir, fs.readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort()[0]);
}

const isPredict = (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/predict';

/** Run `action` (which makes the predict panel classify `n` photos) and wait for the answer and
 * its cards; with `explain`, until every overlay is decoded. The request's query, the answer's
 * JSON and the cards as the page shows them. */
async function predictVia(action, n, explain) {
  const answered = page.waitForResponse(isPredict, { timeout: PREDICT_MS });
  await action();
  const res = await answered;
  const query = new URL(res.url()).searchParams;
  const body = await res.json();
  assert.equal(res.status(), 200, `POST /v1/predict?${query}: ${JSON.stringify(body)}${serverLog()}`);
  const handle = await page.waitForFunction(({ n, explain }) => {
    const err = document.querySelector('#predict-error');
    if (err && !err.hidden) return { error: err.textContent };
    const cards = [...document.querySelectorAll('[data-testid="prediction"]')];
    if (cards.length !== n || cards.some((c) => c.classList.contains('pending'))) return false;
    const overlays = cards.map((c) => c.querySelector('[data-testid="explanation-overlay"]'));
    if (explain && overlays.some((img) => !img || !img.complete)) return false;
    return {
      cards: cards.map((c, i) => ({
        label: c.querySelector('[data-testid="prediction-label"]').textContent,
        imgs: [...c.querySelectorAll('img')].map((img) => img.src.slice(0, 5)),
        overlay: overlays[i] && { src: overlays[i].src, w: overlays[i].naturalWidth, h: overlays[i].naturalHeight, alt: overlays[i].alt },
        caption: c.querySelector('[data-testid="explanation-caption"]')?.textContent ?? null,
        legend: c.querySelector('[data-testid="explanation-legend"]')?.textContent ?? null,
      })),
    };
  }, { n, explain }, { timeout: PREDICT_MS });
  const shown = await handle.jsonValue();
  assert.ok(!shown.error, `prediction failed: ${shown.error}${serverLog()}`);
  return { query, body, cards: shown.cards };
}

/** Width and height from a PNG's IHDR chunk (after the 8-byte signature); throws when not a PNG. */
function pngSize(buf) {
  assert.deepEqual([...buf.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'not a PNG signature');
  assert.equal(buf.toString('latin1', 12, 16), 'IHDR');
  return { w: buf.readUInt32BE(16), h: buf.readUInt32BE(20) };
}

test('"why?" on: each photo is shown as its Grad-CAM overlay, captioned; off: a plain predict', { timeout: 3 * PREDICT_MS + 60_000 }, async (t) => {
  const modelId = await page.evaluate((id) => window.vggserve.state.runs.get(id)?.job.model_id, trainId);
  const res = await fetch(`${server.url}/v1/models/${modelId}`);
  assert.equal(res.status, 200);
  const size = (await res.json()).config?.image_size;
  assert.ok(Number.isInteger(size) && size > 0, `the model names no config.image_size: ${size}`);
  await page.locator('#predict-panel').scrollIntoViewIfNeeded();
  await page.selectOption('#predict-model', modelId);
  const why = page.getByRole('checkbox', { name: 'why?', exact: true }); // found by its label
  const photos = [testPhoto('cats'), testPhoto('dogs')];

  // Off (as the page starts): today's predict, no explain parameters, the photos as they are.
  assert.equal(await why.isChecked(), false);
  const plain = await predictVia(() => page.setInputFiles('#predict-files', photos), photos.length, false);
  assert.equal(plain.query.get('model'), modelId);
  assert.ok(!plain.query.has('explain') && !plain.query.has('overlay'), `plain predict sent ?${plain.query}`);
  assert.ok(plain.body.predictions.every((p) => p.explanation === undefined), 'an explanation nobody asked for');
  for (const c of plain.cards) assert.deepEqual([c.imgs, c.overlay, c.caption], [['blob:'], null, null]);

  // On: the same photos again, with ?explain=gradcam&overlay=png, each shown as its overlay.
  const explained = await predictVia(() => why.check(), photos.length, true);
  assert.equal(explained.query.get('explain'), 'gradcam');
  assert.equal(explained.query.get('overlay'), 'png');
  assert.equal(explained.query.get('model'), modelId);
  explained.body.predictions.forEach((p, i) => {
    const ex = p.explanation;
    const card = explained.cards[i];
    assert.equal(card.label, p.label);
    // The answer as the dashboard reads it.
    assert.equal(ex?.method, 'gradcam', `photo ${i}: explanation ${JSON.stringify(ex)?.slice(0, 300)}`);
    assert.equal(ex.class, p.label, 'the predicted class is explained');
    assert.ok(typeof ex.layer === 'string' && ex.layer, `layer ${ex.layer}`);
    assert.ok(Array.isArray(ex.grid) && ex.grid.length > 0 && ex.grid.every((row) => Array.isArray(row) && row.length === ex.grid[0].length), 'grid is no h×w array');
    assert.ok(ex.grid.flat().every((v) => typeof v === 'number' && v >= 0 && v <= 1), 'grid values outside [0, 1]');
    // The overlay replaces the photo: a real PNG, decoded, in the model's input proportions.
    assert.deepEqual(card.imgs, ['data:']);
    assert.equal(card.overlay.src, `data:image/png;base64,${ex.overlay_png_base64}`);
    assert.ok(card.overlay.w > 0 && card.overlay.h > 0, `overlay not decoded: ${card.overlay.w}×${card.overlay.h}`);
    assert.deepEqual(pngSize(Buffer.from(ex.overlay_png_base64, 'base64')), { w: card.overlay.w, h: card.overlay.h });
    assert.equal(card.overlay.w * size, card.overlay.h * size, `overlay ${card.overlay.w}×${card.overlay.h}, model input ${size}×${size}`);
    assert.equal(card.caption, `where the model looked for “${p.label}”`);
    assert.match(card.overlay.alt, new RegExp(`where the model looked for “${p.label}”`));
    assert.match(card.legend, /^low\s+high$/);
    if (i === 0) t.diagnostic(`gradcam: layer ${ex.layer}, grid ${ex.grid.length}×${ex.grid[0].length}, overlay ${card.overlay.w}×${card.overlay.h} (input ${size})`);
  });
  await page.locator('#predict-panel').screenshot({ path: GRADCAM_SCREENSHOT });
  t.diagnostic(`screenshot: ${path.relative(REPO, GRADCAM_SCREENSHOT)}`);
  if (GRADCAM_DOC) {
    fs.mkdirSync(path.dirname(GRADCAM_DOC), { recursive: true });
    await page.locator('#predict-panel').screenshot({ path: GRADCAM_DOC });
    t.diagnostic(`screenshot: ${path.relative(REPO, GRADCAM_DOC)}`);
  }

  // Off again: plain once more.
  const again = await predictVia(() => why.uncheck(), photos.length, false);
  assert.ok(!again.query.has('explain') && !again.query.has('overlay'), `plain predict sent ?${again.query}`);
  for (const c of again.cards) assert.deepEqual([c.imgs, c.overlay], [['blob:'], null]);
  assert.deepEqual(consoleErrors, [], 'the page logged errors');
});

test('a refused explain request shows the server\'s error like any predict error', { timeout: PREDICT_MS + 30_000 }, async () => {
  // A page of its own (a refused request logs a console error there) whose explain request goes
  // out with an explain value the server does not know: the box shows the server's own words.
  const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    await other.route('**/v1/predict?*', (route) => route.continue({ url: route.request().url().replace('explain=gradcam', 'explain=nonsense') }));
    await other.goto(`${server.url}/`);
    await other.getByLabel('why?', { exact: true }).check();
    const answered = other.waitForResponse(isPredict, { timeout: PREDICT_MS });
    await other.setInputFiles('#predict-files', testPhoto('cats'));
    const res = await answered;
    assert.match(res.url(), /[?&]explain=nonsense(&|$)/);
    const refusal = await res.json();
    assert.equal(res.status(), 400, JSON.stringify(refusal));
    assert.equal(refusal.field, 'explain');
    await other.waitForFunction((want) => document.querySelector('#predict-error')?.textContent === `✗ ${want}`, refusal.error, { timeout: 10_000 });
    assert.equal(await other.textContent('[data-testid="prediction-label"]'), 'not classified');
    assert.equal(await other.$('[data-testid="explanation"]'), null);
  } finally {
    await other.close();
  }
});

test('screenshot of the finished job with its curves, and no console errors', async (t) => {
  assert.equal(await page.evaluate(() => window.vggserve.state.selected), trainId);
  // Into bench-out/ (ignored by git): a test run never changes a tracked file.
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  t.diagnostic(`screenshot: ${path.relative(REPO, SCREENSHOT)}`);
  // The curves panel alone: the detail, and both charts with their best-epoch line.
  await page.locator('#curves-panel').screenshot({ path: CURVES_SCREENSHOT });
  t.diagnostic(`screenshot: ${path.relative(REPO, CURVES_SCREENSHOT)}`);
  assert.deepEqual(consoleErrors, [], 'the page logged errors');
});

test('a zip uploaded in the Datasets view shows its report and thumbnails, and recipe 1 runs on it', { timeout: EXTRACT_MS + 120_000 }, async (t) => {
  const zip = makeUploadZip(tmp);

  // Refusals, on a page of its own (its console is not watched: a refused upload logs an error
  // there): a name the dashboard rejects before sending, then an archive the server rejects,
  // whose JSON error is shown as the server words it.
  const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    await other.goto(`${server.url}/`);
    await other.setInputFiles('#dataset-file', { name: 'broken.zip', mimeType: 'application/zip', buffer: Buffer.from('not a zip at all') });
    assert.equal(await other.inputValue('#dataset-name'), 'broken', 'a name is proposed from the file\'s');
    await other.fill('#dataset-name', '.hidden');
    await other.click('#upload-start');
    await other.waitForSelector('#upload-error:not([hidden])', { timeout: 10_000 });
    assert.equal(await other.getAttribute('#dataset-name', 'aria-invalid'), 'true');
    await other.fill('#dataset-name', 'broken');
    const res = await fetch(`${server.url}/v1/datasets?name=broken`, {
      method: 'POST', headers: { 'Content-Type': 'application/zip' }, body: 'not a zip at all',
    });
    assert.equal(res.status, 422);
    const refusal = await res.json();
    await other.click('#upload-start');
    await other.waitForFunction((want) => document.querySelector('#upload-error')?.textContent === `✗ ${want}`, refusal.error, { timeout: 30_000 });
    assert.equal(await other.getAttribute('#dataset-drop', 'aria-invalid'), refusal.field === 'archive' ? 'true' : null);
    assert.match(await other.textContent('#upload-text'), /nothing was kept/);
  } finally {
    await other.close();
  }

  // The upload, as a person does it: choose the file, name it, press Upload.
  await page.locator('#datasets-panel').scrollIntoViewIfNeeded();
  await page.setInputFiles('#dataset-file', zip);
  assert.equal(await page.inputValue('#dataset-name'), 'pets');
  await page.fill('#dataset-name', UPLOAD_NAME);
  await page.click('#upload-start');
  const shown = await page.waitForFunction((name) => {
    const err = document.querySelector('#upload-error');
    if (err && !err.hidden) return { error: err.textContent };
    const report = document.querySelector('[data-testid="dataset-report"]');
    const failed = report?.querySelector('[data-testid="report-error"]');
    if (failed) return { error: failed.textContent };
    return report?.querySelector('#report-h')?.textContent.includes(name) && report.querySelector('[data-testid="report-counts"]') ? { ok: true } : false;
  }, UPLOAD_NAME, { timeout: 120_000 });
  const { error } = await shown.jsonValue();
  assert.ok(!error, `upload or report failed: ${error}${serverLog()}`);

  // The progress bar ended full, and the answer's `skipped` (the .DS_Store) is shown.
  assert.equal(await page.$eval('[data-testid="upload-progress"]', (el) => el.value), 1);
  assert.match(await page.textContent('[data-testid="upload-text"]'), /^✓ Uploaded/);
  assert.match(await page.textContent('[data-testid="upload-skipped"]'), /1 hidden/);

  // The counts table says what the API's report says, cell by cell.
  const res = await fetch(`${server.url}/v1/datasets/${UPLOAD_NAME}`);
  assert.equal(res.status, 200);
  const { report, samples } = await res.json();
  const want = {};
  for (const [split, sr] of Object.entries(report.splits)) {
    for (const [cls, cc] of Object.entries(sr.classes)) want[`${split}/${cls}`] = cc.images;
  }
  const cells = await page.$$eval('[data-testid="report-counts"] [data-testid="report-count"]',
    (tds) => Object.fromEntries(tds.map((td) => [`${td.dataset.split}/${td.dataset.class}`, Number(td.dataset.count)])));
  assert.deepEqual(cells, want);
  assert.equal(want['validation/cats'], UPLOAD.validation + 1, 'the leaked copy counts in validation');
  const totals = await page.$$eval('[data-testid="report-split-total"]', (tds) => Object.fromEntries(tds.map((td) => [td.dataset.split, Number(td.dataset.count)])));
  assert.deepEqual(totals, Object.fromEntries(Object.entries(report.splits).map(([s, sr]) => [s, sr.images])));

  // Warnings and errors, as the server words them; the leak is an error that refuses training.
  assert.ok(report.warnings.length > 0 && report.errors.length > 0, `expected warnings and errors: ${JSON.stringify(report)}`);
  const warnings = await page.$$eval('[data-testid="report-warnings"] li', (lis) => lis.map((li) => li.textContent));
  assert.deepEqual(warnings, report.warnings);
  const errors = await page.$$eval('[data-testid="report-errors"] li', (lis) => lis.map((li) => li.textContent));
  assert.deepEqual(errors, report.errors);
  assert.match(await page.textContent('[data-testid="report-errors"]'), /Allow leaks/);

  // Thumbnails of the photos the report names (the leaked pair), actually decoded.
  const named = new Set(report.cross_split_duplicates.flatMap((p) => [p.a, p.b]));
  assert.equal(named.size, 2);
  const thumbs = await page.$$eval('[data-testid="dataset-thumbnails"] [data-testid="dataset-thumb"]', (lis) => lis.map((li) => li.dataset.file));
  assert.deepEqual(new Set(thumbs), named);
  const loaded = await page.waitForFunction(() => {
    const failed = document.querySelector('[data-testid="dataset-thumbnails"] .thumb-error');
    if (failed) return { error: failed.textContent };
    const imgs = [...document.querySelectorAll('[data-testid="dataset-thumb"] img')];
    return imgs.length && imgs.every((img) => img.complete && img.naturalWidth > 0) ? { ok: true } : false;
  }, null, { timeout: 30_000 });
  assert.ok(!(await loaded.jsonValue()).error, 'a thumbnail did not load');

  // A few photos of each class: the train files the API lists, every one decoded.
  const listedSamples = Object.values(samples.train).flat();
  const shownSamples = await page.$$eval('[data-testid="class-samples"] [data-testid="class-sample"]', (lis) => lis.map((li) => li.dataset.file));
  assert.deepEqual(new Set(shownSamples), new Set(listedSamples));
  const samplesLoaded = await page.waitForFunction(() => {
    const failed = document.querySelector('[data-testid="class-samples"] .thumb-error');
    if (failed) return { error: failed.textContent };
    const imgs = [...document.querySelectorAll('[data-testid="class-sample"] img')];
    return imgs.length && imgs.every((img) => img.complete && img.naturalWidth > 0) ? { ok: true } : false;
  }, null, { timeout: 30_000 });
  assert.ok(!(await samplesLoaded.jsonValue()).error, 'a class photo did not load');

  // The list shows it, and the job form offers it at once.
  const row = `[data-testid="datasets-list"] [data-testid="dataset-row"][data-dataset="${UPLOAD_NAME}"]`;
  const listed = await page.$$eval(`${row} [data-testid="dataset-images"]`, (tds) => Object.fromEntries(tds.map((td) => [td.dataset.split, Number(td.textContent)])));
  assert.deepEqual(listed, totals);
  await page.waitForSelector(`#dataset option[value="${UPLOAD_NAME}"]`, { state: 'attached', timeout: 5_000 });

  fs.mkdirSync(path.dirname(DATASETS_SCREENSHOT), { recursive: true });
  await page.locator('#datasets-panel').screenshot({ path: DATASETS_SCREENSHOT });
  t.diagnostic(`screenshot: ${path.relative(REPO, DATASETS_SCREENSHOT)}`);

  // Recipe 1 on the uploaded dataset, from the form (a leak does not refuse extracting features).
  await page.selectOption('#recipe', 'extract_features');
  await page.selectOption('#dataset', UPLOAD_NAME);
  const id = await startJobFromForm();
  await waitForJob(id, EXTRACT_MS);

  // Deleting it (two clicks) takes it off the list and out of the form's picker.
  await page.click(`${row} [data-testid="dataset-delete"]`);
  await page.click(`${row} [data-testid="dataset-delete"]`);
  await page.waitForSelector(row, { state: 'detached', timeout: 10_000 });
  await page.waitForSelector(`#dataset option[value="${UPLOAD_NAME}"]`, { state: 'detached', timeout: 5_000 });
  assert.equal((await fetch(`${server.url}/v1/datasets/${UPLOAD_NAME}`)).status, 404);
  assert.deepEqual(consoleErrors, [], 'the page logged errors');
});

test('whole recipe 1 from the form runs as one chain row that opens to its three steps', { timeout: CHAIN_MS + 60_000 }, async (t) => {
  await page.locator('#jobs-panel').scrollIntoViewIfNeeded();
  await page.selectOption('#dataset', 'tiny');
  // Each whole recipe shows a box of fields per step, with the server's defaults of that step's
  // single recipe (the references between steps are the recipe's, so no picker for them).
  for (const [choice, steps] of Object.entries(WHOLE_RECIPE_DEFAULTS)) {
    await page.selectOption('#recipe', choice);
    const shown = await page.$$eval('[data-testid="step-fields"]', (boxes) => boxes.map((box) => ({
      step: box.dataset.stepFields,
      fields: [...box.querySelectorAll('[data-field]')].map((el) => [el.dataset.field, el.type === 'checkbox' ? el.checked : el.type === 'number' ? Number(el.value) : el.value]),
    })));
    assert.deepEqual(shown.map((s) => s.step), Object.keys(steps), `${choice}: steps with fields`);
    for (const { step, fields } of shown) {
      assert.ok(fields.length > 0, `${choice}: step ${step} shows no fields`);
      for (const [name, value] of fields) assert.equal(value, jobDefaults.defaults[steps[step]][name], `${choice}: ${step}.${name}`);
    }
    const refs = REFERENCE_PICKERS.map((n) => `#recipe-fields [data-field="${n}"]`).join(', ');
    assert.equal(await page.$(refs), null, `${choice}: a reference picker is shown`);
  }

  await page.selectOption('#recipe', 'whole_1');
  // A value out of the server's range is refused before sending, at the field of its step.
  await page.fill('#train-epochs', String(jobDefaults.limits.epochs.maximum + 1));
  await page.click('#start-job');
  await page.waitForSelector('#form-error:not([hidden])', { timeout: 5_000 });
  assert.match(await page.textContent('#form-error'), /train/);
  assert.equal(await page.getAttribute('#train-epochs', 'aria-invalid'), 'true');
  assert.equal(await page.getAttribute('#extract-batch-size', 'aria-invalid'), null);

  await page.fill('#train-epochs', String(EPOCHS));
  // A step's fixed-choice field is sent as that step's override too.
  const trainMonitor = (await page.$$eval('#train-monitor option', (options) => options.map((o) => o.value)))
    .find((m) => m !== jobDefaults.defaults.train_on_features.monitor);
  await page.selectOption('#train-monitor', trainMonitor);
  const known = await page.$$eval('[data-testid="chain-row"]', (rows) => rows.map((r) => r.dataset.pipelineId));
  await page.click('#start-job');
  // The first sight of the new chain: the ids of its rows and the steps' statuses right then.
  const seen = await page.waitForFunction((before) => {
    const err = document.querySelector('#form-error');
    if (err && !err.hidden) return { error: err.textContent };
    const fresh = [...document.querySelectorAll('[data-testid="chain-row"]')].filter((r) => !before.includes(r.dataset.pipelineId));
    if (!fresh.length) return false;
    const steps = [...fresh[0].querySelectorAll('[data-testid="chain-steps"] > [data-testid="job-row"]')].map((r) => ({
      id: r.dataset.jobId, status: r.dataset.status,
      text: r.querySelector('[data-testid="job-status"]').textContent, class: r.querySelector('[data-testid="job-status"]').className,
    }));
    return { ids: fresh.map((r) => r.dataset.pipelineId), steps };
  }, known, { timeout: 30_000 });
  const first = await seen.jsonValue();
  assert.ok(!first.error, `the server refused the whole recipe: ${first.error}${serverLog()}`);
  assert.equal(first.ids.length, 1, `one chain row for the whole recipe, got ${first.ids.length}`);
  const pipelineId = first.ids[0];
  const chain = `[data-testid="chain-row"][data-pipeline-id="${pipelineId}"]`;

  // What the server says the pipeline is: recipe 1, three steps, the form's values as overrides.
  const res = await fetch(`${server.url}/v1/pipelines/${pipelineId}`);
  assert.equal(res.status, 200);
  const queued = await res.json();
  assert.equal(queued.recipe, 1);
  assert.deepEqual(queued.jobs.map((j) => j.step), ['extract', 'train', 'evaluate']);
  assert.equal(queued.jobs[1].params.epochs, EPOCHS, 'the train step did not get the form\'s epochs');
  assert.equal(queued.jobs[1].params.monitor, trainMonitor, 'the train step did not get the form\'s monitor');
  assert.ok(queued.jobs.every((j) => j.pipeline === pipelineId && j.dataset === 'tiny'));
  // The last step waits on the two before it, so it was still waiting when the row appeared.
  assert.deepEqual(first.steps.map((s) => s.id), queued.jobs.map((j) => j.id));
  assert.equal(first.steps[2].status, 'waiting');
  assert.match(first.steps[2].text, /^[^?\s] waiting$/, 'waiting is shown with its own mark');
  assert.match(first.steps[2].class, /\bstatus-waiting\b/);

  // ONE row: the steps are not listed on their own, and stay hidden until the chain is opened.
  for (const j of queued.jobs) assert.equal(await page.$(`#job-list > [data-job-id="${j.id}"]`), null, `step ${j.step} listed on its own`);
  assert.match(await page.textContent(`${chain} [data-testid="chain-name"]`), /recipe 1\b/);
  assert.equal(await page.textContent(`${chain} [data-testid="chain-dataset"]`), 'tiny');
  const toggle = `${chain} [data-testid="chain-toggle"]`;
  assert.equal(await page.getAttribute(toggle, 'aria-expanded'), 'false');
  assert.equal(await page.isHidden(`${chain} [data-testid="chain-steps"]`), true);

  // Opened from the keyboard, it shows its three steps in order, named as the server names them.
  await page.focus(toggle);
  await page.keyboard.press('Enter');
  assert.equal(await page.getAttribute(toggle, 'aria-expanded'), 'true');
  await page.waitForSelector(`${chain} [data-testid="chain-steps"]`, { state: 'visible', timeout: 5_000 });
  const readSteps = () => page.$$eval(`${chain} [data-testid="chain-steps"] > [data-testid="job-row"]`, (rows) => rows.map((r) => ({
    id: r.dataset.jobId, step: r.querySelector('[data-testid="job-step"]').textContent, status: r.dataset.status,
  })));
  const opened = await readSteps();
  assert.deepEqual(opened.map(({ id, step }) => ({ id, step })), queued.jobs.map(({ id, step }) => ({ id, step })));
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'chain-toggle', 'the toggle lost the focus');

  // Until the chain ends; then its row and every step's row say what the server says.
  const ended = await page.waitForFunction((sel) => {
    const s = document.querySelector(sel)?.dataset.status;
    return ['succeeded', 'failed', 'cancelled'].includes(s) ? s : false;
  }, chain, { timeout: CHAIN_MS, polling: 250 });
  const finalRes = await fetch(`${server.url}/v1/pipelines/${pipelineId}`);
  const final = await finalRes.json();
  const status = await ended.jsonValue();
  if (status !== 'succeeded') {
    assert.fail(`chain ${status}: ${final.jobs.map((j) => `${j.step} ${j.status} ${j.error ?? ''}`).join('; ')}${serverLog()}`);
  }
  assert.equal(final.status, status);
  assert.match(await page.textContent(`${chain} [data-testid="chain-status"]`), /succeeded/);
  assert.match(await page.textContent(`${chain} [data-testid="chain-stage"]`), /3\/3/);
  const done = await readSteps();
  assert.deepEqual(done, final.jobs.map(({ id, step, status: s }) => ({ id, step, status: s })));
  assert.equal(await page.getAttribute(toggle, 'aria-expanded'), 'true', 'the chain closed by itself');

  // A step's row is an ordinary job row: selecting the train step shows its curves.
  const trainStep = final.jobs[1];
  await page.click(`${chain} [data-testid="job-row"][data-job-id="${trainStep.id}"] [data-testid="job-select"]`);
  await page.waitForFunction((n) => window.vggserve.charts.acc.data[0]?.length === n, EPOCHS, { timeout: 30_000 });
  assert.equal(await page.evaluate(() => window.vggserve.state.selected), trainStep.id);
  assert.match(await page.textContent('[data-testid="job-detail"]'), new RegExp(`step “train” of chain ${pipelineId.slice(0, 8)}`));
  t.diagnostic(`chain ${pipelineId}: ${done.map((s) => `${s.step} ${s.status}`).join(', ')}`);
  assert.deepEqual(consoleErrors, [], 'the page logged errors');
});
