//! Server-side sessions in the key-value store, keyed by their token's digest
//! (`keys::session`), with a sliding time to live, in a compact binary layout
//! (`session_format`).
//!
//! No index of an identity's sessions is kept: a session of an identity is good while its user
//! has that identity with the binding the session was made with (`accounts` checks), so
//! unbinding ends them all at once, on every node. Reading a session therefore reads its user
//! too: where this process has seen the token before, in the same round trip (a token's user
//! never changes, so what it remembers of it needs no invalidation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::Fill;
use super::kv::IndexTtl;
use super::replays::{DoneAnswer, Replay, Replays};
use super::{keys, kv::Kv, seal::Sealer, StoreError};
use crate::domain::{now_ms, Session, SessionId, Token};

/// Sessions in the key-value store, with a sliding time to live.
#[derive(Clone)]
pub struct Sessions {
    kv: Kv,
    ttl: Duration,
    /// The absolute lifetime, however much the session is used.
    max_age: Duration,
    sealer: Sealer,
    /// The user cache key of tokens this process has read (by the token's digest), so that
    /// their next read fetches the user in the same round trip. Emptied when full.
    users_of: Arc<Mutex<HashMap<[u8; 16], String>>>,
}

/// A session as read, with its user's cache entry where it came in the same round trip.
pub struct SessionRead {
    pub session: Session,
    /// The user's entry of the user cache (`Users::from_entry` opens it).
    pub user_entry: Option<Vec<u8>>,
}

/// How many tokens `users_of` remembers (about 60 bytes each).
const REMEMBERED: usize = 100_000;

impl Sessions {
    pub fn new(kv: Kv, ttl: Duration, max_age: Duration, sealer: Sealer) -> Sessions {
        Sessions {
            kv,
            ttl,
            max_age,
            sealer,
            users_of: Default::default(),
        }
    }

    fn user_of(&self, id: &SessionId) -> Option<String> {
        let users = self.users_of.lock().unwrap_or_else(|e| e.into_inner());
        users.get(id.as_bytes()).cloned()
    }

