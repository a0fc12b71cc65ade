//! The best epoch, as Keras's `ModelCheckpoint(save_best_only=True)` and
//! `EarlyStopping(restore_best_weights=True)` keep it: which validation figure is watched
//! ([`Monitor`]), whether an epoch improved on the best so far (strictly, as Keras
//! compares), when to stop because none has for `patience` epochs, and what the job and
//! its model record say about it ([`Selection`]). The recipes keep the weights.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::fit::{Reporter, TrainError};
use crate::domain::EpochMetrics;

/// The validation figure that picks the best epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// The lowest validation loss.
    #[default]
    ValLoss,
    /// The highest validation accuracy.
    ValAcc,
}

impl Monitor {
    fn value(self, metrics: &EpochMetrics) -> Option<f64> {
        match self {
            Self::ValLoss => metrics.val_loss,
            Self::ValAcc => metrics.val_acc,
        }
    }

    fn improves(self, value: f64, on: f64) -> bool {
        match self {
            Self::ValLoss => value < on,
            Self::ValAcc => value > on,
        }
    }
}

/// The best epoch so far, kept in checkpoints so that a resumed job goes on watching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestSoFar {
    pub epoch: u32,
    pub value: f64,
    /// Epochs since, none of which improved on it.
    pub since: u32,
}

/// Watches the epochs of one training run.
#[derive(Debug, Clone)]
pub struct Watch {
    monitor: Monitor,
    patience: u32,
    best: Option<BestSoFar>,
}

impl Watch {
    /// `patience` 0: never stop early. `resumed`: what a checkpoint kept.
    pub fn new(monitor: Monitor, patience: u32, resumed: Option<BestSoFar>) -> Self {
        Self {
            monitor,
            patience,
            best: resumed,
        }
    }

    /// Note a finished epoch, and mark it with the best epoch so far (itself, when it
    /// improved): true when it did. An epoch without the figure never improves.
    pub fn observe(&mut self, metrics: &mut EpochMetrics) -> bool {
        let epoch = metrics.epoch as u32;
        let improved = match (self.monitor.value(metrics), &mut self.best) {
            (Some(value), Some(best)) if !self.monitor.improves(value, best.value) => {
                best.since += 1;
                false
            }
            (Some(value), _) => {
                self.best = Some(BestSoFar {
                    epoch,
                    value,
                    since: 0,
                });
                true
            }
            (None, Some(best)) => {
                best.since += 1;
                false
            }
            (None, None) => false,
        };
        metrics.best_epoch = self.best.as_ref().map(|b| i64::from(b.epoch));
        improved
    }

    /// Whether `patience` epochs in a row have not improved on the best.
    pub fn should_stop(&self) -> bool {
        self.patience > 0 && self.best.as_ref().is_some_and(|b| b.since >= self.patience)
    }

    pub fn best(&self) -> Option<&BestSoFar> {
        self.best.as_ref()
    }
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// Every epoch asked for ran.
    Completed,
    /// `early_stopping_patience` epochs went by without improvement.
    EarlyStopped,
    /// The user cancelled the job (nothing is registered).
    Cancelled,
}

/// Which epoch's weights a run registers, and why it stopped: the `training` object of the
/// job's result and of the model's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    pub monitor: Monitor,
    /// The best epoch by `monitor` (`null` when no epoch had the figure).
    pub best_epoch: Option<u32>,
    /// The epoch whose weights were registered: the best one with `restore_best`, else
    /// the last (`null` when the job was cancelled).
    pub registered_epoch: Option<u32>,
    pub epochs_run: u32,
    pub stopped: Stopped,
    pub restore_best: bool,
}

impl Selection {
    pub fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The weights a run may register: the best epoch's, kept as epochs improve (only when
/// they will be restored), and the last epoch's, which the loop holds.
pub struct Keeper<M> {
    watch: Watch,
    restore_best: bool,
    best: Option<(M, EpochMetrics)>,
    last: Option<EpochMetrics>,
}

impl<M> Keeper<M> {
    /// `best` and `last`: what a resumed run's checkpoint held (else `None`).
    pub fn new(
        watch: Watch,
        restore_best: bool,
        best: Option<(M, EpochMetrics)>,
        last: Option<EpochMetrics>,
    ) -> Self {
        Self {
            watch,
            restore_best,
            best,
            last,
        }
    }

