// The job form: loading the server's job defaults (GET /v1/jobs/defaults, once, at start-up;
// nothing can be submitted before), building the recipe's fields from them (recipes.js), the
// pickers filled from the API (datasets, features jobs, models, splits), its errors, reading
// and submitting one step (POST /v1/jobs) or a whole recipe as a chain (POST /v1/pipelines, a
// section of fields per step, sent as that step's overrides), and "Evaluate…" prefilling it.
// The dataset list itself is read by datasets.js (state.datasets); the form fills its picker.
// Emits: job-created and select-job (a job was submitted), pipeline-created (a whole recipe was).
// Handles: jobs-changed and models-changed (refill the pickers), datasets-changed (refill the
// dataset picker), evaluate-model (prefill).

import { api } from './api.js';
import { emit, on } from './bus.js';
import { $, h, fillSelect, shortId, modelLabel } from './dom.js';
import { state } from './state.js';
import {
  CHAINS, RECIPES, choiceHelp, formSections, inRange, inputId, isChain, rangeOf, rangeWords, serverDefaults,
} from './recipes.js';

// The recipe picker's choice: a single recipe (a key of RECIPES) or a whole one (of CHAINS).
const currentChoice = () => $('#recipe').value;

// What a field's value is remembered under: its name, or "step.name" in a whole recipe.
const memoryKey = (step, name) => (step ? `${step}.${name}` : name);

/** Keep the values typed for the form's recipe: they survive switching to another recipe and back. */
function saveFormValues() {
  const choice = $('#recipe').dataset.built;
  if (!choice) return;
  const values = {};
  for (const el of $('#recipe-fields').querySelectorAll('[data-field]')) {
    values[memoryKey(el.dataset.step, el.dataset.field)] = el.type === 'checkbox' ? el.checked : el.value;
  }
  state.formMemory[choice] = values;
}

function fieldInput(step, name, f, value, helpId) {
  const id = inputId(step, name);
  const described = f.help ? helpId : null;
  const common = { id, name, 'data-field': name, 'data-step': step, 'data-testid': id, 'aria-describedby': described };
  if (f.type === 'select' && f.choices) {
    // Fixed choices, shown at once; a value the server starts with that is not among them still
    // shows (by its own name), so the server's default is never replaced unseen.
    const choices = f.choices.some((c) => c.value === value) || value === '' ? f.choices : [...f.choices, { value, label: String(value) }];
    const input = h('select', { ...common, required: true }, choices.map((c) => h('option', { value: c.value }, c.label)));
    input.value = value;
    return input;
  }
  if (f.type === 'select') {
    const input = h('select', { ...common, required: true });
    if (value) input.dataset.wanted = value; // applied once the options arrive from the API
    input.addEventListener('change', () => delete input.dataset.wanted); // the user's choice wins
    return input;
  }
  if (f.type === 'bool') {
    return h('input', { ...common, type: 'checkbox', checked: value === true });
  }
  const r = rangeOf(name);
  return h('input', {
    ...common,
    type: f.type === 'text' ? 'text' : 'number',
    inputmode: f.type === 'int' ? 'numeric' : f.type === 'float' ? 'decimal' : null,
    step: f.type === 'int' ? '1' : f.type === 'float' ? 'any' : null,
    min: r.minimum ?? r.exclusive_minimum, max: r.maximum ?? r.exclusive_maximum,
    list: f.list, placeholder: f.placeholder, required: !f.optional,
    // Small rates read better as Chollet writes them (2e-5); number inputs accept that form.
    value: typeof value === 'number' && value > 0 && value < 1e-3 ? value.toExponential() : String(value),
  });
}

/** One field with its label and help; `step` names its step in a whole recipe. */
function fieldBox(step, { name, f, value }, memory) {
  const id = inputId(step, name);
  const helpId = `${id}-help`;
  const key = memoryKey(step, name);
  return h('div', { class: 'field' },
    h('label', { for: id }, f.label),
    fieldInput(step, name, f, key in memory ? memory[key] : value, helpId),
    f.help ? h('p', { id: helpId, class: 'help' }, f.help) : null);
}

/** (Re)build the recipe's fields: the values typed before, or the server's defaults. A whole
 * recipe shows a fieldset per step that has fields, and says which steps take the defaults. */
