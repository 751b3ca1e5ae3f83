//! A read-through cache of users in the key-value store, shared by every node, so that `/me` and
//! a returning sign-in read no SQL. A user is held under its id and under each of its
//! identities, so a sign-in is one read.
//!
//! Cache-aside with leases, as memcached's at Facebook: a reader that misses takes a short lease
//! (`SET NX`), reads SQL, and stores what it read only if its lease is still there (one Lua
//! compare-and-set). A writer (`store::users`) deletes the entries before its SQL write (so that
//! Redis being down refuses the write before anything changes) and again after it. A delete
//! between a reader's lease and its store removes the lease, so a reader that read before a
//! write can never put the old row back. Entries are sealed like everything else with a secret
//! in it (phone numbers, openids) and live five minutes, which bounds the one staleness left:
//! Redis failing between a write's commit and its second delete.

use std::future::Future;

use serde::{de::DeserializeOwned, Serialize};

use super::keys::{USER_CACHE, USER_CACHE_LEASE};
use super::kv::{Guarded, Kv};
use super::{seal::Sealer, StoreError};

/// The first byte of every entry: a lease, or a sealed value.
const LEASE: u8 = 0;
const VALUE: u8 = 1;
/// The layout of a value's plain bytes; bumped when the cached types change, so that nodes of
/// the old and new versions each see the other's entries as misses.
const FORMAT: u8 = 4;

type Result<T> = std::result::Result<T, StoreError>;

/// What a lookup found: the value, or nothing (with the lease, where the caller keeps it).
pub enum Lookup<T> {
    Found(T),
    Missing(Option<Lease>),
}

/// A reader's right to store a key's value, until a write drops it or it expires.
pub struct Lease {
    key: String,
    token: Vec<u8>,
}

impl Lease {
    /// A lease not taken yet: a random token that no value can equal.
    fn new(key: &str) -> Lease {
        let mut token = vec![LEASE];
        token.extend(rand::random::<[u8; 16]>());
        Lease {
            key: key.to_string(),
            token,
        }
    }
}

/// Entries to store where a lease still holds (`Cache::fill`).
#[must_use = "a fill is written by `Cache::write` or with a new session"]
pub struct Fill(pub(super) Guarded);

/// The cache, on the same store as sessions.
#[derive(Clone)]
pub struct Cache {
    kv: Kv,
    sealer: Sealer,
}

impl Cache {
    pub fn new(kv: Kv, sealer: Sealer) -> Cache {
        Cache { kv, sealer }
    }

