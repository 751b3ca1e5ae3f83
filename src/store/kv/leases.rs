//! Leases and compare-and-set: what the user cache (`store::cache`) is built on. A reader that
//! misses takes a lease in the same step; a value goes in only where the lease still is.

use std::time::Duration;

use super::{secs, Backend, Kv, Result};

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

    /// `compare_and_set` of several keys (values, no deletes), in one round trip on Redis (a
    /// pipeline of the scripts); on a cluster, where the keys may live on several nodes, one
    /// after the other. Which were set is not told: a key whose lease went keeps what it has.
    pub async fn compare_and_set_each(
        &self,
        items: &[(&str, &[u8], &[u8])],
        ttl: Duration,
    ) -> Result<()> {
        match &self.backend {
            Backend::Redis(_) | Backend::Sentinel(_) => {
                let mut pipe = redis::pipe();
                for (key, expected, value) in items {
                    pipe.cmd("EVAL")
                        .arg(CAS)
                        .arg(1)
                        .arg(self.key(key))
                        .arg(*expected)
                        .arg(*value)
                        .arg(secs(ttl))
                        .ignore();
                }
                self.pipeline(&pipe).await
            }
            _ => {
                for (key, expected, value) in items {
                    self.compare_and_set(key, expected, Some(value), ttl)
                        .await?;
                }
                Ok(())
            }
        }
    }
}
