//! The model side: VGG16 conv base, dense head, weights and preprocessing.
//! Nothing here knows about HTTP or the job queue.

pub mod autotune;
pub mod base;
pub mod classifier;
pub mod frozen;
pub mod gradcam;
pub mod head;
pub mod input;
pub mod int8;
pub mod keras_h5;
pub mod layers;
pub mod onnx;
pub mod overlay;
pub mod portable;
pub mod precision;
pub mod preprocess;
pub mod reference;
pub mod saved;
pub mod vgg16;
pub mod weights;

pub use base::ConvBase;
pub use classifier::Classifier;
pub use precision::Precision;
pub use preprocess::Preprocessing;
pub use saved::ModelConfig;
pub use weights::{WeightSet, WeightsError};