    /// After an epoch: mark its metrics with the best epoch so far, and keep `weights()`
    /// when it is the best and the best is to be restored. True when it improved.
    pub fn epoch(&mut self, metrics: &mut EpochMetrics, weights: impl FnOnce() -> M) -> bool {
        let improved = self.watch.observe(metrics);
        if improved && self.restore_best {
            self.best = Some((weights(), metrics.clone()));
        }
        self.last = Some(metrics.clone());
        improved
    }

    pub fn should_stop(&self) -> bool {
        self.watch.should_stop()
    }

    /// `fit::check_cancel`, the error saying what the run had done when it was cancelled.
    pub fn check_cancel(&self, reporter: &dyn Reporter) -> Result<(), TrainError> {
        if !reporter.cancelled() {
            return Ok(());
        }
        let training = Selection {
            monitor: self.watch.monitor,
            best_epoch: self.watch.best().map(|b| b.epoch),
            registered_epoch: None,
            epochs_run: self.last.as_ref().map_or(0, |m| m.epoch as u32),
            stopped: Stopped::Cancelled,
            restore_best: self.restore_best,
        };
        Err(TrainError::Cancelled(Some(training.json())))
    }

    pub fn best_so_far(&self) -> Option<&BestSoFar> {
        self.watch.best()
    }

    /// The best weights kept, with their epoch's metrics.
    pub fn best_kept(&self) -> Option<&(M, EpochMetrics)> {
        self.best.as_ref()
    }

    /// The weights to register (the best kept, else `last`), their epoch's metrics, and
    /// what the run says about its epochs.
    pub fn finish(self, last: M, stopped: Stopped) -> (M, Option<EpochMetrics>, Selection) {
        let epochs_run = self.last.as_ref().map_or(0, |m| m.epoch as u32);
        let best_epoch = self.watch.best().map(|b| b.epoch);
        let (weights, metrics) = match self.best {
            Some((weights, metrics)) if self.restore_best => (weights, Some(metrics)),
            _ => (last, self.last),
        };
        let selection = Selection {
            monitor: self.watch.monitor,
            best_epoch,
            registered_epoch: metrics.as_ref().map(|m| m.epoch as u32),
            epochs_run,
            stopped,
            restore_best: self.restore_best,
        };
        (weights, metrics, selection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(n: i64, val_loss: f64, val_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: n,
            loss: 0.5,
            acc: 0.5,
            val_loss: Some(val_loss),
            val_acc: Some(val_acc),
            seconds: 1.0,
            best_epoch: None,
        }
    }

    #[test]
    fn the_best_is_strictly_better_and_patience_counts_the_epochs_since() {
        let mut watch = Watch::new(Monitor::ValLoss, 2, None);
        let run = [(0.9, 0.5), (0.7, 0.6), (0.7, 0.9), (0.8, 0.9), (0.6, 0.7)];
        let mut marks = Vec::new();
        let mut stopped_at = None;
        for (n, (loss, acc)) in run.iter().enumerate() {
            let mut metrics = epoch(n as i64 + 1, *loss, *acc);
            watch.observe(&mut metrics);
            marks.push(metrics.best_epoch);
            if watch.should_stop() {
                stopped_at = Some(n + 1);
                break;
            }
        }
        // An equal loss is no improvement (Keras compares strictly).
        assert_eq!(marks, [Some(1), Some(2), Some(2), Some(2)]);
        assert_eq!(stopped_at, Some(4));

        let mut by_acc = Watch::new(Monitor::ValAcc, 0, None);
        for (n, (loss, acc)) in run.iter().enumerate() {
            by_acc.observe(&mut epoch(n as i64 + 1, *loss, *acc));
            assert!(!by_acc.should_stop(), "patience 0 never stops");
        }
        assert_eq!(by_acc.best().map(|b| (b.epoch, b.since)), Some((3, 2)));

        // A resumed run goes on from what its checkpoint kept.
        let kept = BestSoFar {
            epoch: 3,
            value: 0.2,
            since: 1,
        };
        let mut resumed = Watch::new(Monitor::ValLoss, 2, Some(kept));
        assert!(!resumed.observe(&mut epoch(5, 0.3, 0.9)));
        assert!(resumed.should_stop());
    }
}
