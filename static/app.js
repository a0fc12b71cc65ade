// vggserve dashboard: everything the page does. API client (with bearer-token auth), the job
// form and live job list, the learning curves of the selected job (SSE) and compared jobs,
// the model list, and photo prediction. Plain ES module, no framework, no build step; the
// only dependency is uPlot (window.uPlot, vendored in vendor/uplot/ and loaded by index.html).

const uPlot = window.uPlot;

// ---------------------------------------------------------------------------------------------
// Small DOM helpers
// ---------------------------------------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);

// Properties that must be set on the element rather than as attributes (their attribute is only
// the *initial* value, or a boolean whose presence counts).
const DOM_PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'hidden']);

/** Build an element: h('p', {class: 'x', onclick: f}, 'text', child). Text goes in as text, never
 * as HTML, so names coming from the API cannot inject markup. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (DOM_PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const isTerminal = (status) => TERMINAL.has(status);

// Status words carry a symbol too, so they read without colour.
const STATUS_MARK = { queued: '◷', running: '▶', succeeded: '✓', failed: '✗', cancelled: '⊘' };
const statusText = (s) => `${STATUS_MARK[s] ?? '?'} ${s}`;

const pct = (v) => (typeof v === 'number' ? `${(v * 100).toFixed(1)}%` : '—');
const num = (v, digits = 4) => (typeof v === 'number' ? v.toFixed(digits) : '—');
// Job and model ids are UUIDs: their first 8 hex digits tell them apart on screen (the full id is
// in the title and the details).
const shortId = (id) => (id && id.length > 10 ? id.slice(0, 8) : id ?? '');

function fmtDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A result object in words: "acc 0.8125, final (loss 0.513, acc 0.813)"; nulls left out. */
function fmtObject(obj) {
  return Object.entries(obj)
    .filter(([, v]) => v != null)
    .map(([k, v]) => {
      if (typeof v === 'number') return `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`;
      // Arrays of numbers are shapes here ([n, 4, 4, 512]).
      if (Array.isArray(v)) return `${k} [${v.join(v.every((x) => typeof x === 'number') ? '×' : ', ')}]`;
      if (typeof v === 'object') return `${k} (${fmtObject(v)})`;
      return `${k} ${v}`;
    })
    .join(', ');
}

function fmtAge(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '—';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 10) return 'just now';
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// ---------------------------------------------------------------------------------------------
// API client. Every request goes through api(); a 401 opens the sign-in dialog once (concurrent
// requests wait on the same dialog) and the request is retried with the token.
// ---------------------------------------------------------------------------------------------

const TOKEN_KEY = 'vggserve.token';
let authPending = null; // Promise<boolean> while the dialog is open
let authDeclined = false; // the user cancelled: stop prompting until they press "Sign in"

