// The recipes and their fields: what the form sends for each of Chollet's recipes, how each
// field looks, and the server's side of it (GET /v1/jobs/defaults, kept in state.defaults):
// which fields a recipe shows, their starting values and their ranges. Also the whole recipes
// as chains (POST /v1/pipelines): their steps and which single recipe's fields each step shows.
// No value or range of the server's is repeated here.

import { state } from './state.js';

// How each field looks. Which fields a recipe shows, their starting values and their ranges
// come from the server; a parameter the server declares that is not listed here still shows,
// as a plain field of its value's type. A select with `choices` offers those fixed values (the
// API's names, in words); one without is a picker that form.js fills from the API.
const FIELDS = {
  features: { label: 'Extracted features', type: 'select', help: 'A succeeded “extract features” job on this dataset.' },
  from_model: { label: 'Start from model', type: 'select', help: 'Usually the model of recipe 3 (augmentation).' },
  model: { label: 'Model', type: 'select' },
  split: { label: 'Split', type: 'select' },
  image_size: { label: 'Image size (px)', type: 'int', help: 'Photos are resized to this square size.' },
  epochs: { label: 'Epochs', type: 'int' },
  steps_per_epoch: { label: 'Steps per epoch', type: 'int', help: 'Augmented batches per epoch.' },
  validation_steps: { label: 'Validation steps', type: 'int' },
  batch_size: { label: 'Batch size', type: 'int' },
  learning_rate: { label: 'Learning rate', type: 'float', help: 'RMSprop step size.' },
  unfreeze_from: { label: 'Unfreeze from layer', type: 'text', list: 'vgg-layers', help: 'This layer and every later one are trained.' },
  augment: { label: 'Augment photos', type: 'bool', help: 'Train on randomly augmented photos.' },
  // The best epoch (Keras' ModelCheckpoint/EarlyStopping `monitor`): the choices are the API's
  // names; which one a job starts with is the server's default.
  monitor: {
    label: 'Best epoch by',
    type: 'select',
    choices: [
      { value: 'val_loss', label: 'validation loss (lowest)' },
      { value: 'val_acc', label: 'validation accuracy (highest)' },
    ],
    help: 'The validation figure that picks the best epoch, and that early stopping watches.',
  },
  restore_best: { label: 'Keep the best epoch', type: 'bool', help: 'Save the best epoch’s weights as the model. Unticked keeps the last epoch’s, as vggserve did before (and Keras does by default).' },
  early_stopping_patience: { label: 'Stop after N epochs without improvement', type: 'int', help: '0: never (every epoch runs).' },
  allow_leaks: { label: 'Allow leaks', type: 'bool', help: 'Train even if the dataset report finds the same photo in two splits or a class without images.' },
  // A seed is an unsigned integer; the server declares no other range for it.
  seed: { label: 'Seed', type: 'int', range: { minimum: 0 }, optional: true, placeholder: 'server default', help: 'The same seed repeats a run exactly.' },
};

// The training recipes' fields about the best epoch, laid out right after their epochs.
const BEST_EPOCH_FIELDS = ['monitor', 'early_stopping_patience', 'restore_best'];

/** The words for one of a field's fixed choices ("validation loss (lowest)"), or the value itself. */
export const choiceLabel = (name, value) => FIELDS[name]?.choices?.find((c) => c.value === value)?.label ?? value;

// Chollet's recipes. `defaults` names the server's entry in GET /v1/jobs/defaults; `ref` is the
// required reference to an earlier result (no default: the user picks one); `order` only lays
// the fields out (a field the server does not declare is never shown). Fields are flat in the
// request body next to kind and dataset.
export const RECIPES = {
  extract_features: {
    kind: 'extract_features',
    defaults: 'extract_features',
    help: 'Runs every photo once through the frozen VGG16 convolutional base and stores the features.',
    order: ['image_size', 'batch_size'],
  },
  train_features: {
    kind: 'train',
    defaults: 'train_on_features', // no image_size: the server takes it from the features job
    ref: 'features',
    help: 'Trains a small dense classifier on stored features: fast, but no augmentation.',
    order: ['epochs', ...BEST_EPOCH_FIELDS, 'batch_size', 'learning_rate', 'seed'],
  },
  train_augment: {
    kind: 'train',
    fixed: { augment: true },
    defaults: 'train_augmented',
    help: 'Trains a classifier on top of the frozen base, with randomly augmented photos.',
    order: ['epochs', ...BEST_EPOCH_FIELDS, 'steps_per_epoch', 'validation_steps', 'batch_size', 'learning_rate', 'image_size', 'seed'],
  },
  fine_tune: {
    kind: 'fine_tune',
    defaults: 'fine_tune',
    ref: 'from_model',
    help: 'Unfreezes the top of the base and trains it together with a trained classifier.',
    order: ['epochs', ...BEST_EPOCH_FIELDS, 'steps_per_epoch', 'validation_steps', 'batch_size', 'learning_rate', 'unfreeze_from', 'augment', 'image_size', 'seed'],
  },
  evaluate: {
    kind: 'evaluate',
    defaults: 'evaluate',
    ref: 'model',
    help: 'Measures loss and accuracy of a model on one split (the test split for the final number).',
    order: ['split', 'batch_size'],
  },
};

