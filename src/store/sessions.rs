//! Server-side sessions: what a bearer token stands for.
//!
//! The token is a v4 UUID handed to the client once. The store is keyed by the token's SHA-256,
//! so a copy of Redis holds no token a thief could present, and a lookup's timing depends on the
//! hash, not on how much of a guessed token is right. The session_key never leaves the server.

use std::fmt;
use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{kv::Kv, seal::Sealer, StoreError};

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
        let digest = Sha256::digest(self.0.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..16])
    }

    fn storage_key(&self) -> String {
        session_key_of(&self.id())
    }
}

/// The key of a session by its id (an identity's index is its sessions' ids, each followed by a
/// space).
fn session_key_of(id: &str) -> String {
    format!("sess:{id}")
}

/// The index of an identity's sessions, by 128 bits of SHA-256: no openid in clear.
fn identity_key(appid: &str, openid: &str) -> String {
    let digest = Sha256::new()
        .chain_update(appid)
        .chain_update([0])
        .chain_update(openid)
        .finalize();
    format!("isess:{}", URL_SAFE_NO_PAD.encode(&digest[..16]))
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

/// The first byte of a stored session; a new layout takes a new number. Format 1 (the fields
/// below as they are) is still read, so that sessions outlive an upgrade.
const SESSION_FORMAT_1: u8 = 1;
/// Format 2: a UUID user id and a session_key of 16 bytes kept as raw bytes (28 bytes less).
const SESSION_FORMAT: u8 = 2;

/// What a token stands for. Stored as postcard (no field names) in the compact layout of
/// `Compact`, so that a session takes about 90 bytes of value in Redis; see `encode`.
#[derive(Clone, Serialize, Deserialize)]
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

/// `Session` as format 2 stores it.
#[derive(Serialize, Deserialize)]
struct Compact {
    user_id: Text,
    appid: Option<String>,
    openid: Option<String>,
    session_key: Option<Text>,
    previous_key: Option<Text>,
    previous_until: Option<i64>,
    unionid_known: bool,
}

impl Session {
    /// The bytes kept in the store: a version byte, then postcard of `Compact`.
    pub fn encode(&self) -> Vec<u8> {
        let compact = Compact {
            user_id: Text::pack(&self.user_id),
            appid: self.appid.clone(),
            openid: self.openid.clone(),
            session_key: self.session_key.as_deref().map(Text::pack),
            previous_key: self.previous_key.as_deref().map(Text::pack),
            previous_until: self.previous_until,
            unionid_known: self.unionid_known,
        };
        let mut bytes = vec![SESSION_FORMAT];
        bytes.extend(postcard::to_allocvec(&compact).expect("a session always encodes"));
        bytes
    }

    /// A session from its stored bytes. Bytes of another format or version are no session: the
    /// version byte must be known and every byte must be used.
    pub fn decode(bytes: &[u8]) -> Option<Session> {
        let (&format, rest) = bytes.split_first()?;
        match format {
            SESSION_FORMAT => match postcard::take_from_bytes::<Compact>(rest) {
                Ok((c, [])) => Some(Session {
                    user_id: c.user_id.unpack(),
                    appid: c.appid,
                    openid: c.openid,
                    session_key: c.session_key.map(Text::unpack),
                    previous_key: c.previous_key.map(Text::unpack),
                    previous_until: c.previous_until,
                    unionid_known: c.unionid_known,
                }),
                _ => None,
            },
            SESSION_FORMAT_1 => match postcard::take_from_bytes(rest) {
                Ok((session, [])) => Some(session),
                _ => None,
            },
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
}

impl Sessions {
    pub fn new(kv: Kv, ttl: Duration, sealer: Sealer) -> Sessions {
        Sessions { kv, ttl, sealer }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores a new session and returns its token. A WeChat session is also listed under its
    /// identity, so that unbinding the identity can end its sessions.
    pub async fn create(&self, session: &Session) -> Result<Token, StoreError> {
        self.create_with(session, |_| None).await
    }

    /// `create`, writing in the same round trip what `also` makes of the new token (a key, its
    /// value and time to live), where the session is a WeChat one.
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
        match (&session.appid, &session.openid) {
            (Some(appid), Some(openid)) => {
                let key = token.storage_key();
                let index = identity_key(appid, openid);
                let sealed = self.sealer.seal(&key, &session.encode());
                self.kv
                    .set_and_append(
                        &key,
                        &sealed,
                        self.ttl,
                        &index,
                        &format!("{} ", token.id()),
                        also,
                    )
                    .await?;
            }
            _ => {
                self.put(&token, session).await?;
                if let Some((key, value, ttl)) = also {
                    self.kv.set(key, value, ttl).await?;
                }
            }
        }
        Ok(token)
    }

    /// Ends every session of a WeChat identity.
    pub async fn end_identity(&self, appid: &str, openid: &str) -> Result<usize, StoreError> {
        let index = self.kv.take(&identity_key(appid, openid)).await?;
        let index = String::from_utf8_lossy(index.as_deref().unwrap_or_default()).into_owned();
        let ids: Vec<&str> = index.split_whitespace().collect();
        let legacy = self
            .kv
            .set_take(&legacy_identity_key(appid, openid))
            .await?;
        let keys: Vec<String> = ids
            .iter()
            .map(|id| session_key_of(id))
            .chain(legacy)
            .collect();
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

    /// The session of a token, restarting its time to live; None when unknown or expired.
    pub async fn get(&self, token: &Token) -> Result<Option<Session>, StoreError> {
        let key = token.storage_key();
        let Some(bytes) = self.kv.get_touch(&key, self.ttl).await? else {
            return Ok(None);
        };
        // An entry that does not open or parse (another key, an incompatible version) is no
        // session.
        Ok(self
            .sealer
            .open(&key, &bytes)
            .and_then(|plain| Session::decode(&plain)))
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
        }
        let s = Session::wechat(
            USER,
            "wx4f4bc4dec97d474b",
            "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
            KEY.into(),
        );
        assert!(
            s.encode().len() <= 90,
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
        let old = Session::wechat(USER, "wx1", "o", KEY.into());
        let mut v1 = vec![SESSION_FORMAT_1];
        v1.extend(postcard::to_allocvec(&old).unwrap());
        let back = Session::decode(&v1).expect("format 1 reads");
        assert_eq!(back.user_id, USER);
        assert_eq!(back.session_key.as_deref(), Some(KEY));
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
