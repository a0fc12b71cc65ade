// The job form: loading the server's job defaults (GET /v1/jobs/defaults, once, at start-up;
// nothing can be submitted before), building the recipe's fields from them (recipes.js), the
// pickers filled from the API (datasets, features jobs, models, splits), its errors, reading
// and submitting POST /v1/jobs, and "Evaluate…" prefilling it. The dataset list itself is read
// by datasets.js (state.datasets); the form fills its picker from it.
// Emits: job-created and select-job (a job was submitted).
// Handles: jobs-changed and models-changed (refill the pickers), datasets-changed (refill the
// dataset picker), evaluate-model (prefill).

import { api } from './api.js';
import { emit, on } from './bus.js';
import { $, h, fillSelect, shortId, modelLabel } from './dom.js';
import { state } from './state.js';
import {
  RECIPES, fieldId, inRange, rangeOf, rangeWords, recipeFields, serverDefaults,
} from './recipes.js';

const currentRecipe = () => $('#recipe').value;

/** Keep the values typed for the form's recipe: they survive switching to another recipe and back. */
function saveFormValues() {
  const recipe = $('#recipe').dataset.built;
  if (!recipe) return;
  const values = {};
  for (const el of $('#recipe-fields').querySelectorAll('[data-field]')) {
    values[el.dataset.field] = el.type === 'checkbox' ? el.checked : el.value;
  }
  state.formMemory[recipe] = values;
}

function fieldInput(name, f, value, helpId) {
  const id = fieldId(name);
  const described = f.help ? helpId : null;
  if (f.type === 'select') {
    const input = h('select', { id, name, 'data-field': name, 'data-testid': id, required: true, 'aria-describedby': described });
    if (value) input.dataset.wanted = value; // applied once the options arrive from the API
    input.addEventListener('change', () => delete input.dataset.wanted); // the user's choice wins
    return input;
  }
  if (f.type === 'bool') {
    return h('input', { id, name, 'data-field': name, 'data-testid': id, type: 'checkbox', checked: value === true, 'aria-describedby': described });
  }
  const r = rangeOf(name);
  return h('input', {
    id, name, 'data-field': name, 'data-testid': id,
    type: f.type === 'text' ? 'text' : 'number',
    inputmode: f.type === 'int' ? 'numeric' : f.type === 'float' ? 'decimal' : null,
    step: f.type === 'int' ? '1' : f.type === 'float' ? 'any' : null,
    min: r.minimum ?? r.exclusive_minimum, max: r.maximum ?? r.exclusive_maximum,
    list: f.list, placeholder: f.placeholder, required: !f.optional, 'aria-describedby': described,
    // Small rates read better as Chollet writes them (2e-5); number inputs accept that form.
    value: typeof value === 'number' && value > 0 && value < 1e-3 ? value.toExponential() : String(value),
  });
}

/** (Re)build the recipe's fields: the values typed before, or the server's defaults. */
export function buildRecipeFields(useDefaults = false) {
  saveFormValues();
  const recipe = currentRecipe();
  const box = $('#recipe-fields');
  $('#recipe-help').textContent = RECIPES[recipe].help;
  if (!state.defaults) {
    // Nothing to show (or submit) before the server's defaults are in; loadDefaults builds then.
    delete $('#recipe').dataset.built;
    box.replaceChildren(h('p', { class: 'help' }, 'Loading the job defaults from the server…'));
    return;
  }
  const memory = useDefaults ? {} : state.formMemory[recipe] ?? {};
  box.replaceChildren(...recipeFields(recipe).map(({ name, f, value }) => {
    const helpId = `${fieldId(name)}-help`;
    return h('div', { class: 'field' },
      h('label', { for: fieldId(name) }, f.label),
      fieldInput(name, f, name in memory ? memory[name] : value, helpId),
      f.help ? h('p', { id: helpId, class: 'help' }, f.help) : null);
  }));
  $('#recipe').dataset.built = recipe;
  clearFormError();
  refreshFormPickers();
}

