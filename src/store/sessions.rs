//! Server-side sessions: what a bearer token stands for.
//!
//! The token is a v4 UUID handed to the client once. The store is keyed by the token's SHA-256,
//! so a copy of Redis holds no token a thief could present, and a lookup's timing depends on the
//! hash, not on how much of a guessed token is right. The session_key never leaves the server.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{kv::Kv, StoreError};

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

    fn storage_key(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("sess:{}", hex::encode(digest))
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

/// What a token stands for. Short field names keep a session small in Redis.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "u")]
    pub user_id: String,
    /// The mini program, for a session made by a WeChat login (not by a password).
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// The current session_key, base64 as WeChat gave it.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub session_key: Option<String>,
    /// The key before the last refresh, tried for decryption only until `previous_until`.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub previous_key: Option<String>,
    /// Unix seconds after which `previous_key` is no longer tried.
    #[serde(rename = "pu", default, skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<i64>,
    /// The identity's unionid is recorded already: decrypted data need not record it.
    #[serde(rename = "n", default, skip_serializing_if = "std::ops::Not::not")]
    pub unionid_known: bool,
}

impl Session {
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
}

impl Sessions {
    pub fn new(kv: Kv, ttl: Duration) -> Sessions {
        Sessions { kv, ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores a new session and returns its token. A WeChat session is also listed under its
    /// identity, so that unbinding the identity can end its sessions.
    pub async fn create(&self, session: &Session) -> Result<Token, StoreError> {
        let token = Token::new();
        self.put(&token, session).await?;
        if let (Some(appid), Some(openid)) = (&session.appid, &session.openid) {
            self.kv
                .set_add(&identity_key(appid, openid), &token.storage_key(), self.ttl)
                .await?;
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
        let bytes =
            serde_json::to_vec(session).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.kv.set(&token.storage_key(), &bytes, self.ttl).await
    }

    /// The session of a token, restarting its time to live; None when unknown or expired.
    pub async fn get(&self, token: &Token) -> Result<Option<Session>, StoreError> {
        let Some(bytes) = self.kv.get_touch(&token.storage_key(), self.ttl).await? else {
            return Ok(None);
        };
        // An entry that does not parse (written by an incompatible version) is no session.
        Ok(serde_json::from_slice(&bytes).ok())
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
