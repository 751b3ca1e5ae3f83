//! Server-side sessions: what a bearer token stands for.
//!
//! The token is a v4 UUID handed to the client once. The store is keyed by the token's SHA-256,
//! so a copy of Redis holds no token a thief could present, and a lookup's timing depends on the
//! hash, not on how much of a guessed token is right. The session_key never leaves the server.
//!
//! No index of an identity's sessions is kept: a session of an identity is good while its user
//! has that identity with the binding the session was made with (`accounts` checks), so
//! unbinding ends them all at once, on every node. Reading a session therefore reads its user
//! too: where this process has seen the token before, in the same round trip (a token's user
//! never changes, so what it remembers of it needs no invalidation).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{cache, kv::Kv, seal::Sealer, StoreError};

/// A bearer token: a v4 UUID.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Token(Uuid);

impl Token {
    pub fn new() -> Token {
        Token(Uuid::new_v4())
    }

    /// Reads a token as the client sends it; anything but a v4 UUID is no token.
    pub fn parse(text: &str) -> Option<Token> {
        Uuid::try_parse(text.trim())
            .ok()
            .filter(|u| u.get_version_num() == 4)
            .map(Token)
    }

    /// The text given to the client, once, in the login answer.
    pub fn reveal(&self) -> String {
        self.0.hyphenated().to_string()
    }

    /// 128 bits of the token's SHA-256 in base64url: as unguessable as the token, and short,
    /// since a million sessions each carry it.
    fn id(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.digest())
    }

    fn digest(&self) -> [u8; 16] {
        let digest = Sha256::digest(self.0.as_bytes());
        digest[..16].try_into().expect("16 of 32 bytes")
    }

    fn storage_key(&self) -> String {
        session_key_of(&self.id())
    }
}

/// The key of a session by its id.
fn session_key_of(id: &str) -> String {
    format!("sess:{id}")
}

/// The index as wxlogin before 0.2 named it, with keys as members: still emptied on unbinding,
/// for sessions made before an upgrade.
fn legacy_identity_key(appid: &str, openid: &str) -> String {
    format!("isess:{appid}:{openid}")
}

impl Default for Token {
    fn default() -> Self {
        Token::new()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

/// The first byte of a stored session; a new layout takes a new number. Formats 1 (`V1`) and 2
/// (`Compact` without `binding`) are still read, so that sessions outlive an upgrade.
const SESSION_FORMAT_1: u8 = 1;
const SESSION_FORMAT_2: u8 = 2;
/// Format 3: `Compact`, whose UUID user id and 16-byte session_keys are raw bytes.
const SESSION_FORMAT: u8 = 3;

/// What a token stands for. Stored as postcard (no field names) in the compact layout of
/// `Compact`, so that a session takes under 100 bytes before its seal and pointer; see `encode`.
#[derive(Clone)]
pub struct Session {
    pub user_id: String,
    /// The mini program, for a session made by a WeChat login (not by a password).
    pub appid: Option<String>,
    pub openid: Option<String>,
    /// The current session_key, base64 as WeChat gave it.
    pub session_key: Option<String>,
    /// The key before the last refresh, tried for decryption only until `previous_until`.
    pub previous_key: Option<String>,
    /// Unix seconds after which `previous_key` is no longer tried.
    pub previous_until: Option<i64>,
    /// The identity's unionid is recorded already: decrypted data need not record it.
    pub unionid_known: bool,
    /// The binding of the identity it signs in (`store::users::Identity::binding`): the
    /// session is good while the identity has this one. None for sessions of no identity, of
    /// rows bound before bindings had numbers, and stored before format 3.
    pub binding: Option<i64>,
}

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
        Text::Plain(text.to_string())
    }

    fn unpack(self) -> String {
        match self {
            Text::Uuid(b) => Uuid::from_bytes(b).hyphenated().to_string(),
            Text::Base64Of16(b) => base64::engine::general_purpose::STANDARD.encode(b),
            Text::Plain(s) => s,
        }
    }
}

/// `Session` as format 3 stores it: the previous key with its deadline (one byte where there
/// is none), and the binding.
#[derive(Serialize, Deserialize)]
struct Compact {
    user_id: Text,
    appid: Option<String>,
    openid: Option<String>,
    session_key: Option<Text>,
    previous: Option<(Text, i64)>,
    unionid_known: bool,
    binding: Option<i64>,
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
            appid: c.appid,
            openid: c.openid,
            session_key: c.session_key,
            previous: c.previous_key.zip(c.previous_until),
            unionid_known: c.unionid_known,
            binding: None,
        }
    }
}

