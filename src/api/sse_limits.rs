//! How many live event streams each job has (`--max-sse-subscribers-per-job`). A slot is
//! a drop guard: held by the task feeding one stream and given back when that task ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;

/// How many live streams each job has. A job's entry goes when its last stream ends, so
/// the map only holds jobs being watched right now.
#[derive(Clone, Default)]
pub struct SubscriberLimits {
    counts: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl SubscriberLimits {
    /// A slot for one more stream of job `id`, or None when it already has `max`.
    pub fn try_acquire(&self, id: Uuid, max: usize) -> Option<SubscriberSlot> {
        // The critical sections cannot panic, so a poisoned lock still holds valid counts.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.get(&id).copied().unwrap_or(0);
        if count >= max {
            return None;
        }
        counts.insert(id, count + 1);
        Some(SubscriberSlot {
            limits: self.clone(),
            id,
        })
    }
}

/// One live stream's place in its job's count; given back on drop.
pub struct SubscriberSlot {
    limits: SubscriberLimits,
    id: Uuid,
}

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        let mut counts = self
            .limits
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_job_and_given_back_on_drop() {
        let limits = SubscriberLimits::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = limits.try_acquire(a, 2).expect("first");
        let second = limits.try_acquire(a, 2).expect("second");
        assert!(limits.try_acquire(a, 2).is_none());
        let other = limits
            .try_acquire(b, 2)
            .expect("another job has its own count");
        drop(first);
        let third = limits.try_acquire(a, 2).expect("a dropped slot comes back");
        drop((second, third, other));
        assert!(limits.counts.lock().unwrap().is_empty());
    }
}
