//! The predictor thread's side: the models it has loaded, the batched forward passes for
//! predictions, and explanations taken a chunk at a time between them.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, TryRecvError};

use uuid::Uuid;

use super::{
    gather, group_by, Command, ExplainCommand, PredictCommand, PredictError, PredictorConfig,
    EXPLAIN_CHUNK,
};
use crate::domain::ModelRecord;
use crate::model::gradcam::{grad_cam, Heatmap};
use crate::model::input::images_to_tensor;
use crate::model::saved::load_record;
use crate::model::{Classifier, ModelConfig};
use crate::tensor_io::tensor_to_vec;

/// How many loaded models to keep in memory.
const CACHE_SIZE: usize = 4;

/// An explanation under way: its request and the heatmaps made so far.
struct Pending {
    command: ExplainCommand,
    done: Vec<Heatmap>,
}

/// The thread's side: the base and the models it has loaded.
pub(super) struct Inference {
    config: PredictorConfig,
    /// Most recently used last; keyed by id and artifact hash.
    cache: VecDeque<(Uuid, String, Classifier)>,
    /// Explanations waiting for their turns, oldest first.
    pending: VecDeque<Pending>,
}

impl Inference {
    pub(super) fn new(config: PredictorConfig) -> Self {
        Self {
            config,
            cache: VecDeque::new(),
            pending: VecDeque::new(),
        }
    }

