// The dashboard's entry module (index.html loads it): wires the page's controls to the views,
// starts the loads and the polling, and exposes window.vggserve for tests and the console.
// Plain ES modules, no framework, no build step; the only dependency is uPlot (window.uPlot,
// vendored in vendor/uplot/ and loaded by index.html before this module).
// Layers: the leaves (api, bus, chains, dom, recipes, state, training) at the bottom; the views (jobs, curves,
// detail, evaluation, form, models, predict, datasets) import only leaves and react to each other through
// bus.js; this module alone imports every view (tests/dashboard/imports.mjs checks it). Importing
// a view subscribes its bus handlers, so the import order below (form, jobs, curves, detail,
// evaluation, models, predict, datasets) is the order in which the handlers of one event run.
// Emits and handles no events itself.

import { signIn } from './api.js';
import { $, h } from './dom.js';
import { state } from './state.js';
import { buildRecipeFields, describeDataset, loadDefaults, refreshFormPickers, submitJob } from './form.js';
import { VGG16_CONV_LAYERS } from './recipes.js';
import { pollJobs } from './jobs.js';
import { followChartWidth, rebuildCharts, smooth, updateCharts } from './curves.js';
import { selectJob } from './detail.js';
import './evaluation.js'; // only its bus handlers: it follows the selected job by itself
import { loadModels } from './models.js';
import { setUpPredict } from './predict.js';
import { loadDatasets, setUpDatasets } from './datasets.js';

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
    signIn().then((ok) => ok && (pollJobs(), loadModels(), state.datasets.length || loadDatasets(), loadDefaults()));
  });
  const slider = $('#smoothing');
  slider.addEventListener('input', () => {
    state.smoothing = Number(slider.value);
    $('#smoothing-value').textContent = state.smoothing.toFixed(2);
    updateCharts();
  });
  state.smoothing = Number(slider.value);
  $('#smoothing-value').textContent = state.smoothing.toFixed(2);
  buildRecipeFields(); // a "loading" note until the server's job defaults are in
  setUpPredict();
  setUpDatasets();
  rebuildCharts();
  followChartWidth();
  // Browsers slow timers down in hidden tabs: refresh at once when the tab is shown again.
  document.addEventListener('visibilitychange', () => !document.hidden && pollJobs());

  loadDefaults(); // enables "Start job" and "Reset to defaults" once the form is built
  loadDatasets();
  loadModels();
  pollJobs();
  setInterval(loadModels, 15000); // models also change through other clients
  setInterval(loadDatasets, 30000); // and datasets too (or by hand, in the datasets folder)
  const m = /^#job=(.+)$/.exec(location.hash);
  if (m) selectJob(decodeURIComponent(m[1]));
}

// For tests and the console: the live charts (uPlot instances: chart.data[1] is the selected
// job's raw training series, chart.data[2] its smoothed one), the state and the smoother.
window.vggserve = { charts: state.charts, state, smooth, selectJob };

init();