/** Fill the API-backed pickers of the form (features, models, splits) from the current state. */
export function refreshFormPickers() {
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
  fillSelect(document.getElementById('split'), splits, { preferred: serverDefaults('evaluate').split });
}

export function describeDataset() {
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
  const recipe = currentRecipe();
  const spec = RECIPES[recipe];
  const body = { kind: spec.kind, dataset: $('#dataset').value, ...(spec.fixed ?? {}) };
  if (!body.dataset) return { error: 'Choose a dataset.', field: 'dataset' };
  for (const { name, f } of recipeFields(recipe)) {
    const el = document.getElementById(fieldId(name));
    if (f.type === 'bool') {
      body[name] = el.checked;
      continue;
    }
    const raw = el.value.trim();
    if (raw === '') {
      if (f.optional) continue;
      return { error: `${f.label}: a value is needed.`, field: name };
    }
    if (f.type === 'int' || f.type === 'float') {
      const v = Number(raw);
      const r = rangeOf(name);
      if (!(f.type === 'int' ? Number.isInteger(v) : Number.isFinite(v)) || !inRange(v, r)) {
        return { error: `${f.label}: ${rangeWords(f, r)} is needed.`, field: name };
      }
      body[name] = v;
    } else {
      body[name] = raw;
    }
  }
  return { body };
}

export async function submitJob(ev) {
  ev.preventDefault();
  clearFormError();
  if (!state.defaults) return showFormError('The job defaults have not loaded from the server yet.');
  const { body, error, field } = readJobBody();
  if (error) return showFormError(error, field);
  const button = $('#start-job');
  button.disabled = true; // no double submissions while the request is in flight
  try {
    const job = await api('/v1/jobs', { method: 'POST', json: body });
    emit('job-created', { job }); // listed at once, before the next poll
    emit('select-job', { id: job.id });
  } catch (e) {
    showFormError(e.message, e.field);
  } finally {
    button.disabled = false;
  }
}

/** GET /v1/jobs/defaults, once: the form can be filled in and submitted only after it. */
export async function loadDefaults() {
  if (state.defaults) return;
  try {
    const answer = await api('/v1/jobs/defaults');
    if (!answer || typeof answer.defaults !== 'object') throw new Error('the server sent no job defaults');
    state.defaults = { defaults: answer.defaults, limits: answer.limits ?? {} };
  } catch (e) {
    showFormError(`Job defaults: ${e.message}`);
    setTimeout(loadDefaults, 5000);
    return;
  }
  buildRecipeFields();
  $('#start-job').disabled = false;
  $('#reset-defaults').disabled = false;
}

/** The dataset picker, from state.datasets: keeps the user's choice while it still exists. */
function fillDatasetPicker() {
  const names = state.datasets.map((d) => ({ value: d.name, label: d.name }));
  fillSelect($('#dataset'), names, { preferred: 'cats_and_dogs_small' });
  describeDataset();
  refreshFormPickers();
}

/** "Evaluate…" on a model: switch the form to recipe 5 with that model and its dataset. */
export function prefillEvaluate(m) {
  $('#recipe').value = 'evaluate';
  buildRecipeFields();
  if (state.datasets.some((d) => d.name === m.dataset)) $('#dataset').value = m.dataset;
  describeDataset();
  const sel = document.getElementById('model');
  if (sel) sel.dataset.wanted = m.id;
  else state.formMemory.evaluate = { ...state.formMemory.evaluate, model: m.id }; // the form is built later
  refreshFormPickers();
  $('#jobs-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
  $('#start-job').focus({ preventScroll: true });
}

on('jobs-changed', () => refreshFormPickers());
on('models-changed', () => refreshFormPickers());
on('datasets-changed', () => fillDatasetPicker());
on('evaluate-model', ({ model }) => prefillEvaluate(model));