export function buildRecipeFields(useDefaults = false) {
  saveFormValues();
  const choice = currentChoice();
  const box = $('#recipe-fields');
  $('#recipe-help').textContent = choiceHelp(choice);
  $('#start-job').textContent = isChain(choice) ? 'Start whole recipe' : 'Start job';
  if (!state.defaults) {
    // Nothing to show (or submit) before the server's defaults are in; loadDefaults builds then.
    delete $('#recipe').dataset.built;
    box.replaceChildren(h('p', { class: 'help' }, 'Loading the job defaults from the server…'));
    return;
  }
  const memory = useDefaults ? {} : state.formMemory[choice] ?? {};
  const sections = formSections(choice).map(({ step, legend, fields }) => (legend
    ? h('fieldset', { class: 'step-fields', 'data-testid': 'step-fields', 'data-step-fields': step },
      h('legend', {}, legend), fields.map((field) => fieldBox(step, field, memory)))
    : fields.map((field) => fieldBox(step, field, memory))));
  const withDefaults = (CHAINS[choice]?.steps ?? []).filter((s) => !s.as).map((s) => `“${s.step}”`);
  const who = withDefaults.length > 1 ? `Steps ${withDefaults.join(' and ')} take` : `Step ${withDefaults[0]} takes`;
  const note = withDefaults.length
    ? h('p', { class: 'help' }, `${who} the server's defaults; the recipe links each step to the one before.`)
    : null;
  box.replaceChildren(...sections.flat(), ...(note ? [note] : []));
  $('#recipe').dataset.built = choice;
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

/** The input an error's field names: "epochs" (or "params.epochs"), or in a whole recipe
 * "steps.train.epochs" (also "overrides.…"); a step's "dataset" is the form's one picker. */
function inputOf(field) {
  const parts = String(field).split('.');
  const name = parts.pop();
  const step = ['steps', 'overrides'].includes(parts[0]) ? parts[1] : null;
  const form = $('#job-form');
  return (step && form.querySelector(`[data-step="${CSS.escape(step)}"][data-field="${CSS.escape(name)}"]`))
    || form.querySelector(`[data-field="${CSS.escape(name)}"]:not([data-step])`);
}

/** Show an error as the API worded it; when it names a field, mark that field too. */
function showFormError(message, field = null) {
  const el = $('#form-error');
  el.textContent = message;
  el.hidden = false;
  const input = field && inputOf(field);
  if (!input) return;
  input.setAttribute('aria-invalid', 'true');
  input.closest('.field, .row')?.append(h('p', { class: 'field-error', 'data-testid': 'field-error' }, `⚠ ${message}`));
  input.focus();
}

/** One field's value as the API takes it: { value }, { skip } (empty and optional) or { error }. */
function readField(el, name, f) {
  if (f.type === 'bool') return { value: el.checked };
  const raw = el.value.trim();
  if (raw === '') return f.optional ? { skip: true } : { error: `${f.label}: a value is needed.` };
  if (f.type !== 'int' && f.type !== 'float') return { value: raw };
  const v = Number(raw);
  const r = rangeOf(name);
  if (!(f.type === 'int' ? Number.isInteger(v) : Number.isFinite(v)) || !inRange(v, r)) {
    return { error: `${f.label}: ${rangeWords(f, r)} is needed.` };
  }
  return { value: v };
}

/** Read the form into its request: a job for POST /v1/jobs, or a whole recipe with each step's
 * fields as its overrides for POST /v1/pipelines; or the first field that does not parse. */
function readRequest(choice) {
  const dataset = $('#dataset').value;
  if (!dataset) return { error: 'Choose a dataset.', field: 'dataset' };
  const chain = CHAINS[choice];
  const spec = RECIPES[choice];
  const body = chain
    ? { recipe: chain.recipe, dataset, overrides: {} }
    : { kind: spec.kind, dataset, ...(spec.fixed ?? {}) };
  for (const { step, fields } of formSections(choice)) {
    const params = step ? (body.overrides[step] = {}) : body;
    for (const { name, f } of fields) {
      const read = readField(document.getElementById(inputId(step, name)), name, f);
      if (read.error) {
        return step
          ? { error: `Step “${step}”: ${read.error}`, field: `steps.${step}.${name}` }
          : { error: read.error, field: name };
      }
      if (!read.skip) params[name] = read.value;
    }
  }
  return { path: chain ? '/v1/pipelines' : '/v1/jobs', body };
}

export async function submitJob(ev) {
  ev.preventDefault();
  clearFormError();
  if (!state.defaults) return showFormError('The job defaults have not loaded from the server yet.');
  const choice = currentChoice();
  const { path, body, error, field } = readRequest(choice);
  if (error) return showFormError(error, field);
  const button = $('#start-job');
  button.disabled = true; // no double submissions while the request is in flight
  try {
    const answer = await api(path, { method: 'POST', json: body });
    if (isChain(choice)) {
      emit('pipeline-created', { pipeline: answer }); // listed at once as one chain row
    } else {
      emit('job-created', { job: answer }); // listed at once, before the next poll
      emit('select-job', { id: answer.id });
    }
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
