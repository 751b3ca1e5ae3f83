//! A small key-value interface with expiry, served by Redis or, for a single node with no Redis
//! configured, by an in-process map. Sessions, one-use tickets, the login replay cache and the
//! WeChat access_token cache are built on it.

mod leases;
mod sets;

pub use leases::Guarded;
pub use sets::IndexTtl;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::FromRedisValue;

use super::sentinel::SentinelRedis;
use super::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// Redis or the in-process stand-in; every key is prefixed.
#[derive(Clone)]
pub struct Kv {
    prefix: Arc<str>,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Redis(Box<ConnectionManager>),
    /// A Redis Cluster. Every operation touches one key (or keys of one slot), so each is served
    /// by one node; the several keys of `set_many` and `getex_with` are single-slot
    /// steps there.
    Cluster(Box<ClusterConnection>),
    /// Redis behind Sentinel: the master the sentinels name, through failovers.
    Sentinel(SentinelRedis),
    Memory(Arc<Mutex<Memory>>),
}

#[derive(Default)]
struct Memory {
    map: HashMap<String, (Vec<u8>, Instant)>,
    writes: u64,
}

impl Memory {
    fn live(&mut self, key: &str) -> Option<&mut (Vec<u8>, Instant)> {
        let now = Instant::now();
        if self.map.get(key).is_some_and(|(_, exp)| *exp <= now) {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    fn insert(&mut self, key: String, value: Vec<u8>, ttl: Duration) {
        self.writes += 1;
        // Expired entries are dropped lazily on reads and in a sweep every 1024 writes.
        if self.writes % 1024 == 0 {
            let now = Instant::now();
            self.map.retain(|_, (_, exp)| *exp > now);
        }
        self.map.insert(key, (value, Instant::now() + ttl));
    }
}

fn secs(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

/// Sends a command or a pipeline (both have `query_async`) on Redis or the cluster. On a single
/// Redis, one that met a dead connection (Redis restarted since it was made: it cannot have
/// reached the new server) is sent once more, on the connection the manager has made
/// meanwhile; a timeout is not retried. Behind Sentinel, one that met a master that may have
/// moved is sent once more to the master the sentinels name now.
macro_rules! send {
    ($kv:expr, $request:expr) => {
        match &$kv.backend {
            Backend::Redis(c) => {
                let mut conn = (**c).clone();
                match $request.query_async(&mut conn).await {
                    Err(e) if e.is_unrecoverable_error() => {
                        Ok($request.query_async(&mut conn).await?)
                    }
                    answer => Ok(answer?),
                }
            }
            Backend::Cluster(c) => Ok($request.query_async(&mut *c.clone()).await?),
            Backend::Sentinel(s) => {
                let (generation, mut conn) = s.current();
                match $request.query_async(&mut conn).await {
                    Err(e) if SentinelRedis::may_have_moved(&e) => {
                        s.follow(generation).await?;
                        Ok($request.query_async(&mut s.current().1).await?)
                    }
                    answer => Ok(answer?),
                }
            }
            Backend::Memory(_) => unreachable!("the in-process store takes no Redis commands"),
        }
    };
}

impl Kv {
    /// Connects to Redis. Commands that take longer than a second count as failures, so a
    /// stuck Redis becomes a 503 rather than a hung request.
    pub async fn redis(url: &str, prefix: &str) -> Result<Kv> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new_with_config(client, Self::manager_config()).await?;
        Ok(Kv {
            prefix: prefix.into(),
            backend: Backend::Redis(Box::new(conn)),
        })
    }

    /// Connects to the master that Redis Sentinel names (`redis+sentinel://...`), and follows
    /// it through failovers (`store::sentinel`).
    pub async fn sentinel(url: &str, prefix: &str) -> Result<Kv> {
        let conn = SentinelRedis::connect(url, Self::manager_config()).await?;
        Ok(Kv {
            prefix: prefix.into(),
            backend: Backend::Sentinel(conn),
        })
    }

    /// Commands that take longer than a second count as failures.
    fn manager_config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(Duration::from_secs(1))
            .set_number_of_retries(1)
    }

    /// Connects to a Redis Cluster through any of its nodes (comma-separated URLs).
    pub async fn cluster(urls: &str, prefix: &str) -> Result<Kv> {
        let nodes: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let client = redis::cluster::ClusterClient::builder(nodes)
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(Duration::from_secs(1))
            .retries(1)
            .build()?;
        let conn = client.get_async_connection().await?;
        Ok(Kv {
            prefix: prefix.into(),
            backend: Backend::Cluster(Box::new(conn)),
        })
    }

    /// A command on Redis or the cluster (not for the in-process store); see `send!`.
    ///
    /// The sending is boxed: its future holds every backend's (the cluster's is kilobytes),
    /// and inline it would make the future of each request that touches Redis that much
    /// larger, to be copied as it is moved through the layers of the server.
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        Box::pin(async { send!(self, cmd) }).await
    }

