//! Images in, tensors out: decoding untrusted bytes, datasets on disk, their reports
//! (duplicates, unreadable files, balance) and batches.

pub mod batch;
pub mod dataset;
pub mod decode;
pub mod report;
pub mod thumbnail;
