//! A connection's outbox: a bounded queue that drops its oldest message when full and
//! counts what it dropped, so the client can be told `{"type":"lagged","dropped":N}`.
//! Pure: no tokio, no sockets.

use std::collections::VecDeque;

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued with room to spare.
    Queued,
    /// Queued after dropping the oldest message.
    DroppedOldest,
}

/// A drop-oldest queue of at most `capacity` messages.
#[derive(Debug)]
pub(crate) struct Outbox<M> {
    queue: VecDeque<M>,
    capacity: usize,
    /// Dropped since the writer last took messages; reported as `lagged`.
    dropped: u64,
}

impl<M> Outbox<M> {
    /// An empty outbox; `capacity` is at least 1.
    pub(crate) fn new(capacity: usize) -> Outbox<M> {
        let capacity = capacity.max(1);
        Outbox {
            // Allocated lazily: an idle connection's outbox costs no buffer.
            queue: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    /// Queues `msg`, dropping the oldest queued message if the outbox is full.
    pub(crate) fn push(&mut self, msg: M) -> Pushed {
        let pushed = if self.queue.len() >= self.capacity {
            self.queue.pop_front();
            self.dropped += 1;
            Pushed::DroppedOldest
        } else {
            Pushed::Queued
        };
        self.queue.push_back(msg);
        pushed
    }

    /// Takes up to `max` messages, oldest first, with the number dropped since the last
    /// take (to send as `lagged` before them); resets that number.
    pub(crate) fn take(&mut self, max: usize, out: &mut Vec<M>) -> u64 {
        let n = max.min(self.queue.len());
        out.extend(self.queue.drain(..n));
        std::mem::take(&mut self.dropped)
    }

    /// Takes the oldest message.
    pub(crate) fn pop(&mut self) -> Option<M> {
        self.queue.pop_front()
    }

    /// The number dropped since the last take, reset to zero (sent as `lagged` before
    /// the next message).
    pub(crate) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Messages waiting.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Dropped since the last take.
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The most messages it holds.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_oldest_and_counts() {
        let mut o = Outbox::new(3);
        for i in 0..3 {
            assert_eq!(o.push(i), Pushed::Queued);
        }
        assert_eq!(o.push(3), Pushed::DroppedOldest);
        assert_eq!(o.push(4), Pushed::DroppedOldest);
        assert_eq!(o.len(), 3);
        let mut out = Vec::new();
        assert_eq!(o.take(10, &mut out), 2);
        assert_eq!(out, vec![2, 3, 4], "the newest survive, in order");
        assert_eq!(o.dropped(), 0, "the count resets once reported");
        assert!(o.is_empty());
    }

    #[test]
    fn take_respects_max_and_never_exceeds_capacity() {
        let mut o = Outbox::new(100);
        for i in 0..5000 {
            o.push(i);
            assert!(o.len() <= 100);
        }
        let mut out = Vec::new();
        assert_eq!(o.take(10, &mut out), 4900);
        assert_eq!(out, (4900..4910).collect::<Vec<_>>());
        out.clear();
        assert_eq!(o.take(1000, &mut out), 0);
        assert_eq!(out.len(), 90);
        assert_eq!(4900 + 10 + 90, 5000, "dropped + delivered adds up");
    }

    #[test]
    fn capacity_is_at_least_one() {
        let mut o = Outbox::new(0);
        o.push('a');
        o.push('b');
        assert_eq!(o.capacity(), 1);
        let mut out = Vec::new();
        assert_eq!(o.take(5, &mut out), 1);
        assert_eq!(out, vec!['b']);
    }
}
