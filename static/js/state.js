// The dashboard's one shared state object: what the API last said (jobs, pipelines, models,
// datasets, job defaults), what the user chose (selected job, compared jobs, open chains,
// smoothing), the learning curves of every job seen (runs), and the views' own bookkeeping
// (sign-in, timers, the event stream, chart and row caches). Every module reads and writes it
// here; no module keeps mutable variables (bus.js's lists of event handlers are only filled in
// once, as the modules load).

export const state = {
  jobs: [], // last GET /v1/jobs, newest first
  models: [], // last GET /v1/models
  datasets: [], // GET /v1/datasets (read by datasets.js)
  defaults: null, // GET /v1/jobs/defaults: { defaults: {kind: {param: value}}, limits: {param: range} }
  selected: null, // id of the job whose curves and live stream are shown
  compare: new Set(), // ids of jobs overlaid on the charts
  runs: new Map(), // job id -> { job, epochs: Map(epoch number -> epoch object) }
  smoothing: 0.8,

  auth: { pending: null, declined: false }, // pending: Promise<boolean> while the sign-in dialog is open
  formMemory: {}, // recipe -> {field: value} typed there, kept while another recipe is shown
  jobRows: new Map(), // job id -> { li, parts } of the job list
  pipelines: new Map(), // pipeline id -> { id, recipe, created_at, jobIds }: what never changes of it
  chainRows: new Map(), // pipeline id -> { li, parts } of its chain row in the job list
  expandedChains: new Set(), // pipeline ids whose chain rows show their steps
  chainOpenedFor: null, // the selected job whose chain was opened for it (once per selection)
  pollTimer: null, // the next GET /v1/jobs
  stream: null, // { id, es, retry } for the selected job while it is not finished
  eta: { base: null, last: null }, // progress samples the ETA is measured from
  detail: null, // the elements of the selected job's detail view, built once
  charts: { acc: null, loss: null }, // the uPlot instances
  chartKey: null, // which runs the current charts were built for
  resizeFrame: 0, // pending requestAnimationFrame of a chart resize
  modelsSignature: '', // the model list as last rendered
  predict: { lastFiles: [], thumbUrls: [], seq: 0 }, // the photos last classified, their object URLs, the latest request's number
  evaluation: { key: '', thumbUrls: [] }, // the evaluation shown (job id + its data), its photos' object URLs
  // The datasets panel: the list as last rendered, the dataset whose report is shown (and a
  // counter that tells a stale report answer from the latest), its photos' object URLs, the
  // archive chosen for upload, the name the panel proposed for it, and the upload in flight.
  datasetsView: { signature: '', report: null, reportSeq: 0, thumbUrls: [], file: null, autoName: '', upload: null },
};

export function runFor(id) {
  let run = state.runs.get(id);
  if (!run) {
    run = { job: state.jobs.find((j) => j.id === id) ?? { id }, epochs: new Map() };
    state.runs.set(id, run);
  }
  return run;
}

/** Merge a full job (GET /v1/jobs/{id}) into its run. Epochs are keyed by number, so replays of
 * the same epoch (SSE history after a reconnect, or a later GET) never duplicate points. */
export function mergeJob(job) {
  const run = runFor(job.id);
  const { epochs, ...rest } = job;
  run.job = { ...run.job, ...rest };
  for (const e of epochs ?? []) run.epochs.set(e.epoch, e);
  return run;
}
