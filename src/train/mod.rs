//! Training: the seed's recipes (feature extraction, dense head on features, end-to-end with
//! augmentation, fine-tuning, evaluation), the optimiser loop they share, augmentation and
//! the artifacts they write. Knows nothing of HTTP; reports through [`Reporter`].

pub mod artifacts;
pub mod augment;
pub mod best;
pub mod checkpoint;
pub mod evaluation;
pub mod feature_cache;
pub mod fit;
pub mod recipes;

pub use fit::{Reporter, TrainError};
