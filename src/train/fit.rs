//! What every recipe shares: how it reports, how it stops, the Keras-equivalent optimiser
//! and loss, and binary-classification metrics.

use burn::nn::loss::{BinaryCrossEntropyLoss, BinaryCrossEntropyLossConfig};
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
    #[error("cancelled")]
    Cancelled,
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
        Err(TrainError::Cancelled)
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

/// Binary cross-entropy on logits (the sigmoid is inside, numerically stable).
pub fn bce_with_logits(device: &Device) -> BinaryCrossEntropyLoss {
    BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(device)
}

/// Labels as the loss wants them: [N, 1] Int.
pub fn label_tensor(labels: &[usize], device: &Device) -> Tensor<2, Int> {
    let data: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::<2, Int>::from_data(TensorData::new(data, [labels.len(), 1]), device)
}

/// Running sums of loss and accuracy over an epoch, weighted by batch size.
#[derive(Debug, Default, Clone, Copy)]
pub struct Meter {
    loss_sum: f64,
    correct: f64,
    count: f64,
}

impl Meter {
    /// Add a batch of logits [N, 1] against labels (0/1), returning nothing.
    pub fn add_logits(&mut self, logits: &[f32], labels: &[usize]) {
        for (&z, &y) in logits.iter().zip(labels) {
            let (z, y) = (z as f64, y as f64);
            // BCE with logits: max(z,0) − z·y + ln(1 + e^−|z|)
            self.loss_sum += z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
            self.correct += f64::from(u8::from((z > 0.0) == (y > 0.5)));
            self.count += 1.0;
        }
    }

    /// Add a batch whose mean loss was computed by the training graph.
    pub fn add_batch(&mut self, mean_loss: f64, logits: &[f32], labels: &[usize]) {
        let n = labels.len() as f64;
        self.loss_sum += mean_loss * n;
        self.correct += logits
            .iter()
            .zip(labels)
            .filter(|(&z, &y)| (z > 0.0) == (y == 1))
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