// The whole recipes, queued as one chain by POST /v1/pipelines. `recipe` is the server's number;
// `steps` are the chain's steps in order, named as the server names them. A step with `as` shows
// the fields of that single recipe (less its reference, which the chain fills in, and the
// parameters in `recipeSets`, which the recipe itself chooses) and sends them as its overrides;
// a step without takes the server's defaults.
export const CHAINS = {
  whole_1: {
    recipe: 1,
    help: 'Queues extract features → train the classifier on them → evaluate it on the test split; each step starts when the one before succeeds.',
    steps: [
      { step: 'extract', label: 'Extract features', as: 'extract_features' },
      { step: 'train', label: 'Train classifier on features', as: 'train_features' },
      { step: 'evaluate', label: 'Evaluate on test' },
    ],
  },
  whole_2: {
    recipe: 2,
    help: 'Queues training with data augmentation → evaluating the model on the test split.',
    steps: [
      { step: 'train', label: 'Train with data augmentation', as: 'train_augment' },
      { step: 'evaluate', label: 'Evaluate on test' },
    ],
  },
  whole_3: {
    recipe: 3,
    help: 'Queues whole recipe 2, then fine-tunes its model from block5_conv1 and evaluates the fine-tuned model on the test split.',
    steps: [
      { step: 'train', label: 'Train with data augmentation', as: 'train_augment' },
      { step: 'evaluate', label: 'Evaluate on test' },
      { step: 'fine_tune', label: 'Fine-tune top of VGG16', as: 'fine_tune', recipeSets: ['unfreeze_from'] },
      { step: 'evaluate_fine_tuned', label: 'Evaluate fine-tuned model on test' },
    ],
  },
};

export const isChain = (choice) => Object.hasOwn(CHAINS, choice);
export const choiceHelp = (choice) => (CHAINS[choice] ?? RECIPES[choice]).help;

/** What the form shows for a choice of the recipe picker, as sections of fields: one untitled
 * section for a single recipe; for a whole recipe, one per step that has fields to set, titled
 * and named by its step. */
export function formSections(choice) {
  if (!isChain(choice)) return [{ step: null, legend: null, fields: recipeFields(choice) }];
  return CHAINS[choice].steps
    .filter((s) => s.as)
    .map((s) => ({
      step: s.step,
      legend: `Step “${s.step}”: ${s.label}`,
      fields: recipeFields(s.as).filter(({ name }) => name !== RECIPES[s.as].ref && !(s.recipeSets ?? []).includes(name)),
    }));
}

/** The id of a field's input: the parameter's name, prefixed by its step in a whole recipe. */
export const inputId = (step, name) => (step ? `${step.replaceAll('_', '-')}-${fieldId(name)}` : fieldId(name));

export const VGG16_CONV_LAYERS = [1, 2, 3, 4, 5].flatMap((b) =>
  (b <= 2 ? [1, 2] : [1, 2, 3]).map((c) => `block${b}_conv${c}`));

export const fieldId = (name) => name.replaceAll('_', '-');
export const serverDefaults = (recipe) => state.defaults?.defaults[RECIPES[recipe].defaults] ?? {};
// The server's range for a field ({minimum, maximum, exclusive_minimum, exclusive_maximum}).
export const rangeOf = (name) => ({ ...FIELDS[name]?.range, ...state.defaults?.limits[name] });

function fieldSpec(name, value) {
  if (FIELDS[name]) return FIELDS[name];
  const type = typeof value === 'boolean' ? 'bool'
    : typeof value === 'number' ? (Number.isInteger(value) ? 'int' : 'float') : 'text';
  return { label: name.replaceAll('_', ' '), type };
}

/** The fields a recipe shows: its reference field, then the keys of its server defaults. */
export function recipeFields(recipe) {
  const spec = RECIPES[recipe];
  const defaults = serverDefaults(recipe);
  const rank = (name) => (spec.order.includes(name) ? spec.order.indexOf(name) : Infinity);
  const names = Object.keys(defaults).sort((a, b) => rank(a) - rank(b));
  if (spec.ref) names.unshift(spec.ref);
  return names.map((name) => ({ name, f: fieldSpec(name, defaults[name]), value: defaults[name] ?? '' }));
}

export const inRange = (v, r) => !((r.minimum != null && v < r.minimum) || (r.maximum != null && v > r.maximum)
  || (r.exclusive_minimum != null && v <= r.exclusive_minimum) || (r.exclusive_maximum != null && v >= r.exclusive_maximum));

/** "a whole number from 1 to 1000", "a number > 0 and ≤ 1": what a field accepts, in words. */
export function rangeWords(f, r) {
  const what = f.type === 'int' ? 'a whole number' : 'a number';
  if (r.minimum != null && r.exclusive_minimum == null && r.exclusive_maximum == null) return `${what} from ${r.minimum} to ${r.maximum ?? '∞'}`;
  const bounds = [
    r.exclusive_minimum != null && `> ${r.exclusive_minimum}`, r.minimum != null && `≥ ${r.minimum}`,
    r.maximum != null && `≤ ${r.maximum}`, r.exclusive_maximum != null && `< ${r.exclusive_maximum}`,
  ].filter(Boolean);
  return [what, bounds.join(' and ')].filter(Boolean).join(' ');
}