    fn remember(&self, id: &SessionId, session: &Session) {
        let mut users = self.users_of.lock().unwrap_or_else(|e| e.into_inner());
        if users.len() >= REMEMBERED {
            users.clear();
        }
        users.insert(*id.as_bytes(), keys::cached_user(&session.user_id));
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The seconds a session has left, as sign-in and refresh answer them.
    pub fn expires_in(&self, session: &Session) -> u64 {
        self.ttl_of(session.created_at)
            .unwrap_or_default()
            .as_secs()
    }

    /// The time to live of a session that began at `created_at` (ms): the sliding TTL, or
    /// what is left of the absolute lifetime where that is less; None where it is over.
    pub fn ttl_of(&self, created_at: i64) -> Option<Duration> {
        let age = u64::try_from(now_ms() - created_at).unwrap_or(0);
        let left = (self.max_age.as_millis() as u64).checked_sub(age)?;
        (left >= 1000).then(|| self.ttl.min(Duration::from_millis(left)))
    }

    /// Notes that a session decrypted data naming another openId than its own; true the first
    /// time (within the session's time to live), so that it is warned of once. A key of its
    /// own: a decryption never writes the session, which would race a refresh of its
    /// session_key.
    pub async fn first_foreign_data(&self, id: &SessionId) -> Result<bool, StoreError> {
        let key = keys::session_foreign_data(id);
        self.kv.set_nx(&key, b"1", self.ttl).await
    }

    /// Stores a new session and returns its token; with `answer`, the login's answer for a
    /// retry of its code too, and with `fill`, the user cache's entries of a user just made, in
    /// the same round trip.
    pub async fn create(
        &self,
        session: &Session,
        answer: Option<(&Replays, DoneAnswer)>,
        fill: Option<Fill>,
    ) -> Result<Token, StoreError> {
        let token = Token::new();
        let key = keys::session(&token.id());
        let sealed = self.sealer.seal(&key, &session.encode());
        let ttl = self.ttl_of(session.created_at).unwrap_or(self.ttl);
        let replay = answer.map(|(replays, done)| {
            let record = Replay::Done {
                token: token.reveal(),
                user_id: done.user_id,
                is_new_user: done.is_new_user,
            };
            replays.sealed(&done.key, record)
        });
        let mut entries = vec![(key.as_str(), sealed.as_slice(), ttl)];
        if let Some((replay_key, bytes)) = &replay {
            entries.push((replay_key.as_str(), bytes.as_slice(), keys::LOGIN_REPLAY));
        }
        // Listed under the user (the session and the login's answer, which names the user),
        // in the same round trip, for the user's deletion.
        let index = keys::user_sessions(&session.user_id);
        self.kv
            .set_many_and_add(
                &entries,
                &index,
                IndexTtl::Renew(self.max_age),
                fill.as_ref().map(|f| &f.0),
            )
            .await?;
        self.remember(&token.id(), session);
        Ok(token)
    }

    /// Ends the sessions that wxlogin before 0.2 listed under an identity. (Since, a session of
    /// an identity ends when the identity goes: `accounts::authenticate`.)
    pub async fn end_identity(&self, appid: &str, openid: &str) -> Result<usize, StoreError> {
        let legacy = keys::legacy_identity_sessions(appid, openid);
        let keys = self.kv.take_members(&legacy).await?;
        for key in &keys {
            self.kv.del(key).await?;
        }
        Ok(keys.len())
    }

    /// Replaces what a token stands for, restarting its time to live, only where the session
    /// is still there: a write racing a logout does not bring the session back. True when
    /// written.
    pub async fn put(&self, id: &SessionId, session: &Session) -> Result<bool, StoreError> {
        let Some(ttl) = self.ttl_of(session.created_at) else {
            return Ok(false);
        };
        let key = keys::session(id);
        let sealed = self.sealer.seal(&key, &session.encode());
        self.kv.set_existing(&key, &sealed, ttl).await
    }

    /// The session of a token, restarting its time to live, with its user's cache entry where
    /// this process has read the token before (in the same round trip) and the cache holds the
    /// user; None when unknown or expired.
    pub async fn get(&self, id: &SessionId) -> Result<Option<SessionRead>, StoreError> {
        let key = keys::session(id);
        let (bytes, user_entry) = match self.user_of(id) {
            Some(user_key) => self.kv.getex_with(&key, self.ttl, &user_key).await?,
            None => (self.kv.getex(&key, self.ttl).await?, None),
        };
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        // An entry that does not open or parse (another key, an incompatible version) is no
        // session.
        let Some(mut session) = self
            .sealer
            .open(&key, &bytes)
            .and_then(|plain| Session::decode(&plain))
        else {
            return Ok(None);
        };
        if session.created_at == 0 {
            // Stored before format 4, with no beginning: its absolute lifetime starts now.
            session.created_at = now_ms();
            self.put(id, &session).await?;
        } else if self.ttl_of(session.created_at).is_none() {
            // Past its absolute lifetime, however recently used.
            self.kv.del(&key).await?;
            return Ok(None);
        }
        if user_entry.is_none() {
            self.remember(id, &session);
        }
        Ok(Some(SessionRead {
            session,
            user_entry,
        }))
    }

    /// Ends a session; true when it existed.
    pub async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.kv.del(&keys::session(id)).await
    }

    /// Deletes every session listed under a user, and the list: how many were still there.
    pub async fn delete_all_of(&self, user_id: &str) -> Result<usize, StoreError> {
        let keys = self.kv.take_members(&keys::user_sessions(user_id)).await?;
        let mut deleted = 0;
        for key in &keys {
            deleted += usize::from(self.kv.del(key).await?);
        }
        Ok(deleted)
    }

