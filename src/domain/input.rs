//! What callers send, parsed once at the edge into types that cannot hold a malformed value
//! (zero2prod's `SubscriberName::parse`): a `WxCode` is a code of the right shape, a `Username`
//! a username of the contract's alphabet, and so on. Each rule is written here alone: `api`
//! builds its schema and its 400s from these types, `config` checks AppIDs with `AppId`.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// Input that breaks a rule: the message says which, for a 400 `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// A string of the contract with a shape: a length in characters and an alphabet.
pub trait Shaped: Sized {
    /// Fewest characters.
    const MIN: usize;
    /// Most characters.
    const MAX: usize;
    /// The alphabet as a regular expression, for the OpenAPI schema (None: any character).
    const PATTERN: Option<&'static str>;
    /// What the value is, for messages.
    const WHAT: &'static str;

    /// Whether every character is of the alphabet (the length is checked apart).
    fn fits(text: &str) -> bool;

    /// Wraps a text that passed the checks.
    fn from_checked(text: String) -> Self;

    /// The text, where it may be shown (None for secrets).
    fn shown(&self) -> Option<&str>;

    /// Parses a text: the value, or what is wrong with it.
    fn parse(text: String) -> Result<Self, InvalidInput> {
        let len = text.chars().count();
        if (Self::MIN..=Self::MAX).contains(&len) && Self::fits(&text) {
            return Ok(Self::from_checked(text));
        }
        let shape = match Self::PATTERN {
            Some(p) => format!(" matching `{p}`"),
            None => String::new(),
        };
        Err(InvalidInput(format!(
            "{} must be {} to {} characters{shape}.",
            Self::WHAT,
            Self::MIN,
            Self::MAX
        )))
    }
}

