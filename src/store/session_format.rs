//! How a session is stored: a version byte, then postcard of a compact layout whose UUIDs,
//! AppIDs and 16-byte session_keys are raw bytes, so that a sealed session fits Redis's
//! 128-byte allocation. Earlier formats are still read, so that sessions outlive an upgrade.
//! The layout is the store's business, so it is written here, beside the store.

use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Session;
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
            let _ = crate::domain::Token::parse(&text);
        }
    }
}
