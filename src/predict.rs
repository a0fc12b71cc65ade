//! The predictor: a `std::thread` that owns inference (the pretrained base and the trained
//! models it has loaded) and batches concurrent requests dynamically: it takes the first
//! request, gathers whatever else arrives within `max_wait` (up to `max_batch` images), and
//! runs one forward pass per model. Training runs on another thread, so predictions stay
//! available while a job trains, and a model once loaded is never touched by training.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::data::batch::images_to_tensor;
use crate::model::{Classifier, ConvBase};
use crate::store::ModelRecord;
use crate::train::artifacts::{load_record, ModelConfig};
use crate::train::fit::logits_to_vec;

/// How many loaded models to keep in memory.
const CACHE_SIZE: usize = 4;

pub struct PredictRequest {
    pub model: ModelRecord,
    /// Decoded, resized HWC RGB images at the model's input size.
    pub images: Vec<Vec<u8>>,
    pub reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

#[derive(Clone)]
pub struct Predictor {
    sender: mpsc::Sender<PredictRequest>,
}

pub struct PredictorConfig {
    pub base: ConvBase,
    pub data_dir: PathBuf,
    pub max_batch: usize,
    pub max_wait: Duration,
}

impl Predictor {
    pub fn spawn(config: PredictorConfig) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("vggserve-predict".into())
            .spawn(move || run(config, receiver))?;
        Ok(Self { sender })
    }

    /// Probabilities of the second class, one per image, in order.
    pub async fn predict(
        &self,
        model: ModelRecord,
        images: Vec<Vec<u8>>,
    ) -> Result<Vec<f32>, String> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(PredictRequest {
                model,
                images,
                reply,
            })
            .map_err(|_| "the predictor has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the predictor dropped the request".to_string())?
    }
}

fn run(config: PredictorConfig, receiver: mpsc::Receiver<PredictRequest>) {
    let mut cache: Vec<(Uuid, String, Classifier, ModelConfig)> = Vec::new();
    while let Ok(first) = receiver.recv() {
        // Dynamic batching: gather more requests until the batch is full or the wait is over.
        let deadline = Instant::now() + config.max_wait;
        let mut pending = vec![first];
        let mut images: usize = pending[0].images.len();
        while images < config.max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(request) => {
                    images += request.images.len();
                    pending.push(request);
                }
                Err(_) => break,
            }
        }
        let mut by_model: HashMap<Uuid, Vec<PredictRequest>> = HashMap::new();
        for request in pending {
            by_model.entry(request.model.id).or_default().push(request);
        }
        for (_, requests) in by_model {
            serve(&config, &mut cache, requests);
        }
    }
}

fn serve(
    config: &PredictorConfig,
    cache: &mut Vec<(Uuid, String, Classifier, ModelConfig)>,
    requests: Vec<PredictRequest>,
) {
    let record = &requests[0].model;
    let position = cache
        .iter()
        .position(|(id, sha, ..)| *id == record.id && *sha == record.artifact_sha256);
    let position = match position {
        Some(p) => p,
        None => match load(config, record) {
            Ok((model, model_config)) => {
                if cache.len() == CACHE_SIZE {
                    cache.remove(0);
                }
                cache.push((
                    record.id,
                    record.artifact_sha256.clone(),
                    model,
                    model_config,
                ));
                cache.len() - 1
            }
            Err(error) => {
                for request in requests {
                    let _ = request.reply.send(Err(error.clone()));
                }
                return;
            }
        },
    };
    let (_, _, model, model_config) = &cache[position];
    let all: Vec<Vec<u8>> = requests
        .iter()
        .flat_map(|r| r.images.iter().cloned())
        .collect();
    let result = (|| -> anyhow::Result<Vec<f32>> {
        let mut probabilities = Vec::with_capacity(all.len());
        for chunk in all.chunks(config.max_batch.max(1)) {
            // [B, 3, S, S] → [B, 1] logits → probabilities
            let x = images_to_tensor(
                chunk,
                model_config.image_size as usize,
                config.base.preprocessing,
                &config.base.device,
            );
            let logits = logits_to_vec(model.head.forward(model.base.forward(x)))?;
            probabilities.extend(logits.iter().map(|&z| 1.0 / (1.0 + (-z).exp())));
        }
        Ok(probabilities)
    })();
    match result {
        Ok(probabilities) => {
            let mut offset = 0;
            for request in requests {
                let n = request.images.len();
                let _ = request
                    .reply
                    .send(Ok(probabilities[offset..offset + n].to_vec()));
                offset += n;
            }
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "prediction failed");
            for request in requests {
                let _ = request.reply.send(Err("prediction failed".into()));
            }
        }
    }
}

fn load(
    config: &PredictorConfig,
    record: &ModelRecord,
) -> Result<(Classifier, ModelConfig), String> {
    let (mut model, model_config) =
        load_record(&config.data_dir, record, &config.base).map_err(|e| format!("{e:#}"))?;
    // Nothing trains a loaded model: its base runs in the server's inference precision.
    model.base = model.base.with_precision(config.base.precision);
    Ok((model, model_config))
}
