//! The job system: what may be asked (`spec`), the thread that runs jobs one at a time
//! (`worker`) and how it runs them (`runner`), how a running job reports (`reporter`), and
//! the events published for SSE subscribers (`events`).

mod control;
pub mod events;
pub mod reporter;
mod request;
pub mod runner;
pub mod spec;
pub mod worker;

pub use events::{EventHub, JobEvent};
pub use worker::{Worker, WorkerHandle};
