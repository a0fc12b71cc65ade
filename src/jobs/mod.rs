//! The job system: what may be asked (`spec`), the thread that runs jobs one at a time
//! (`worker`), and the events it publishes for SSE subscribers (`events`).

pub mod events;
mod reporter;
pub mod spec;
pub mod worker;

pub use events::{EventHub, JobEvent};
pub use worker::{WorkerConfig, WorkerHandle};