    /// The cached value of `key`, or what `load` reads (stored for the next reader where no
    /// write came between). Nothing found is not cached. Where the cache does not answer, SQL
    /// does.
    pub async fn get_or_load<T, F, Fut>(&self, key: &str, load: F) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        match self.lookup(key, load, false).await? {
            Lookup::Found(value) => Ok(Some(value)),
            Lookup::Missing(_) => Ok(None),
        }
    }

    /// `get_or_load`, where nothing found keeps this reader's lease (for two seconds): the
    /// caller that then makes the value stores it with `fill`, unless a write came between.
    pub async fn lookup<T, F, Fut>(&self, key: &str, load: F, keep: bool) -> Result<Lookup<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let mine = Lease::new(key);
        // The entry, or the lease taken where there was none: one round trip.
        let lease = match self
            .kv
            .get_or_set_nx(key, &mine.token, USER_CACHE_LEASE)
            .await
        {
            Ok(None) => Some(mine),
            Ok(Some(entry)) => match self.open(key, &entry) {
                Some(value) => return Ok(Lookup::Found(value)),
                // Another reader is filling it: read through without storing.
                None if entry.first() == Some(&LEASE) => None,
                // A value of another format or key: replace it.
                None => match self.kv.del(key).await {
                    Ok(_) => self.lease(key).await,
                    Err(_) => None,
                },
            },
            Err(e) => {
                tracing::debug!(error = %e, "user cache unavailable: reading SQL");
                None
            }
        };
        let loaded = load().await;
        let Some(lease) = lease else {
            return Ok(loaded?.map_or(Lookup::Missing(None), Lookup::Found));
        };
        match loaded {
            Ok(None) if keep => Ok(Lookup::Missing(Some(lease))),
            loaded => {
                // The value where one was found; otherwise (nothing, or an error) the lease
                // goes, so that the next reader need not wait for it to expire.
                let value = loaded.as_ref().ok().and_then(Option::as_ref);
                self.put(&lease, value).await;
                Ok(loaded?.map_or(Lookup::Missing(None), Lookup::Found))
            }
        }
    }

    /// A lease on a key that has no value yet (a user being made); None where the store does
    /// not answer or someone holds the key.
    pub async fn lease(&self, key: &str) -> Option<Lease> {
        let lease = Lease::new(key);
        match self.kv.set_nx(key, &lease.token, USER_CACHE_LEASE).await {
            Ok(true) => Some(lease),
            _ => None,
        }
    }

    /// The entries that store a value just made (a new user) under the lease's key and under
    /// `others`, to be written where the lease still holds (`write`, or along with other writes:
    /// `Sessions::create`). `others` must be keys that every write which could change the value
    /// drops together with the lease's key, so that a write that came between leaves nothing
    /// stale in any of them.
    pub fn fill<T: Serialize>(&self, lease: Lease, others: &[String], value: &T) -> Fill {
        let mut entries = vec![(lease.key.clone(), self.entry(&lease.key, value))];
        entries.extend(others.iter().map(|k| (k.clone(), self.entry(k, value))));
        Fill(Guarded {
            expected: lease.token,
            entries,
            ttl: USER_CACHE,
        })
    }

    /// Writes a fill on its own (one round trip).
    pub async fn write(&self, fill: Fill) {
        if let Err(e) = self.kv.set_guarded(&fill.0).await {
            tracing::debug!(error = %e, "could not fill the user cache");
        }
    }

    /// A value as its entry under `key` holds it: sealed for that key.
    fn entry<T: Serialize>(&self, key: &str, value: &T) -> Vec<u8> {
        let mut plain = vec![FORMAT];
        plain.extend(postcard::to_allocvec(value).expect("serializable"));
        let mut entry = vec![VALUE];
        entry.extend(self.sealer.seal(key, &plain));
        entry
    }

    /// Replaces the lease with the value, or drops it (None).
    async fn put<T: Serialize>(&self, lease: &Lease, value: Option<&T>) {
        let key = &lease.key;
        let entry = value.map(|value| self.entry(key, value));
        if let Err(e) = self
            .kv
            .compare_and_set(key, &lease.token, entry.as_deref(), USER_CACHE)
            .await
        {
            tracing::debug!(error = %e, "could not fill the user cache");
        }
    }

    /// The value of an entry read already (with a session); None where it is a lease or does
    /// not open.
    pub fn open<T: DeserializeOwned>(&self, key: &str, entry: &[u8]) -> Option<T> {
        let (&VALUE, sealed) = entry.split_first()? else {
            return None;
        };
        let plain = self.sealer.open(key, sealed)?;
        let (&FORMAT, bytes) = plain.split_first()? else {
            return None;
        };
        postcard::from_bytes(bytes).ok()
    }

    /// Drops entries (and any reader's lease on them). Fails where the store does not answer.
    pub async fn forget(&self, keys: &[String]) -> Result<()> {
        self.kv.del_many(keys).await
    }

    /// The second `forget` of a write that has been done: a failure is logged, not answered,
    /// since the write stands (the entry then lives out its five minutes).
    pub async fn forget_after_write(&self, keys: &[String]) {
        if let Err(e) = self.forget(keys).await {
            tracing::warn!(error = %e, "could not drop a user's cache entry after a write");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn cache() -> Cache {
        Cache::new(Kv::memory("t:"), Sealer::default())
    }

    #[tokio::test]
    async fn a_read_fills_once_and_a_write_drops_it() {
        let cache = cache();
        let loads = AtomicUsize::new(0);
        let load = |v: &'static str| {
            let loads = &loads;
            move || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(Some(v.to_string()))
            }
        };
        assert_eq!(
            cache.get_or_load("k", load("a")).await.unwrap().unwrap(),
            "a"
        );
        assert_eq!(
            cache.get_or_load("k", load("b")).await.unwrap().unwrap(),
            "a"
        );
        assert_eq!(loads.load(Ordering::SeqCst), 1, "the second read was a hit");
        cache.forget(&["k".to_string()]).await.unwrap();
        assert_eq!(
            cache.get_or_load("k", load("c")).await.unwrap().unwrap(),
            "c"
        );
    }

    #[tokio::test]
    async fn a_reader_that_read_before_a_write_does_not_store_the_old_value() {
        let cache = cache();
        let key = ["k".to_string()];
        // The reader takes its lease and reads "old"; the write lands meanwhile.
        let stale = cache
            .get_or_load("k", || async {
                cache.forget(&key).await.unwrap();
                Ok(Some("old".to_string()))
            })
            .await
            .unwrap();
        assert_eq!(
            stale.as_deref(),
            Some("old"),
            "that reader answers what it read"
        );
        let next = cache
            .get_or_load("k", || async { Ok(Some("new".to_string())) })
            .await
            .unwrap();
        assert_eq!(next.as_deref(), Some("new"), "the old value was not stored");
    }

    #[tokio::test]
    async fn nothing_found_is_not_cached_and_readers_of_a_lease_read_through() {
        let cache = cache();
        let none: Option<String> = cache.get_or_load("k", || async { Ok(None) }).await.unwrap();
        assert!(none.is_none());
        // That reader's lease went with its empty answer: the next one fills the entry.
        let made = cache.get_or_load("k", || async { Ok(Some("made".to_string())) });
        assert_eq!(made.await.unwrap().as_deref(), Some("made"));
        let hit = cache.get_or_load("k", || async { Ok(Some("not read".to_string())) });
        assert_eq!(hit.await.unwrap().as_deref(), Some("made"));
        cache.forget(&["k".to_string()]).await.unwrap();
        let inner = cache
            .get_or_load("k", || async {
                // A second reader while the first holds the lease: SQL's answer, not stored.
                cache
                    .get_or_load("k", || async { Ok(Some("second".to_string())) })
                    .await
            })
            .await
            .unwrap();
        assert_eq!(inner.as_deref(), Some("second"));
    }

    #[tokio::test]
    async fn a_fill_stores_under_its_lease_and_the_keys_it_guards_unless_a_write_came_between() {
        let cache = cache();
        let miss = || async { Ok(None::<String>) };
        let lease = |cache: Cache| async move {
            match cache.lookup("i", miss, true).await.unwrap() {
                Lookup::Missing(Some(lease)) => lease,
                _ => panic!("a miss keeps its lease"),
            }
        };
        let fill = cache.fill(lease(cache.clone()).await, &["u".to_string()], &"made");
        cache.write(fill).await;
        let read = |key: &'static str| cache.get_or_load(key, || async { Ok(None::<String>) });
        assert_eq!(read("i").await.unwrap().as_deref(), Some("made"));
        assert_eq!(read("u").await.unwrap().as_deref(), Some("made"));

        // A write between the lease and the fill drops the lease: neither key is stored.
        let keys = ["i".to_string(), "u".to_string()];
        cache.forget(&keys).await.unwrap();
        let fill = cache.fill(lease(cache.clone()).await, &["u".to_string()], &"stale");
        cache.forget(&keys).await.unwrap();
        cache.write(fill).await;
        assert_eq!(read("i").await.unwrap(), None);
        assert_eq!(read("u").await.unwrap(), None);
    }
}
