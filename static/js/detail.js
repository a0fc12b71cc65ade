// The selected job: selecting one (and the #job= address), its live event stream (SSE), the
// progress bar with rate and ETA, and the detail view (facts, among them how training went: its
// best epoch, which epoch became the model, whether it stopped early; error, Cancel button).
// Emits: job-selected (state.selected changed), run-updated (the job read in full, or an epoch
// from the stream), cancel-job (its Cancel button), show-evaluation (its "Evaluation" button, shown
// when the job has one), refresh-run, refresh-jobs and refresh-models (the stream saw the job end,
// or failed).
// Handles: select-job, run-updated and jobs-changed (re-render the view), run-finished (end the
// stream of a job a poll saw finish), cancel-failed (show the error).

import { api, withToken } from './api.js';
import { emit, on } from './bus.js';
import { $, h, EVALUATION_DETAIL, fmtDuration, fmtObject, isTerminal, jobEvaluation, jobLabel, num, pct, shortId, statusText } from './dom.js';
import { state, mergeJob, runFor } from './state.js';
import { trainingSummary } from './training.js';

export function closeStream() {
  if (!state.stream) return;
  state.stream.es.close();
  clearTimeout(state.stream.retry);
  state.stream = null;
}

export async function selectJob(id) {
  if (state.selected !== id) {
    closeStream();
    resetProgress();
    flashDetailError('');
    setLive('—');
  }
  state.selected = id;
  history.replaceState(null, '', `#job=${encodeURIComponent(id)}`);
  runFor(id);
  renderDetail();
  emit('job-selected', { id }); // the job list marks it, the charts are rebuilt for it
  try {
    mergeJob(await api(`/v1/jobs/${encodeURIComponent(id)}`));
  } catch (e) {
    if (state.selected === id) flashDetailError(e.message);
    return;
  }
  if (state.selected !== id) return; // the user picked another job meanwhile
  const run = state.runs.get(id);
  emit('run-updated', { id }); // this view and the charts
  if (run.job.progress && run.job.status === 'running') showProgress(run.job.progress);
  if (isTerminal(run.job.status)) setLive('finished');
  else if (!state.stream) openStream(id);
}