impl From<Compact> for Session {
    fn from(c: Compact) -> Session {
        let (previous_key, previous_until) = c.previous.unzip();
        Session {
            user_id: c.user_id.unpack(),
            appid: c.appid,
            openid: c.openid,
            session_key: c.session_key.map(Text::unpack),
            previous_key: previous_key.map(Text::unpack),
            previous_until,
            unionid_known: c.unionid_known,
            binding: c.binding,
        }
    }
}

impl Session {
    /// The bytes kept in the store: a version byte, then postcard of `Compact`.
    pub fn encode(&self) -> Vec<u8> {
        let compact = Compact {
            user_id: Text::pack(&self.user_id),
            appid: self.appid.clone(),
            openid: self.openid.clone(),
            session_key: self.session_key.as_deref().map(Text::pack),
            previous: match (&self.previous_key, self.previous_until) {
                (Some(key), Some(until)) => Some((Text::pack(key), until)),
                _ => None,
            },
            unionid_known: self.unionid_known,
            binding: self.binding,
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
            }),
            _ => None,
        }
    }

    /// The session_keys worth trying for open data, current first.
    pub fn decryption_keys(&self, now: i64) -> impl Iterator<Item = &str> {
        let previous = match (&self.previous_key, self.previous_until) {
            (Some(k), Some(until)) if now < until => Some(k.as_str()),
            _ => None,
        };
        self.session_key.as_deref().into_iter().chain(previous)
    }

    /// A session of a WeChat identity.
    pub fn wechat(user_id: &str, appid: &str, openid: &str, session_key: String) -> Session {
        Session {
            user_id: user_id.to_string(),
            appid: Some(appid.to_string()),
            openid: Some(openid.to_string()),
            session_key: Some(session_key),
            previous_key: None,
            previous_until: None,
            unionid_known: false,
            binding: None,
        }
    }

    /// A session of a web sign-in: an identity, no session_key.
    pub fn web(user_id: &str, appid: &str, openid: &str) -> Session {
        Session {
            user_id: user_id.to_string(),
            appid: Some(appid.to_string()),
            openid: Some(openid.to_string()),
            session_key: None,
            previous_key: None,
            previous_until: None,
            unionid_known: false,
            binding: None,
        }
    }

    /// A session made with a username and password: no WeChat session_key.
    pub fn password(user_id: &str) -> Session {
        Session {
            user_id: user_id.to_string(),
            appid: None,
            openid: None,
            session_key: None,
            previous_key: None,
            previous_until: None,
            unionid_known: false,
            binding: None,
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("appid", &self.appid)
            .field("openid", &self.openid)
            .field("session_key", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// Sessions in the key-value store, with a sliding time to live.
#[derive(Clone)]
pub struct Sessions {
    kv: Kv,
    ttl: Duration,
    sealer: Sealer,
    /// The user cache key of tokens this process has read (by the token's digest), so that
    /// their next read fetches the user in the same round trip. Emptied when full.
    users_of: Arc<Mutex<HashMap<[u8; 16], String>>>,
}

/// How many tokens `users_of` remembers (about 60 bytes each).
const REMEMBERED: usize = 100_000;

impl Sessions {
    pub fn new(kv: Kv, ttl: Duration, sealer: Sealer) -> Sessions {
        Sessions {
            kv,
            ttl,
            sealer,
            users_of: Default::default(),
        }
    }

    fn user_of(&self, token: &Token) -> Option<String> {
        let users = self.users_of.lock().unwrap_or_else(|e| e.into_inner());
        users.get(&token.digest()).cloned()
    }

    fn remember(&self, token: &Token, session: &Session) {
        let mut users = self.users_of.lock().unwrap_or_else(|e| e.into_inner());
        if users.len() >= REMEMBERED {
            users.clear();
        }
        users.insert(token.digest(), cache::user_key(&session.user_id));
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores a new session and returns its token.
    pub async fn create(&self, session: &Session) -> Result<Token, StoreError> {
        self.create_with(session, |_| None).await
    }

    /// `create`, writing in the same round trip what `also` makes of the new token (a key, its
    /// value and time to live).
    pub async fn create_with(
        &self,
        session: &Session,
        also: impl FnOnce(&Token) -> Option<(String, Vec<u8>, Duration)>,
    ) -> Result<Token, StoreError> {
        let token = Token::new();
        let also = also(&token);
        let also = also
            .as_ref()
            .map(|(k, v, t)| (k.as_str(), v.as_slice(), *t));
        let key = token.storage_key();
        let sealed = self.sealer.seal(&key, &session.encode());
        self.kv.set_also(&key, &sealed, self.ttl, also).await?;
        self.remember(&token, session);
        Ok(token)
    }

    /// Ends the sessions that wxlogin before 0.2 listed under an identity. (Since, a session of
    /// an identity ends when the identity goes: `accounts::authenticate`.)
    pub async fn end_identity(&self, appid: &str, openid: &str) -> Result<usize, StoreError> {
        let keys = self
            .kv
            .set_take(&legacy_identity_key(appid, openid))
            .await?;
        for key in &keys {
            self.kv.del(key).await?;
        }
        Ok(keys.len())
    }

    /// Replaces what a token stands for, restarting its time to live.
    pub async fn put(&self, token: &Token, session: &Session) -> Result<(), StoreError> {
        let key = token.storage_key();
        self.kv
            .set(&key, &self.sealer.seal(&key, &session.encode()), self.ttl)
            .await
    }

    /// The session of a token, restarting its time to live, with its user's cache entry where
    /// this process has read the token before (in the same round trip) and the cache holds the
    /// user; None when unknown or expired.
    pub async fn get(
        &self,
        token: &Token,
    ) -> Result<Option<(Session, Option<Vec<u8>>)>, StoreError> {
        let key = token.storage_key();
        let (bytes, user_entry) = match self.user_of(token) {
            Some(user_key) => self.kv.get_touch_and_get(&key, self.ttl, &user_key).await?,
            None => (self.kv.get_touch(&key, self.ttl).await?, None),
        };
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        // An entry that does not open or parse (another key, an incompatible version) is no
        // session.
        let Some(session) = self
            .sealer
            .open(&key, &bytes)
            .and_then(|plain| Session::decode(&plain))
        else {
            return Ok(None);
        };
        if user_entry.is_none() {
            self.remember(token, &session);
        }
        Ok(Some((session, user_entry)))
    }

    /// Ends a session; true when it existed.
    pub async fn delete(&self, token: &Token) -> Result<bool, StoreError> {
        self.kv.del(&token.storage_key()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_v4_uuids_are_tokens() {
        let t = Token::new();
        assert_eq!(Token::parse(&t.reveal()), Some(t));
        assert!(Token::parse("not-a-token").is_none());
        assert!(Token::parse("00000000-0000-1000-8000-000000000000").is_none());
        assert!(!format!("{t:?}").contains(&t.reveal()));
    }

    #[test]
    fn previous_key_is_tried_only_in_its_window() {
        let s = Session {
            user_id: "u".into(),
            appid: Some("a".into()),
            openid: Some("o".into()),
            session_key: Some("new".into()),
            previous_key: Some("old".into()),
            previous_until: Some(100),
            unionid_known: false,
            binding: None,
        };
        assert_eq!(s.decryption_keys(99).collect::<Vec<_>>(), ["new", "old"]);
        assert_eq!(s.decryption_keys(100).collect::<Vec<_>>(), ["new"]);
        assert!(!format!("{s:?}").contains("new"));
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
    async fn a_token_read_before_reads_its_user_in_the_same_trip() {
        for sealer in sealers() {
            let kv = Kv::memory("t:");
            let ttl = Duration::from_secs(60);
            let here = Sessions::new(kv.clone(), ttl, sealer.clone());
            let elsewhere = Sessions::new(kv.clone(), ttl, sealer.clone());
            let session = Session::wechat("u1", "wx1", "o1", "tiihtNczf5v6AKRyjwEUhQ==".into());
            let token = here.create(&session).await.unwrap();
            kv.set(&cache::user_key("u1"), b"entry", ttl).await.unwrap();

            let (read, entry) = here.get(&token).await.unwrap().expect("stored");
            assert_eq!(read.user_id, "u1");
            assert_eq!(
                entry.as_deref(),
                Some(&b"entry"[..]),
                "the maker knows its user"
            );
            // Another node reads the session alone the first time, then with its user.
            let (read, entry) = elsewhere.get(&token).await.unwrap().expect("shared");
            assert_eq!(read.session_key, session.session_key);
            assert!(entry.is_none());
            let (_, entry) = elsewhere.get(&token).await.unwrap().unwrap();
            assert_eq!(entry.as_deref(), Some(&b"entry"[..]));

            // Bytes that do not open are no session, remembered token or not.
            let key = token.storage_key();
            kv.set(&key, b"garbage that opens under no key", ttl)
                .await
                .unwrap();
            assert!(here.get(&token).await.unwrap().is_none());
            assert!(here.get(&Token::new()).await.unwrap().is_none());
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn stored_bytes_of_any_shape_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Session::decode(&bytes);
        }

        #[test]
        fn any_text_is_a_token_or_not(text in ".{0,80}") {
            let _ = Token::parse(&text);
        }
    }
}
