//! Server-side sessions in the key-value store, keyed by their token's digest
//! (`keys::session`), with a sliding time to live, in a compact binary layout.
//!
//! No index of an identity's sessions is kept: a session of an identity is good while its user
//! has that identity with the binding the session was made with (`accounts` checks), so
//! unbinding ends them all at once, on every node. Reading a session therefore reads its user
//! too: where this process has seen the token before, in the same round trip (a token's user
//! never changes, so what it remembers of it needs no invalidation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::replays::{DoneAnswer, Replay, Replays};
use super::{keys, kv::Kv, seal::Sealer, StoreError};
use crate::domain::{now_ms, Session, SessionId, Token};

/// The first byte of a stored session; a new layout takes a new number. Formats 1 (`V1`) and 2
/// (`Compact` without `binding`) are still read, so that sessions outlive an upgrade.
const SESSION_FORMAT_1: u8 = 1;
const SESSION_FORMAT_2: u8 = 2;
/// Format 3: `Compact3`, whose UUID user id and 16-byte session_keys are raw bytes.
const SESSION_FORMAT_3: u8 = 3;
/// Format 4: `Compact`, with the time the session began, and AppIDs as raw bytes.
const SESSION_FORMAT: u8 = 4;

/// A session as format 1 stored it.
#[derive(Serialize, Deserialize)]
struct V1 {
    user_id: String,
    appid: Option<String>,
    openid: Option<String>,
    session_key: Option<String>,
    previous_key: Option<String>,
    previous_until: Option<i64>,
    unionid_known: bool,
}

/// A text as stored: the shapes a million sessions repeat, as raw bytes.
#[derive(Serialize, Deserialize)]
enum Text {
    /// A hyphenated lowercase UUID (user ids).
    Uuid([u8; 16]),
    /// Standard base64 of 16 bytes (session_keys).
    Base64Of16([u8; 16]),
    Plain(String),
    /// `wx` and 16 lowercase hex digits (AppIDs), since format 4.
    WxAppId([u8; 8]),
}

impl Text {
    fn pack(text: &str) -> Text {
        use base64::engine::general_purpose::STANDARD;
        if let Ok(u) = Uuid::try_parse(text) {
            if u.hyphenated().to_string() == text {
                return Text::Uuid(*u.as_bytes());
            }
        }
        if let Ok(bytes) = STANDARD.decode(text) {
            if let (Ok(raw), true) = (<[u8; 16]>::try_from(bytes), text.len() == 24) {
                if STANDARD.encode(raw) == text {
                    return Text::Base64Of16(raw);
                }
            }
        }
        if let Some(hex_digits) = text.strip_prefix("wx") {
            if let Ok(raw) = <[u8; 8]>::try_from(hex::decode(hex_digits).unwrap_or_default()) {
                if hex::encode(raw) == hex_digits {
                    return Text::WxAppId(raw);
                }
            }
        }
        Text::Plain(text.to_string())
    }

    fn unpack(self) -> String {
        match self {
            Text::Uuid(b) => Uuid::from_bytes(b).hyphenated().to_string(),
            Text::Base64Of16(b) => base64::engine::general_purpose::STANDARD.encode(b),
            Text::Plain(s) => s,
            Text::WxAppId(b) => format!("wx{}", hex::encode(b)),
        }
    }
}

/// `Session` as format 4 stores it: the previous key with its deadline (one byte where there
/// is none), the binding, and when the session began.
#[derive(Serialize, Deserialize)]
struct Compact {
    user_id: Text,
    appid: Option<Text>,
    openid: Option<String>,
    session_key: Option<Text>,
    previous: Option<(Text, i64)>,
    unionid_known: bool,
    binding: Option<i64>,
    created_at: i64,
}

/// `Session` as format 3 stored it.
#[derive(Deserialize)]
struct Compact3 {
    user_id: Text,
    appid: Option<String>,
    openid: Option<String>,
    session_key: Option<Text>,
    previous: Option<(Text, i64)>,
    unionid_known: bool,
    binding: Option<i64>,
}

