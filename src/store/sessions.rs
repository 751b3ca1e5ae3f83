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

    /// `sess:` and 128 bits of the token's SHA-256 in base64url: as unguessable as the token,
    /// and short, since a million sessions each carry it.
    fn storage_key(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("sess:{}", URL_SAFE_NO_PAD.encode(&digest[..16]))
    }
}

fn identity_key(appid: &str, openid: &str) -> String {
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

/// The first byte of a stored session; a new layout takes a new number.
const SESSION_FORMAT: u8 = 1;

/// What a token stands for. Stored as postcard (no field names), so that a session takes about
/// 110 bytes of value in Redis; see `encode`.
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

impl Session {
    /// The bytes kept in the store: a version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![SESSION_FORMAT];
        bytes.extend(postcard::to_allocvec(self).expect("a session always encodes"));
        bytes
    }

    /// A session from its stored bytes. Bytes of another format or version are no session: the
    /// version byte must match and every byte must be used.
    pub fn decode(bytes: &[u8]) -> Option<Session> {
        let (&format, rest) = bytes.split_first()?;
        if format != SESSION_FORMAT {
            return None;
        }
        match postcard::take_from_bytes(rest) {
            Ok((session, [])) => Some(session),
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
                    .set_and_add(&key, &sealed, self.ttl, &index, &key, also)
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
        let keys = self.kv.set_take(&identity_key(appid, openid)).await?;
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

    #[test]
    fn every_kind_of_session_round_trips() {
        for s in [
            Session::password("8d7f2c1e-3b4a-4c5d-9e6f-7a8b9c0d1e2f"),
            Session::web("u", "wx2", "o"),
            Session::wechat("u", "wx1", "o", "k".into()),
        ] {
            let back = Session::decode(&s.encode()).expect("decodes");
            assert_eq!(back.encode(), s.encode());
        }
        let json = br#"{"user_id":"247e0629-b0ef-4d04-94c0-138d899fdaad","appid":"wxa"}"#;
        assert!(
            Session::decode(json).is_none(),
            "bytes of another format are no session"
        );
        let mut extra = Session::password("u").encode();
        extra.push(0);
        assert!(Session::decode(&extra).is_none());
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
