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
//!
//! Explanations (Grad-CAM) share the thread but not the batches: they queue apart and run
//! [`EXPLAIN_CHUNK`] images at a time: one chunk whenever no prediction is waiting, and one
//! after every batch of predictions, so an explanation never holds a plain prediction up
//! for more than one chunk and steady predictions never starve explanations. An
//! explanation whose client has gone is dropped before its next chunk.

mod batching;
mod inference;

use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

pub use self::batching::{gather, group_by};
use self::inference::Inference;
use crate::domain::ModelRecord;
use crate::model::gradcam::Heatmap;
use crate::model::ConvBase;

/// Images explained per turn of the predictor thread: the longest a plain prediction
/// waits behind an explanation is one such chunk.
pub const EXPLAIN_CHUNK: usize = 2;

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

/// One request for Grad-CAM heatmaps: images of one model, each with the class to
/// explain (`None`: the most probable), answered with a [`Heatmap`] per image, in order.
pub struct ExplainCommand {
    pub model: ModelRecord,
    pub images: Vec<Vec<u8>>,
    pub targets: Vec<Option<usize>>,
    pub span: tracing::Span,
    pub reply: oneshot::Sender<Result<Vec<Heatmap>, PredictError>>,
}

/// What travels on the channel.
pub enum Command<T = PredictCommand, E = ExplainCommand> {
    Predict(T),
    Explain(E),
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
        self.send(Command::Predict(command))?;
        answer.await.map_err(|_| PredictError::Stopped)?
    }

    /// A Grad-CAM heatmap per image for the class in `targets` (`None`: the predicted one).
    pub async fn explain(
        &self,
        model: ModelRecord,
        images: Vec<Vec<u8>>,
        targets: Vec<Option<usize>>,
    ) -> Result<Vec<Heatmap>, PredictError> {
        let (reply, answer) = oneshot::channel();
        let command = ExplainCommand {
            model,
            images,
            targets,
            span: tracing::Span::current(),
            reply,
        };
        self.send(Command::Explain(command))?;
        answer.await.map_err(|_| PredictError::Stopped)?
    }

    fn send(&self, command: Command) -> Result<(), PredictError> {
        self.sender.try_send(command).map_err(|e| match e {
            TrySendError::Full(_) => PredictError::Busy,
            TrySendError::Disconnected(_) => PredictError::Stopped,
        })
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
