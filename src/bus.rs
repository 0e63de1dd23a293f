//! The in-process bus: typed domain messages published after a commit.
//!
//! The core publishes what happened (an event stored, an issue changed, a count changed);
//! the stream layer and, with several nodes, the cluster bridge subscribe. Each subscriber
//! has its own bounded queue, and `publish` waits when one is full: that backpressure
//! reaches the storage writer and, through its bounded queue, ingestion's 503 — nothing is
//! dropped silently between the database and the streams.

pub use crate::model::message::DomainMessage;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A cheap-to-clone handle to the bus.
#[derive(Clone, Default)]
pub struct Bus {
    subscribers: Arc<Mutex<Vec<mpsc::Sender<DomainMessage>>>>,
}

impl Bus {
    /// A bus with no subscribers.
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Adds a subscriber with a queue of `capacity` messages.
    pub fn subscribe(&self, capacity: usize) -> mpsc::Receiver<DomainMessage> {
        let (tx, rx) = mpsc::channel(capacity);
        self.subscribers.lock().expect("bus lock poisoned").push(tx);
        rx
    }

    /// Delivers `msg` to every live subscriber, waiting for room in full queues; a
    /// subscriber whose receiver is gone is forgotten.
    pub async fn publish(&self, msg: DomainMessage) {
        // Clone the senders out so that no lock is held across the await.
        let subscribers = self.subscribers.lock().expect("bus lock poisoned").clone();
        let mut gone = false;
        for tx in &subscribers {
            gone |= tx.send(msg.clone()).await.is_err();
        }
        if gone {
            self.subscribers
                .lock()
                .expect("bus lock poisoned")
                .retain(|tx| !tx.is_closed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_to_every_subscriber_and_forgets_dropped_ones() {
        let bus = Bus::new();
        let mut a = bus.subscribe(4);
        let b = bus.subscribe(4);
        drop(b);
        bus.publish(DomainMessage::CountChanged {
            project_id: 1,
            count: 3,
        })
        .await;
        assert!(matches!(
            a.recv().await,
            Some(DomainMessage::CountChanged { count: 3, .. })
        ));
        assert_eq!(bus.subscribers.lock().unwrap().len(), 1);
    }
}