    /// A pipeline of commands on keys of one slot; see `send!` (and `query` for the box).
    async fn pipeline<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T> {
        Box::pin(async { send!(self, pipe) }).await
    }

    /// The in-process store: one node only, lost at exit.
    pub fn memory(prefix: &str) -> Kv {
        Kv {
            prefix: prefix.into(),
            backend: Backend::Memory(Default::default()),
        }
    }

    pub fn is_redis(&self) -> bool {
        !matches!(self.backend, Backend::Memory(_))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    fn mem(m: &Arc<Mutex<Memory>>) -> std::sync::MutexGuard<'_, Memory> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> Result<()> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            _ => {
                let _: String = self.query(&redis::cmd("PING")).await?;
                Ok(())
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m).live(&self.key(key)).map(|(v, _)| v.clone())),
            _ => self.query(redis::cmd("GET").arg(self.key(key))).await,
        }
    }

    /// Reads a value and restarts its time to live (sliding expiry), as Redis' GETEX.
    pub async fn getex(&self, key: &str, ttl: Duration) -> Result<Option<Vec<u8>>> {
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m).live(&self.key(key)).map(|(v, exp)| {
                *exp = Instant::now() + ttl;
                v.clone()
            })),
            _ => {
                self.query(
                    redis::cmd("GETEX")
                        .arg(self.key(key))
                        .arg("EX")
                        .arg(secs(ttl)),
                )
                .await
            }
        }
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        match &self.backend {
            Backend::Memory(m) => {
                Self::mem(m).insert(self.key(key), value.to_vec(), ttl);
                Ok(())
            }
            _ => {
                self.query(
                    redis::cmd("SET")
                        .arg(self.key(key))
                        .arg(value)
                        .arg("EX")
                        .arg(secs(ttl)),
                )
                .await
            }
        }
    }

    /// Sets several values: one round trip on Redis (a pipeline); on a cluster, where the keys
    /// may live in different slots, one per key. Not a transaction: the callers (a new session
    /// and its login's answer for retries) need only that each write happens or fails; a
    /// session whose token was never handed out is unreachable.
    pub async fn set_many(&self, entries: &[(&str, &[u8], Duration)]) -> Result<()> {
        if let Backend::Redis(_) | Backend::Sentinel(_) = &self.backend {
            let mut pipe = redis::pipe();
            for (key, value, ttl) in entries {
                pipe.cmd("SET")
                    .arg(self.key(key))
                    .arg(*value)
                    .arg("EX")
                    .arg(secs(*ttl))
                    .ignore();
            }
            return self.pipeline(&pipe).await;
        }
        for (key, value, ttl) in entries {
            self.set(key, value, *ttl).await?;
        }
        Ok(())
    }

    /// GETEX (as `getex`) of `key`, and GET of `other` in the same round trip on Redis (a
    /// pipeline); on a cluster, where `other` may live on another node, one after the other.
    pub async fn getex_with(
        &self,
        key: &str,
        ttl: Duration,
        other: &str,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>)> {
        match &self.backend {
            Backend::Redis(_) | Backend::Sentinel(_) => {
                let mut pipe = redis::pipe();
                pipe.cmd("GETEX")
                    .arg(self.key(key))
                    .arg("EX")
                    .arg(secs(ttl))
                    .cmd("GET")
                    .arg(self.key(other));
                self.pipeline(&pipe).await
            }
            _ => Ok((self.getex(key, ttl).await?, self.get(other).await?)),
        }
    }

    /// Sets the value only where the key is absent; true when it was set.
    pub async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        self.set_if(key, value, ttl, false).await
    }

    /// Replaces the value only where the key is still there (SET XX): a write that must not
    /// bring back what was deleted meanwhile; true when it was set.
    pub async fn set_existing(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        self.set_if(key, value, ttl, true).await
    }

    /// SET with NX (`present` false) or XX (`present` true).
    async fn set_if(&self, key: &str, value: &[u8], ttl: Duration, present: bool) -> Result<bool> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let key = self.key(key);
                if m.live(&key).is_some() != present {
                    return Ok(false);
                }
                m.insert(key, value.to_vec(), ttl);
                Ok(true)
            }
            _ => {
                let set: Option<String> = self
                    .query(
                        redis::cmd("SET")
                            .arg(self.key(key))
                            .arg(value)
                            .arg(if present { "XX" } else { "NX" })
                            .arg("EX")
                            .arg(secs(ttl)),
                    )
                    .await?;
                Ok(set.is_some())
            }
        }
    }

    /// Deletes a key; true when it existed.
    pub async fn del(&self, key: &str) -> Result<bool> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let key = self.key(key);
                let existed = m.live(&key).is_some();
                m.map.remove(&key);
                Ok(existed)
            }
            _ => {
                let n: i64 = self.query(redis::cmd("DEL").arg(self.key(key))).await?;
                Ok(n > 0)
            }
        }
    }

    /// Deletes several keys: one round trip on Redis; on a cluster, where the keys may live in
    /// different slots, one per key.
    pub async fn del_many(&self, keys: &[String]) -> Result<()> {
        match &self.backend {
            Backend::Redis(_) | Backend::Sentinel(_) if !keys.is_empty() => {
                let mut del = redis::cmd("DEL");
                for key in keys {
                    del.arg(self.key(key));
                }
                let _: i64 = self.query(&del).await?;
                Ok(())
            }
            _ => {
                for key in keys {
                    self.del(key).await?;
                }
                Ok(())
            }
        }
    }

    /// Reads and deletes in one step, so that a one-use value is used once (GETDEL).
    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let key = self.key(key);
                let value = m.live(&key).map(|(v, _)| v.clone());
                m.map.remove(&key);
                Ok(value)
            }
            _ => self.query(redis::cmd("GETDEL").arg(self.key(key))).await,
        }
    }

    /// Adds one to a counter, starting it with `ttl` where it is new; returns the count.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<i64> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                let key = self.key(key);
                let n = match m.live(&key) {
                    Some((v, _)) => {
                        let n = std::str::from_utf8(v)
                            .ok()
                            .and_then(|s| s.parse::<i64>().ok())
                            .unwrap_or(0)
                            + 1;
                        *v = n.to_string().into_bytes();
                        n
                    }
                    None => {
                        m.insert(key, b"1".to_vec(), ttl);
                        1
                    }
                };
                Ok(n)
            }
            _ => {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("INCR")
                    .arg(self.key(key))
                    .cmd("EXPIRE")
                    .arg(self.key(key))
                    .arg(secs(ttl))
                    .arg("NX")
                    .ignore();
                let (n,): (i64,) = self.pipeline(&pipe).await?;
                Ok(n)
            }
        }
    }

    /// Seconds until a key expires; None when it does not exist.
    pub async fn ttl(&self, key: &str) -> Result<Option<u64>> {
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m).live(&self.key(key)).map(|(_, exp)| {
                exp.saturating_duration_since(Instant::now())
                    .as_secs()
                    .max(1)
            })),
            _ => {
                let t: i64 = self.query(redis::cmd("TTL").arg(self.key(key))).await?;
                Ok((t >= 0).then_some(t as u64).or((t == -1).then_some(0)))
            }
        }
    }
}