impl From<Compact3> for Compact {
    fn from(c: Compact3) -> Compact {
        Compact {
            user_id: c.user_id,
            appid: c.appid.map(Text::Plain),
            openid: c.openid,
            session_key: c.session_key,
            previous: c.previous,
            unionid_known: c.unionid_known,
            binding: c.binding,
            created_at: 0,
        }
    }
}

/// `Session` as format 2 stored it.
#[derive(Deserialize)]
struct Compact2 {
    user_id: Text,
    appid: Option<String>,
    openid: Option<String>,
    session_key: Option<Text>,
    previous_key: Option<Text>,
    previous_until: Option<i64>,
    unionid_known: bool,
}

impl From<Compact2> for Compact {
    fn from(c: Compact2) -> Compact {
        Compact {
            user_id: c.user_id,
            appid: c.appid.map(Text::Plain),
            openid: c.openid,
            session_key: c.session_key,
            previous: c.previous_key.zip(c.previous_until),
            unionid_known: c.unionid_known,
            binding: None,
            created_at: 0,
        }
    }
}

impl From<Compact> for Session {
    fn from(c: Compact) -> Session {
        let (previous_key, previous_until) = c.previous.unzip();
        Session {
            user_id: c.user_id.unpack(),
            appid: c.appid.map(Text::unpack),
            openid: c.openid,
            session_key: c.session_key.map(Text::unpack),
            previous_key: previous_key.map(Text::unpack),
            previous_until,
            unionid_known: c.unionid_known,
            binding: c.binding,
            created_at: c.created_at,
        }
    }
}

/// The storage layout is the store's business, so it is written here, beside the store.
impl Session {
    /// The bytes kept in the store: a version byte, then postcard of `Compact`.
    pub fn encode(&self) -> Vec<u8> {
        let compact = Compact {
            user_id: Text::pack(&self.user_id),
            appid: self.appid.as_deref().map(Text::pack),
            openid: self.openid.clone(),
            session_key: self.session_key.as_deref().map(Text::pack),
            previous: match (&self.previous_key, self.previous_until) {
                (Some(key), Some(until)) => Some((Text::pack(key), until)),
                _ => None,
            },
            unionid_known: self.unionid_known,
            binding: self.binding,
            created_at: self.created_at,
        };
        let mut bytes = vec![SESSION_FORMAT];
        bytes.extend(postcard::to_allocvec(&compact).expect("a session always encodes"));
        bytes
    }

