//! [`Heartbeat`]: while a job runs, a task on the async runtime extends its lease every
//! third of the lease's length, so a long batch on the worker thread never lets it lapse.
//! A cancel requested through the store is read back with each beat; a lease found lost
//! (it expired and another worker claimed the job) stops the job at its next batch.
//! [`outlasting_outage`] lets a job's writes ride out a short database outage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::domain::Lease;
use crate::store::{SharedStore, StoreError};

/// How long a job's write keeps retrying while the database is unreachable. Past its
/// lease the job may have passed on; the write is then refused by fencing, never doubled.
const OUTAGE: Duration = Duration::from_secs(120);

/// Run `write` until it succeeds, fails for a reason other than an unreachable database,
/// or the database has been unreachable for [`OUTAGE`].
pub(super) async fn outlasting_outage<T, F, Fut>(mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let started = tokio::time::Instant::now();
    loop {
        match write().await {
            Err(error) if error.is_transient() && started.elapsed() < OUTAGE => {
                tracing::warn!(%error, "the database is unreachable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            result => return result,
        }
    }
}

pub(super) struct Heartbeat {
    task: JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Heartbeat {
    pub(super) fn start(
        runtime: &Handle,
        store: SharedStore,
        lease: Lease,
        length: Duration,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let task = runtime.spawn(async move {
            let mut wait = length / 3;
            loop {
                tokio::time::sleep(wait).await;
                wait = length / 3;
                match store.heartbeat(&lease, length).await {
                    Ok(true) => cancel.store(true, Ordering::SeqCst),
                    Ok(false) => {}
                    Err(StoreError::LeaseLost(_)) => {
                        tracing::warn!(job = %lease.job_id, "lease lost: stopping the job");
                        flag.store(true, Ordering::SeqCst);
                        cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The store is unreachable: try again soon (not a third of a lease
                    // later); if the lease lapses meanwhile, the job's fenced writes are
                    // refused and another worker takes it.
                    Err(error) => {
                        tracing::warn!(job = %lease.job_id, %error, "heartbeat failed");
                        wait = Duration::from_secs(1);
                    }
                }
            }
        });
        Self { task, lost }
    }

    /// Whether the lease was found lost (the heartbeat then stopped by itself).
    pub(super) fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stop beating.
    pub(super) fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