function openStream(id) {
  const es = new EventSource(withToken(`/v1/jobs/${encodeURIComponent(id)}/events`));
  state.stream = { id, es, retry: null };
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
    emit('run-updated', { id }); // the charts and this view
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
      emit('refresh-run', { id }); // final result, model id, timestamps
      emit('refresh-jobs');
      emit('refresh-models');
    }
    renderDetail();
  });
  es.addEventListener('error', () => {
    const { stream } = state;
    if (!stream || stream.es !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (the server answered with an error status): try again ourselves.
      // Replayed history is harmless because epochs are keyed by number. Reading the job through
      // api() first lets a 401 ask for a token, which the next connection then carries.
      setLive('disconnected, retrying in 3 s');
      es.close();
      emit('refresh-run', { id });
      stream.retry = setTimeout(() => {
        if (state.stream && state.stream.es === es) {
          state.stream = null;
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

export function resetProgress() {
  state.eta.base = state.eta.last = null;
  $('#progress-box').hidden = true;
}

function showProgress(p) {
  if (!p || !p.total) return;
  const { eta } = state;
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
function detailView() {
  if (state.detail) return state.detail;
  const detail = {
    label: h('span'),
    status: h('span', { 'data-testid': 'detail-status' }),
    cancel: h('button', {
      type: 'button', class: 'secondary small', 'data-testid': 'detail-cancel',
      onclick: () => state.selected && emit('cancel-job', { id: state.selected }),
    }, 'Cancel job'),
    evaluation: h('button', {
      type: 'button', class: 'secondary small', 'data-testid': 'show-evaluation', hidden: true,
      onclick: () => state.selected && emit('show-evaluation', { id: state.selected }),
    }, 'Evaluation ↓'),
    live: h('span', { id: 'live-state', 'data-testid': 'live-state' }, '—'),
    facts: h('dl', { class: 'facts' }),
    error: h('p', { class: 'error', role: 'alert', 'data-testid': 'job-error', hidden: true }),
    notice: h('p', { id: 'detail-error', class: 'error', role: 'alert', hidden: true }),
  };
  $('#job-detail').replaceChildren(
    h('div', { class: 'detail-head' }, h('h3', {}, detail.label, ' ', detail.status),
      h('span', { class: 'detail-actions' }, detail.evaluation, detail.cancel)),
    h('p', { class: 'live help' }, 'Live updates: ', detail.live),
    detail.facts, detail.error, detail.notice);
  state.detail = detail;
  return detail;
}

export function flashDetailError(message) {
  const { notice } = detailView();
  notice.textContent = `✗ ${message}`;
  notice.hidden = !message;
}

export function setLive(text) {
  detailView().live.textContent = text;
}

// What the result's one line leaves out: the evaluation's tables (the evaluation view shows
// those) and `training` (at the top and inside `final`: the "Training" line says it in words).
const SHOWN_ELSEWHERE = [...EVALUATION_DETAIL, 'training'];

/** A result without the parts shown elsewhere, at any depth. */
function withoutDetail(value) {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value)
    .filter(([k]) => !SHOWN_ELSEWHERE.includes(k))
    .map(([k, v]) => [k, withoutDetail(v)]));
}

/** The result in one line of words, or null. */
const resultLine = (result) => (result && typeof result === 'object' ? fmtObject(withoutDetail(result)) || null : null);

export function renderDetail() {
  const id = state.selected;
  if (!id) return;
  const view = detailView();
  const run = state.runs.get(id);
  const job = run?.job ?? { id };
  const eps = [...(run?.epochs.values() ?? [])].sort((a, b) => a.epoch - b.epoch);
  const last = eps[eps.length - 1];
  const best = eps.filter((e) => typeof e.val_acc === 'number').reduce((b, e) => (!b || e.val_acc > b.val_acc ? e : b), null);
  const training = trainingSummary(run);

  const facts = [
    ['Job', job.id],
    ['Dataset', job.dataset],
    ['Chain', job.pipeline ? `step “${job.step ?? '?'}” of chain ${shortId(job.pipeline)}` : null],
    ['Depends on', job.depends_on?.length ? job.depends_on.map(shortId).join(', ') : null],
    ['Created', job.created_at ? new Date(job.created_at).toLocaleString() : null],
    ['Ran for', job.started_at ? fmtDuration(((job.finished_at ? Date.parse(job.finished_at) : Date.now()) - Date.parse(job.started_at)) / 1000) : null],
    ['Parameters', job.params ? Object.entries(job.params).filter(([k, v]) => k !== 'kind' && k !== 'dataset' && v != null).map(([k, v]) => `${k}=${v}`).join(', ') : null],
    ['Epochs', eps.length ? `${eps.length}${job.params?.epochs ? ` of ${job.params.epochs}` : ''}` : null],
    ['Last epoch', last ? `acc ${num(last.acc, 3)} · val acc ${num(last.val_acc, 3)} · loss ${num(last.loss, 3)} · val loss ${num(last.val_loss, 3)}${typeof last.seconds === 'number' ? ` · ${last.seconds.toFixed(1)} s` : ''}` : null],
    ['Highest val acc', best ? `${pct(best.val_acc)} at epoch ${best.epoch}` : null],
    // Tests read this one: data-stopped-early says what the text says.
    ['Training', training?.text, { 'data-testid': 'detail-training', 'data-stopped-early': training && String(training.stoppedEarly) }],
    ['Result', resultLine(job.result)],
    ['Model saved', job.model_id ?? null],
  ].filter(([, v]) => v != null && v !== '');

  view.label.textContent = jobLabel(job);
  view.status.textContent = statusText(job.status ?? '…');
  view.status.className = `status status-${job.status}`;
  view.cancel.hidden = !job.status || isTerminal(job.status);
  view.cancel.setAttribute('aria-label', `Cancel job ${job.id}`);
  view.evaluation.hidden = !jobEvaluation(job);
  view.facts.replaceChildren(...facts.flatMap(([k, v, props]) => [h('dt', {}, k), h('dd', props ?? {}, String(v))]));
  view.error.textContent = job.error ? `✗ ${job.error}` : '';
  view.error.hidden = !job.error;
}

on('select-job', ({ id }) => selectJob(id));
on('run-updated', ({ id }) => id === state.selected && renderDetail());
on('jobs-changed', () => renderDetail());
on('run-finished', ({ id }) => {
  if (state.stream?.id !== id) return;
  closeStream();
  setLive('finished');
  resetProgress();
});
on('cancel-failed', ({ message }) => flashDetailError(message));
