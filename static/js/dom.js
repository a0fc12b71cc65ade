// DOM and formatting helpers shared by every view: $ and h (build elements without HTML
// strings), status words, number/time formatting, labels of jobs and models, a job's evaluation,
// error boxes, the select filler that keeps the user's choice across refreshes, and drop zones.
// Nothing here holds state but the flag that blocks stray drops on the window once.

export const $ = (sel, root = document) => root.querySelector(sel);

// Properties that must be set on the element rather than as attributes (their attribute is only
// the *initial* value, or a boolean whose presence counts).
const DOM_PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'hidden']);

/** Build an element: h('p', {class: 'x', onclick: f}, 'text', child). Text goes in as text, never
 * as HTML, so names coming from the API cannot inject markup. */
export function h(tag, props = {}, ...children) {
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
export const isTerminal = (status) => TERMINAL.has(status);

// Status words carry a symbol too, so they read without colour.
const STATUS_MARK = { waiting: '⧖', queued: '◷', running: '▶', succeeded: '✓', failed: '✗', cancelled: '⊘' };
export const statusText = (s) => `${STATUS_MARK[s] ?? '?'} ${s}`;

export const pct = (v) => (typeof v === 'number' ? `${(v * 100).toFixed(1)}%` : '—');
export const num = (v, digits = 4) => (typeof v === 'number' ? v.toFixed(digits) : '—');
// Job and model ids are UUIDs: their first 8 hex digits tell them apart on screen (the full id is
// in the title and the details).
export const shortId = (id) => (id && id.length > 10 ? id.slice(0, 8) : id ?? '');

export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A result object in words: "acc 0.8125, final (loss 0.513, acc 0.813)"; nulls left out. */
export function fmtObject(obj) {
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

export function fmtAge(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '—';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 10) return 'just now';
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function jobLabel(job) {
  if (job.kind === 'train') {
    const p = job.params ?? {};
    if (p.augment) return 'train · augmented';
    if (p.features) return 'train · features';
    return 'train';
  }
  return { extract_features: 'extract features', fine_tune: 'fine-tune', evaluate: 'evaluate' }[job.kind] ?? job.kind;
}

/** The evaluation a job reports, or null: an `evaluate` job's result, or the `test` part of a
 * train or fine-tune job's result (absent when its dataset has no test split). Only one with a
 * confusion matrix counts (servers before it reported loss and accuracy alone). */
export function jobEvaluation(job) {
  const r = job?.result;
  if (!r || typeof r !== 'object') return null;
  const e = job.kind === 'evaluate' ? r : r.test;
  return e && Array.isArray(e.classes) && Array.isArray(e.confusion) ? e : null;
}

// The parts of an evaluation that the evaluation view shows (too long for one line of text).
export const EVALUATION_DETAIL = ['classes', 'confusion', 'per_class', 'most_confident_wrong'];

// Model recipes as the server names them, in words; an unknown name is shown as it is.
export const RECIPE_NAMES = {
  features: 'on features', augment: 'augmented', augmented: 'augmented', train_augment: 'augmented',
  fine_tune: 'fine-tuned', finetune: 'fine-tuned', train: 'train',
};
export const modelLabel = (m) =>
  `${shortId(m.id)} · ${RECIPE_NAMES[m.recipe] ?? m.recipe} · ${m.dataset} · val ${pct(m.metrics?.val_acc)}${m.is_default ? ' · default' : ''}`;

/** Show an error in one of the page's error boxes (#models-error, #predict-error). */
export function showError(sel, message) {
  const el = $(sel);
  el.textContent = `✗ ${message}`;
  el.hidden = false;
}

/** Replace a select's options only when they changed, keeping the user's choice if still there,
 * so the 2-second refresh never closes an open drop-down or resets a selection. A value asked for
 * before its option exists (data-wanted, e.g. a remembered form value) is applied once it does. */
export function fillSelect(select, options, { placeholder = null, preferred = null } = {}) {
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

let strayDropsBlocked = false;

/** Make `zone` take dropped files (highlighted while something is dragged over it), and
 * stop a file dropped beside it from making the browser navigate away to that file. */
export function dropZone(zone, onFiles) {
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    onFiles([...(e.dataTransfer?.files ?? [])]);
  });
  if (!strayDropsBlocked) {
    strayDropsBlocked = true;
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => e.preventDefault());
  }
}

/** A delete button that needs two clicks: the first arms it for a few seconds ("Really
 * delete?"), the second runs `onConfirm`. */
export function deleteButton(props, onConfirm) {
  const del = h('button', { type: 'button', class: 'secondary small danger', ...props }, 'Delete');
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
    await onConfirm(del);
  });
  return del;
}
