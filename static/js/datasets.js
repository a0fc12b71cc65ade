// The datasets panel: the dataset list (GET /v1/datasets, read here into state.datasets: at
// start-up, every 30 s, after an upload or a delete), uploading one archive (POST /v1/datasets
// through api.js's upload(), for its progress bar; the name, and for class-folders-only archives
// the validation and test shares and the seed), one dataset's report (GET /v1/datasets/{name}:
// images per split and class, warnings, and the errors that refuse training), thumbnails of the
// first photos of each class (the `samples` GET /v1/datasets/{name} lists) and of the photos the
// report names (identical and near-identical files), and deleting a dataset (two clicks).
// Thumbnails come through api() for the token, as object URLs revoked whenever the report is
// re-rendered or emptied.
// Emits: datasets-changed (state.datasets was re-read and differs).
// Handles: nothing.

import { api, upload } from './api.js';
import { emit } from './bus.js';
import { $, deleteButton, dropZone, h, showError } from './dom.js';
import { state } from './state.js';

const SPLIT_ORDER = ['train', 'validation', 'test'];
const THUMB_PX = 240; // shown at about 7.5rem: sharp on high-density screens
const THUMBS_PER_CLASS = 4;
const CLASSES_LISTED = 6; // in the list's "Classes" cell; the rest are in its title
// A dataset name as the server takes it (README, "Bringing your own photos"); it checks too.
const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

const view = () => state.datasetsView;
const splitRank = (s) => (SPLIT_ORDER.includes(s) ? SPLIT_ORDER.indexOf(s) : SPLIT_ORDER.length);
const bySplit = (a, b) => splitRank(a) - splitRank(b) || a.localeCompare(b);
const datasetPath = (name) => `/v1/datasets/${encodeURIComponent(name)}`;

