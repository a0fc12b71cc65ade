//! Images in, tensors out: decoding untrusted bytes, datasets on disk (and uploaded ones:
//! safe extraction, layouts and publishing; the catalog that shares them through the
//! artifact store), their reports (duplicates, unreadable files,
//! balance), thumbnails, and batches.

pub mod archive;
pub mod batch;
pub mod catalog;
pub mod dataset;
pub mod decode;
pub mod import;
pub mod report;
pub mod thumbnail;
