// The job list: polled every 2 s (GET /v1/jobs), rows kept by job id and updated in place so a
// click or a focused checkbox is never lost to a re-render; the jobs of one pipeline shown as one
// chain row that expands to their rows (chains.js; a new pipeline is read once from
// GET /v1/pipelines for its recipe and step order); keeping the runs on the charts current as
// jobs progress and finish; re-reading one job in full; cancelling a job; the "compare" boxes
// (state.compare).
// Emits: select-job (a row clicked), compare-changed (a compare box), jobs-changed (after each
// poll), run-finished (a poll saw an open run's job finish), run-updated (a job re-read in full),
// refresh-models (a job finished), cancel-failed.
// Handles: job-selected (re-render the list, open the selected job's chain), job-created and
// pipeline-created (list them at once), cancel-job, refresh-jobs, refresh-run.

import { api, setConn } from './api.js';
import { emit, on } from './bus.js';
import { $, h, fmtAge, isTerminal, jobLabel, shortId, statusText } from './dom.js';
import { state, mergeJob } from './state.js';
import { chainRow, listEntries, rememberPipeline, setExpanded, updateChainRow } from './chains.js';

const POLL_MS = 2000;

/** A compare box: overlay the job's run on the charts (read in full first), or take it off. */
function toggleCompare(id, checked) {
  if (checked) state.compare.add(id);
  else state.compare.delete(id);
  if (checked) refreshRun(id);
  emit('compare-changed');
}

function jobRow(job) {
  let row = state.jobRows.get(job.id);
  if (row) return row;
  const compare = h('input', {
    type: 'checkbox', 'data-testid': 'job-compare', 'aria-label': `Compare job ${job.id}`,
    onchange: (e) => toggleCompare(job.id, e.target.checked),
  });
  const parts = {
    compare,
    step: h('span', { class: 'step-name', 'data-testid': 'job-step', hidden: true }),
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
    onclick: () => emit('select-job', { id: job.id }),
  }, parts.step, parts.kind, ' ', parts.id);
  const li = h('li', { class: 'job', 'data-testid': 'job-row', 'data-job-id': job.id },
    h('label', { class: 'cmp' }, compare, h('span', { class: 'cmp-text' }, 'compare')),
    parts.select, parts.dataset, parts.status, parts.progress, parts.age,
    h('span', { class: 'cancel-cell' }, parts.cancel));
  row = { li, parts };
  state.jobRows.set(job.id, row);
  return row;
}

function progressText(p) {
  if (!p || !p.total) return '—';
  return `${p.done}/${p.total} ${p.unit ?? ''}`.trim();
}

/** Bring a job's row up to date; the row, made once, is returned. */
function updateJobRow(job) {
  const { li, parts } = jobRow(job);
  li.dataset.status = job.status;
  parts.step.textContent = job.step ?? '';
  parts.step.hidden = !job.step;
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
  return li;
}

/** Put `li` at position i of `list`, moving it only when it is out of place: moving a node
 * would take the focus away from it. */
function place(list, li, i) {
  if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
}

/** Take off the rows (job or chain rows, by id) of things no longer listed. */
function dropRows(rows, listed) {
  for (const [id, row] of rows) {
    if (!listed.has(id)) {
      row.li.remove();
      rows.delete(id);
    }
  }
}

export function renderJobs() {
  const list = $('#job-list');
  const entries = listEntries(state.jobs);
  dropRows(state.jobRows, new Set(state.jobs.map((j) => j.id)));
  dropRows(state.chainRows, new Set(entries.filter((e) => e.chain).map((e) => e.chain.id)));
  openChainOfSelected();
  entries.forEach(({ job, chain }, i) => {
    if (job) {
      place(list, updateJobRow(job), i);
      return;
    }
    place(list, updateChainRow(chain), i);
    const steps = chainRow(chain.id).parts.steps;
    chain.jobs.forEach((step, k) => place(steps, updateJobRow(step), k));
  });
  $('#jobs-empty').hidden = state.jobs.length > 0;
}

/** Read the pipelines of chains not seen before: their recipe and step order never change. */
async function readNewPipelines() {
  const unknown = new Set(state.jobs.map((j) => j.pipeline).filter((id) => id && !state.pipelines.has(id)));
  if (!unknown.size) return;
  try {
    for (const p of await api('/v1/pipelines')) rememberPipeline(p);
    for (const id of unknown) {
      if (!state.pipelines.has(id)) rememberPipeline(await api(`/v1/pipelines/${encodeURIComponent(id)}`));
    }
  } catch {
    // Shown without its recipe, in creation order, until a later poll reads it.
  }
}

/** Once per selection, open the chain the selected job is in, so that its row shows (the user
 * may close the chain again). */
function openChainOfSelected() {
  if (!state.selected || state.chainOpenedFor === state.selected) return;
  const job = state.jobs.find((j) => j.id === state.selected);
  if (!job) return; // not listed yet: tried again after the next poll
  state.chainOpenedFor = state.selected;
  if (job.pipeline) setExpanded(job.pipeline, true);
}

export async function pollJobs() {
  clearTimeout(state.pollTimer);
  try {
    const before = new Map(state.jobs.map((j) => [j.id, j.status]));
    state.jobs = await api('/v1/jobs');
    await readNewPipelines();
    setConn('ok', `connected · updated ${new Date().toLocaleTimeString()}`);
    renderJobs();
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
        const streaming = state.stream && state.stream.id === job.id;
        if (isTerminal(job.status)) {
          if (!knewFinished) {
            if (streaming) emit('run-finished', { id: job.id }); // ends the detail's event stream
            refreshRun(job.id);
          }
        } else if (!streaming) {
          refreshRun(job.id);
        }
      }
    }
    if (finished) emit('refresh-models');
    emit('jobs-changed'); // the form's pickers and the detail view follow
  } catch (e) {
    if (e.status !== 401) setConn('bad', `server unreachable or failing (${e.message}); retrying`);
  } finally {
    // Polls started out of turn (after a submit, say) must not leave two timer chains behind.
    clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(pollJobs, POLL_MS);
  }
}

/** Re-read one job in full (GET /v1/jobs/{id}, with all its epochs) into its run. */
export async function refreshRun(id) {
  try {
    mergeJob(await api(`/v1/jobs/${encodeURIComponent(id)}`));
    emit('run-updated', { id });
  } catch {
    // The next poll tries again; a vanished job simply keeps the points it had.
  }
}

export async function cancelJob(id) {
  try {
    const job = await api(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
    if (job && job.id) mergeJob(job);
  } catch (e) {
    emit('cancel-failed', { id, message: `Cancel ${shortId(id)}: ${e.message}` });
  }
  pollJobs();
}

on('job-selected', () => renderJobs());
on('job-created', ({ job }) => {
  state.jobs = [job, ...state.jobs.filter((j) => j.id !== job.id)];
  renderJobs();
});
on('pipeline-created', ({ pipeline }) => {
  rememberPipeline(pipeline);
  const ids = new Set(pipeline.jobs.map((j) => j.id));
  state.jobs = [...[...pipeline.jobs].reverse(), ...state.jobs.filter((j) => !ids.has(j.id))];
  renderJobs();
});
on('cancel-job', ({ id }) => cancelJob(id));
on('refresh-jobs', () => pollJobs());
on('refresh-run', ({ id }) => refreshRun(id));
