// What a training run says about its best epoch and how it ended, in the words the charts and
// the detail view show: the best epoch so far (every epoch the server sends, in the job's
// `epochs[]` and in each SSE `epoch` event, carries `best_epoch`, counting itself), and a
// finished job's `result.training` ({monitor, best_epoch, registered_epoch, epochs_run,
// stopped: "completed" | "early_stopped" | "cancelled", restore_best}; a cancelled job
// registered nothing: registered_epoch is null). Jobs of servers before these fields
// simply have no best epoch. Pure functions of a run (state.runs' { job, epochs }).

import { isTerminal } from './dom.js';
import { choiceLabel } from './recipes.js';

/** The newest epoch's best_epoch: the best epoch of the run as far as it has gone, or null. */
export function bestEpochSoFar(run) {
  let newest = null;
  for (const e of run?.epochs.values() ?? []) if (!newest || e.epoch > newest.epoch) newest = e;
  return Number.isInteger(newest?.best_epoch) ? newest.best_epoch : null;
}

/** A finished training job's `result.training`, or null (running, failed, or no such field). */
export function trainingOutcome(job) {
  const t = job?.result?.training;
  return t && typeof t === 'object' && Number.isInteger(t.best_epoch) ? t : null;
}

const stoppedEarly = (outcome) => outcome?.stopped === 'early_stopped';

/** What the charts mark for a run: { epoch, text } (text such as "best epoch 4 (registered)"),
 * or null when its epochs name no best epoch. The epoch is the newest epoch's best_epoch, so it
 * moves live as epochs arrive; the finished job's result adds which epoch became the model. */
export function bestEpochMark(run) {
  const epoch = bestEpochSoFar(run);
  if (epoch == null) return null;
  const outcome = trainingOutcome(run.job);
  let text = `best epoch ${epoch}`;
  if (outcome?.stopped === 'cancelled') text += ' · cancelled, nothing registered';
  else if (outcome?.restore_best && outcome.registered_epoch === epoch) text += ' (registered)';
  else if (outcome) text += ` · registered: epoch ${outcome.registered_epoch}, the last`;
  else if (!isTerminal(run.job?.status)) text += ' so far';
  return { epoch, text };
}

/** How training ended, for the detail view: { text, stoppedEarly } or null. During training:
 * the best epoch so far and what it is judged by; once finished: the best and the registered
 * epoch, and whether it stopped early. */
export function trainingSummary(run) {
  const outcome = trainingOutcome(run?.job);
  const monitor = outcome?.monitor ?? run?.job?.params?.monitor;
  const by = monitor ? ` by ${choiceLabel('monitor', monitor)}` : '';
  if (!outcome) {
    const epoch = bestEpochSoFar(run);
    return epoch == null ? null : { text: `best epoch ${epoch} so far${by}`, stoppedEarly: false };
  }
  if (outcome.stopped === 'cancelled') {
    const text = `best epoch ${outcome.best_epoch}${by} · cancelled after ${outcome.epochs_run} epochs, nothing registered`;
    return { text, stoppedEarly: false };
  }
  const registered = outcome.registered_epoch === outcome.best_epoch
    ? 'registered (its weights are the model)'
    : `epoch ${outcome.registered_epoch} registered (the last: keep the best epoch was off)`;
  const planned = run.job?.params?.epochs;
  const ending = stoppedEarly(outcome)
    ? `stopped early after ${outcome.epochs_run} epochs${planned ? ` (of ${planned} planned)` : ''}`
    : `ran all ${outcome.epochs_run} epochs`;
  return { text: `best epoch ${outcome.best_epoch}${by}, ${registered} · ${ending}`, stoppedEarly: stoppedEarly(outcome) };
}
