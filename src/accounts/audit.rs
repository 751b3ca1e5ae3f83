//! The audit log's writer. An event that comes with a change in SQL (a binding, an unbinding,
//! a phone set, credentials set, a deletion, a disable or enable) is written in the change's
//! own transaction (`store`, with `event` here). The others (sign-ins, failed and refused
//! sign-ins, lockouts, sign-outs, revocations, refused proofs), which come with no SQL write,
//! go to a bounded queue that a task of this serving thread writes in batches, so that a
//! sign-in waits for no SQL write; what the queue holds when the process dies is lost, and a
//! full queue (the database down for long) drops events, with a warning. Each event carries the
//! request's id, client IP and route (`telemetry::current_request`).

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Accounts;
use crate::domain::now_ms;
use crate::store::audit::AuditEvent;
use crate::store::users::Users;
use crate::telemetry;

/// Events the queue holds at most.
const QUEUE: usize = 10_000;
/// Events one transaction writes at most.
const BATCH: usize = 256;
/// How long events gather after a write that was not full.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

enum Message {
    Event(AuditEvent),
    /// Answered once everything sent before it is written.
    Flush(oneshot::Sender<()>),
}

/// The sending side of a serving thread's audit writer.
#[derive(Clone)]
pub(super) struct Auditor {
    queue: mpsc::Sender<Message>,
}

impl Auditor {
    /// Starts the writer on the current runtime.
    pub(super) fn start(users: Users) -> Auditor {
        let (queue, mut rx) = mpsc::channel::<Message>(QUEUE);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = Vec::new();
                let mut flushes = Vec::new();
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    match m {
                        Message::Event(e) => batch.push(e),
                        Message::Flush(done) => flushes.push(done),
                    }
                    if batch.len() < BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    if let Err(e) = users.record_audit(&batch).await {
                        tracing::warn!(error = %e, lost = batch.len(), "audit events not written");
                    }
                }
                let waited_for = !flushes.is_empty();
                for done in flushes {
                    let _ = done.send(());
                }
                // Events of the next few milliseconds gather for one write, rather than one
                // commit (one fsync on SQLite) each; a flush is written at once.
                if !waited_for && batch.len() < BATCH {
                    tokio::time::sleep(GATHER).await;
                }
            }
        });
        Auditor { queue }
    }

    fn send(&self, event: AuditEvent) {
        if self.queue.try_send(Message::Event(event)).is_err() {
            tracing::warn!("the audit queue is full: an event is dropped");
        }
    }

    /// Waits until every event sent before is written.
    pub(super) async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

/// An event of the current request: its id, client IP and route.
pub(super) fn event(kind: &str, user_id: Option<&str>, mut detail: Value) -> AuditEvent {
    let request = telemetry::current_request();
    if let (Some(r), Value::Object(map)) = (&request, &mut detail) {
        map.entry("route").or_insert_with(|| r.path.clone().into());
    }
    AuditEvent {
        id: crate::store::new_id(),
        at: now_ms(),
        kind: kind.to_string(),
        user_id: user_id.map(str::to_string),
        client_ip: request
            .as_ref()
            .and_then(|r| r.client_ip)
            .map(|ip| ip.to_string()),
        request_id: request.map(|r| r.request_id),
        actor: None,
        detail: Some(detail.to_string()).filter(|d| d != "{}" && d != "null"),
    }
}

/// An event of an operator's action on a user.
pub(super) fn by_operator(actor: &str, kind: &str, user_id: &str) -> AuditEvent {
    AuditEvent {
        actor: Some(actor.to_string()),
        ..event(kind, Some(user_id), Value::Object(Default::default()))
    }
}

impl Accounts {
    /// Records an event of the current request in the audit log (in the background).
    pub(super) fn audit(&self, kind: &str, user_id: Option<&str>, detail: Value) {
        self.inner.auditor.send(event(kind, user_id, detail));
    }
}
