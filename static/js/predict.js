// The predict panel: each chosen or dropped photo is one `image` part of a multipart
// POST /v1/predict (with the picked model, or the server's default); the answer's predictions
// come back in the same order and fill one card per photo (label and per-class bars, most probable
// first, for any number of classes: past the first five the rest are summed up). With "why?"
// ticked it asks for Grad-CAM explanations too (?explain=gradcam&overlay=png) and shows each
// photo as the server's overlay (the photo with the heatmap blended), captioned and with a legend.

import { api } from './api.js';
import { $, dropZone, h, modelLabel, pct, showError } from './dom.js';
import { state } from './state.js';

const MAX_BARS = 5; // per photo; more classes than that are summed up in one line

async function predict(files) {
  files = files.filter((f) => f.type.startsWith('image/') || /\.(jpe?g|png|gif|bmp|webp)$/i.test(f.name));
  if (!files.length) return;
  const shown = state.predict;
  shown.lastFiles = files;
  const errEl = $('#predict-error');
  errEl.hidden = true;
  for (const u of shown.thumbUrls) URL.revokeObjectURL(u);
  shown.thumbUrls = files.map((f) => URL.createObjectURL(f));
  const cards = files.map((f, i) => {
    const card = h('li', { class: 'pred pending', 'data-testid': 'prediction' },
      h('img', { src: shown.thumbUrls[i], alt: f.name }),
      h('div', { class: 'pred-body' },
        h('p', { class: 'pred-label', 'data-testid': 'prediction-label' }, '…'),
        h('p', { class: 'fname', title: f.name }, f.name)));
    return card;
  });
  $('#predictions').replaceChildren(...cards);
  const seq = ++shown.seq; // a later request (another model, "why?" toggled) makes this one stale
  const model = $('#predict-model').value;
  const explain = $('#predict-explain').checked;
  const query = new URLSearchParams();
  if (model) query.set('model', model);
  if (explain) {
    query.set('explain', 'gradcam');
    query.set('overlay', 'png');
  }
  $('#predict-status').textContent = `Classifying ${files.length} photo${files.length > 1 ? 's' : ''}…`;
  const form = new FormData();
  for (const f of files) form.append('image', f, f.name);
  try {
    const qs = query.toString();
    const res = await api(`/v1/predict${qs ? `?${qs}` : ''}`, { method: 'POST', body: form });
    if (seq !== shown.seq) return;
    (res.predictions ?? []).forEach((p, i) => cards[i] && fillPrediction(cards[i], p, explain));
    const used = state.models.find((m) => m.id === res.model);
    $('#predict-status').textContent = `Classified by model ${used ? modelLabel(used) : res.model}.`;
  } catch (e) {
    if (seq !== shown.seq) return;
    showError('#predict-error', e.message);
    $('#predict-status').textContent = '';
    for (const c of cards) {
      c.classList.remove('pending');
      c.querySelector('.pred-label').textContent = 'not classified';
    }
  }
}

function fillPrediction(card, p, explain) {
  card.classList.remove('pending');
  card.querySelector('.pred-label').textContent = p.label;
  card.dataset.label = p.label;
  // Every class's probability (2 to 100 classes), most probable first; past the first few, the
  // rest are summed up in one line so that a card stays short.
  const scores = Object.entries(p.scores ?? { [p.label]: p.probability }).sort((a, b) => b[1] - a[1] || (b[0] === p.label) - (a[0] === p.label));
  const shown = scores.length > MAX_BARS + 1 ? scores.slice(0, MAX_BARS) : scores;
  const rest = scores.slice(shown.length);
  const bars = h('div', { class: 'bars' }, shown.map(([cls, v]) => {
    const top = cls === p.label;
    return h('div', { class: `bar-row${top ? ' top' : ''}` },
      h('span', { class: 'bar-name' }, `${top ? '✓ ' : ''}${cls}`),
      h('span', { class: 'bar-pct', 'data-testid': top ? 'prediction-probability' : null }, pct(v)),
      h('span', { class: 'bar', role: 'img', 'aria-label': `${cls} ${pct(v)}` },
        h('span', { class: 'bar-fill', style: `width: ${Math.max(0, Math.min(1, v)) * 100}%` })));
  }), rest.length ? h('p', { class: 'bar-rest', title: rest.map(([cls, v]) => `${cls} ${pct(v)}`).join(', ') },
    `+ ${rest.length} more classes, ${pct(rest.reduce((a, [, v]) => a + v, 0))} together`) : null);
  card.querySelector('.pred-body').insertBefore(bars, card.querySelector('.fname'));
  if (explain) showExplanation(card, p.explanation);
}

/** The Grad-CAM overlay in place of the photo's thumbnail, with what it explains and a legend;
 * an answer without one says so (the server was asked for it). */
function showExplanation(card, ex) {
  const photo = card.querySelector('img');
  if (!ex?.overlay_png_base64) {
    card.querySelector('.pred-body').append(h('p', { class: 'cam-missing', 'data-testid': 'explanation-missing' }, 'no explanation in the answer'));
    return;
  }
  const what = `where the model looked for “${ex.class}”`;
  const fig = h('figure', { class: 'cam', 'data-testid': 'explanation', 'data-class': ex.class, 'data-layer': ex.layer },
    h('img', { src: `data:image/png;base64,${ex.overlay_png_base64}`, alt: `${photo.alt}: ${what} (heatmap over the photo)`, 'data-testid': 'explanation-overlay' }),
    h('figcaption', {},
      h('span', { 'data-testid': 'explanation-caption', title: `${ex.method} at ${ex.layer}` }, what),
      h('span', { class: 'cam-legend', 'data-testid': 'explanation-legend' },
        'low ', h('span', { class: 'cam-scale', 'aria-hidden': 'true' }), ' high')));
  photo.replaceWith(fig);
}

export function setUpPredict() {
  const input = $('#predict-files');
  input.addEventListener('change', () => {
    predict([...input.files]);
    input.value = ''; // so choosing the same photo again still fires "change"
  });
  dropZone($('#drop-zone'), predict);
  const again = () => state.predict.lastFiles.length && predict(state.predict.lastFiles);
  $('#predict-model').addEventListener('change', again);
  $('#predict-explain').addEventListener('change', again);
}
