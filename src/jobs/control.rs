//! What the worker thread and its handle share to control the job running now: which job
//! it is with its cancel flag (set by `POST /cancel`), and the shutdown flag. Both are
//! checked by the running job at every batch, through its reporter.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

/// State the async side and the worker thread share.
#[derive(Default)]
pub(super) struct Shared {
    /// The job running now and its cancel flag.
    current: Mutex<Option<(Uuid, Arc<AtomicBool>)>>,
    pub(super) shutdown: AtomicBool,
}

impl Shared {
    /// The critical sections cannot panic, so a poisoned lock still holds a valid value.
    pub(super) fn current(&self) -> MutexGuard<'_, Option<(Uuid, Arc<AtomicBool>)>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
