//! The bounded queue between event intake and the Kubernetes writer. Intake never waits on it:
//! when the writer is behind (a slow or unreachable API server) reports are dropped and counted,
//! so containerd's stream is always drained and the metrics stay exact.

use std::sync::Arc;

use tokio::sync::mpsc::{self, error::TrySendError, Receiver, Sender};

use crate::metrics::Metrics;
use crate::report::Report;

/// What intake hands the writer.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A report to count towards its pod's Event.
    Report(Box<Report>),
    /// A container's init process exited: its pending Events can be written now.
    Exited { container_id: String },
}

/// The intake's end of the queue.
#[derive(Clone, Debug)]
pub struct QueueSender {
    sender: Sender<Item>,
    metrics: Arc<Metrics>,
}

/// A queue holding at most `size` items (at least one).
pub fn queue(size: usize, metrics: Arc<Metrics>) -> (QueueSender, Receiver<Item>) {
    let (sender, receiver) = mpsc::channel(size.max(1));
    (QueueSender { sender, metrics }, receiver)
}

impl QueueSender {
    /// Queues `item` if there is room. A report that does not fit is counted in
    /// `undertaker_agent_events_dropped_total`; an exit notice is only a hint and is not.
    pub fn offer(&self, item: Item) -> bool {
        match self.sender.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(item)) => {
                if let Item::Report(report) = item {
                    self.metrics.dropped();
                    tracing::debug!(
                        pod = %report.record.pod,
                        reason = report.kind.reason(),
                        "the Kubernetes writer is behind: report dropped"
                    );
                }
                false
            }
            // The writer has stopped (shutting down): nothing to count.
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use undertaker_events::{Event, EventRecord, Identity, Process, Reaped};

    use super::*;

    fn report() -> Report {
        let identity = Identity::for_container("k8s.io", "c1", "");
        let event = Event::Reaped(Reaped::now(identity, vec![Process::named(1, "sh")], 1, 0));
        let record = EventRecord::new(&event, "k8s.io", SystemTime::now());
        Report::from_event(&event, record).unwrap()
    }

    fn dropped(metrics: &Metrics) -> String {
        metrics
            .encode()
            .lines()
            .find(|line| line.starts_with("undertaker_agent_events_dropped_total "))
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn reports_past_the_bound_are_dropped_and_counted() {
        let metrics = Arc::new(Metrics::new());
        let (sender, mut receiver) = queue(3, metrics.clone());

        let accepted = (0..10)
            .filter(|_| sender.offer(Item::Report(Box::new(report()))))
            .count();
        let exit = Item::Exited {
            container_id: "c1".into(),
        };
        assert!(!sender.offer(exit), "still full");

        assert_eq!(accepted, 3);
        assert_eq!(dropped(&metrics), "undertaker_agent_events_dropped_total 7");
        receiver.recv().await.unwrap();
        assert!(sender.offer(Item::Report(Box::new(report()))), "room again");
        assert_eq!(dropped(&metrics), "undertaker_agent_events_dropped_total 7");
    }

    #[tokio::test]
    async fn a_closed_queue_drops_without_counting() {
        let metrics = Arc::new(Metrics::new());
        let (sender, receiver) = queue(1, metrics.clone());
        drop(receiver);

        assert!(!sender.offer(Item::Report(Box::new(report()))));
        assert_eq!(dropped(&metrics), "undertaker_agent_events_dropped_total 0");
    }
}
