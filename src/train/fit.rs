//! What every recipe shares: how it reports, how it stops, the Keras-equivalent optimiser,
//! the loss (binary cross-entropy for one sigmoid unit, categorical for N softmax units)
//! and the running loss/accuracy of an epoch.

use burn::nn::loss::{
    BinaryCrossEntropyLoss, BinaryCrossEntropyLossConfig, CrossEntropyLoss, CrossEntropyLossConfig,
};
use burn::optim::RmsPropConfig;
use burn::prelude::*;

use crate::domain::EpochMetrics;
use crate::tensor_io::tensor_to_vec;

/// How a recipe tells the world what it is doing, and learns that it should stop.
pub trait Reporter {
    /// Work done so far in this phase (`unit`: "images", "batches", "steps").
    fn progress(&mut self, done: u64, total: u64, unit: &str);
    /// A finished epoch; recorded durably before this returns.
    fn epoch(&mut self, metrics: &EpochMetrics) -> anyhow::Result<()>;
    /// Whether the user asked to cancel: checked at least once per batch.
    fn cancelled(&self) -> bool;
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// With what the run says about its epochs so far (`training` of the job's result),
    /// when it was cancelled while training.
    #[error("cancelled")]
    Cancelled(Option<serde_json::Value>),
    /// Bad input found before training started (the user's to fix).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<burn::store::SafetensorsStoreError> for TrainError {
    fn from(e: burn::store::SafetensorsStoreError) -> Self {
        Self::Other(anyhow::anyhow!("{e}"))
    }
}

pub fn check_cancel(reporter: &dyn Reporter) -> Result<(), TrainError> {
    if reporter.cancelled() {
        Err(TrainError::Cancelled(None))
    } else {
        Ok(())
    }
}

/// Keras's RMSprop: rho 0.9, epsilon 1e-7, no momentum (burn's defaults differ).
pub fn keras_rmsprop() -> RmsPropConfig {
    RmsPropConfig::new()
        .with_alpha(0.9)
        .with_epsilon(1e-7)
        .with_momentum(0.0)
}

/// The loss of a head with `units` outputs, on logits (numerically stable): binary
/// cross-entropy for one sigmoid unit (the seed's), categorical for N softmax units.
pub enum Loss {
    Binary(BinaryCrossEntropyLoss),
    Categorical(CrossEntropyLoss),
}

impl Loss {
    pub fn for_units(units: usize, device: &Device) -> Self {
        if units == 1 {
            Self::Binary(
                BinaryCrossEntropyLossConfig::new()
                    .with_logits(true)
                    .init(device),
            )
        } else {
            Self::Categorical(CrossEntropyLossConfig::new().init(device))
        }
    }

    /// Mean loss of [N, units] logits against class indices.
    pub fn forward(&self, logits: Tensor<2>, labels: &[usize], device: &Device) -> Tensor<1> {
        let data: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        match self {
            // Labels as [N, 1] (0 or 1), like the logits.
            Self::Binary(loss) => loss.forward(
                logits,
                Tensor::<2, Int>::from_data(TensorData::new(data, [labels.len(), 1]), device),
            ),
            // Labels as [N] class indices.
            Self::Categorical(loss) => loss.forward(
                logits,
                Tensor::<1, Int>::from_data(TensorData::new(data, [labels.len()]), device),
            ),
        }
    }
}

/// The class a row of logits picks: the sign of one sigmoid unit, else the largest.
pub fn predicted_class(row: &[f32]) -> usize {
    match row {
        [z] => usize::from(*z > 0.0),
        _ => {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &z)| {
                    if z > best.1 {
                        (i, z)
                    } else {
                        best
                    }
                })
                .0
        }
    }
}

/// The loss of one row of logits against its label, as the training loss computes it.
pub fn sample_loss(row: &[f32], label: usize) -> f64 {
    match row {
        // BCE with logits: max(z,0) − z·y + ln(1 + e^−|z|)
        [z] => {
            let (z, y) = (f64::from(*z), label as f64);
            z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
        }
        // Categorical: logsumexp(z) − z_y
        _ => {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z)) as f64;
            let sum: f64 = row.iter().map(|&z| (f64::from(z) - max).exp()).sum();
            max + sum.ln() - f64::from(row[label])
        }
    }
}

/// Running sums of loss and accuracy over an epoch, weighted by batch size.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    /// Logits per sample (the head's units).
    units: usize,
    loss_sum: f64,
    correct: f64,
    count: f64,
}

impl Meter {
    pub fn new(units: usize) -> Self {
        Self {
            units: units.max(1),
            loss_sum: 0.0,
            correct: 0.0,
            count: 0.0,
        }
    }

    /// Add a batch of logits [N, units] (row-major) against their labels.
    pub fn add_logits(&mut self, logits: &[f32], labels: &[usize]) {
        for (row, &y) in logits.chunks_exact(self.units).zip(labels) {
            self.loss_sum += sample_loss(row, y);
            self.correct += f64::from(u8::from(predicted_class(row) == y));
            self.count += 1.0;
        }
    }

    /// Add a batch whose mean loss was computed by the training graph.
    pub fn add_batch(&mut self, mean_loss: f64, logits: &[f32], labels: &[usize]) {
        let n = labels.len() as f64;
        self.loss_sum += mean_loss * n;
        self.correct += logits
            .chunks_exact(self.units)
            .zip(labels)
            .filter(|(row, &y)| predicted_class(row) == y)
            .count() as f64;
        self.count += n;
    }

    pub fn loss(&self) -> f64 {
        self.loss_sum / self.count.max(1.0)
    }

    pub fn acc(&self) -> f64 {
        self.correct / self.count.max(1.0)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"loss": self.loss(), "acc": self.acc(), "count": self.count as u64})
    }
}

/// Logits of a plain (non-autodiff) forward, to the host.
pub fn logits_to_vec(logits: Tensor<2>) -> anyhow::Result<Vec<f32>> {
    tensor_to_vec(logits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_categorical_rows_pick_and_score_as_their_losses_do() {
        assert_eq!(predicted_class(&[0.3]), 1);
        assert_eq!(predicted_class(&[-0.3]), 0);
        assert_eq!(predicted_class(&[0.1, 2.0, -1.0]), 1);
        // BCE of logit 0 is ln 2 whatever the label; CE of equal logits is ln N.
        assert!((sample_loss(&[0.0], 1) - 2f64.ln()).abs() < 1e-12);
        assert!((sample_loss(&[1.0, 1.0, 1.0, 1.0], 3) - 4f64.ln()).abs() < 1e-12);
        let mut meter = Meter::new(3);
        meter.add_logits(&[5.0, 0.0, 0.0, 0.0, 5.0, 0.0], &[0, 2]);
        assert_eq!(meter.acc(), 0.5);
        assert!(meter.loss() > 0.0);
    }
}
