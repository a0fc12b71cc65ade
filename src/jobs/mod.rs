//! The job system: what may be asked (`spec`), the thread that runs jobs one at a time
//! (`worker`), the lease it holds on a job while it runs (`lease`), how it runs them
//! (`runner`) and how a running job reports (`reporter`).

mod control;
mod lease;
pub mod reporter;
mod request;
pub mod runner;
pub mod spec;
pub mod worker;

pub use worker::{Worker, WorkerConfig, WorkerHandle};
