//! The job system: what may be asked (`spec`; chains of jobs: `pipeline`), the thread that runs jobs one at a time
//! (`worker`) and its loop (`claim_loop`), the lease it holds on a job while it runs
//! (`lease`), how it runs them (`runner`), how a running job reports (`reporter`), and the
//! sweep of orphaned models and datasets in the artifact store (`sweep`).

mod claim_loop;
mod control;
mod lease;
pub mod pipeline;
pub mod reporter;
mod request;
pub mod runner;
pub mod spec;
pub mod sweep;
pub mod worker;

pub use worker::{Worker, WorkerConfig, WorkerHandle};
