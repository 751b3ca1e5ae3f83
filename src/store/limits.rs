//! Counters that every node shares: the per-IP limit of the sign-in routes, and wrong
//! passwords per username with the lock they lead to. The policy (how many, what answer) is
//! `accounts`'; the windows are the keyspace's.

use std::net::IpAddr;

use super::{keys, kv::Kv, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// The counters, on the shared key-value store.
#[derive(Clone)]
pub struct Limits {
    kv: Kv,
    /// The key that names the counters (`Sealer::name_key`).
    name_key: [u8; 32],
}

impl Limits {
    pub fn new(kv: Kv, name_key: [u8; 32]) -> Limits {
        Limits { kv, name_key }
    }

    /// Counts a sign-in request of `ip`; past `limit` in the window, the seconds until the
    /// window ends.
    pub async fn count_request(&self, ip: IpAddr, limit: u32) -> Result<Option<u64>> {
        let key = keys::rate(ip, &self.name_key);
        let count = self.kv.incr(&key, keys::RATE_WINDOW).await?;
        if count <= i64::from(limit) {
            return Ok(None);
        }
        let left = self
            .kv
            .ttl(&key)
            .await?
            .unwrap_or(keys::RATE_WINDOW.as_secs());
        Ok(Some(left.max(1)))
    }

    /// Seconds a username stays locked; None where it is not.
    pub async fn locked_for(&self, username_folded: &str) -> Result<Option<u64>> {
        self.kv
            .ttl(&keys::password_lock(username_folded, &self.name_key))
            .await
    }

    /// Counts an attempt on a username, before its password is checked: the attempt's number
    /// in the window (one more than the attempts since the last right password).
    pub async fn count_attempt(&self, username_folded: &str) -> Result<i64> {
        let key = keys::password_failures(username_folded, &self.name_key);
        self.kv.incr(&key, keys::LOCKOUT).await
    }

    /// Locks a username for the window, and starts its count again.
    pub async fn lock(&self, username_folded: &str) -> Result<()> {
        let lock = keys::password_lock(username_folded, &self.name_key);
        self.kv.set(&lock, b"1", keys::LOCKOUT).await?;
        self.clear_attempts(username_folded).await
    }

    /// Forgets a username's attempts (after a right password).
    pub async fn clear_attempts(&self, username_folded: &str) -> Result<()> {
        self.kv
            .del(&keys::password_failures(username_folded, &self.name_key))
            .await
            .map(drop)
    }
}
