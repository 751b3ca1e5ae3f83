//! Readiness of a process that serves on several threads, each with its own connections to
//! Redis and the database: `/readyz` answers 200 only when every thread's connections work, as
//! each thread's watcher last saw them (every 250 ms). The watcher is also what re-establishes
//! a thread's broken connections in the background: its ping on a dead connection makes the
//! connection manager reconnect, so that no request has to fail first.
//!
//! `/readyz` also pings this thread's connections itself, so that an outage shows at once; but
//! under heavy load that ping waits behind the requests queued on the same connections, and a
//! busy node is not a broken one: past `LIVE_BUDGET`, the watchers' last word answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::accounts::Accounts;

/// How often each thread checks its connections.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How long `/readyz` waits for its own ping before it trusts the watchers.
pub const LIVE_BUDGET: Duration = Duration::from_millis(20);
/// A watcher's ping that takes longer than this counts as failed.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The threads' health, shared; each handle writes its own thread's slot.
#[derive(Clone)]
pub struct Readiness {
    threads: Arc<[AtomicBool]>,
    slot: usize,
}

impl Readiness {
    /// The readiness of `threads` serving threads, all ready (they connected at start); this
    /// handle is thread 0's.
    pub fn shared(threads: usize) -> Readiness {
        Readiness {
            threads: (0..threads.max(1)).map(|_| AtomicBool::new(true)).collect(),
            slot: 0,
        }
    }

    /// The handle of thread `i`.
    pub fn slot(&self, i: usize) -> Readiness {
        Readiness {
            threads: self.threads.clone(),
            slot: i.min(self.threads.len() - 1),
        }
    }

    /// Whether every thread's connections worked at its last check.
    pub fn all_ready(&self) -> bool {
        self.threads.iter().all(|t| t.load(Ordering::Relaxed))
    }

    /// What `/readyz` answers: this thread's connections answer a ping now (or, where the ping
    /// takes longer than `LIVE_BUDGET`, worked at the watcher's last check), and every other
    /// thread's worked at its watcher's last check. The error says what is not ready.
    pub async fn check(&self, accounts: &Accounts) -> Result<(), &'static str> {
        match tokio::time::timeout(LIVE_BUDGET, accounts.ready()).await {
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "not ready");
                Err("a dependency does not answer")
            }
            Ok(Ok(())) | Err(_) if self.all_ready() => Ok(()),
            Ok(Ok(())) => Err("another serving thread's connections are being re-established"),
            Err(_) => Err("a dependency is slow to answer"),
        }
    }

    fn set(&self, ready: bool) {
        self.threads[self.slot].store(ready, Ordering::Relaxed);
    }

    /// Checks this thread's connections every `WATCH_EVERY`, for ever (until its runtime ends).
    pub async fn watch(self, accounts: Accounts) {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ready = match tokio::time::timeout(PING_TIMEOUT, accounts.ready()).await {
                Ok(ready) => ready,
                Err(_) => Err(format!("no answer within {PING_TIMEOUT:?}")),
            };
            if let Err(e) = &ready {
                tracing::debug!(thread = self.slot, error = %e, "connections not ready");
            }
            self.set(ready.is_ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_thread_is() {
        let r = Readiness::shared(3);
        assert!(r.all_ready());
        r.slot(2).set(false);
        assert!(!r.all_ready());
        assert!(!r.slot(0).all_ready(), "every handle sees every thread");
        r.slot(2).set(true);
        assert!(r.all_ready());
    }
}
