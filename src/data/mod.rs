//! Images in, tensors out: decoding untrusted bytes, datasets on disk, and batches.

pub mod batch;
pub mod dataset;
pub mod decode;
pub mod thumbnail;
