//! Recipe 3: fine-tuning. A trained model's top conv layers are unfrozen and trained with
//! its head, at a lower learning rate, through the loop of recipe 2.

use burn::config::Config;
use uuid::Uuid;

use super::end_to_end::{train_end_to_end, EndToEndConfig};
use super::{Context, Outcome};
use crate::data::dataset::Dataset;
use crate::model::layers::conv_layer_index;
use crate::model::{Classifier, ModelConfig};
use crate::train::best::Monitor;
use crate::train::fit::TrainError;

/// Recipe 3: which model to fine-tune and from which layer. Defaults are the seed's.
#[derive(Config, Debug, PartialEq)]
pub struct FineTuneConfig {
    pub dataset: String,
    /// The trained model to start from (usually recipe 2's).
    pub from_model: Uuid,
    /// This conv layer and every later one are trained.
    #[config(default = "String::from(\"block5_conv1\")")]
    pub unfreeze_from: String,
    /// Live augmentation (the seed's); `false` runs the frozen layers once per image and
    /// trains on their outputs, which is much faster.
    #[config(default = true)]
    pub augment: bool,
    #[config(default = 100)]
    pub epochs: u32,
    #[config(default = 20)]
    pub batch_size: u32,
    /// RMSprop step size.
    #[config(default = 1e-5)]
    pub learning_rate: f64,
    /// The same seed repeats a run exactly.
    #[config(default = 1337)]
    pub seed: u64,
    /// Augmented batches per epoch.
    #[config(default = 100)]
    pub steps_per_epoch: u32,
    /// Validation batches per epoch.
    #[config(default = 50)]
    pub validation_steps: u32,
    /// Photos are resized to this square size (the model's own).
    #[config(default = 150)]
    pub image_size: u32,
    /// Train even when the dataset report finds a photo in two splits or an empty class.
    #[config(default = false)]
    pub allow_leaks: bool,
    /// The validation figure that picks the best epoch: `val_loss` (lowest) or `val_acc`.
    #[config(default = "Monitor::ValLoss")]
    pub monitor: Monitor,
    /// Register the best epoch's weights (Keras's `restore_best_weights`); `false` keeps
    /// the last epoch's, as the seed does.
    #[config(default = true)]
    pub restore_best: bool,
    /// Stop after this many epochs in a row without improving `monitor`; 0: never.
    #[config(default = 0)]
    pub early_stopping_patience: u32,
}

impl FineTuneConfig {
    /// The loop's settings: recipe 2's fields with this recipe's values.
    fn training(&self) -> EndToEndConfig {
        EndToEndConfig {
            dataset: self.dataset.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            seed: self.seed,
            steps_per_epoch: self.steps_per_epoch,
            validation_steps: self.validation_steps,
            image_size: self.image_size,
            augment: self.augment,
            allow_leaks: self.allow_leaks,
            monitor: self.monitor,
            restore_best: self.restore_best,
            early_stopping_patience: self.early_stopping_patience,
        }
    }
}

/// Recipe 3 on a loaded model (`model`, with the config it was saved with).
pub fn fine_tune(
    ctx: &mut Context,
    dataset: &Dataset,
    params: &FineTuneConfig,
    model: Classifier,
    saved: ModelConfig,
) -> Result<Outcome, TrainError> {
    let from = conv_layer_index(&params.unfreeze_from).ok_or_else(|| {
        TrainError::Invalid(format!(
            "unfreeze_from must name a conv layer, got {:?}",
            params.unfreeze_from
        ))
    })?;
    let classes = &dataset.split("train")?.classes;
    if *classes != saved.classes {
        return Err(TrainError::Invalid(format!(
            "model {} knows classes {:?}, the dataset has {:?}",
            params.from_model, saved.classes, classes
        )));
    }
    let training = params.training();
    train_end_to_end(
        ctx,
        dataset,
        &training,
        model,
        saved.head,
        from,
        "fine_tuned",
    )
}