    /// The live sessions listed under a user, as stored (no token: only their contents), each
    /// with when it was last used (Unix ms), as its sliding time to live tells.
    pub async fn of_user(&self, user_id: &str) -> Result<Vec<(Session, i64)>, StoreError> {
        let mut live = Vec::new();
        for key in self.kv.members(&keys::user_sessions(user_id)).await? {
            let opened = self
                .kv
                .get(&key)
                .await?
                .and_then(|b| self.sealer.open(&key, &b));
            let Some(session) = opened.and_then(|plain| Session::decode(&plain)) else {
                continue;
            };
            // Each use restarts the TTL (capped near the absolute lifetime's end, where this
            // estimate says later than it was).
            let left = self.kv.ttl(&key).await?.unwrap_or(0);
            let idle = self.ttl.as_secs().saturating_sub(left) as i64;
            let last_used = (now_ms() - idle * 1000).max(session.created_at);
            live.push((session, last_used));
        }
        Ok(live)
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;
    use secrecy::SecretString;

    fn sealers() -> [Sealer; 2] {
        let key = SecretString::from("1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        [Sealer::default(), Sealer::parse(&key).unwrap()]
    }

    #[tokio::test]
    async fn a_write_racing_a_logout_does_not_bring_the_session_back() {
        let kv = Kv::memory("t:");
        let (ttl, max_age) = (Duration::from_secs(60), Duration::from_secs(86_400));
        let sessions = Sessions::new(kv, ttl, max_age, Sealer::default());
        let session = Session::wechat("u1", "wx1", "o1", "tiihtNczf5v6AKRyjwEUhQ==".into());
        let token = sessions.create(&session, None, None).await.unwrap();
        // A refresh read the session; a logout ends it; the refresh writes.
        let read = sessions.get(&token.id()).await.unwrap().unwrap().session;
        assert!(sessions.delete(&token.id()).await.unwrap());
        assert!(!sessions.put(&token.id(), &read).await.unwrap());
        assert!(sessions.get(&token.id()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_session_ends_at_its_absolute_lifetime_however_used() {
        let kv = Kv::memory("t:");
        let (ttl, max_age) = (Duration::from_secs(60), Duration::from_secs(3600));
        let sessions = Sessions::new(kv, ttl, max_age, Sealer::default());
        let mut session = Session::password("u1");
        assert_eq!(sessions.ttl_of(session.created_at), Some(ttl));
        // Begun 59 minutes 30 seconds ago: 30 seconds left, whatever the sliding TTL says.
        session.created_at = now_ms() - 3_570_000;
        let left = sessions.ttl_of(session.created_at).unwrap();
        assert!(
            left <= Duration::from_secs(30) && left >= Duration::from_secs(29),
            "{left:?}"
        );
        let token = sessions.create(&session, None, None).await.unwrap();
        assert!(sessions.get(&token.id()).await.unwrap().is_some());
        session.created_at = now_ms() - 3_600_001;
        let old = sessions.create(&session, None, None).await.unwrap();
        assert!(sessions.get(&old.id()).await.unwrap().is_none());
        assert!(!sessions.put(&old.id(), &session).await.unwrap());
        // A session stored before format 4 gets its beginning at its first read.
        session.created_at = 0;
        let legacy = sessions.create(&session, None, None).await.unwrap();
        let read = sessions.get(&legacy.id()).await.unwrap().unwrap().session;
        assert!(now_ms() - read.created_at < 5_000);
        let again = sessions.get(&legacy.id()).await.unwrap().unwrap().session;
        assert_eq!(again.created_at, read.created_at, "stamped once, and kept");
    }

    #[tokio::test]
    async fn a_token_read_before_reads_its_user_in_the_same_trip() {
        for sealer in sealers() {
            let kv = Kv::memory("t:");
            let ttl = Duration::from_secs(60);
            let max_age = Duration::from_secs(86_400);
            let here = Sessions::new(kv.clone(), ttl, max_age, sealer.clone());
            let elsewhere = Sessions::new(kv.clone(), ttl, max_age, sealer.clone());
            let session = Session::wechat("u1", "wx1", "o1", "tiihtNczf5v6AKRyjwEUhQ==".into());
            let token = here.create(&session, None, None).await.unwrap();
            kv.set(&keys::cached_user("u1"), b"entry", ttl)
                .await
                .unwrap();

            let SessionRead {
                session: read,
                user_entry: entry,
            } = here.get(&token.id()).await.unwrap().expect("stored");
            assert_eq!(read.user_id, "u1");
            assert_eq!(
                entry.as_deref(),
                Some(&b"entry"[..]),
                "the maker knows its user"
            );
            // Another node reads the session alone the first time, then with its user.
            let SessionRead {
                session: read,
                user_entry: entry,
            } = elsewhere.get(&token.id()).await.unwrap().expect("shared");
            assert_eq!(read.session_key, session.session_key);
            assert!(entry.is_none());
            let entry = elsewhere
                .get(&token.id())
                .await
                .unwrap()
                .unwrap()
                .user_entry;
            assert_eq!(entry.as_deref(), Some(&b"entry"[..]));

            // Bytes that do not open are no session, remembered token or not.
            let key = keys::session(&token.id());
            kv.set(&key, b"garbage that opens under no key", ttl)
                .await
                .unwrap();
            assert!(here.get(&token.id()).await.unwrap().is_none());
            assert!(here.get(&Token::new().id()).await.unwrap().is_none());
        }
    }
}
