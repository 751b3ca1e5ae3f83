//! Sets of keys: the index of a user's sessions (and what else names the user), written in the
//! same round trip as what it lists, read and taken away at the user's deletion.

use std::time::{Duration, Instant};

use super::{secs, Backend, Guarded, Kv, Result};

/// How an index's time to live follows an addition.
#[derive(Clone, Copy, Debug)]
pub enum IndexTtl {
    /// Lives this long from now: a time that outlasts every member (a session's absolute
    /// lifetime).
    Renew(Duration),
    /// Keeps its time; this long where it had none (a short-lived member).
    IfNew(Duration),
}

impl Kv {
    /// `set_many`, and the keys written listed in the set at `index`: one round trip on Redis;
    /// on a cluster, one write after the other. The set then lives `ttl` from now (`Renew`, for
    /// a `ttl` that outlasts every member), or keeps its time and gets `ttl` only where it had
    /// none (`IfNew`). With `guarded`, its values too, in the same round trip on Redis (see
    /// `set_guarded`).
    pub async fn set_many_and_add(
        &self,
        entries: &[(&str, &[u8], Duration)],
        index: &str,
        ttl: IndexTtl,
        guarded: Option<&Guarded>,
    ) -> Result<()> {
        let members: Vec<&str> = entries.iter().map(|(k, _, _)| *k).collect();
        match &self.backend {
            Backend::Redis(_) | Backend::Sentinel(_) => {
                let mut pipe = redis::pipe();
                for (key, value, ttl) in entries {
                    pipe.cmd("SET")
                        .arg(self.key(key))
                        .arg(*value)
                        .arg("EX")
                        .arg(secs(*ttl))
                        .ignore();
                }
                self.add_members(&mut pipe, index, &members, ttl);
                if let Some(guarded) = guarded {
                    let keys = guarded.entries.len();
                    pipe.add_command(self.guarded_script(guarded, keys))
                        .ignore();
                }
                self.pipeline(&pipe).await
            }
            Backend::Memory(m) => {
                self.set_many(entries).await?;
                if let Some(guarded) = guarded {
                    self.set_guarded(guarded).await?;
                }
                let mut m = Self::mem(m);
                let key = self.key(index);
                let now = Instant::now();
                let (mut set, until) = m.live(&key).map(|e| e.clone()).unwrap_or((Vec::new(), now));
                for member in &members {
                    if !set.split(|b| *b == b'\n').any(|x| x == member.as_bytes()) {
                        if !set.is_empty() {
                            set.push(b'\n');
                        }
                        set.extend_from_slice(member.as_bytes());
                    }
                }
                let ttl = match ttl {
                    IndexTtl::Renew(ttl) => ttl,
                    IndexTtl::IfNew(_) if until > now => until - now,
                    IndexTtl::IfNew(ttl) => ttl,
                };
                m.insert(key, set, ttl);
                Ok(())
            }
            _ => {
                self.set_many(entries).await?;
                let mut pipe = redis::pipe();
                self.add_members(&mut pipe, index, &members, ttl);
                self.pipeline::<()>(&pipe).await?;
                match guarded {
                    Some(guarded) => self.set_guarded(guarded).await,
                    None => Ok(()),
                }
            }
        }
    }

    /// SADD of `members` to `index`, and its TTL as `ttl` says.
    fn add_members(
        &self,
        pipe: &mut redis::Pipeline,
        index: &str,
        members: &[&str],
        ttl: IndexTtl,
    ) {
        let key = self.key(index);
        pipe.cmd("SADD").arg(&key).arg(members).ignore();
        match ttl {
            IndexTtl::Renew(ttl) => pipe.cmd("EXPIRE").arg(&key).arg(secs(ttl)).ignore(),
            IndexTtl::IfNew(ttl) => pipe
                .cmd("EXPIRE")
                .arg(&key)
                .arg(secs(ttl))
                .arg("NX")
                .ignore(),
        };
    }

    /// The members of the set at `key`.
    pub async fn members(&self, key: &str) -> Result<Vec<String>> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut m = Self::mem(m);
                Ok(m.live(&self.key(key))
                    .map(|(v, _)| {
                        String::from_utf8_lossy(v)
                            .lines()
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default())
            }
            _ => self.query(redis::cmd("SMEMBERS").arg(self.key(key))).await,
        }
    }

    /// Takes a set away: its members, and the set is gone.
    pub async fn take_members(&self, key: &str) -> Result<Vec<String>> {
        match &self.backend {
            Backend::Memory(_) => {
                let members = self.members(key).await?;
                self.del(key).await?;
                Ok(members)
            }
            _ => {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("SMEMBERS")
                    .arg(self.key(key))
                    .cmd("DEL")
                    .arg(self.key(key))
                    .ignore();
                let (members,): (Vec<String>,) = self.pipeline(&pipe).await?;
                Ok(members)
            }
        }
    }
}
