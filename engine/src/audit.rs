//! The audit trail of data access. Requests hand entries over without waiting; a background
//! task appends them to the catalog's append-only log in batches, so auditing every query
//! does not slow any of them down.

use std::{sync::Arc, time::Duration};

use catalog::{AuditEntry, Catalog};
use tokio::sync::{mpsc, oneshot};

/// Entries appended in one catalog transaction at most.
const BATCH: usize = 500;
/// How long an entry may wait for company before it is written.
const LINGER: Duration = Duration::from_millis(100);

enum Message {
    Entry(Box<AuditEntry>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct AuditLog {
    sender: mpsc::UnboundedSender<Message>,
}

impl AuditLog {
    pub(crate) fn new(catalog: Arc<dyn Catalog>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(catalog, receiver));
        AuditLog { sender }
    }

    pub(crate) fn record(&self, entry: AuditEntry) {
        // Only fails once the writer is gone, when the engine is shutting down.
        let _ = self.sender.send(Message::Entry(Box::new(entry)));
    }

    /// Waits until every entry recorded so far is in the catalog.
    pub(crate) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }
}

async fn write_loop(catalog: Arc<dyn Catalog>, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut pending: Vec<AuditEntry> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let next = if pending.is_empty() {
            receiver.recv().await
        } else {
            match tokio::time::timeout(LINGER, receiver.recv()).await {
                Ok(message) => message,
                Err(_) => {
                    write(catalog.as_ref(), &mut pending, &mut waiting).await;
                    continue;
                }
            }
        };
        match next {
            Some(Message::Entry(entry)) => {
                pending.push(*entry);
                if pending.len() >= BATCH {
                    write(catalog.as_ref(), &mut pending, &mut waiting).await;
                }
            }
            Some(Message::Flush(done)) => {
                waiting.push(done);
                write(catalog.as_ref(), &mut pending, &mut waiting).await;
            }
            None => {
                write(catalog.as_ref(), &mut pending, &mut waiting).await;
                return;
            }
        }
    }
}

async fn write(
    catalog: &dyn Catalog,
    pending: &mut Vec<AuditEntry>,
    waiting: &mut Vec<oneshot::Sender<()>>,
) {
    if !pending.is_empty() {
        let entries = std::mem::take(pending);
        let count = entries.len();
        if let Err(e) = catalog.audit().append(entries).await {
            tracing::error!(error = %e, count, "audit entries could not be written");
        }
    }
    for done in waiting.drain(..) {
        let _ = done.send(());
    }
}
