// The job list's chains: the jobs that one POST /v1/pipelines queued (the same `pipeline`),
// shown as one row that expands to its steps. Grouping the job list into single jobs and chains,
// what is known of each pipeline (state.pipelines: recipe, step order), a chain's status derived
// from its steps as the server derives it, where it stands in words, and its row, built once per
// pipeline and then updated in place (state.chainRows) with its disclosure button. jobs.js reads
// the pipelines, places the rows and fills each chain's step list with ordinary job rows.

import { h, fmtAge, isTerminal, shortId, statusText } from './dom.js';
import { state } from './state.js';

/** Keep what never changes of a pipeline (GET or POST /v1/pipelines): its recipe, its creation
 * time and the order of its steps. */
export function rememberPipeline(p) {
  if (!p || !p.id) return;
  state.pipelines.set(p.id, { id: p.id, recipe: p.recipe ?? null, created_at: p.created_at, jobIds: (p.jobs ?? []).map((j) => j.id) });
}

/** The list as shown: single jobs and chains, newest first, a chain where its newest job is;
 * a chain's steps in queue order (the pipeline's order once read, else by creation time). */
export function listEntries(jobs) {
  const entries = [];
  const chains = new Map();
  for (const job of jobs) {
    if (!job.pipeline) {
      entries.push({ job });
      continue;
    }
    let chain = chains.get(job.pipeline);
    if (!chain) {
      chain = { id: job.pipeline, jobs: [] };
      chains.set(job.pipeline, chain);
      entries.push({ chain });
    }
    chain.jobs.push(job);
  }
  for (const chain of chains.values()) {
    const order = state.pipelines.get(chain.id)?.jobIds ?? [];
    const rank = (job) => (order.includes(job.id) ? order.indexOf(job.id) : order.length);
    chain.jobs.sort((a, b) => rank(a) - rank(b) || String(a.created_at).localeCompare(String(b.created_at)));
  }
  return entries;
}

/** A chain's status from its steps', as the server words it: succeeded once every step has,
 * failed or cancelled once all ended and one did not succeed, else the furthest a step got. */
export function chainStatus(jobs) {
  const has = (status) => jobs.some((j) => j.status === status);
  if (jobs.every((j) => isTerminal(j.status))) {
    if (has('failed')) return 'failed';
    return has('cancelled') ? 'cancelled' : 'succeeded';
  }
  return ['running', 'queued'].find(has) ?? 'waiting';
}

/** Where a chain stands: the step it is at (or stopped at), that in short ("2/3: train") and
 * in words (for its title). */
export function chainStage(jobs) {
  const n = jobs.length;
  const done = jobs.filter((j) => j.status === 'succeeded').length;
  const stopped = jobs.find((j) => j.status === 'failed' || j.status === 'cancelled');
  const current = ['running', 'queued', 'waiting'].map((s) => jobs.find((j) => j.status === s)).find(Boolean);
  const at = stopped ?? current;
  if (!at) return { step: null, text: `${done}/${n} done`, words: `all ${n} steps succeeded` };
  const k = jobs.indexOf(at) + 1;
  const words = stopped
    ? `${done} of ${n} steps succeeded; step ${k}, “${at.step}”, ${at.status}`
    : `${done} of ${n} steps succeeded; at step ${k}, “${at.step}” (${at.status})`;
  return { step: at.step, text: `${k}/${n}: ${at.step}`, words };
}

/** Show or hide a chain's steps. */
export function setExpanded(id, expanded) {
  if (expanded) state.expandedChains.add(id);
  else state.expandedChains.delete(id);
  const row = state.chainRows.get(id);
  if (!row) return;
  row.parts.toggle.setAttribute('aria-expanded', String(expanded));
  row.parts.steps.hidden = !expanded;
}

/** The row of chain `id`, made once: a head with the disclosure button and the chain's facts,
 * and the list its steps' job rows go in. */
export function chainRow(id) {
  let row = state.chainRows.get(id);
  if (row) return row;
  const stepsId = `chain-steps-${id}`;
  const parts = {
    name: h('span', { class: 'chain-name', 'data-testid': 'chain-name' }),
    dataset: h('span', { class: 'ds', 'data-testid': 'chain-dataset' }),
    status: h('span', { class: 'status', 'data-testid': 'chain-status' }),
    stage: h('span', { class: 'prog', 'data-testid': 'chain-stage' }),
    age: h('time', { class: 'age' }),
    steps: h('ol', { id: stepsId, class: 'chain-steps', 'data-testid': 'chain-steps', hidden: true }),
  };
  parts.toggle = h('button', {
    type: 'button', class: 'chain-toggle', 'data-testid': 'chain-toggle', title: `Chain ${id}`,
    'aria-expanded': 'false', 'aria-controls': stepsId,
    onclick: () => setExpanded(id, !state.expandedChains.has(id)),
  }, parts.name, ' ', h('span', { class: 'jid' }, shortId(id)));
  const li = h('li', { class: 'chain', 'data-testid': 'chain-row', 'data-pipeline-id': id },
    h('div', { class: 'job chain-head' }, parts.toggle, parts.dataset, parts.status, parts.stage, parts.age, h('span', { class: 'cancel-cell' })),
    parts.steps);
  row = { li, parts };
  state.chainRows.set(id, row);
  setExpanded(id, state.expandedChains.has(id));
  return row;
}

/** Bring a chain's row up to date with its jobs (listEntries' `chain`). */
export function updateChainRow({ id, jobs }) {
  const { li, parts } = chainRow(id);
  const pipeline = state.pipelines.get(id);
  const status = chainStatus(jobs);
  const stage = chainStage(jobs);
  const created = pipeline?.created_at ?? jobs[0]?.created_at;
  li.dataset.status = status;
  li.dataset.currentStep = stage.step ?? '';
  parts.name.textContent = pipeline?.recipe ? `Whole recipe ${pipeline.recipe}` : 'Chain';
  parts.steps.setAttribute('aria-label', `Steps of ${parts.name.textContent} ${shortId(id)}`);
  parts.dataset.textContent = [...new Set(jobs.map((j) => j.dataset))].join(', ') || '—';
  parts.status.textContent = statusText(status);
  parts.status.className = `status status-${status}`;
  parts.stage.textContent = stage.text;
  parts.stage.title = stage.words;
  parts.age.textContent = fmtAge(created);
  parts.age.dateTime = created ?? '';
  li.classList.toggle('has-selected', jobs.some((j) => j.id === state.selected));
  return li;
}
