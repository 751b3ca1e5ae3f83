//! Sessions and the bearer tokens that stand for them.
//!
//! The token is a v4 UUID handed to the client once. The store keys a session by the token's
//! SHA-256 (`digest`), so a copy of Redis holds no token a thief could present. The
//! session_key never leaves the server.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A bearer token: a v4 UUID.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Token(Uuid);

impl Token {
    /// A new token, from the thread's CSPRNG (`rand`'s ChaCha, seeded and reseeded from the
    /// OS): as unguessable as a getrandom syscall's bytes, without a syscall per login.
    pub fn new() -> Token {
        Token(uuid::Builder::from_random_bytes(rand::random()).into_uuid())
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

    /// The session's id: 128 bits of the token's SHA-256, as unguessable as the token but no
    /// way to present it.
    pub fn id(&self) -> SessionId {
        let digest = Sha256::digest(self.0.as_bytes());
        SessionId(digest[..16].try_into().expect("16 of 32 bytes"))
    }
}

/// The id of a session: what the store keys it by, and the `sid` of its access tokens. It
/// names the session without being a credential for it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// Reads an id as `to_text` writes it.
    pub fn parse(text: &str) -> Option<SessionId> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(SessionId(bytes.try_into().ok()?))
    }

    /// base64url, 22 characters.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.to_text())
    }
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

/// What a token stands for. `store::sessions` keeps it in a compact binary form.
#[derive(Clone)]
pub struct Session {
    pub user_id: String,
    /// The app, for a session made by a WeChat sign-in (not by a password).
    pub appid: Option<String>,
    pub openid: Option<String>,
    /// The current session_key, base64 as WeChat gave it.
    pub session_key: Option<String>,
    /// The key before the last refresh, tried for decryption only until `previous_until`.
    pub previous_key: Option<String>,
    /// Unix seconds after which `previous_key` is no longer tried.
    pub previous_until: Option<i64>,
    /// The identity's unionid was known at sign-in: decrypted data need not record it.
    pub unionid_known: bool,
    /// The binding of the identity it signs in (`Identity::binding`): the session is good
    /// while the identity has this one. None for sessions of no identity, of rows bound before
    /// bindings had numbers, and stored before format 3.
    pub binding: Option<i64>,
    /// When the session began, in unix milliseconds (0: stored before format 4, unknown): the
    /// absolute lifetime counts from here, and "sign out everywhere" ends what began before.
    pub created_at: i64,
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

    /// A session of a mini program identity.
    pub fn wechat(user_id: &str, appid: &str, openid: &str, session_key: String) -> Session {
        Session {
            session_key: Some(session_key),
            ..Session::web(user_id, appid, openid)
        }
    }

    /// A session of a web sign-in: an identity, no session_key.
    pub fn web(user_id: &str, appid: &str, openid: &str) -> Session {
        Session {
            appid: Some(appid.to_string()),
            openid: Some(openid.to_string()),
            ..Session::password(user_id)
        }
    }

    /// A session made with a username and password: no WeChat identity.
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
            created_at: super::now_ms(),
        }
    }

    /// The mini program identity of the session: appid and openid, where it has a
    /// session_key.
    pub fn wechat_identity(&self) -> Option<(&str, &str)> {
        match (&self.appid, &self.openid, &self.session_key) {
            (Some(a), Some(o), Some(_)) => Some((a, o)),
            _ => None,
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
        assert_eq!(SessionId::parse(&t.id().to_text()), Some(t.id()));
        assert!(SessionId::parse("short").is_none());
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
            created_at: 0,
        };
        assert_eq!(s.decryption_keys(99).collect::<Vec<_>>(), ["new", "old"]);
        assert_eq!(s.decryption_keys(100).collect::<Vec<_>>(), ["new"]);
        assert!(!format!("{s:?}").contains("new"));
    }
}