    /// A session from its stored bytes. Bytes of another format or version are no session: the
    /// version byte must be known and every byte must be used.
    pub fn decode(bytes: &[u8]) -> Option<Session> {
        let (&format, rest) = bytes.split_first()?;
        fn whole<'a, T: Deserialize<'a>>(rest: &'a [u8]) -> Option<T> {
            match postcard::take_from_bytes::<T>(rest) {
                Ok((value, [])) => Some(value),
                _ => None,
            }
        }
        match format {
            SESSION_FORMAT => whole::<Compact>(rest).map(Session::from),
            SESSION_FORMAT_3 => whole::<Compact3>(rest).map(|c| Session::from(Compact::from(c))),
            SESSION_FORMAT_2 => whole::<Compact2>(rest).map(|c| Session::from(Compact::from(c))),
            SESSION_FORMAT_1 => whole::<V1>(rest).map(|v| Session {
                user_id: v.user_id,
                appid: v.appid,
                openid: v.openid,
                session_key: v.session_key,
                previous_key: v.previous_key,
                previous_until: v.previous_until,
                unionid_known: v.unionid_known,
                binding: None,
                created_at: 0,
            }),
            _ => None,
        }
    }
}

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

    /// Stores a new session and returns its token; with `answer`, the login's answer for a
    /// retry of its code too, in the same round trip.
    pub async fn create(
        &self,
        session: &Session,
        answer: Option<(&Replays, DoneAnswer)>,
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
        self.kv.set_many(&entries).await?;
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
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    const USER: &str = "8d7f2c1e-3b4a-4c5d-9e6f-7a8b9c0d1e2f";
    const KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";

    #[test]
    fn every_kind_of_session_round_trips() {
        let mut refreshed = Session::wechat(USER, "wx1", "o", KEY.into());
        refreshed.previous_key = Some("HyVFkGl5F5OQWJZZaNzBBg==".into());
        refreshed.previous_until = Some(1_700_000_000);
        refreshed.unionid_known = true;
        for s in [
            Session::password(USER),
            Session::password("not a uuid"),
            Session::password("8D7F2C1E-3B4A-4C5D-9E6F-7A8B9C0D1E2F"),
            Session::web("u", "wx2", "o"),
            Session::wechat("u", "wx1", "o", "k".into()),
            Session::wechat(USER, "wx1", "o", "tiihtNczf5v6AKRyjwEUhQ".into()),
            refreshed,
        ] {
            let back = Session::decode(&s.encode()).expect("decodes");
            assert_eq!(format!("{back:?}"), format!("{s:?}"));
            assert_eq!(back.session_key, s.session_key);
            assert_eq!(back.previous_key, s.previous_key);
            assert_eq!(back.previous_until, s.previous_until);
            assert_eq!(back.unionid_known, s.unionid_known);
            assert_eq!(back.binding, s.binding);
        }
        let s = Session::wechat(
            USER,
            "wx4f4bc4dec97d474b",
            "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
            KEY.into(),
        );
        // 88 bytes of fields and up to 6 of the binding: sealed (29 bytes more), the value
        // fits Redis' 128-byte allocation.
        let mut s = s;
        s.binding = Some(i64::from(u32::MAX >> 1));
        assert!(
            s.encode().len() <= 94,
            "compact: {} bytes",
            s.encode().len()
        );
        let json = br#"{"user_id":"247e0629-b0ef-4d04-94c0-138d899fdaad","appid":"wxa"}"#;
        assert!(
            Session::decode(json).is_none(),
            "bytes of another format are no session"
        );
        let mut extra = Session::password("u").encode();
        extra.push(0);
        assert!(Session::decode(&extra).is_none());
    }

    #[test]
    fn sessions_stored_before_the_compact_format_still_read() {
        let v1 = V1 {
            user_id: USER.into(),
            appid: Some("wx1".into()),
            openid: Some("o".into()),
            session_key: Some(KEY.into()),
            previous_key: None,
            previous_until: None,
            unionid_known: true,
        };
        let mut bytes = vec![SESSION_FORMAT_1];
        bytes.extend(postcard::to_allocvec(&v1).unwrap());
        let back = Session::decode(&bytes).expect("format 1 reads");
        assert_eq!(back.user_id, USER);
        assert_eq!(back.session_key.as_deref(), Some(KEY));
        assert!(back.unionid_known);
        assert_eq!(back.binding, None, "made before bindings had numbers");
        // Format 2: the fields one by one, no binding.
        let mut v2 = vec![SESSION_FORMAT_2];
        v2.extend(
            postcard::to_allocvec(&(
                Text::pack(USER),
                Some("wx1"),
                Some("o"),
                Some(Text::pack(KEY)),
                None::<Text>,
                None::<i64>,
                false,
            ))
            .unwrap(),
        );
        let back = Session::decode(&v2).expect("format 2 reads");
        assert_eq!(back.user_id, USER);
        assert_eq!(back.session_key.as_deref(), Some(KEY));
        assert_eq!(back.binding, None);
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
        let token = sessions.create(&session, None).await.unwrap();
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
        let token = sessions.create(&session, None).await.unwrap();
        assert!(sessions.get(&token.id()).await.unwrap().is_some());
        session.created_at = now_ms() - 3_600_001;
        let old = sessions.create(&session, None).await.unwrap();
        assert!(sessions.get(&old.id()).await.unwrap().is_none());
        assert!(!sessions.put(&old.id(), &session).await.unwrap());
        // A session stored before format 4 gets its beginning at its first read.
        session.created_at = 0;
        let legacy = sessions.create(&session, None).await.unwrap();
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
            let token = here.create(&session, None).await.unwrap();
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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn stored_bytes_of_any_shape_decode_or_are_refused(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let _ = Session::decode(&bytes);
        }

        #[test]
        fn any_text_is_a_token_or_not(text in ".{0,80}") {
            let _ = Token::parse(&text);
        }
    }
}