/// A plain newtype of `String` with a shape.
macro_rules! shaped {
    ($(#[$m:meta])* $name:ident {
        min: $min:expr, max: $max:expr, pattern: $pattern:expr, what: $what:expr,
        fits: $fits:expr $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl Shaped for $name {
            const MIN: usize = $min;
            const MAX: usize = $max;
            const PATTERN: Option<&'static str> = Some($pattern);
            const WHAT: &'static str = $what;

            fn fits(text: &str) -> bool {
                let fits: fn(&str) -> bool = $fits;
                fits(text)
            }

            fn from_checked(text: String) -> Self {
                $name(text)
            }

            fn shown(&self) -> Option<&str> {
                Some(&self.0)
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

shaped!(
    /// A code from `wx.login`, `getPhoneNumber` or a web sign-in: visible ASCII.
    WxCode {
        min: 1, max: 128, pattern: r"^[!-~]+$", what: "A WeChat code",
        fits: |v| v.bytes().all(|b| b.is_ascii_graphic()),
    }
);
shaped!(
    /// An AppID: `wx` and 16 hex digits at WeChat, loosened to letters, digits and `_` so that
    /// test apps can be named freely.
    AppId {
        min: 1, max: 32, pattern: r"^[A-Za-z0-9_]+$", what: "An AppID",
        fits: |v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
    }
);
shaped!(
    /// A username: letters, digits, `_`, `.` and `-`; unique without regard to case.
    Username {
        min: 3, max: 32, pattern: r"^[A-Za-z0-9_.\-]+$", what: "A username",
        fits: |v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
    }
);
shaped!(
    /// An http(s) URL (an avatar).
    HttpUrl {
        min: 0, max: 1024, pattern: r"^https?://", what: "An http(s) URL",
        fits: |v| {
            (v.starts_with("http://") || v.starts_with("https://"))
                && url::Url::parse(v).is_ok()
        },
    }
);

shaped!(
    /// An `Idempotency-Key` header: a random string the client makes per attempt.
    IdempotencyKey {
        min: 16, max: 64, pattern: r"^[!-~]+$", what: "Idempotency-Key",
        fits: |v| v.bytes().all(|b| b.is_ascii_graphic()),
    }
);
shaped!(
    /// PKCE's S256 `code_challenge`: base64url (no padding) of a SHA-256, 43 characters.
    CodeChallenge {
        min: 43, max: 43, pattern: r"^[A-Za-z0-9_-]+$", what: "codeChallenge",
        fits: |v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)),
    }
);
shaped!(
    /// PKCE's `code_verifier`: 43 to 128 of `A-Z a-z 0-9 - . _ ~`, kept by the page.
    CodeVerifier {
        min: 43, max: 128, pattern: r"^[A-Za-z0-9._~-]+$", what: "codeVerifier",
        fits: |v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
    }
);

impl CodeVerifier {
    /// Whether this verifier is the one `challenge` was made from (S256), in constant time.
    pub fn answers(&self, challenge: &CodeChallenge) -> bool {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let made = URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()));
        made.as_bytes().ct_eq(challenge.0.as_bytes()).into()
    }
}

/// A nickname: 1 to 64 characters, not all white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nickname(String);

impl Shaped for Nickname {
    const MIN: usize = 1;
    const MAX: usize = 64;
    const PATTERN: Option<&'static str> = None;
    const WHAT: &'static str = "A nickname";

    fn fits(text: &str) -> bool {
        !text.trim().is_empty()
    }

    fn from_checked(text: String) -> Self {
        Nickname(text)
    }

    fn shown(&self) -> Option<&str> {
        Some(&self.0)
    }
}

impl Nickname {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Nickname> for String {
    fn from(v: Nickname) -> String {
        v.0
    }
}

impl Username {
    /// The form uniqueness is decided on.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A password as typed: 8 to 128 characters, kept secret from the moment it is parsed.
#[derive(Clone)]
pub struct Password(SecretString);

impl Shaped for Password {
    const MIN: usize = 8;
    const MAX: usize = 128;
    const PATTERN: Option<&'static str> = None;
    const WHAT: &'static str = "A password";

    fn fits(_: &str) -> bool {
        true
    }

    fn from_checked(text: String) -> Self {
        Password(SecretString::from(text))
    }

    fn shown(&self) -> Option<&str> {
        None
    }
}

impl Password {
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }

    /// The characters, for hashing only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

/// A username with its password, as sign-in and binding take them.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: Username,
    pub password: Password,
}

impl Credentials {
    /// Both or neither: one without the other is malformed.
    pub fn pair(
        username: Option<Username>,
        password: Option<Password>,
    ) -> Result<Option<Credentials>, InvalidInput> {
        match (username, password) {
            (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
            (None, None) => Ok(None),
            _ => Err(InvalidInput(
                "Send `username` and `password` together, or neither.".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_passwords_follow_the_contract() {
        assert!(Username::parse("al_ice.b-1".into()).is_ok());
        for bad in ["ab", "a b c", "ünï", &"x".repeat(33)] {
            assert!(Username::parse(bad.into()).is_err(), "{bad}");
        }
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("x".repeat(129)).is_err());
        assert!(
            !format!("{:?}", Password::parse("hunter2hunter2".into()).unwrap()).contains("hunter2")
        );
    }

    #[test]
    fn a_verifier_answers_its_own_challenge_only() {
        // RFC 7636, appendix B.
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        let challenge = CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into());
        assert!(verifier.clone().unwrap().answers(&challenge.unwrap()));
        let other = CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN".into());
        assert!(!verifier.unwrap().answers(&other.unwrap()));
        assert!(CodeVerifier::parse("short".into()).is_err());
        assert!(
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM".into()).is_err()
        );
    }

    #[test]
    fn codes_and_appids_have_their_shapes() {
        assert!(WxCode::parse("0a3Xk2000Nfpu03mVb300rUVzN3Xk20K".into()).is_ok());
        for bad in ["", "a b", "码", &"x".repeat(129)] {
            assert!(WxCode::parse(bad.into()).is_err(), "{bad}");
        }
        assert!(AppId::parse("wx1234567890abcdef".into()).is_ok());
        for bad in ["", "wx-1", &"w".repeat(33)] {
            assert!(AppId::parse(bad.into()).is_err(), "{bad}");
        }
        assert_eq!(
            Credentials::pair(Some(Username::parse("band".into()).unwrap()), None).unwrap_err(),
            InvalidInput("Send `username` and `password` together, or neither.".into())
        );
    }
}
