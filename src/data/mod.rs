//! Images in, tensors out: decoding untrusted bytes, datasets on disk (and uploaded ones:
//! safe extraction, layouts and publishing), their reports (duplicates, unreadable files,
//! balance), thumbnails, and batches.

pub mod archive;
pub mod batch;
pub mod dataset;
pub mod decode;
pub mod import;
pub mod report;
pub mod thumbnail;
