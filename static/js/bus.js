// The views' message bus: the only way one view (jobs, detail, curves, evaluation, models, form,
// predict, datasets) makes another react, so that views import only the leaves (api, bus, chains,
// dom, recipes, state, training) and never each other (tests/dashboard/imports.mjs checks this).
// on(name, fn) subscribes, emit(name, detail) calls every handler of that name at once, in the
// order they subscribed, with `detail` as the argument, just as a direct call would: nothing is
// deferred, and an exception in a handler reaches the emitter. Every name must be one of EVENTS
// below.

// The events, who emits them and who handles them. "Requests" ask the owner of some data to do
// something; the others announce that shared state (state.js) changed.
export const EVENTS = {
  // requests
  'select-job': 'show job {id} in the detail view (jobs: a row clicked; form: a job submitted) → detail',
  'cancel-job': 'cancel job {id} (detail: its Cancel button) → jobs',
  'refresh-jobs': 're-read the job list now (detail: its stream saw the job end) → jobs',
  'refresh-run': 're-read job {id} in full (detail: stream ended or failed) → jobs',
  'refresh-models': 're-read the model list (detail, jobs: a job finished) → models',
  'job-created': 'job {job} was just created: list it (form) → jobs',
  'pipeline-created': 'pipeline {pipeline} was just created: list its jobs as one chain (form) → jobs',
  'evaluate-model': 'prefill the form to evaluate model {model} (models: "Evaluate…") → form',
  'show-evaluation': 'scroll to the evaluation of job {id} and focus it (detail: its "Evaluation" button) → evaluation',
  // announcements
  'job-selected': 'state.selected is now {id} (detail) → jobs (row highlight), curves (rebuild), evaluation',
  'jobs-changed': 'a poll re-read state.jobs and merged it into the runs (jobs) → form (pickers), detail, evaluation',
  'models-changed': 'state.models changed (models) → form (pickers)',
  'datasets-changed': 'state.datasets was re-read and differs: start-up, an upload, a delete, a poll (datasets) → form (dataset picker)',
  'run-updated': 'the run of job {id} has new data (jobs, detail) → curves, detail, evaluation',
  'run-finished': 'a poll saw job {id} of an open run finish (jobs) → detail (ends its stream)',
  'cancel-failed': 'cancelling job {id} failed with {message} (jobs) → detail (shows it)',
  'compare-changed': 'state.compare changed (jobs: a compare box) → curves (rebuild)',
};

const handlers = new Map(Object.keys(EVENTS).map((name) => [name, []]));

function handlersOf(name) {
  const list = handlers.get(name);
  if (!list) throw new Error(`bus: unknown event "${name}" (see EVENTS in bus.js)`);
  return list;
}

/** Call fn(detail) on every emit(name, detail). */
export function on(name, fn) {
  handlersOf(name).push(fn);
}

/** Call the handlers of `name` now, in subscription order. */
export function emit(name, detail = {}) {
  for (const fn of [...handlersOf(name)]) fn(detail);
}
