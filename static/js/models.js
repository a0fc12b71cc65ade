// The models panel: the list of trained models (GET /v1/models), making one the default,
// deleting one (two clicks), "Evaluate…" (fills the form), and the predict panel's model picker.
// Emits: models-changed (the list differs from the last one shown), evaluate-model ("Evaluate…").
// Handles: refresh-models (re-read the list).

import { api } from './api.js';
import { emit, on } from './bus.js';
import { $, deleteButton, h, fillSelect, fmtAge, modelLabel, pct, RECIPE_NAMES, shortId, showError } from './dom.js';
import { state } from './state.js';

export async function loadModels() {
  try {
    state.models = await api('/v1/models');
    $('#models-error').hidden = true;
  } catch (e) {
    showError('#models-error', e.message);
    return;
  }
  const signature = JSON.stringify(state.models);
  if (signature === state.modelsSignature) return;
  state.modelsSignature = signature;
  renderModels();
  emit('models-changed'); // the form's model pickers
  fillSelect($('#predict-model'), state.models.map((m) => ({ value: m.id, label: modelLabel(m) })), { placeholder: 'Server default' });
}

function renderModels() {
  const body = $('#model-list');
  body.replaceChildren(...state.models.map((m) => {
    const del = deleteButton({ 'data-testid': 'model-delete', 'aria-label': `Delete model ${m.id}` }, async () => {
      try {
        await api(`/v1/models/${encodeURIComponent(m.id)}`, { method: 'DELETE' });
      } catch (e) {
        showError('#models-error', e.message);
      }
      loadModels();
    });
    return h('tr', { 'data-testid': 'model-row', 'data-model-id': m.id, class: m.is_default ? 'is-default' : null },
      h('th', { scope: 'row', 'data-label': 'Model' },
        h('span', { class: 'mid', title: m.id }, shortId(m.id)),
        m.is_default ? h('span', { class: 'badge', 'data-testid': 'model-is-default' }, '★ default') : null,
        h('span', { class: 'sub' }, m.created_at ? fmtAge(m.created_at) : '')),
      h('td', { 'data-label': 'Recipe' }, RECIPE_NAMES[m.recipe] ?? m.recipe ?? '—'),
      h('td', { 'data-label': 'Dataset' }, m.dataset ?? '—'),
      h('td', { 'data-label': 'Val acc', 'data-testid': 'model-val-acc' }, pct(m.metrics?.val_acc)),
      h('td', { 'data-label': 'Test acc', 'data-testid': 'model-test-acc' }, m.test_metrics ? pct(m.test_metrics.acc) : h('span', { class: 'sub' }, 'not evaluated')),
      h('td', { 'data-label': 'Actions', class: 'actions-cell' },
        h('button', {
          type: 'button', class: 'secondary small', 'data-testid': 'model-default', disabled: m.is_default,
          onclick: async () => {
            try {
              await api(`/v1/models/${encodeURIComponent(m.id)}/default`, { method: 'PUT' });
            } catch (e) {
              showError('#models-error', e.message);
            }
            loadModels();
          },
        }, m.is_default ? 'Default' : 'Make default'),
        h('button', {
          type: 'button', class: 'secondary small', 'data-testid': 'model-evaluate',
          onclick: () => emit('evaluate-model', { model: m }),
        }, 'Evaluate…'),
        del));
  }));
  $('#models-empty').hidden = state.models.length > 0;
}

on('refresh-models', () => loadModels());