function fmtBytes(n) {
  if (!Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

const splitsWords = (splits) => Object.entries(splits ?? {})
  .sort(([a], [b]) => bySplit(a, b))
  .map(([s, v]) => `${s} ${v.images}`).join(' · ');

// ---- the list ----

export async function loadDatasets() {
  let list;
  try {
    list = await api('/v1/datasets');
  } catch (e) {
    showError('#datasets-error', `Datasets: ${e.message}`);
    if (!view().signature) setTimeout(loadDatasets, 5000); // never read yet: the form needs it
    return;
  }
  $('#datasets-error').hidden = true;
  state.datasets = Array.isArray(list) ? list : [];
  const signature = JSON.stringify(state.datasets);
  if (signature === view().signature) return;
  view().signature = signature;
  renderList();
  emit('datasets-changed'); // the job form's dataset picker
}

function datasetDeleteButton(name) {
  return deleteButton({ 'data-testid': 'dataset-delete', 'aria-label': `Delete dataset ${name}` }, async (del) => {
    del.disabled = true;
    let failed = null;
    try {
      await api(datasetPath(name), { method: 'DELETE' });
    } catch (e) {
      failed = e.message; // 409 while a queued or running job uses it
    }
    if (!failed && view().report === name) clearReport();
    await loadDatasets();
    if (failed) showError('#datasets-error', `Deleting ${name}: ${failed}`);
    del.disabled = false;
  });
}

function renderList() {
  const splits = [...new Set(state.datasets.flatMap((d) => Object.keys(d.splits ?? {})))].sort(bySplit);
  $('#datasets-table thead').replaceChildren(h('tr', {},
    h('th', { scope: 'col' }, 'Dataset'), h('th', { scope: 'col' }, 'Classes'),
    splits.map((s) => h('th', { scope: 'col', class: 'num' }, s)),
    h('th', { scope: 'col' }, 'Actions')));
  $('#dataset-list').replaceChildren(...state.datasets.map((d) => {
    const classes = [...new Set(Object.values(d.splits ?? {}).flatMap((s) => s.classes ?? []))];
    const listed = classes.slice(0, CLASSES_LISTED).join(', ') + (classes.length > CLASSES_LISTED ? ', …' : '');
    return h('tr', { 'data-testid': 'dataset-row', 'data-dataset': d.name, class: view().report === d.name ? 'shown' : null },
      h('th', { scope: 'row', 'data-label': 'Dataset' }, d.name),
      h('td', { 'data-label': 'Classes', title: classes.join(', ') }, h('strong', {}, String(classes.length)), classes.length ? ` · ${listed}` : ''),
      splits.map((s) => h('td', { class: 'num', 'data-label': s, 'data-testid': 'dataset-images', 'data-split': s },
        d.splits?.[s] ? String(d.splits[s].images) : '—')),
      h('td', { 'data-label': 'Actions', class: 'actions-cell' },
        h('button', {
          type: 'button', class: 'secondary small', 'data-testid': 'dataset-show-report', 'aria-label': `Report on dataset ${d.name}`,
          onclick: () => showReport(d.name, { focus: true }),
        }, 'Report'),
        datasetDeleteButton(d.name)));
  }));
  $('#datasets-empty').hidden = state.datasets.length > 0;
}

function markShownRow() {
  for (const row of document.querySelectorAll('#dataset-list [data-testid="dataset-row"]')) {
    row.classList.toggle('shown', row.dataset.dataset === view().report);
  }
}

// ---- the report ----

function releaseThumbs() {
  for (const u of view().thumbUrls) URL.revokeObjectURL(u);
  view().thumbUrls = [];
}

function clearReport() {
  view().reportSeq += 1; // an answer still on its way is dropped
  view().report = null;
  releaseThumbs();
  $('#dataset-report').replaceChildren(h('p', { class: 'empty' }, 'Upload a dataset, or press “Report” on one, to check its photos.'));
  markShownRow();
}

/** Show the report of dataset `name` (the server's first report after a change reads every photo). */
export async function showReport(name, { focus = false } = {}) {
  const seq = ++view().reportSeq;
  view().report = name;
  releaseThumbs();
  markShownRow();
  const section = $('#dataset-report');
  section.setAttribute('aria-busy', 'true');
  section.replaceChildren(
    h('h3', { id: 'report-h', tabindex: '-1' }, `Report · ${name}`),
    h('p', { class: 'help', role: 'status', 'data-testid': 'report-loading' },
      'Checking every photo… (the first report after the files change reads them all: seconds to minutes for large datasets)'));
  if (focus) {
    section.scrollIntoView({ behavior: 'smooth', block: 'start' });
    $('#report-h').focus({ preventScroll: true });
  }
  let detail;
  try {
    detail = await api(datasetPath(name));
  } catch (e) {
    if (seq !== view().reportSeq) return;
    section.setAttribute('aria-busy', 'false');
    section.append(h('p', { class: 'error', role: 'alert', 'data-testid': 'report-error' }, `✗ ${e.message}`));
    section.querySelector('[data-testid="report-loading"]')?.remove();
    return;
  }
  if (seq !== view().reportSeq) return; // another report was asked for meanwhile
  renderReport(detail, seq, focus);
}

const sizeWords = (r) => (r ? `${r.min_width}–${r.max_width} × ${r.min_height}–${r.max_height} px` : '—');

function renderReport(detail, seq, focus) {
  const { name } = detail;
  const report = detail.report ?? {};
  const splits = Object.keys(report.splits ?? {}).sort(bySplit);
  const classes = [...new Set(splits.flatMap((s) => Object.keys(report.splits[s].classes ?? {})))];
  const total = splits.reduce((n, s) => n + (report.splits[s].images ?? 0), 0);
  const errors = report.errors ?? [];
  const warnings = report.warnings ?? [];
  const section = $('#dataset-report');
  section.replaceChildren(...[
    h('h3', { id: 'report-h', tabindex: '-1' }, `Report · ${name}`),
    h('p', { class: 'report-summary', 'data-testid': 'report-summary' },
      `${total} photos in ${splits.length} split${splits.length === 1 ? '' : 's'} · ${classes.length} class${classes.length === 1 ? '' : 'es'} · sizes ${sizeWords(report.image_size)}`),
    errors.length ? h('div', { class: 'report-errors', role: 'alert', 'data-testid': 'report-errors' },
      h('p', { class: 'report-box-h' }, `✗ ${errors.length} error${errors.length > 1 ? 's' : ''}: training is refused`),
      h('p', { class: 'report-note' }, 'A “train” or “fine-tune” job on this dataset is refused unless it ticks “Allow leaks”; ',
        '“extract features” and “evaluate” still run. Fix the files (or upload a corrected archive) to train on a clean split.'),
      h('ul', {}, errors.map((e) => h('li', {}, e)))) : null,
    warnings.length ? h('div', { class: 'report-warnings', 'data-testid': 'report-warnings' },
      h('p', { class: 'report-box-h' }, `⚠ ${warnings.length} warning${warnings.length > 1 ? 's' : ''}: worth reading before training`),
      h('ul', {}, warnings.map((w) => h('li', {}, w)))) : null,
    !errors.length && !warnings.length ? h('p', { class: 'report-ok', 'data-testid': 'report-ok' }, '✓ No errors, no warnings.') : null,
    countsTable(report, splits, classes),
    classSamples(name, detail.samples ?? {}, seq),
    thumbnails(name, report, seq),
  ].filter(Boolean));
  section.setAttribute('aria-busy', 'false');
  if (focus) $('#report-h').focus({ preventScroll: true });
}

/** Images per class (rows) and split (columns), as the report counts them, with each split's
 * total, unreadable files, imbalance and sizes under them. Counts under the report's thresholds
 * carry a ⚠, a class without images in a split a ✗. */
function countsTable(report, splits, classes) {
  const th = report.thresholds ?? {};
  const minFor = (s) => (s === 'train' ? th.min_train_images_per_class : th.min_eval_images_per_class);
  const cell = (s, c) => {
    const cc = report.splits[s].classes?.[c];
    const images = cc?.images ?? 0;
    const unreadable = cc?.unreadable ?? 0;
    const readable = images - unreadable;
    const few = Number.isFinite(minFor(s)) && readable > 0 && readable < minFor(s);
    const mark = readable <= 0 ? '✗ ' : few ? '⚠ ' : '';
    const title = readable <= 0 ? `no readable ${c} photo in ${s}` : few ? `fewer than ${minFor(s)} readable photos` : null;
    return h('td', {
      class: `num${readable <= 0 ? ' empty-count' : few ? ' few' : ''}`, title,
      'data-testid': 'report-count', 'data-split': s, 'data-class': c, 'data-count': images,
    }, `${mark}${images}`, unreadable ? h('span', { class: 'sub' }, ` (${unreadable} unreadable)`) : null);
  };
  const footRow = (label, fn) => h('tr', {}, h('th', { scope: 'row' }, label), splits.map((s) => h('td', { class: 'num' }, fn(report.splits[s]))));
  const ratio = th.imbalance_warning_ratio;
  return h('div', { class: 'table-wrap counts-wrap' },
    h('table', { class: 'report-counts', 'data-testid': 'report-counts' },
      h('caption', {}, 'Photos per class and split'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Class'), splits.map((s) => h('th', { scope: 'col', class: 'num' }, s)))),
      h('tbody', {}, classes.map((c) => h('tr', {}, h('th', { scope: 'row' }, c), splits.map((s) => cell(s, c))))),
      h('tfoot', {},
        h('tr', { class: 'total' }, h('th', { scope: 'row' }, 'All classes'),
          splits.map((s) => h('td', { class: 'num', 'data-testid': 'report-split-total', 'data-split': s, 'data-count': report.splits[s].images }, String(report.splits[s].images)))),
        footRow('Unreadable', (r) => (r.unreadable ? `✗ ${r.unreadable}` : '0')),
        footRow('Imbalance', (r) => (typeof r.imbalance === 'number'
          ? `${Number.isFinite(ratio) && r.imbalance >= ratio ? '⚠ ' : ''}${r.imbalance.toFixed(2)}×` : '—')),
        footRow('Sizes', (r) => sizeWords(r.image_size)))));
}

/** The photos the report names, each with why: file → note. */
function namedPhotos(report) {
  const notes = new Map();
  const add = (file, note) => notes.has(file) || notes.set(file, note);
  for (const p of report.cross_split_duplicates ?? []) {
    add(p.a, `identical to ${p.b}`);
    add(p.b, `identical to ${p.a}`);
  }
  for (const p of report.near_duplicates ?? []) {
    add(p.a, `looks like ${p.b} (${p.distance} bits apart)`);
    add(p.b, `looks like ${p.a} (${p.distance} bits apart)`);
  }
  for (const g of report.duplicate_groups ?? []) {
    for (const f of g.files) add(f, `identical to ${g.files.filter((x) => x !== f).join(', ')}`);
  }
  return notes;
}

/** The first photos of each class, from the train split (else the first split listed). */
function classSamples(name, samples, seq) {
  const split = Object.keys(samples).sort(bySplit)[0];
  const box = h('div', { class: 'dataset-thumbs', 'data-testid': 'class-samples' },
    h('h4', {}, split ? `A few photos of each class (${split})` : 'A few photos of each class'));
  if (!split) {
    box.append(h('p', { class: 'empty' }, 'No photos.'));
    return box;
  }
  for (const [cls, files] of Object.entries(samples[split]).sort(([a], [b]) => a.localeCompare(b))) {
    box.append(h('h5', {}, cls),
      h('ul', { class: 'thumb-list' }, files.slice(0, THUMBS_PER_CLASS).map((file) => {
        const img = h('img', { alt: `${cls}: ${file}`, decoding: 'async' });
        const li = h('li', { class: 'thumb pending', 'data-testid': 'class-sample', 'data-file': file, title: file },
          h('figure', {}, img, h('figcaption', {}, h('span', { class: 'fname' }, file.split('/').pop()))));
        loadThumb(img, li, name, file, seq);
        return li;
      })));
  }
  return box;
}

function thumbnails(name, report, seq) {
  const byClass = new Map();
  for (const [file, note] of namedPhotos(report)) {
    const [split, cls] = file.split('/');
    if (!cls) continue;
    if (!byClass.has(cls)) byClass.set(cls, []);
    byClass.get(cls).push({ file, split, note });
  }
  const box = h('div', { class: 'dataset-thumbs', 'data-testid': 'dataset-thumbnails' },
    h('h4', {}, 'Photos named by the report'));
  if (!byClass.size) {
    box.append(h('p', { class: 'empty', 'data-testid': 'thumbnails-none' },
      'None to show: the report names no duplicate or look-alike photos.'));
    return box;
  }
  box.append(h('p', { class: 'help' },
    `Identical and near-identical photos (up to ${THUMBS_PER_CLASS} per class, train first).`));
  for (const [cls, photos] of [...byClass].sort(([a], [b]) => a.localeCompare(b))) {
    photos.sort((a, b) => bySplit(a.split, b.split) || a.file.localeCompare(b.file));
    const shown = photos.slice(0, THUMBS_PER_CLASS);
    box.append(h('h5', {}, cls, photos.length > shown.length ? h('span', { class: 'sub' }, ` (${shown.length} of ${photos.length})`) : null),
      h('ul', { class: 'thumb-list' }, shown.map(({ file, note }) => {
        const img = h('img', { alt: `${file} (${note})`, decoding: 'async' });
        const li = h('li', { class: 'thumb pending', 'data-testid': 'dataset-thumb', 'data-file': file, title: `${file}: ${note}` },
          h('figure', {}, img, h('figcaption', {}, h('span', { class: 'fname' }, file), h('span', { class: 'thumb-note' }, note))));
        loadThumb(img, li, name, file, seq);
        return li;
      })));
  }
  return box;
}

async function loadThumb(img, li, dataset, file, seq) {
  try {
    const blob = await api(`${datasetPath(dataset)}/thumbnail?file=${encodeURIComponent(file)}&size=${THUMB_PX}`, { as: 'blob' });
    if (seq !== view().reportSeq) return; // another report is shown by now
    const url = URL.createObjectURL(blob);
    view().thumbUrls.push(url);
    img.src = url;
    li.classList.remove('pending');
  } catch (e) {
    if (seq !== view().reportSeq) return;
    li.classList.remove('pending');
    img.replaceWith(h('p', { class: 'thumb-error' }, `✗ no thumbnail: ${e.message}`));
  }
}

// ---- the upload ----

/** The Content-Type of an archive, by its name; the server recognises other bytes by themselves. */
function archiveType(fileName) {
  const n = fileName.toLowerCase();
  if (n.endsWith('.zip')) return 'application/zip';
  if (n.endsWith('.tar.gz') || n.endsWith('.tgz')) return 'application/gzip';
  if (n.endsWith('.tar')) return 'application/x-tar';
  return 'application/octet-stream';
}

/** A dataset name proposed from the archive's name: "My photos (2).zip" → "My_photos_2". */
function proposedName(fileName) {
  return fileName.replace(/\.(zip|tar\.gz|tgz|tar)$/i, '').replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/^[._]+|_+$/g, '').slice(0, 128);
}

function clearUploadError() {
  const el = $('#upload-error');
  el.hidden = true;
  el.textContent = '';
  for (const bad of document.querySelectorAll('#dataset-upload [aria-invalid="true"]')) bad.removeAttribute('aria-invalid');
}

/** Show an error as the API (or the check below) worded it, marking the field it names. */
function showUploadError(message, field = null) {
  showError('#upload-error', message);
  const input = field && document.querySelector(`#dataset-upload [data-field="${CSS.escape(field)}"]`);
  if (input && !input.closest('[hidden]')) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } else if (field === 'archive') {
    $('#dataset-drop').setAttribute('aria-invalid', 'true');
  }
}

function chooseFile(files) {
  clearUploadError();
  if (files.length !== 1) {
    if (files.length > 1) showUploadError('Drop one archive (.zip, .tar or .tar.gz) holding the photos in folders, not the photos themselves.', 'archive');
    return;
  }
  const [file] = files;
  view().file = file;
  $('#dataset-file-text').textContent = `Chosen: ${file.name} (${fmtBytes(file.size)}). Drop or choose another, or`;
  const nameInput = $('#dataset-name');
  // Propose a name from the file's, unless the user typed one of their own.
  if (!nameInput.value.trim() || nameInput.value === view().autoName) {
    view().autoName = proposedName(file.name);
    nameInput.value = view().autoName;
  }
}

const classesLayout = () => $('#dataset-upload input[name="dataset-layout"]:checked')?.value === 'classes';

/** The query of POST /v1/datasets from the form, or the first thing in it that is wrong. */
function readUpload() {
  if (!view().file) return { error: 'Choose or drop an archive first.', field: 'archive' };
  const name = $('#dataset-name').value.trim();
  if (!name) return { error: 'Name: a name for the new dataset is needed.', field: 'name' };
  if (!NAME_RE.test(name) || new TextEncoder().encode(name).length > 128) {
    return { error: 'Name: letters, digits, “-”, “_” and “.” only, not starting with “.”, at most 128 bytes.', field: 'name' };
  }
  const query = new URLSearchParams({ name });
  if (classesLayout()) {
    let sum = 0;
    for (const [id, field, label] of [['validation-fraction', 'validation_fraction', 'Validation share'], ['test-fraction', 'test_fraction', 'Test share']]) {
      const raw = $(`#${id}`).value.trim();
      if (raw === '') continue;
      const v = Number(raw);
      if (!Number.isFinite(v) || v < 0 || v >= 1) return { error: `${label}: a number from 0 up to (not including) 1 is needed.`, field };
      sum += v;
      query.set(field, String(v));
    }
    if (sum >= 1) return { error: 'Validation and test shares together must stay below 1: train needs the rest.', field: 'test_fraction' };
    const seed = $('#split-seed').value.trim();
    if (seed !== '') {
      if (!/^\d+$/.test(seed)) return { error: 'Seed: a whole number, 0 or more, is needed.', field: 'seed' };
      query.set('seed', seed);
    }
  }
  return { query, name };
}

async function startUpload(ev) {
  ev.preventDefault();
  clearUploadError();
  if (view().upload) return;
  const { query, name, error, field } = readUpload();
  if (error) return showUploadError(error, field);
  const { file } = view();
  const bar = $('#upload-progress');
  const text = $('#upload-text');
  const started = performance.now();
  bar.value = 0;
  $('#upload-label').textContent = `Uploading ${file.name} as “${name}”`;
  text.textContent = `0 of ${fmtBytes(file.size)}`;
  $('#upload-skipped')?.remove();
  $('#upload-box').hidden = false;
  $('#upload-start').disabled = true;
  $('#upload-cancel').hidden = false;
  const controller = new AbortController();
  view().upload = controller;
  let created;
  try {
    created = await upload(`/v1/datasets?${query}`, file, {
      contentType: archiveType(file.name),
      signal: controller.signal,
      onProgress: (sent, total) => {
        bar.value = total ? sent / total : 0;
        const secs = (performance.now() - started) / 1000;
        const rate = secs > 0.5 ? ` · ${fmtBytes(sent / secs)}/s` : '';
        text.textContent = `${fmtBytes(sent)} of ${fmtBytes(total)} (${Math.round(bar.value * 100)}%)${rate}`;
      },
      onSent: () => {
        bar.value = 1;
        text.textContent = `${fmtBytes(file.size)} sent. The server is unpacking and checking the archive…`;
      },
    });
  } catch (e) {
    const cancelled = controller.signal.aborted;
    text.textContent = cancelled ? '⊘ Upload cancelled: nothing was kept.' : '✗ Upload failed: nothing was kept.';
    if (!cancelled) showUploadError(e.message, e.field);
    return;
  } finally {
    view().upload = null;
    $('#upload-start').disabled = false;
    $('#upload-cancel').hidden = true;
  }
  bar.value = 1;
  $('#upload-label').textContent = `Uploaded ${file.name}`;
  const images = Object.values(created.splits ?? {}).reduce((n, s) => n + (s.images ?? 0), 0);
  text.textContent = `✓ Uploaded “${created.name}”: ${images} photos (${splitsWords(created.splits)}).`;
  const skipped = created.skipped ?? [];
  if (skipped.length) {
    const reasons = {};
    for (const s of skipped) reasons[s.reason] = (reasons[s.reason] ?? 0) + 1;
    $('#upload-box').append(h('details', { id: 'upload-skipped', class: 'skipped', 'data-testid': 'upload-skipped' },
      h('summary', {}, `Left out ${skipped.length} entr${skipped.length > 1 ? 'ies' : 'y'}: `,
        Object.entries(reasons).map(([r, n]) => `${n} ${r.replaceAll('_', ' ')}`).join(', ')),
      h('ul', {}, skipped.slice(0, 50).map((s) => h('li', {}, `${s.entry} (${s.reason.replaceAll('_', ' ')})`)),
        skipped.length > 50 ? h('li', {}, `… and ${skipped.length - 50} more`) : null)));
  }
  // Ready for the next archive; the name goes too, so that pressing Upload again is no 409.
  view().file = null;
  view().autoName = '';
  $('#dataset-file').value = '';
  $('#dataset-name').value = '';
  $('#dataset-file-text').textContent = 'Drop one archive here (.zip, .tar, .tar.gz), or';
  await loadDatasets(); // the list, and the job form's picker (datasets-changed)
  showReport(created.name);
}

export function setUpDatasets() {
  const input = $('#dataset-file');
  input.addEventListener('change', () => chooseFile([...input.files]));
  dropZone($('#dataset-drop'), chooseFile);
  for (const radio of document.querySelectorAll('#dataset-upload input[name="dataset-layout"]')) {
    radio.addEventListener('change', () => {
      $('#split-fields').hidden = !classesLayout();
    });
  }
  $('#split-fields').hidden = !classesLayout();
  $('#dataset-upload').addEventListener('submit', startUpload);
  $('#upload-cancel').addEventListener('click', () => view().upload?.abort());
}
