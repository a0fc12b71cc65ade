//! The predictor: a `std::thread` that owns inference (the pretrained base and the trained
//! models it has loaded) and batches concurrent requests dynamically: it takes the first
//! request, gathers whatever else arrives within `max_wait` (up to `max_batch` images), and
//! runs one forward pass per model. Training runs on another thread, so predictions stay
//! available while a job trains, and a model once loaded is never touched by training.
//!
//! The async side holds a [`PredictorHandle`] and sends [`Command`]s, each carrying the
//! request's tracing span and a oneshot for the answer, over a bounded channel (a full
//! queue is [`PredictError::Busy`], not memory). [`Predictor`] owns the thread: shutting
//! it down (or dropping it) stops the loop and joins it. A panic fails the batch, not the
//! thread.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::domain::ModelRecord;
use crate::model::input::images_to_tensor;
use crate::model::saved::load_record;
use crate::model::{Classifier, ConvBase, ModelConfig};
use crate::tensor_io::tensor_to_vec;

/// How many loaded models to keep in memory.
const CACHE_SIZE: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PredictError {
    #[error("too many predictions queued; try again shortly")]
    Busy,
    #[error("the predictor has stopped")]
    Stopped,
    #[error("model {id} cannot be loaded: {message}")]
    Load { id: Uuid, message: String },
    /// The forward pass failed; the cause is in the server log.
    #[error("the prediction failed")]
    Failed,
}

/// One request: images of one model, answered with every class's probability per image,
/// in order.
pub struct PredictCommand {
    pub model: ModelRecord,
    /// Decoded, resized HWC RGB images at the model's input size.
    pub images: Vec<Vec<u8>>,
    /// The request's span: the predictor logs each request's part in it.
    pub span: tracing::Span,
    pub reply: oneshot::Sender<Result<Vec<Vec<f32>>, PredictError>>,
}

/// What travels on the channel.
pub enum Command<T = PredictCommand> {
    Predict(T),
    Stop,
}

pub struct PredictorConfig {
    pub base: ConvBase,
    pub data_dir: PathBuf,
    pub max_batch: usize,
    pub max_wait: Duration,
    /// Requests waiting for the thread before [`PredictError::Busy`].
    pub queue: usize,
}

/// The async side's handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct PredictorHandle {
    sender: SyncSender<Command>,
}

impl PredictorHandle {
    /// Every class's probability (in the model's class order), one row per image, in order.
    pub async fn predict(
        &self,
        model: ModelRecord,
        images: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<f32>>, PredictError> {
        let (reply, answer) = oneshot::channel();
        let command = PredictCommand {
            model,
            images,
            span: tracing::Span::current(),
            reply,
        };
        self.sender
            .try_send(Command::Predict(command))
            .map_err(|e| match e {
                TrySendError::Full(_) => PredictError::Busy,
                TrySendError::Disconnected(_) => PredictError::Stopped,
            })?;
        answer.await.map_err(|_| PredictError::Stopped)?
    }
}

/// Owns the predictor thread; shutting it down or dropping it stops and joins it.
pub struct Predictor {
    handle: PredictorHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Predictor {
    pub fn spawn(config: PredictorConfig) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(config.queue.max(1));
        let thread = std::thread::Builder::new()
            .name("vggserve-predict".into())
            .spawn(move || Inference::new(config).run(receiver))?;
        Ok(Self {
            handle: PredictorHandle { sender },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> PredictorHandle {
        self.handle.clone()
    }

    /// Answer what is queued, then stop and wait for the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.handle.sender.send(Command::Stop);
            if thread.join().is_err() {
                tracing::error!("the predictor thread panicked");
            }
        }
    }
}

impl Drop for Predictor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Take `first` and whatever else arrives within `max_wait`, until the requests hold
/// `max_batch` items (`size` of each). Returns the batch and whether `Stop` was seen.
pub fn gather<T>(
    receiver: &Receiver<Command<T>>,
    first: T,
    size: impl Fn(&T) -> usize,
    max_batch: usize,
    max_wait: Duration,
) -> (Vec<T>, bool) {
    let deadline = Instant::now() + max_wait;
    let mut items = size(&first);
    let mut batch = vec![first];
    while items < max_batch {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(Command::Predict(next)) => {
                items += size(&next);
                batch.push(next);
            }
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return (batch, true),
            Err(RecvTimeoutError::Timeout) => break,
        }
    }
    (batch, false)
}

/// Split a batch by `key`, keeping arrival order within and across groups.
pub fn group_by<T, K: PartialEq>(batch: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut groups: Vec<(K, Vec<T>)> = Vec::new();
    for item in batch {
        let k = key(&item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, group)) => group.push(item),
            None => groups.push((k, vec![item])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// The thread's side: the base and the models it has loaded.
struct Inference {
    config: PredictorConfig,
    /// Most recently used last; keyed by id and artifact hash.
    cache: VecDeque<(Uuid, String, Classifier)>,
}

impl Inference {
    fn new(config: PredictorConfig) -> Self {
        Self {
            config,
            cache: VecDeque::new(),
        }
    }

    fn run(mut self, receiver: Receiver<Command>) {
        while let Ok(Command::Predict(first)) = receiver.recv() {
            let size = |c: &PredictCommand| c.images.len();
            let (batch, stop) = gather(
                &receiver,
                first,
                size,
                self.config.max_batch,
                self.config.max_wait,
            );
            for requests in group_by(batch, |c| c.model.id) {
                self.serve(requests);
            }
            if stop {
                break;
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
                self.config.base.preprocessing,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_until_the_batch_is_full_or_the_wait_is_over() {
        let (sender, receiver) = mpsc::sync_channel::<Command<usize>>(16);
        for size in [3, 4, 5, 6] {
            sender.send(Command::Predict(size)).unwrap();
        }
        // 2 + 3 + 4 = 9 ≥ 8: the fourth request waits for the next batch.
        let (batch, stop) = gather(&receiver, 2, |&n| n, 8, Duration::from_secs(5));
        assert_eq!((batch, stop), (vec![2, 3, 4], false));
        // The queue is down to 5 and 6; with room for 100 the wait runs out after them.
        let started = Instant::now();
        let (batch, stop) = gather(&receiver, 1, |&n| n, 100, Duration::from_millis(50));
        assert_eq!((batch, stop), (vec![1, 5, 6], false));
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Stop ends the gathering and is reported.
        sender.send(Command::Stop).unwrap();
        let (batch, stop) = gather(&receiver, 7, |&n| n, 100, Duration::from_secs(5));
        assert_eq!((batch, stop), (vec![7], true));
    }

    #[test]
    fn groups_keep_arrival_order() {
        let batch = vec![("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let groups = group_by(batch, |&(model, _)| model);
        assert_eq!(
            groups,
            vec![
                vec![("a", 1), ("a", 3)],
                vec![("b", 2), ("b", 5)],
                vec![("c", 4)]
            ]
        );
    }
}
