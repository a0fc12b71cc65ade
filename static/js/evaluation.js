// The selected job's evaluation, when it has one (an `evaluate` job's result, or the `test` part of
// a train or fine-tune job's): the confusion matrix as a heatmap table, precision, recall, F1 and
// support per class, and the photos the model got wrong most confidently, as thumbnails
// (GET /v1/datasets/{dataset}/thumbnail, read through api() for its token, shown as object URLs
// that are revoked when the view is re-rendered or emptied). Lives in #evaluation, under the
// curves; re-rendered only when the job or its evaluation changes, so polls cost nothing.
// Emits: nothing.
// Handles: job-selected, run-updated and jobs-changed (render the selected job's evaluation, or
// hide the section), show-evaluation (scroll to it and focus its heading).

import { api } from './api.js';
import { on } from './bus.js';
import { $, h, jobEvaluation, num, pct } from './dom.js';
import { state } from './state.js';

// Thumbnails are shown at about 7.5rem; twice that in pixels stays sharp on high-density screens.
const THUMB_PX = 240;
// Above this many classes the matrix gets compact: smaller cells, upright column names, no
// row percentages in the cells (they stay in each cell's title).
const COMPACT_ABOVE = 8;

function releaseThumbs() {
  for (const u of state.evaluation.thumbUrls) URL.revokeObjectURL(u);
  state.evaluation.thumbUrls = [];
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/** Background of a cell: blue on the diagonal (right), red off it (wrong), as strong as the
 * cell's share of its row. Returns the style and whether the text needs to be light. */
function shade(share, diagonal) {
  // Light text only where it contrasts better than dark text (from about 0.72 on, both hues).
  const alpha = Math.max(0, Math.min(1, share)) * 0.9;
  const rgb = diagonal ? '11, 92, 173' : '179, 38, 30';
  return { style: `background-color: rgba(${rgb}, ${alpha.toFixed(3)})`, light: alpha > 0.72 };
}

function confusionTable(ev, splitName) {
  const { classes, confusion } = ev;
  const compact = classes.length > COMPACT_ABOVE;
  const total = sum(confusion.map((row) => sum(row)));
  const head = h('tr', {},
    h('td', { class: 'cm-corner' }, h('span', { class: 'cm-corner-true' }, 'true ↓'), ' ', h('span', { class: 'cm-corner-pred' }, 'predicted →')),
    classes.map((c) => h('th', { scope: 'col', class: 'cm-col', title: `predicted ${c}` }, h('span', {}, c))),
    h('th', { scope: 'col', class: 'cm-total' }, 'total'));
  const rows = classes.map((trueClass, i) => {
    const row = confusion[i] ?? [];
    const rowTotal = sum(row);
    return h('tr', {},
      h('th', { scope: 'row', class: 'cm-row' }, trueClass),
      classes.map((predicted, j) => {
        const count = row[j] ?? 0;
        const share = rowTotal ? count / rowTotal : 0;
        const diagonal = i === j;
        const { style, light } = shade(share, diagonal);
        const words = `true ${trueClass}, predicted ${predicted}: ${count} of ${rowTotal} (${pct(share)})${diagonal ? ', correct' : ''}`;
        return h('td', {
          class: `cm-cell${diagonal ? ' diag' : ''}${light ? ' light' : ''}${count ? '' : ' zero'}`,
          style, title: words, 'data-testid': 'confusion-cell', 'data-count': count,
        }, h('span', { class: 'cm-count' }, String(count)),
        !compact && count ? h('span', { class: 'cm-share' }, `${Math.round(share * 100)}%`) : null);
      }),
      h('td', { class: 'cm-total' }, String(rowTotal)));
  });
  // The caption stays short (it is as wide as the table, which may scroll); the key is beside it.
  return [
    h('p', { id: 'cm-key', class: 'help' }, 'Rows: the true class; columns: the predicted one. Shade: the cell\'s share of its row. ',
      'The diagonal (bold, framed, blue) holds the right answers; the rest (red) are mistakes.'),
    h('div', { class: 'cm-wrap', tabindex: '0', role: 'group', 'aria-label': 'Confusion matrix, scrollable' },
      h('table', { class: `confusion${compact ? ' compact' : ''}`, 'data-testid': 'confusion-matrix', 'aria-describedby': 'cm-key' },
        h('caption', {}, `Confusion matrix · ${splitName} split · ${total} photos`),
        h('thead', {}, head),
        h('tbody', {}, rows)))];
}

function perClassTable(ev) {
  const rows = ev.per_class ?? [];
  if (!rows.length) return null;
  // The class to look at first: the lowest F1 among those with photos, when F1 differs at all.
  const weakest = rows.reduce((w, r) => (r.support > 0 && (!w || r.f1 < w.f1) ? r : w), null);
  const spread = weakest && rows.some((r) => r.support > 0 && r.f1 > weakest.f1);
  const avg = (k) => sum(rows.map((r) => r[k] ?? 0)) / rows.length;
  const fig = (v) => num(v, 2);
  return h('div', { class: 'table-wrap pc-wrap' },
    h('table', { class: 'per-class', 'data-testid': 'per-class' },
      h('caption', {}, 'Per class · precision: of the photos called this class, the share that were; recall: of its photos, the share found; support: its photos'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Class'), h('th', { scope: 'col' }, 'Precision'), h('th', { scope: 'col' }, 'Recall'),
        h('th', { scope: 'col' }, 'F1'), h('th', { scope: 'col' }, 'Support'))),
      h('tbody', {}, rows.map((r) => {
        const weak = spread && r === weakest;
        return h('tr', { class: weak ? 'weakest' : null, 'data-testid': 'per-class-row' },
          h('th', { scope: 'row' }, r.class, weak ? h('span', { class: 'weak-tag' }, ' ▼ lowest F1') : null),
          h('td', {}, fig(r.precision)), h('td', {}, fig(r.recall)),
          h('td', {}, h('span', { class: 'f1-bar', style: `--f1: ${Math.max(0, Math.min(1, r.f1 ?? 0))}`, 'aria-hidden': 'true' }), fig(r.f1)),
          h('td', {}, String(r.support ?? '—')));
      })),
      h('tfoot', {}, h('tr', {},
        h('th', { scope: 'row' }, 'macro average'),
        h('td', {}, fig(avg('precision'))), h('td', {}, fig(avg('recall'))), h('td', {}, fig(avg('f1'))),
        h('td', {}, String(sum(rows.map((r) => r.support ?? 0))))))));
}

