//! Redis behind Sentinel: the master is whichever the sentinels name, and it changes at a
//! failover. A connection manager serves the master the sentinels named last; when a command
//! meets a dead connection, a timeout, or a master that has become a replica (`READONLY`), the
//! sentinels are asked again and, where they name another master, commands go there from then
//! on. The readiness watcher's ping every 250 ms finds a failover without waiting for a request.
//!
//! `redis+sentinel://[user:password@]host:port,host:port,.../master-name[?password=...&user=...]`:
//! the user information authenticates to the sentinels, `password` and `user` to the master
//! (where absent, the sentinels' are used).

use std::sync::{Arc, RwLock};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{ConnectionAddr, ConnectionInfo, RedisConnectionInfo, RedisError, RedisResult};

/// A parsed `redis+sentinel://` URL.
#[derive(Debug, PartialEq, Eq)]
pub struct SentinelUrl {
    pub sentinels: Vec<(String, u16)>,
    pub master_name: String,
    pub sentinel_auth: (Option<String>, Option<String>),
    pub master_auth: (Option<String>, Option<String>),
}

fn bad(why: &str) -> RedisError {
    RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "bad sentinel URL",
        why.into(),
    ))
}

fn decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

impl SentinelUrl {
    pub fn parse(url: &str) -> RedisResult<SentinelUrl> {
        let rest = url
            .strip_prefix("redis+sentinel://")
            .ok_or_else(|| bad("it starts with redis+sentinel://"))?;
        let (hosts, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("it ends with /master-name"))?;
        let (master_name, query) = path.split_once('?').unwrap_or((path, ""));
        if master_name.is_empty() {
            return Err(bad("the master name is missing"));
        }
        let (userinfo, hosts) = match hosts.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, hosts),
        };
        let sentinel_auth = match userinfo {
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                (
                    Some(decoded(user)).filter(|s| !s.is_empty()),
                    Some(decoded(password)).filter(|s| !s.is_empty()),
                )
            }
            None => (None, None),
        };
        let sentinels = hosts
            .split(',')
            .map(|h| {
                let (host, port) = h
                    .rsplit_once(':')
                    .ok_or_else(|| bad("each host has a port"))?;
                let port = port.parse().map_err(|_| bad("a port is a number"))?;
                Ok((host.trim_matches(['[', ']']).to_string(), port))
            })
            .collect::<RedisResult<Vec<_>>>()?;
        let mut master_auth = sentinel_auth.clone();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("password", v)) => master_auth.1 = Some(decoded(v)),
                Some(("user", v)) => master_auth.0 = Some(decoded(v)),
                _ => return Err(bad("the query takes `password` and `user`")),
            }
        }
        Ok(SentinelUrl {
            sentinels,
            master_name: decoded(master_name),
            sentinel_auth,
            master_auth,
        })
    }
}

fn redis_info((username, password): &(Option<String>, Option<String>)) -> RedisConnectionInfo {
    RedisConnectionInfo {
        username: username.clone(),
        password: password.clone(),
        ..Default::default()
    }
}

/// The master the sentinels name, followed through failovers.
#[derive(Clone)]
pub struct SentinelRedis {
    inner: Arc<Inner>,
}

struct Inner {
    sentinel: tokio::sync::Mutex<Sentinel>,
    master_name: String,
    node: SentinelNodeConnectionInfo,
    config: ConnectionManagerConfig,
    /// The master as last named.
    master: RwLock<Master>,
}

/// The master the sentinels named last: its connection manager, where it is, and how many
/// times it has changed.
struct Master {
    generation: u64,
    manager: ConnectionManager,
    address: String,
}

impl SentinelRedis {
    pub async fn connect(url: &str, config: ConnectionManagerConfig) -> RedisResult<Self> {
        let url = SentinelUrl::parse(url)?;
        let sentinels = url
            .sentinels
            .iter()
            .map(|(host, port)| ConnectionInfo {
                addr: ConnectionAddr::Tcp(host.clone(), *port),
                redis: redis_info(&url.sentinel_auth),
            })
            .collect();
        let mut sentinel = Sentinel::build(sentinels)?;
        let node = SentinelNodeConnectionInfo {
            tls_mode: None,
            redis_connection_info: Some(redis_info(&url.master_auth)),
        };
        let client = sentinel
            .async_master_for(&url.master_name, Some(&node))
            .await?;
        let address = client.get_connection_info().addr.to_string();
        let manager = ConnectionManager::new_with_config(client, config.clone()).await?;
        Ok(SentinelRedis {
            inner: Arc::new(Inner {
                sentinel: tokio::sync::Mutex::new(sentinel),
                master_name: url.master_name,
                node,
                config,
                master: RwLock::new(Master {
                    generation: 0,
                    manager,
                    address,
                }),
            }),
        })
    }

    /// The connection to the master as last named, and its generation.
    pub fn current(&self) -> (u64, ConnectionManager) {
        let master = self.inner.master.read().unwrap_or_else(|e| e.into_inner());
        (master.generation, master.manager.clone())
    }

    /// Whether an error may mean that the master has moved.
    pub fn may_have_moved(e: &RedisError) -> bool {
        e.is_unrecoverable_error()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.kind() == redis::ErrorKind::ReadOnly
    }

    /// Asks the sentinels for the master again (once for all the callers that saw generation
    /// `seen` fail), and serves it from now on.
    pub async fn follow(&self, seen: u64) -> RedisResult<()> {
        let mut sentinel = self.inner.sentinel.lock().await;
        if self.current().0 != seen {
            return Ok(());
        }
        let client = sentinel
            .async_master_for(&self.inner.master_name, Some(&self.inner.node))
            .await?;
        let address = client.get_connection_info().addr.to_string();
        let known = self
            .inner
            .master
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .address
            == address;
        if known {
            // The same master: its connection manager reconnects to it by itself.
            return Ok(());
        }
        let manager = ConnectionManager::new_with_config(client, self.inner.config.clone()).await?;
        *self.inner.master.write().unwrap_or_else(|e| e.into_inner()) = Master {
            generation: seen + 1,
            manager,
            address: address.clone(),
        };
        tracing::warn!(
            master = %self.inner.master_name,
            address = %address,
            "the sentinels name another master: following it"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_sentinels_master_and_credentials() {
        let u =
            SentinelUrl::parse("redis+sentinel://127.0.0.1:26379,[::1]:26380/mymaster").unwrap();
        assert_eq!(
            u.sentinels,
            [("127.0.0.1".to_string(), 26379), ("::1".to_string(), 26380)]
        );
        assert_eq!(u.master_name, "mymaster");
        assert_eq!(u.master_auth, (None, None));
        let u = SentinelUrl::parse(
            "redis+sentinel://watch:s%40cret@h1:1,h2:2/main?password=data&user=app",
        )
        .unwrap();
        assert_eq!(
            u.sentinel_auth,
            (Some("watch".into()), Some("s@cret".into()))
        );
        assert_eq!(u.master_auth, (Some("app".into()), Some("data".into())));
        for bad in [
            "redis://h:1/m",
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h/m",
            "redis+sentinel://h:1/m?db=2",
        ] {
            assert!(SentinelUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
