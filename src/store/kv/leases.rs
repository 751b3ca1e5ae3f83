//! Leases and compare-and-set: what the user cache (`store::cache`) is built on. A reader that
//! misses takes a lease in the same step; a value goes in only where the lease still is.

use std::time::Duration;

use super::{secs, Backend, Kv, Result};

/// Sets KEYS[i] to ARGV[i + 2] (for ARGV[2] seconds), all of them only where KEYS[1] holds
/// ARGV[1].
const GUARDED: &str = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end \
    for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 2], 'EX', ARGV[2]) end return 1";

/// Values written only where a lease still holds: the first entry's key is the lease's, and its
/// value replaces the lease; the others are keys the lease guards (whatever would drop them
/// drops the lease too).
pub struct Guarded {
    /// The lease's token.
    pub expected: Vec<u8>,
    pub entries: Vec<(String, Vec<u8>)>,
    pub ttl: Duration,
}

/// Sets (or with an empty value deletes) KEYS[1] only where it holds ARGV[1].
const CAS: &str = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end \
    if ARGV[2] == '' then redis.call('DEL', KEYS[1]) \
    else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end return 1";

impl Kv {
    /// The value of `key`, or None where there was none and `value` is set now (SET NX GET):
    /// a read that takes a lease where it misses, in one round trip.
    pub async fn get_or_set_nx(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let key = self.key(key);
                if let Some((v, _)) = m.live(&key) {
                    return Ok(Some(v.clone()));
                }
                m.insert(key, value.to_vec(), ttl);
                Ok(None)
            }
            _ => {
                self.query(
                    redis::cmd("SET")
                        .arg(self.key(key))
                        .arg(value)
                        .arg("NX")
                        .arg("GET")
                        .arg("EX")
                        .arg(secs(ttl)),
                )
                .await
            }
        }
    }

    /// Replaces a value (or, with `None`, deletes it) only where the key still holds
    /// `expected` (a lease): true when done. One Lua script on Redis, so nothing can come
    /// between the check and the write.
    pub async fn compare_and_set(
        &self,
        key: &str,
        expected: &[u8],
        value: Option<&[u8]>,
        ttl: Duration,
    ) -> Result<bool> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let key = self.key(key);
                if m.live(&key).is_none_or(|(v, _)| v != expected) {
                    return Ok(false);
                }
                match value {
                    Some(value) => m.insert(key, value.to_vec(), ttl),
                    None => {
                        m.map.remove(&key);
                    }
                }
                Ok(true)
            }
            _ => {
                let done: i64 = self
                    .query(
                        redis::cmd("EVAL")
                            .arg(CAS)
                            .arg(1)
                            .arg(self.key(key))
                            .arg(expected)
                            .arg(value.unwrap_or_default())
                            .arg(secs(ttl)),
                    )
                    .await?;
                Ok(done == 1)
            }
        }
    }

    /// Writes `guarded`'s values where its lease still holds, in one Lua script (nothing can
    /// come between the check and the writes). On a cluster, where the other keys may live on
    /// other nodes, only the lease's own key is written.
    pub async fn set_guarded(&self, guarded: &Guarded) -> Result<()> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let Some((first, _)) = guarded.entries.first() else {
                    return Ok(());
                };
                if m.live(&self.key(first))
                    .is_none_or(|(v, _)| *v != guarded.expected)
                {
                    return Ok(());
                }
                for (key, value) in &guarded.entries {
                    m.insert(self.key(key), value.clone(), guarded.ttl);
                }
                Ok(())
            }
            Backend::Cluster(_) => self.query(&self.guarded_script(guarded, 1)).await,
            _ => {
                let keys = guarded.entries.len();
                self.query(&self.guarded_script(guarded, keys)).await
            }
        }
    }

    /// The `GUARDED` script's arguments, for the first `keys` of `guarded`'s entries.
    pub(super) fn guarded_script(&self, guarded: &Guarded, keys: usize) -> redis::Cmd {
        let entries = &guarded.entries[..keys.min(guarded.entries.len())];
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(GUARDED).arg(entries.len());
        for (key, _) in entries {
            cmd.arg(self.key(key));
        }
        cmd.arg(&guarded.expected).arg(secs(guarded.ttl));
        for (_, value) in entries {
            cmd.arg(value);
        }
        cmd
    }
}