function wrongPhotos(ev, dataset, key) {
  const wrong = ev.most_confident_wrong ?? [];
  const intro = h('h4', {}, wrong.length ? `Most confidently wrong (${wrong.length})` : 'Most confidently wrong');
  if (!wrong.length) return [intro, h('p', { class: 'empty', 'data-testid': 'wrong-photos-none' }, 'No photo was misclassified.')];
  const items = wrong.map((w) => {
    const img = h('img', { alt: `${w.file}: a ${w.true} photo the model called ${w.predicted}`, decoding: 'async' });
    const li = h('li', { class: 'wrong pending', 'data-testid': 'wrong-photo', title: w.file },
      h('figure', {}, img,
        h('figcaption', {},
          h('span', { class: 'wrong-label' }, h('span', { class: 'wrong-true' }, w.true), ' → ', h('strong', {}, w.predicted),
            ' ', h('span', { class: 'wrong-p' }, `(${pct(w.probability)})`)),
          h('span', { class: 'fname' }, w.file))));
    loadThumb(img, li, dataset, w.file, key);
    return li;
  });
  return [intro, h('p', { class: 'help' }, 'true class → predicted (its probability), most confident first: look for mislabelled photos and look-alike classes.'),
    h('ul', { class: 'wrong-photos', 'data-testid': 'wrong-photos' }, items)];
}

async function loadThumb(img, li, dataset, file, key) {
  try {
    const blob = await api(`/v1/datasets/${encodeURIComponent(dataset)}/thumbnail?file=${encodeURIComponent(file)}&size=${THUMB_PX}`, { as: 'blob' });
    if (state.evaluation.key !== key) return; // another job (or evaluation) is shown by now
    const url = URL.createObjectURL(blob);
    state.evaluation.thumbUrls.push(url);
    img.src = url;
    li.classList.remove('pending');
  } catch (e) {
    if (state.evaluation.key !== key) return;
    li.classList.remove('pending');
    li.classList.add('failed');
    img.replaceWith(h('p', { class: 'thumb-error' }, `✗ no thumbnail: ${e.message}`));
  }
}

export function renderEvaluation() {
  const section = $('#evaluation');
  if (!section) return;
  const job = state.selected ? state.runs.get(state.selected)?.job : null;
  const ev = jobEvaluation(job);
  const key = ev ? `${job.id}\n${job.dataset}\n${JSON.stringify(ev)}` : '';
  if (key === state.evaluation.key) return;
  state.evaluation.key = key;
  releaseThumbs();
  if (!ev) {
    section.hidden = true;
    section.replaceChildren();
    return;
  }
  const splitName = job.kind === 'evaluate' ? job.params?.split ?? 'test' : 'test';
  const count = ev.count ?? sum(ev.confusion.map((row) => sum(row)));
  section.replaceChildren(
    h('h3', { id: 'evaluation-h', tabindex: '-1' }, `Evaluation · ${splitName} split`),
    h('p', { class: 'eval-summary', 'data-testid': 'evaluation-summary' },
      `${count} photos · accuracy ${pct(ev.acc)} · loss ${num(ev.loss, 3)} · ${ev.classes.length} classes`),
    ...confusionTable(ev, splitName),
    perClassTable(ev),
    ...wrongPhotos(ev, job.dataset ?? job.params?.dataset, key));
  section.hidden = false;
}

on('job-selected', () => renderEvaluation());
on('run-updated', ({ id }) => id === state.selected && renderEvaluation());
on('jobs-changed', () => renderEvaluation());
on('show-evaluation', ({ id }) => {
  if (id !== state.selected) return;
  renderEvaluation();
  const section = $('#evaluation');
  if (!section || section.hidden) return;
  section.scrollIntoView({ behavior: 'smooth', block: 'start' });
  $('#evaluation-h')?.focus({ preventScroll: true });
});