    pub(super) fn run(mut self, receiver: Receiver<Command>) {
        loop {
            // Predictions waiting go first; with none, the next explanation chunk runs (and
            // one runs after every batch of predictions).
            let command = if self.pending.is_empty() {
                match receiver.recv() {
                    Ok(command) => command,
                    Err(_) => break,
                }
            } else {
                match receiver.try_recv() {
                    Ok(command) => command,
                    Err(TryRecvError::Empty) => {
                        self.explain_chunk();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            };
            let first = match command {
                Command::Predict(first) => first,
                Command::Explain(command) => {
                    self.pending.push_back(Pending {
                        command,
                        done: Vec::new(),
                    });
                    continue;
                }
                Command::Stop => break,
            };
            let mut deferred = VecDeque::new();
            let size = |c: &PredictCommand| c.images.len();
            let (batch, stop) = gather(
                &receiver,
                first,
                size,
                self.config.max_batch,
                self.config.max_wait,
                &mut deferred,
            );
            self.pending
                .extend(deferred.into_iter().map(|command| Pending {
                    command,
                    done: Vec::new(),
                }));
            for requests in group_by(batch, |c| c.model.id) {
                self.serve(requests);
            }
            if stop {
                break;
            }
            // One chunk after every batch, so that steady predictions cannot starve them.
            self.explain_chunk();
        }
        // Answer what was accepted before stopping.
        while !self.pending.is_empty() {
            self.explain_chunk();
        }
    }

    /// Explain the next [`EXPLAIN_CHUNK`] images of the oldest explanation; answer it once
    /// all its images are done, or at its first failure.
    fn explain_chunk(&mut self) {
        // Requests whose client has gone (timed out, disconnected) are dropped unexplained.
        self.pending.retain(|p| !p.command.reply.is_closed());
        let Some(mut pending) = self.pending.pop_front() else {
            return;
        };
        let start = pending.done.len();
        let end = (start + EXPLAIN_CHUNK).min(pending.command.images.len());
        let record = pending.command.model.clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (model, config) = self.model(&record)?;
            let images = pending.command.images[start..end].to_vec();
            let x = images_to_tensor(
                &images,
                config.image_size as usize,
                config.preprocessing,
                &self.config.base.device,
            );
            grad_cam(&model, x, &pending.command.targets[start..end]).map_err(|error| {
                tracing::error!(parent: &pending.command.span, error = format!("{error:#}"), "explanation failed");
                PredictError::Failed
            })
        }))
        .unwrap_or_else(|_| {
            tracing::error!(parent: &pending.command.span, model = %record.id, "explanation panicked");
            Err(PredictError::Failed)
        });
        match outcome {
            Ok(maps) => {
                pending.done.extend(maps);
                if pending.done.len() < pending.command.images.len() {
                    self.pending.push_front(pending);
                } else {
                    tracing::debug!(parent: &pending.command.span, images = pending.done.len(), "explained");
                    let _ = pending.command.reply.send(Ok(pending.done));
                }
            }
            Err(error) => {
                let _ = pending.command.reply.send(Err(error));
            }
        }
    }

    /// One forward pass (per `max_batch` images) for requests on the same model.
    fn serve(&mut self, requests: Vec<PredictCommand>) {
        let record = requests[0].model.clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let model = self.model(&record)?;
            let images: Vec<&Vec<u8>> = requests.iter().flat_map(|r| &r.images).collect();
            self.forward(&model.0, &model.1, &images)
                .map_err(|error| {
                    tracing::error!(parent: &requests[0].span, error = format!("{error:#}"), "prediction failed");
                    PredictError::Failed
                })
        }))
        .unwrap_or_else(|_| {
            tracing::error!(parent: &requests[0].span, model = %record.id, "prediction panicked");
            Err(PredictError::Failed)
        });
        let total: usize = requests.iter().map(|r| r.images.len()).sum();
        let mut offset = 0;
        for request in requests {
            let n = request.images.len();
            tracing::debug!(parent: &request.span, images = n, batch = total, "predicted");
            let answer = outcome
                .as_ref()
                .map(|p| p[offset..offset + n].to_vec())
                .map_err(Clone::clone);
            let _ = request.reply.send(answer);
            offset += n;
        }
    }

    /// A loaded model (and its config), from the cache or its artifact.
    fn model(&mut self, record: &ModelRecord) -> Result<(Classifier, ModelConfig), PredictError> {
        let config: ModelConfig =
            serde_json::from_value(record.config.clone()).map_err(|e| PredictError::Load {
                id: record.id,
                message: format!("unreadable config: {e}"),
            })?;
        let hit = self
            .cache
            .iter()
            .position(|(id, sha, _)| *id == record.id && *sha == record.artifact_sha256);
        let model = match hit.and_then(|i| self.cache.remove(i)) {
            Some((_, _, model)) => model,
            None => {
                let (model, _) = load_record(&self.config.data_dir, record, &self.config.base)
                    .map_err(|e| PredictError::Load {
                        id: record.id,
                        message: format!("{e:#}"),
                    })?;
                let mut model = model;
                // Nothing trains a loaded model: its base runs in the inference precision.
                model.base = model.base.with_precision(self.config.base.precision);
                if self.cache.len() == CACHE_SIZE {
                    self.cache.pop_front();
                }
                model
            }
        };
        self.cache
            .push_back((record.id, record.artifact_sha256.clone(), model.clone()));
        Ok((model, config))
    }

    fn forward(
        &self,
        model: &Classifier,
        config: &ModelConfig,
        images: &[&Vec<u8>],
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let classes = config.classes.len();
        let mut probabilities = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.config.max_batch.max(1)) {
            let chunk: Vec<Vec<u8>> = chunk.iter().map(|image| (*image).clone()).collect();
            // [B, 3, S, S] → [B, classes] probabilities
            let x = images_to_tensor(
                &chunk,
                config.image_size as usize,
                // The model's own: an imported model may have come from other weights.
                config.preprocessing,
                &self.config.base.device,
            );
            let rows = tensor_to_vec(model.predict(x))?;
            anyhow::ensure!(
                rows.len() == chunk.len() * classes,
                "the model gave {} probabilities for {} images of {classes} classes",
                rows.len(),
                chunk.len()
            );
            probabilities.extend(rows.chunks_exact(classes).map(<[f32]>::to_vec));
        }
        Ok(probabilities)
    }
}
