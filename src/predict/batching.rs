//! How the predictor thread forms batches: gather what arrives within a short wait, then
//! split it by model. Explanations met while gathering are set aside for their own turn.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::Command;

/// Take `first` and whatever else arrives within `max_wait`, until the requests hold
/// `max_batch` items (`size` of each); explanations arriving meanwhile go to `deferred`.
/// Returns the batch and whether `Stop` was seen.
pub fn gather<T, E>(
    receiver: &Receiver<Command<T, E>>,
    first: T,
    size: impl Fn(&T) -> usize,
    max_batch: usize,
    max_wait: Duration,
    deferred: &mut VecDeque<E>,
) -> (Vec<T>, bool) {
    let deadline = Instant::now() + max_wait;
    let mut items = size(&first);
    let mut batch = vec![first];
    while items < max_batch {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(Command::Predict(next)) => {
                items += size(&next);
                batch.push(next);
            }
            Ok(Command::Explain(explain)) => deferred.push_back(explain),
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return (batch, true),
            Err(RecvTimeoutError::Timeout) => break,
        }
    }
    (batch, false)
}

/// Split a batch by `key`, keeping arrival order within and across groups.
pub fn group_by<T, K: PartialEq>(batch: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut groups: Vec<(K, Vec<T>)> = Vec::new();
    for item in batch {
        let k = key(&item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, group)) => group.push(item),
            None => groups.push((k, vec![item])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn gathers_until_the_batch_is_full_or_the_wait_is_over() {
        let (sender, receiver) = mpsc::sync_channel::<Command<usize, ()>>(16);
        let mut deferred = VecDeque::new();
        for size in [3, 4, 5, 6] {
            sender.send(Command::Predict(size)).unwrap();
        }
        // 2 + 3 + 4 = 9 ≥ 8: the fourth request waits for the next batch.
        let (batch, stop) = gather(
            &receiver,
            2,
            |&n| n,
            8,
            Duration::from_secs(5),
            &mut deferred,
        );
        assert_eq!((batch, stop), (vec![2, 3, 4], false));
        // The queue is down to 5 and 6; with room for 100 the wait runs out after them.
        let started = Instant::now();
        sender.send(Command::Explain(())).unwrap();
        let (batch, stop) = gather(
            &receiver,
            1,
            |&n| n,
            100,
            Duration::from_millis(50),
            &mut deferred,
        );
        assert_eq!((batch, stop), (vec![1, 5, 6], false));
        // The explanation waits for its own turn.
        assert_eq!(deferred.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Stop ends the gathering and is reported.
        sender.send(Command::Stop).unwrap();
        let (batch, stop) = gather(
            &receiver,
            7,
            |&n| n,
            100,
            Duration::from_secs(5),
            &mut deferred,
        );
        assert_eq!((batch, stop), (vec![7], true));
    }

    #[test]
    fn groups_keep_arrival_order() {
        let batch = vec![("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let groups = group_by(batch, |&(model, _)| model);
        assert_eq!(
            groups,
            vec![
                vec![("a", 1), ("a", 3)],
                vec![("b", 2), ("b", 5)],
                vec![("c", 4)]
            ]
        );
    }
}