class ApiError extends Error {
  constructor(status, message, field = null) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

const token = () => sessionStorage.getItem(TOKEN_KEY);

/** EventSource cannot send headers, so the token rides in the query string instead. */
function withToken(url) {
  const t = token();
  if (!t) return url;
  return `${url}${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(t)}`;
}

function askToken() {
  if (authDeclined) return Promise.resolve(false);
  if (authPending) return authPending;
  const dialog = $('#auth-dialog');
  const input = $('#auth-token');
  authPending = new Promise((resolve) => {
    input.value = '';
    dialog.returnValue = '';
    dialog.addEventListener('close', () => {
      authPending = null;
      const value = input.value.trim();
      if (dialog.returnValue === 'ok' && value) {
        sessionStorage.setItem(TOKEN_KEY, value);
        $('#sign-in').hidden = true;
        resolve(true);
      } else {
        authDeclined = true;
        $('#sign-in').hidden = false;
        setConn('bad', 'not signed in: the server needs a token');
        resolve(false);
      }
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
  return authPending;
}

async function api(path, { method = 'GET', json, body } = {}, retried = false) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const init = { method, headers };
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body; // FormData: the browser writes the multipart Content-Type with its boundary
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the server (${e.message})`);
  }
  if (res.status === 401 && !retried) {
    // A stored token that the server refuses is useless: forget it before asking again.
    if (t) sessionStorage.removeItem(TOKEN_KEY);
    if (await askToken()) return api(path, { method, json, body }, true);
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    let field = null;
    const text = await res.text();
    try {
      const err = JSON.parse(text);
      if (err && typeof err.error === 'string') {
        message = err.error; // shown exactly as the API words it
        field = err.field ?? null;
      }
    } catch {
      if (text.trim()) message = text.trim();
    }
    throw new ApiError(res.status, message, field);
  }
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

function setConn(kind, text) {
  const el = $('#conn');
  el.dataset.state = kind;
  el.textContent = `${kind === 'ok' ? '●' : '✗'} ${text}`;
}

// ---------------------------------------------------------------------------------------------
// State shared by the panels
// ---------------------------------------------------------------------------------------------

const state = {
  jobs: [], // last GET /v1/jobs, newest first
  models: [], // last GET /v1/models
  datasets: [], // GET /v1/datasets
  selected: null, // id of the job whose curves and live stream are shown
  compare: new Set(), // ids of jobs overlaid on the charts
  runs: new Map(), // job id -> { job, epochs: Map(epoch number -> epoch object) }
  smoothing: 0.8,
};

function runFor(id) {
  let run = state.runs.get(id);
  if (!run) {
    run = { job: state.jobs.find((j) => j.id === id) ?? { id }, epochs: new Map() };
    state.runs.set(id, run);
  }
  return run;
}

/** Merge a full job (GET /v1/jobs/{id}) into its run. Epochs are keyed by number, so replays of
 * the same epoch (SSE history after a reconnect, or a later GET) never duplicate points. */
function mergeJob(job) {
  const run = runFor(job.id);
  const { epochs, ...rest } = job;
  run.job = { ...run.job, ...rest };
  for (const e of epochs ?? []) run.epochs.set(e.epoch, e);
  return run;
}

// ---------------------------------------------------------------------------------------------
// Recipes: what the form sends for each of Chollet's recipes, with his hyper-parameters as the
// defaults. Fields are flat in the request body next to kind and dataset.
// ---------------------------------------------------------------------------------------------

const VGG16_CONV_LAYERS = [1, 2, 3, 4, 5].flatMap((b) =>
  (b <= 2 ? [1, 2] : [1, 2, 3]).map((c) => `block${b}_conv${c}`));

const FIELDS = {
  features: { label: 'Extracted features', type: 'select', help: 'A succeeded “extract features” job on this dataset.' },
  from_model: { label: 'Start from model', type: 'select', help: 'Usually the model of recipe 3 (augmentation).' },
  model: { label: 'Model', type: 'select' },
  split: { label: 'Split', type: 'select' },
  // min/max mirror the server's ranges so the browser can flag a typo before the round trip.
  image_size: { label: 'Image size (px)', type: 'int', min: 32, max: 512, help: 'Photos are resized to this square size.' },
  epochs: { label: 'Epochs', type: 'int', min: 1, max: 1000 },
  steps_per_epoch: { label: 'Steps per epoch', type: 'int', min: 1, max: 100000, help: 'Augmented batches per epoch.' },
  validation_steps: { label: 'Validation steps', type: 'int', min: 1, max: 100000 },
  batch_size: { label: 'Batch size', type: 'int', min: 1, max: 256 },
  learning_rate: { label: 'Learning rate', type: 'float', min: 0, help: 'RMSprop step size.' },
  unfreeze_from: { label: 'Unfreeze from layer', type: 'text', list: 'vgg-layers', help: 'This layer and every later one are trained.' },
  seed: { label: 'Seed', type: 'int', min: 0, optional: true, placeholder: 'server default', help: 'The same seed repeats a run exactly.' },
};

const RECIPES = {
  extract_features: {
    kind: 'extract_features',
    help: 'Runs every photo once through the frozen VGG16 convolutional base and stores the features.',
    defaults: { image_size: 150, batch_size: 20 },
  },
  train_features: {
    kind: 'train',
    help: 'Trains a small dense classifier on stored features: fast, but no augmentation.',
    // No image_size here: the server takes it from the features job.
    defaults: { features: '', epochs: 30, batch_size: 20, learning_rate: 2e-5, seed: 1337 },
  },
  train_augment: {
    kind: 'train',
    fixed: { augment: true },
    help: 'Trains a classifier on top of the frozen base, with randomly augmented photos.',
    defaults: { epochs: 30, steps_per_epoch: 100, validation_steps: 50, batch_size: 20, learning_rate: 2e-5, image_size: 150, seed: 1337 },
  },
  fine_tune: {
    kind: 'fine_tune',
    help: 'Unfreezes the top of the base and trains it together with a trained classifier.',
    defaults: {
      from_model: '', epochs: 100, steps_per_epoch: 100, validation_steps: 50, batch_size: 20,
      learning_rate: 1e-5, unfreeze_from: 'block5_conv1', image_size: 150, seed: 1337,
    },
  },
  evaluate: {
    kind: 'evaluate',
    help: 'Measures loss and accuracy of a model on one split (the test split for the final number).',
    defaults: { model: '', split: 'test', batch_size: 20 },
  },
};

const fieldId = (name) => name.replaceAll('_', '-');

// The values typed for each recipe survive switching to another recipe and back.
const formMemory = {};

function currentRecipe() {
  return $('#recipe').value;
}

function saveFormValues() {
  const recipe = $('#recipe').dataset.built;
  if (!recipe) return;
  const values = {};
  for (const name of Object.keys(RECIPES[recipe].defaults)) {
    const el = document.getElementById(fieldId(name));
    if (el) values[name] = el.value;
  }
  formMemory[recipe] = values;
}

function buildRecipeFields(useDefaults = false) {
  saveFormValues();
  const recipe = currentRecipe();
  const spec = RECIPES[recipe];
  const values = { ...spec.defaults, ...(useDefaults ? {} : formMemory[recipe]) };
  const box = $('#recipe-fields');
  box.replaceChildren();
  for (const [name, value] of Object.entries(values)) {
    const f = FIELDS[name];
    const id = fieldId(name);
    const helpId = `${id}-help`;
    let input;
    if (f.type === 'select') {
      input = h('select', { id, name, 'data-field': name, 'data-testid': id, required: true, 'aria-describedby': f.help ? helpId : null });
      if (value) input.dataset.wanted = value; // applied once the options arrive from the API
      input.addEventListener('change', () => delete input.dataset.wanted); // the user's choice wins
    } else {
      input = h('input', {
        id, name, 'data-field': name, 'data-testid': id,
        type: f.type === 'text' ? 'text' : 'number',
        inputmode: f.type === 'int' ? 'numeric' : f.type === 'float' ? 'decimal' : null,
        step: f.type === 'int' ? '1' : f.type === 'float' ? 'any' : null,
        min: f.min, max: f.max, list: f.list, placeholder: f.placeholder, required: !f.optional,
        'aria-describedby': f.help ? helpId : null,
        // Small rates read better as Chollet writes them (2e-5); number inputs accept that form.
        value: typeof value === 'number' && value > 0 && value < 1e-3 ? value.toExponential() : String(value),
      });
    }
    box.append(h('div', { class: 'field' },
      h('label', { for: id }, f.label),
      input,
      f.help ? h('p', { id: helpId, class: 'help' }, f.help) : null));
  }
  $('#recipe').dataset.built = recipe;
  $('#recipe-help').textContent = spec.help;
  clearFormError();
  refreshFormPickers();
}

/** Replace a select's options only when they changed, keeping the user's choice if still there,
 * so the 2-second refresh never closes an open drop-down or resets a selection. A value asked for
 * before its option exists (data-wanted, e.g. a remembered form value) is applied once it does. */
function fillSelect(select, options, { placeholder = null, preferred = null } = {}) {
  if (!select) return;
  const current = select.value; // read before the options are replaced
  const signature = JSON.stringify([placeholder, options]);
  if (select.dataset.signature !== signature) {
    select.replaceChildren(
      ...(placeholder != null ? [h('option', { value: '' }, placeholder)] : []),
      ...options.map((o) => h('option', { value: o.value }, o.label)));
    select.dataset.signature = signature;
  }
  // With a placeholder, '' is a real choice (e.g. "Server default").
  const values = [...(placeholder != null ? [''] : []), ...options.map((o) => o.value)];
  const wanted = select.dataset.wanted;
  if (wanted && values.includes(wanted)) {
    select.value = wanted;
    delete select.dataset.wanted;
  } else if (values.includes(current) && (current !== '' || placeholder != null)) {
    select.value = current;
  } else if (preferred && values.includes(preferred)) {
    select.value = preferred;
  } else {
    select.value = options[0]?.value ?? '';
  }
}

function jobLabel(job) {
  if (job.kind === 'train') {
    const p = job.params ?? {};
    if (p.augment) return 'train · augmented';
    if (p.features) return 'train · features';
    return 'train';
  }
  return { extract_features: 'extract features', fine_tune: 'fine-tune', evaluate: 'evaluate' }[job.kind] ?? job.kind;
}

// Model recipes as the server names them, in words; an unknown name is shown as it is.
const RECIPE_NAMES = {
  features: 'on features', augment: 'augmented', augmented: 'augmented', train_augment: 'augmented',
  fine_tune: 'fine-tuned', finetune: 'fine-tuned', train: 'train',
};
const modelLabel = (m) =>
  `${shortId(m.id)} · ${RECIPE_NAMES[m.recipe] ?? m.recipe} · ${m.dataset} · val ${pct(m.metrics?.val_acc)}${m.is_default ? ' · default' : ''}`;

/** Fill the API-backed pickers of the form (features, models, splits) from the current state. */
function refreshFormPickers() {
  const dataset = $('#dataset').value;
  const features = state.jobs
    .filter((j) => j.kind === 'extract_features' && j.status === 'succeeded' && j.dataset === dataset)
    // A fixed time, not an age: a label that changes would rebuild (and close) an open drop-down.
    .map((j) => ({ value: j.id, label: `${shortId(j.id)} · ${j.dataset} · ${new Date(j.created_at).toLocaleString()}` }));
  fillSelect(document.getElementById('features'), features,
    { placeholder: features.length ? null : `— none for ${dataset || 'this dataset'}: run recipe 1 first —` });

  const models = state.models.map((m) => ({ value: m.id, label: modelLabel(m) }));
  const noModels = models.length ? null : '— no models yet —';
  // Chollet fine-tunes the model trained with augmentation, so prefer the newest such model.
  const augmented = state.models.find((m) => /augment/.test(m.recipe) && m.dataset === dataset);
  fillSelect(document.getElementById('from-model'), models, { placeholder: noModels, preferred: augmented?.id });
  const dflt = state.models.find((m) => m.is_default);
  fillSelect(document.getElementById('model'), models, { placeholder: noModels, preferred: dflt?.id });

  const ds = state.datasets.find((d) => d.name === dataset);
  const splits = Object.keys(ds?.splits ?? {}).map((s) => ({ value: s, label: s }));
  fillSelect(document.getElementById('split'), splits, { preferred: 'test' });
}

function describeDataset() {
  const ds = state.datasets.find((d) => d.name === $('#dataset').value);
  const el = $('#dataset-info');
  if (!ds) {
    el.textContent = '';
    return;
  }
  const splits = Object.entries(ds.splits ?? {});
  const classes = [...new Set(splits.flatMap(([, s]) => s.classes ?? []))];
  el.textContent = `Classes: ${classes.join(', ') || '—'} · ${splits.map(([n, s]) => `${n} ${s.images} images`).join(' · ')}`;
}

function clearFormError() {
  const el = $('#form-error');
  el.hidden = true;
  el.textContent = '';
  for (const bad of document.querySelectorAll('#job-form [aria-invalid="true"]')) bad.removeAttribute('aria-invalid');
  for (const msg of document.querySelectorAll('#job-form .field-error')) msg.remove();
}

/** Show an error as the API worded it; when it names a field, mark that field too. */
function showFormError(message, field = null) {
  const el = $('#form-error');
  el.textContent = message;
  el.hidden = false;
  if (!field) return;
  const name = String(field).split('.').pop(); // tolerate "params.epochs"
  const input = document.querySelector(`#job-form [data-field="${CSS.escape(name)}"]`);
  if (!input) return;
  input.setAttribute('aria-invalid', 'true');
  input.closest('.field, .row')?.append(h('p', { class: 'field-error', 'data-testid': 'field-error' }, `⚠ ${message}`));
  input.focus();
}

/** Read the form into the POST /v1/jobs body, or report the first field that does not parse. */
function readJobBody() {
  const recipe = RECIPES[currentRecipe()];
  const body = { kind: recipe.kind, dataset: $('#dataset').value, ...(recipe.fixed ?? {}) };
  if (!body.dataset) return { error: 'Choose a dataset.', field: 'dataset' };
  for (const name of Object.keys(recipe.defaults)) {
    const f = FIELDS[name];
    const raw = document.getElementById(fieldId(name)).value.trim();
    if (raw === '') {
      if (f.optional) continue;
      return { error: `${f.label}: a value is needed.`, field: name };
    }
    if (f.type === 'int') {
      const v = Number(raw);
      if (!Number.isInteger(v) || (f.min != null && v < f.min) || (f.max != null && v > f.max)) {
        return { error: `${f.label}: a whole number from ${f.min} to ${f.max ?? '∞'} is needed.`, field: name };
      }
      body[name] = v;
    } else if (f.type === 'float') {
      const v = Number(raw);
      if (!Number.isFinite(v) || v <= 0) return { error: `${f.label}: a number > 0 is needed.`, field: name };
      body[name] = v;
    } else {
      body[name] = raw;
    }
  }
  return { body };
}

async function submitJob(ev) {
  ev.preventDefault();
  clearFormError();
  const { body, error, field } = readJobBody();
  if (error) return showFormError(error, field);
  const button = $('#start-job');
  button.disabled = true; // no double submissions while the request is in flight
  try {
    const job = await api('/v1/jobs', { method: 'POST', json: body });
    state.jobs = [job, ...state.jobs.filter((j) => j.id !== job.id)];
    renderJobs();
    selectJob(job.id);
  } catch (e) {
    showFormError(e.message, e.field);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Job list: polled every 2 s. Rows are kept by job id and updated in place, so a click or a
// focused checkbox is never lost to a re-render.
// ---------------------------------------------------------------------------------------------

const jobRows = new Map(); // job id -> { li, parts }
const POLL_MS = 2000;

function jobRow(job) {
  let row = jobRows.get(job.id);
  if (row) return row;
  const compare = h('input', {
    type: 'checkbox', 'data-testid': 'job-compare', 'aria-label': `Compare job ${job.id}`,
    onchange: (e) => toggleCompare(job.id, e.target.checked),
  });
  const parts = {
    compare,
    kind: h('span', { class: 'kind' }),
    id: h('span', { class: 'jid' }, shortId(job.id)),
    dataset: h('span', { class: 'ds', 'data-testid': 'job-dataset' }),
    status: h('span', { class: 'status', 'data-testid': 'job-status' }),
    progress: h('span', { class: 'prog', 'data-testid': 'job-progress' }),
    age: h('time', { class: 'age' }),
    cancel: h('button', {
      type: 'button', class: 'secondary small', 'data-testid': 'job-cancel',
      'aria-label': `Cancel job ${job.id}`, onclick: () => cancelJob(job.id),
    }, 'Cancel'),
  };
  parts.select = h('button', {
    type: 'button', class: 'job-select', 'data-testid': 'job-select', title: job.id,
    onclick: () => selectJob(job.id),
  }, parts.kind, ' ', parts.id);
  const li = h('li', { class: 'job', 'data-testid': 'job-row', 'data-job-id': job.id },
    h('label', { class: 'cmp' }, compare, h('span', { class: 'cmp-text' }, 'compare')),
    parts.select, parts.dataset, parts.status, parts.progress, parts.age,
    h('span', { class: 'cancel-cell' }, parts.cancel));
  row = { li, parts };
  jobRows.set(job.id, row);
  return row;
}

function progressText(p) {
  if (!p || !p.total) return '—';
  return `${p.done}/${p.total} ${p.unit ?? ''}`.trim();
}

function renderJobs() {
  const list = $('#job-list');
  const ids = new Set(state.jobs.map((j) => j.id));
  for (const [id, row] of jobRows) {
    if (!ids.has(id)) {
      row.li.remove();
      jobRows.delete(id);
    }
  }
  state.jobs.forEach((job, i) => {
    const { li, parts } = jobRow(job);
    li.dataset.status = job.status;
    parts.kind.textContent = jobLabel(job);
    parts.dataset.textContent = job.dataset ?? '—';
    parts.status.textContent = statusText(job.status);
    parts.status.className = `status status-${job.status}`;
    parts.progress.textContent = progressText(job.progress);
    parts.age.textContent = fmtAge(job.created_at);
    parts.age.dateTime = job.created_at ?? '';
    parts.age.title = job.created_at ? new Date(job.created_at).toLocaleString() : '';
    parts.cancel.hidden = isTerminal(job.status);
    parts.compare.checked = state.compare.has(job.id);
    const selected = job.id === state.selected;
    li.classList.toggle('selected', selected);
    if (selected) parts.select.setAttribute('aria-current', 'true');
    else parts.select.removeAttribute('aria-current');
    // Move only rows that are out of place: moving a node would take the focus away from it.
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
  $('#jobs-empty').hidden = state.jobs.length > 0;
}

let pollTimer = null;
async function pollJobs() {
  clearTimeout(pollTimer);
  try {
    const before = new Map(state.jobs.map((j) => [j.id, j.status]));
    state.jobs = await api('/v1/jobs');
    setConn('ok', `connected · updated ${new Date().toLocaleTimeString()}`);
    renderJobs();
    refreshFormPickers();
    let finished = false;
    for (const job of state.jobs) {
      const was = before.get(job.id);
      if (was && was !== job.status && isTerminal(job.status)) finished = true;
      // Keep runs on the charts current. The selected job is fed by its event stream; compared
      // jobs are re-read while they run. A run that finished is read once more in full, also
      // when its stream missed the end (then the stream is closed here).
      const run = state.runs.get(job.id);
      if (run) {
        const knewFinished = isTerminal(run.job.status);
        mergeJob(job);
        const streaming = stream && stream.id === job.id;
        if (isTerminal(job.status)) {
          if (!knewFinished) {
            if (streaming) {
              closeStream();
              setLive('finished');
              resetProgress();
            }
            refreshRun(job.id);
          }
        } else if (!streaming) {
          refreshRun(job.id);
        }
      }
    }
    if (finished) loadModels();
    renderDetail();
  } catch (e) {
    if (e.status !== 401) setConn('bad', `server unreachable or failing (${e.message}); retrying`);
  } finally {
    // Polls started out of turn (after a submit, say) must not leave two timer chains behind.
    clearTimeout(pollTimer);
    pollTimer = setTimeout(pollJobs, POLL_MS);
  }
}

async function refreshRun(id) {
  try {
    mergeJob(await api(`/v1/jobs/${encodeURIComponent(id)}`));
    updateCharts();
    if (id === state.selected) renderDetail();
  } catch {
    // The next poll tries again; a vanished job simply keeps the points it had.
  }
}

async function cancelJob(id) {
  try {
    const job = await api(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
    if (job && job.id) mergeJob(job);
  } catch (e) {
    flashDetailError(`Cancel ${shortId(id)}: ${e.message}`);
  }
  pollJobs();
}


// ---------------------------------------------------------------------------------------------
// The selected job: details, live stream of events, progress with ETA
// ---------------------------------------------------------------------------------------------

let stream = null; // { id, es, retry } for the selected job while it is not finished

function closeStream() {
  if (!stream) return;
  stream.es.close();
  clearTimeout(stream.retry);
  stream = null;
}

async function selectJob(id) {
  if (state.selected !== id) {
    closeStream();
    resetProgress();
    flashDetailError('');
    setLive('—');
  }
  state.selected = id;
  history.replaceState(null, '', `#job=${encodeURIComponent(id)}`);
  runFor(id);
  renderJobs();
  renderDetail();
  rebuildCharts();
  try {
    mergeJob(await api(`/v1/jobs/${encodeURIComponent(id)}`));
  } catch (e) {
    if (state.selected === id) flashDetailError(e.message);
    return;
  }
  if (state.selected !== id) return; // the user picked another job meanwhile
  const run = state.runs.get(id);
  renderDetail();
  updateCharts();
  if (run.job.progress && run.job.status === 'running') showProgress(run.job.progress);
  if (isTerminal(run.job.status)) setLive('finished');
  else if (!stream) openStream(id);
}

function openStream(id) {
  const es = new EventSource(withToken(`/v1/jobs/${encodeURIComponent(id)}/events`));
  stream = { id, es, retry: null };
  setLive('connecting…');
  const run = runFor(id);
  const parse = (ev) => {
    try {
      return JSON.parse(ev.data);
    } catch {
      return null;
    }
  };
  es.addEventListener('open', () => setLive('live'));
  es.addEventListener('epoch', (ev) => {
    const e = parse(ev);
    if (!e || e.epoch == null) return;
    run.epochs.set(e.epoch, e); // keyed by epoch number: history replayed on reconnect is no duplicate
    updateCharts();
    renderDetail();
  });
  es.addEventListener('progress', (ev) => {
    const p = parse(ev);
    if (!p) return;
    run.job.progress = p;
    showProgress(p);
  });
  es.addEventListener('status', (ev) => {
    const s = parse(ev);
    if (!s) return;
    run.job.status = s.status;
    if (s.error) run.job.error = s.error;
    if (isTerminal(s.status)) {
      // The server ends the stream after this; closing first stops EventSource reconnecting.
      closeStream();
      setLive('finished');
      resetProgress();
      refreshRun(id); // final result, model id, timestamps
      pollJobs();
      loadModels();
    }
    renderDetail();
  });
  es.addEventListener('error', () => {
    if (!stream || stream.es !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (the server answered with an error status): try again ourselves.
      // Replayed history is harmless because epochs are keyed by number. Reading the job through
      // api() first lets a 401 ask for a token, which the next connection then carries.
      setLive('disconnected, retrying in 3 s');
      es.close();
      refreshRun(id);
      stream.retry = setTimeout(() => {
        if (stream && stream.es === es) {
          stream = null;
          if (state.selected === id && !isTerminal(runFor(id).job.status)) openStream(id);
        }
      }, 3000);
    } else {
      setLive('reconnecting…'); // EventSource retries by itself, sending Last-Event-ID
    }
  });
}

// ETA: the rate is measured from a baseline sample of the current phase (one epoch, or the
// extraction). A new phase starts when `done` goes down or the total/unit change. Samples that
// arrive in a burst (history replayed on connect) move the baseline instead of counting as speed.
const eta = { base: null, last: null };

function resetProgress() {
  eta.base = eta.last = null;
  $('#progress-box').hidden = true;
}

function showProgress(p) {
  if (!p || !p.total) return;
  const now = performance.now();
  const sample = { t: now, done: p.done, total: p.total, unit: p.unit };
  const newPhase = !eta.last || p.done < eta.last.done || p.total !== eta.last.total || p.unit !== eta.last.unit;
  if (newPhase || now - eta.last.t < 50) eta.base = sample;
  eta.last = sample;

  const box = $('#progress-box');
  box.hidden = false;
  const bar = $('#progress');
  bar.max = p.total;
  bar.value = Math.min(p.done, p.total);
  $('#progress-label').textContent = p.unit === 'epochs' ? 'Epochs' : `Progress (${p.unit ?? 'items'})`;

  const parts = [`${p.done} / ${p.total} ${p.unit ?? ''} (${Math.floor((100 * p.done) / p.total)}%)`];
  const dt = (now - eta.base.t) / 1000;
  const dd = p.done - eta.base.done;
  if (dt >= 1 && dd > 0 && p.done < p.total) {
    const rate = dd / dt;
    parts.push(`${rate >= 1 ? rate.toFixed(1) : rate.toFixed(2)} ${p.unit ?? ''}/s`, `ETA ${fmtDuration((p.total - p.done) / rate)}`);
  }
  // For training, add the whole job's ETA from the measured epoch times.
  const run = state.selected && state.runs.get(state.selected);
  const totalEpochs = run?.job?.params?.epochs;
  if (run && totalEpochs && p.unit !== 'epochs') {
    const eps = [...run.epochs.values()];
    const secs = eps.map((e) => e.seconds).filter((s) => typeof s === 'number');
    const left = totalEpochs - eps.length;
    let line = `epoch ${Math.min(eps.length + 1, totalEpochs)} of ${totalEpochs}`;
    if (secs.length && left > 0) {
      const avg = secs.reduce((a, b) => a + b, 0) / secs.length;
      line += ` · job ETA ≈ ${fmtDuration(avg * (left - p.done / p.total))}`;
    }
    parts.push(line);
  }
  $('#progress-text').textContent = parts.join(' · ');
}

// The detail view is built once and then only updated: re-creating it on every event or poll
// would take the keyboard focus (and a half-done click) away from its Cancel button.
let detail = null;

function detailView() {
  if (detail) return detail;
  detail = {
    label: h('span'),
    status: h('span', { 'data-testid': 'detail-status' }),
    cancel: h('button', {
      type: 'button', class: 'secondary small', 'data-testid': 'detail-cancel',
      onclick: () => state.selected && cancelJob(state.selected),
    }, 'Cancel job'),
    live: h('span', { id: 'live-state', 'data-testid': 'live-state' }, '—'),
    facts: h('dl', { class: 'facts' }),
    error: h('p', { class: 'error', role: 'alert', 'data-testid': 'job-error', hidden: true }),
    notice: h('p', { id: 'detail-error', class: 'error', role: 'alert', hidden: true }),
  };
  $('#job-detail').replaceChildren(
    h('div', { class: 'detail-head' }, h('h3', {}, detail.label, ' ', detail.status), detail.cancel),
    h('p', { class: 'live help' }, 'Live updates: ', detail.live),
    detail.facts, detail.error, detail.notice);
  return detail;
}

function flashDetailError(message) {
  const { notice } = detailView();
  notice.textContent = `✗ ${message}`;
  notice.hidden = !message;
}

function setLive(text) {
  detailView().live.textContent = text;
}

function renderDetail() {
  const id = state.selected;
  if (!id) return;
  const view = detailView();
  const run = state.runs.get(id);
  const job = run?.job ?? { id };
  const eps = [...(run?.epochs.values() ?? [])].sort((a, b) => a.epoch - b.epoch);
  const last = eps[eps.length - 1];
  const best = eps.filter((e) => typeof e.val_acc === 'number').reduce((b, e) => (!b || e.val_acc > b.val_acc ? e : b), null);

  const facts = [
    ['Job', job.id],
    ['Dataset', job.dataset],
    ['Created', job.created_at ? new Date(job.created_at).toLocaleString() : null],
    ['Ran for', job.started_at ? fmtDuration(((job.finished_at ? Date.parse(job.finished_at) : Date.now()) - Date.parse(job.started_at)) / 1000) : null],
    ['Parameters', job.params ? Object.entries(job.params).filter(([k, v]) => k !== 'kind' && k !== 'dataset' && v != null).map(([k, v]) => `${k}=${v}`).join(', ') : null],
    ['Epochs', eps.length ? `${eps.length}${job.params?.epochs ? ` of ${job.params.epochs}` : ''}` : null],
    ['Last epoch', last ? `acc ${num(last.acc, 3)} · val acc ${num(last.val_acc, 3)} · loss ${num(last.loss, 3)} · val loss ${num(last.val_loss, 3)}${typeof last.seconds === 'number' ? ` · ${last.seconds.toFixed(1)} s` : ''}` : null],
    ['Best val acc', best ? `${pct(best.val_acc)} at epoch ${best.epoch}` : null],
    ['Result', job.result && typeof job.result === 'object' ? fmtObject(job.result) || null : null],
    ['Model saved', job.model_id ?? null],
  ].filter(([, v]) => v != null && v !== '');

  view.label.textContent = jobLabel(job);
  view.status.textContent = statusText(job.status ?? '…');
  view.status.className = `status status-${job.status}`;
  view.cancel.hidden = !job.status || isTerminal(job.status);
  view.cancel.setAttribute('aria-label', `Cancel job ${job.id}`);
  view.facts.replaceChildren(...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]));
  view.error.textContent = job.error ? `✗ ${job.error}` : '';
  view.error.hidden = !job.error;
}

// ---------------------------------------------------------------------------------------------
// Charts: accuracy and loss with uPlot. For every run (the selected job first, then compared
// ones) four series: training raw, training smoothed (dots, as Chollet's 'bo'), validation raw,
// validation smoothed (lines, as his 'b'). So data[1] is the selected job's raw training values
// and data[2] their smoothed version. Raw series are faint, smoothed ones bold; runs differ by
// colour AND marker shape AND line dash, so they can be told apart without colour.
// ---------------------------------------------------------------------------------------------

const charts = { acc: null, loss: null };
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9']; // Okabe–Ito
const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'cross'];
const SHAPES_GLYPH = { circle: '●', square: '■', triangle: '▲', diamond: '◆', cross: '✚' };
const DASHES = [[], [10, 5], [3, 4], [12, 4, 3, 4], [6, 3]];

function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** Chollet's smooth_curve: an exponential moving average, the first point unchanged. Missing
 * points stay missing and do not reset the average. */
function smooth(points, factor) {
  let prev = null;
  return points.map((p) => {
    if (p == null) return null;
    prev = prev == null ? p : prev * factor + p * (1 - factor);
    return prev;
  });
}

/** uPlot points path builder drawing the given marker shape instead of its round default. */
function shapePoints(shape) {
  return (u, si, i0, i1) => {
    const s = u.series[si];
    const r = (s.points.size / 2) * (window.devicePixelRatio || 1);
    const path = new Path2D();
    const xs = u.data[0];
    const ys = u.data[si];
    for (let i = i0; i <= i1; i++) {
      if (ys[i] == null) continue;
      const x = u.valToPos(xs[i], 'x', true);
      const y = u.valToPos(ys[i], s.scale, true);
      if (shape === 'square') path.rect(x - r, y - r, 2 * r, 2 * r);
      else if (shape === 'triangle') {
        path.moveTo(x, y - r * 1.2);
        path.lineTo(x + r * 1.1, y + r * 0.8);
        path.lineTo(x - r * 1.1, y + r * 0.8);
        path.closePath();
      } else if (shape === 'diamond') {
        path.moveTo(x, y - r * 1.3);
        path.lineTo(x + r * 1.1, y);
        path.lineTo(x, y + r * 1.3);
        path.lineTo(x - r * 1.1, y);
        path.closePath();
      } else if (shape === 'cross') {
        const t = r * 0.4;
        path.rect(x - r, y - t, 2 * r, 2 * t);
        path.rect(x - t, y - r, 2 * t, 2 * r);
      } else {
        path.moveTo(x + r, y);
        path.arc(x, y, r, 0, 2 * Math.PI);
      }
    }
    return { stroke: path, fill: path };
  };
}

function chartRuns() {
  const ids = [];
  if (state.selected) ids.push(state.selected);
  for (const id of state.compare) if (!ids.includes(id)) ids.push(id);
  return ids.map((id) => ({ id, run: runFor(id) }));
}

function seriesFor(runs) {
  return runs.flatMap(({ id }, i) => {
    const color = PALETTE[i % PALETTE.length];
    const shape = SHAPES[i % SHAPES.length];
    const dash = DASHES[i % DASHES.length];
    // With one run the legend needs no run names; with several, each names its job and shape.
    const tag = runs.length > 1 ? `${SHAPES_GLYPH[shape]} ${shortId(id)} · ` : '';
    const dots = (alpha, size, filled) => ({
      paths: () => null,
      points: { show: true, size, width: 1.5, stroke: rgba(color, alpha), fill: filled ? rgba(color, alpha) : '#fff', paths: shapePoints(shape) },
      stroke: rgba(color, alpha),
      width: 0,
    });
    const value = (u, v) => (v == null ? '—' : v.toFixed(3));
    return [
      { label: `${tag}training (raw)`, value, ...dots(0.45, 5, false) },
      { label: `${tag}training (smoothed)`, value, ...dots(1, 7, true) },
      { label: `${tag}validation (raw)`, value, stroke: rgba(color, 0.4), width: 1, dash, points: { show: false } },
      { label: `${tag}validation (smoothed)`, value, stroke: color, width: 2.5, dash, points: { show: false } },
    ];
  });
}

function chartData(metric, runs) {
  const xs = [...new Set(runs.flatMap(({ run }) => [...run.epochs.keys()]))].sort((a, b) => a - b);
  const data = [xs];
  for (const { run } of runs) {
    for (const key of [metric, `val_${metric}`]) {
      const raw = xs.map((x) => {
        const v = run.epochs.get(x)?.[key];
        return typeof v === 'number' ? v : null;
      });
      data.push(raw, smooth(raw, state.smoothing));
    }
  }
  return data;
}

function chartSize(el) {
  // Measured on the figure, which stays laid out while the chart itself is folded away.
  const width = Math.max(260, Math.floor(el.parentElement.clientWidth));
  return { width, height: width < 500 ? 220 : 280 };
}

let chartKey = null; // which runs the current charts were built for

function rebuildCharts() {
  const runs = chartRuns();
  chartKey = runs.map((r) => r.id).join(',');
  for (const metric of ['acc', 'loss']) {
    const el = document.getElementById(`chart-${metric}`);
    charts[metric]?.destroy();
    el.replaceChildren();
    const opts = {
      ...chartSize(el),
      scales: { x: { time: false } },
      axes: [
        { label: 'epoch', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500], values: (u, vals) => vals.map((v) => String(v)) },
        { label: metric === 'acc' ? 'accuracy' : 'loss', size: 56, values: (u, vals) => vals.map((v) => v.toFixed(2)) },
      ],
      series: [{ label: 'epoch', value: (u, v) => (v == null ? '—' : String(v)) }, ...seriesFor(runs)],
      cursor: { drag: { x: true, y: false } },
    };
    charts[metric] = new uPlot(opts, chartData(metric, runs), el);
  }
  captionCharts(runs);
}

function updateCharts() {
  const runs = chartRuns();
  if (runs.map((r) => r.id).join(',') !== chartKey || !charts.acc) return rebuildCharts();
  charts.acc.setData(chartData('acc', runs));
  charts.loss.setData(chartData('loss', runs));
  captionCharts(runs);
}

/** Say in words when a chart is empty, and why, instead of leaving a blank plot. */
function captionCharts(runs) {
  const any = runs.some(({ run }) => run.epochs.size > 0);
  const first = runs[0]?.run.job;
  let note = '';
  if (!runs.length) note = ' — select a job';
  else if (!any && first?.kind && !['train', 'fine_tune'].includes(first.kind)) note = ` — “${jobLabel(first)}” has no epochs`;
  else if (!any) note = ' — no epochs yet';
  for (const metric of ['acc', 'loss']) {
    $(`#caption-${metric}`).textContent = `${metric === 'acc' ? 'Accuracy' : 'Loss'}${note}`;
    // An empty plot is a big blank box: fold it away until there is something to draw.
    $(`#chart-${metric}`).closest('figure').classList.toggle('no-data', !any);
  }
}

function toggleCompare(id, on) {
  if (on) state.compare.add(id);
  else state.compare.delete(id);
  if (on) refreshRun(id);
  rebuildCharts();
}

// uPlot draws on a canvas of a fixed size: follow the width of the panel.
let resizeFrame = 0;
const resizer = new ResizeObserver(() => {
  cancelAnimationFrame(resizeFrame);
  // Deferred to the next frame so that resizing never happens inside the observer's callback
  // (which would log "ResizeObserver loop" errors).
  resizeFrame = requestAnimationFrame(() => {
    for (const metric of ['acc', 'loss']) {
      const chart = charts[metric];
      const el = document.getElementById(`chart-${metric}`);
      if (!chart) continue;
      const size = chartSize(el);
      if (size.width !== chart.width || size.height !== chart.height) chart.setSize(size);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

let modelsSignature = '';

async function loadModels() {
  try {
    state.models = await api('/v1/models');
    $('#models-error').hidden = true;
  } catch (e) {
    showError('#models-error', e.message);
    return;
  }
  const signature = JSON.stringify(state.models);
  if (signature === modelsSignature) return;
  modelsSignature = signature;
  renderModels();
  refreshFormPickers();
  fillSelect($('#predict-model'), state.models.map((m) => ({ value: m.id, label: modelLabel(m) })), { placeholder: 'Server default' });
}

function showError(sel, message) {
  const el = $(sel);
  el.textContent = `✗ ${message}`;
  el.hidden = false;
}

function renderModels() {
  const body = $('#model-list');
  body.replaceChildren(...state.models.map((m) => {
    const del = h('button', { type: 'button', class: 'secondary small danger', 'data-testid': 'model-delete', 'aria-label': `Delete model ${m.id}` }, 'Delete');
    // Two clicks to delete: the first arms the button for a few seconds.
    del.addEventListener('click', async () => {
      if (!del.dataset.armed) {
        del.dataset.armed = '1';
        del.textContent = 'Really delete?';
        setTimeout(() => {
          delete del.dataset.armed;
          del.textContent = 'Delete';
        }, 4000);
        return;
      }
      try {
        await api(`/v1/models/${encodeURIComponent(m.id)}`, { method: 'DELETE' });
      } catch (e) {
        showError('#models-error', e.message);
      }
      loadModels();
    });
    return h('tr', { 'data-testid': 'model-row', 'data-model-id': m.id, class: m.is_default ? 'is-default' : null },
      h('th', { scope: 'row', 'data-label': 'Model' },
        h('span', { class: 'mid', title: m.id }, shortId(m.id)),
        m.is_default ? h('span', { class: 'badge', 'data-testid': 'model-is-default' }, '★ default') : null,
        h('span', { class: 'sub' }, m.created_at ? fmtAge(m.created_at) : '')),
      h('td', { 'data-label': 'Recipe' }, RECIPE_NAMES[m.recipe] ?? m.recipe ?? '—'),
      h('td', { 'data-label': 'Dataset' }, m.dataset ?? '—'),
      h('td', { 'data-label': 'Val acc', 'data-testid': 'model-val-acc' }, pct(m.metrics?.val_acc)),
      h('td', { 'data-label': 'Test acc', 'data-testid': 'model-test-acc' }, m.test_metrics ? pct(m.test_metrics.acc) : h('span', { class: 'sub' }, 'not evaluated')),
      h('td', { 'data-label': 'Actions', class: 'actions-cell' },
        h('button', {
          type: 'button', class: 'secondary small', 'data-testid': 'model-default', disabled: m.is_default,
          onclick: async () => {
            try {
              await api(`/v1/models/${encodeURIComponent(m.id)}/default`, { method: 'PUT' });
            } catch (e) {
              showError('#models-error', e.message);
            }
            loadModels();
          },
        }, m.is_default ? 'Default' : 'Make default'),
        h('button', {
          type: 'button', class: 'secondary small', 'data-testid': 'model-evaluate',
          onclick: () => prefillEvaluate(m),
        }, 'Evaluate…'),
        del));
  }));
  $('#models-empty').hidden = state.models.length > 0;
}

/** "Evaluate…" on a model: switch the form to recipe 5 with that model and its dataset. */
function prefillEvaluate(m) {
  $('#recipe').value = 'evaluate';
  buildRecipeFields();
  if (state.datasets.some((d) => d.name === m.dataset)) $('#dataset').value = m.dataset;
  describeDataset();
  const sel = document.getElementById('model');
  sel.dataset.wanted = m.id;
  refreshFormPickers();
  $('#jobs-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
  $('#start-job').focus({ preventScroll: true });
}

// ---------------------------------------------------------------------------------------------
// Predict: each chosen or dropped photo is one `image` part of a multipart POST; the answer's
// predictions come back in the same order.
// ---------------------------------------------------------------------------------------------

let lastFiles = [];
let thumbUrls = [];

async function predict(files) {
  files = files.filter((f) => f.type.startsWith('image/') || /\.(jpe?g|png|gif|bmp|webp)$/i.test(f.name));
  if (!files.length) return;
  lastFiles = files;
  const errEl = $('#predict-error');
  errEl.hidden = true;
  for (const u of thumbUrls) URL.revokeObjectURL(u);
  thumbUrls = files.map((f) => URL.createObjectURL(f));
  const cards = files.map((f, i) => {
    const card = h('li', { class: 'pred pending', 'data-testid': 'prediction' },
      h('img', { src: thumbUrls[i], alt: f.name }),
      h('div', { class: 'pred-body' },
        h('p', { class: 'pred-label', 'data-testid': 'prediction-label' }, '…'),
        h('p', { class: 'fname', title: f.name }, f.name)));
    return card;
  });
  $('#predictions').replaceChildren(...cards);
  const model = $('#predict-model').value;
  $('#predict-status').textContent = `Classifying ${files.length} photo${files.length > 1 ? 's' : ''}…`;
  const form = new FormData();
  for (const f of files) form.append('image', f, f.name);
  try {
    const res = await api(`/v1/predict${model ? `?model=${encodeURIComponent(model)}` : ''}`, { method: 'POST', body: form });
    (res.predictions ?? []).forEach((p, i) => cards[i] && fillPrediction(cards[i], p));
    const used = state.models.find((m) => m.id === res.model);
    $('#predict-status').textContent = `Classified by model ${used ? modelLabel(used) : res.model}.`;
  } catch (e) {
    showError('#predict-error', e.message);
    $('#predict-status').textContent = '';
    for (const c of cards) {
      c.classList.remove('pending');
      c.querySelector('.pred-label').textContent = 'not classified';
    }
  }
}

function fillPrediction(card, p) {
  card.classList.remove('pending');
  card.querySelector('.pred-label').textContent = p.label;
  card.dataset.label = p.label;
  const scores = Object.entries(p.scores ?? { [p.label]: p.probability });
  const bars = h('div', { class: 'bars' }, scores.map(([cls, v]) => {
    const top = cls === p.label;
    return h('div', { class: `bar-row${top ? ' top' : ''}` },
      h('span', { class: 'bar-name' }, `${top ? '✓ ' : ''}${cls}`),
      h('span', { class: 'bar-pct', 'data-testid': top ? 'prediction-probability' : null }, pct(v)),
      h('span', { class: 'bar', role: 'img', 'aria-label': `${cls} ${pct(v)}` },
        h('span', { class: 'bar-fill', style: `width: ${Math.max(0, Math.min(1, v)) * 100}%` })));
  }));
  card.querySelector('.pred-body').insertBefore(bars, card.querySelector('.fname'));
}

function setUpPredict() {
  const input = $('#predict-files');
  input.addEventListener('change', () => {
    predict([...input.files]);
    input.value = ''; // so choosing the same photo again still fires "change"
  });
  const zone = $('#drop-zone');
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    predict([...(e.dataTransfer?.files ?? [])]);
  });
  // A photo dropped next to the zone would make the browser navigate away to it.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
  $('#predict-model').addEventListener('change', () => lastFiles.length && predict(lastFiles));
}

// ---------------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------------

async function loadDatasets() {
  try {
    state.datasets = await api('/v1/datasets');
  } catch (e) {
    showFormError(`Datasets: ${e.message}`);
    setTimeout(loadDatasets, 5000);
    return;
  }
  const names = state.datasets.map((d) => ({ value: d.name, label: d.name }));
  fillSelect($('#dataset'), names, { preferred: 'cats_and_dogs_small' });
  describeDataset();
  refreshFormPickers();
}

function init() {
  document.body.append(h('datalist', { id: 'vgg-layers' }, VGG16_CONV_LAYERS.map((l) => h('option', { value: l }))));
  $('#recipe').addEventListener('change', () => buildRecipeFields());
  $('#dataset').addEventListener('change', () => {
    describeDataset();
    refreshFormPickers();
  });
  $('#reset-defaults').addEventListener('click', () => buildRecipeFields(true));
  $('#job-form').addEventListener('submit', submitJob);
  $('#sign-in').addEventListener('click', () => {
    authDeclined = false;
    askToken().then((ok) => ok && (pollJobs(), loadModels(), state.datasets.length || loadDatasets()));
  });
  const slider = $('#smoothing');
  slider.addEventListener('input', () => {
    state.smoothing = Number(slider.value);
    $('#smoothing-value').textContent = state.smoothing.toFixed(2);
    updateCharts();
  });
  state.smoothing = Number(slider.value);
  $('#smoothing-value').textContent = state.smoothing.toFixed(2);
  buildRecipeFields();
  setUpPredict();
  rebuildCharts();
  resizer.observe($('#chart-acc').parentElement);
  // Browsers slow timers down in hidden tabs: refresh at once when the tab is shown again.
  document.addEventListener('visibilitychange', () => !document.hidden && pollJobs());

  loadDatasets();
  loadModels();
  pollJobs();
  setInterval(loadModels, 15000); // models also change through other clients
  const m = /^#job=(.+)$/.exec(location.hash);
  if (m) selectJob(decodeURIComponent(m[1]));
}

// For tests and the console: the live charts (uPlot instances: chart.data[1] is the selected
// job's raw training series, chart.data[2] its smoothed one), the state and the smoother.
window.vggserve = { charts, state, smooth, selectJob };

init();
