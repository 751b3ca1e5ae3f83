//! The contract's error codes and the one error type that services return.
//!
//! `Error` knows nothing of HTTP frameworks; `api` turns it into the contract's body. Every
//! variant's message says what the caller should do next, in words a mini program developer acts
//! on. A cause that must not be shown (a database error, say) is kept in `source` for the log.

use std::fmt;

/// WeChat's own answer, where it caused the error (`{"errcode": N, "errmsg": "..."}`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WechatAnswer {
    pub errcode: i64,
    pub errmsg: String,
}

/// The machine codes of the contract, with their HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    InvalidRequest,
    WechatCodeInvalid,
    WechatRateLimited,
    WechatUserBlocked,
    WechatUnavailable,
    WechatError,
    Unauthenticated,
    DecryptFailed,
    WatermarkMismatch,
    SignatureMismatch,
    BindingRequired,
    InvalidCredentials,
    AccountLocked,
    Conflict,
    RateLimited,
    ServiceUnavailable,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    /// Client authentication of `/oauth2/*` failed (RFC 6749 §5.2 `invalid_client`).
    InvalidClient,
    /// A lasting change came without proof that the account's owner is there.
    ReauthenticationRequired,
    SmsCodeInvalid,
    SmsUnavailable,
    PhoneRequired,
    AccountDisabled,
    Forbidden,
}

impl Code {
    pub const ALL: [Code; 26] = [
        Code::InvalidRequest,
        Code::WechatCodeInvalid,
        Code::WechatRateLimited,
        Code::WechatUserBlocked,
        Code::WechatUnavailable,
        Code::WechatError,
        Code::Unauthenticated,
        Code::DecryptFailed,
        Code::WatermarkMismatch,
        Code::SignatureMismatch,
        Code::BindingRequired,
        Code::InvalidCredentials,
        Code::AccountLocked,
        Code::Conflict,
        Code::RateLimited,
        Code::ServiceUnavailable,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::PayloadTooLarge,
        Code::InvalidClient,
        Code::ReauthenticationRequired,
        Code::SmsCodeInvalid,
        Code::SmsUnavailable,
        Code::PhoneRequired,
        Code::AccountDisabled,
        Code::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::WechatCodeInvalid => "wechat_code_invalid",
            Code::WechatRateLimited => "wechat_rate_limited",
            Code::WechatUserBlocked => "wechat_user_blocked",
            Code::WechatUnavailable => "wechat_unavailable",
            Code::WechatError => "wechat_error",
            Code::Unauthenticated => "unauthenticated",
            Code::DecryptFailed => "decrypt_failed",
            Code::WatermarkMismatch => "watermark_mismatch",
            Code::SignatureMismatch => "signature_mismatch",
            Code::BindingRequired => "binding_required",
            Code::InvalidCredentials => "invalid_credentials",
            Code::AccountLocked => "account_locked",
            Code::Conflict => "conflict",
            Code::RateLimited => "rate_limited",
            Code::ServiceUnavailable => "service_unavailable",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::PayloadTooLarge => "payload_too_large",
            Code::InvalidClient => "invalid_client",
            Code::ReauthenticationRequired => "reauthentication_required",
            Code::SmsCodeInvalid => "sms_code_invalid",
            Code::SmsUnavailable => "sms_unavailable",
            Code::PhoneRequired => "phone_required",
            Code::AccountDisabled => "account_disabled",
            Code::Forbidden => "forbidden",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Code::InvalidRequest
            | Code::DecryptFailed
            | Code::WatermarkMismatch
            | Code::SignatureMismatch => 400,
            Code::WechatCodeInvalid
            | Code::Unauthenticated
            | Code::InvalidCredentials
            | Code::InvalidClient
            | Code::SmsCodeInvalid => 401,
            Code::WechatUserBlocked
            | Code::BindingRequired
            | Code::ReauthenticationRequired
            | Code::PhoneRequired
            | Code::AccountDisabled
            | Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::MethodNotAllowed => 405,
            Code::Conflict => 409,
            Code::PayloadTooLarge => 413,
            Code::WechatRateLimited | Code::AccountLocked | Code::RateLimited => 429,
            Code::WechatUnavailable | Code::WechatError | Code::SmsUnavailable => 502,
            Code::ServiceUnavailable => 503,
        }
    }

    /// When the code is answered, as the contract's table says (for the OpenAPI document).
    pub fn when(self) -> &'static str {
        match self {
            Code::InvalidRequest => {
                "body or field malformed: missing field, bad base64, wrong \
                length, unknown appid"
            }
            Code::WechatCodeInvalid => {
                "WeChat rejected the login/phone code (40029 invalid, \
                40163 already used)"
            }
            Code::WechatRateLimited => "WeChat said 45011 (per-user frequency limit)",
            Code::WechatUserBlocked => "WeChat said 40226 (high-risk user)",
            Code::WechatUnavailable => {
                "WeChat answered -1, timed out, or could not be reached \
                (after bounded retries)"
            }
            Code::WechatError => "any other WeChat errcode (the errcode is in `wechat`)",
            Code::Unauthenticated => "no, unknown, expired or revoked token",
            Code::DecryptFailed => {
                "encryptedData/iv do not decrypt with this session's \
                session_key"
            }
            Code::WatermarkMismatch => "decrypted watermark.appid is not this session's appid",
            Code::SignatureMismatch => "signature != sha1(rawData + session_key)",
            Code::BindingRequired => {
                "login policy require_binding and this openid is bound to no \
                account; body adds bindTicket"
            }
            Code::InvalidCredentials => {
                "username/password wrong (same answer for unknown user \
                and wrong password)"
            }
            Code::AccountLocked => "too many wrong passwords for this username; Retry-After set",
            Code::Conflict => {
                "the change collides with existing state (another openid, another \
                owner)"
            }
            Code::RateLimited => "this server's own per-IP limit; Retry-After set",
            Code::ServiceUnavailable => "Redis or the database is down; nothing was half-written",
            Code::NotFound => "no such route",
            Code::MethodNotAllowed => "the route exists, not with this method",
            Code::PayloadTooLarge => "the request body is larger than the server accepts",
            Code::InvalidClient => "the client's id or secret is missing or wrong",
            Code::ReauthenticationRequired => {
                "a lasting change needs proof of presence (a fresh wx.login `code`, or \
                `currentPassword`), and none or a wrong one came; nothing changed"
            }
            Code::SmsCodeInvalid => "the SMS code is wrong, used or expired",
            Code::SmsUnavailable => "the SMS provider failed or refused; no code was sent",
            Code::AccountDisabled => "an operator disabled this user",
            Code::Forbidden => "signed in, but not allowed (the admin API)",
            Code::PhoneRequired => {
                "web sign-in needs a verified phone first; the body adds `bindTicket` for \
                /api/v1/auth/bind-phone"
            }
        }
    }

    /// A typical message, for the OpenAPI examples.
    pub fn example_message(self) -> &'static str {
        match self {
            Code::WechatCodeInvalid => CODE_USED,
            Code::DecryptFailed => DECRYPT_FAILED,
            other => other.when(),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const CODE_USED: &str = "WeChat says this code was used already (40163): call wx.login for a \
    new code and send that one.";
pub const CODE_INVALID: &str = "WeChat does not accept this code (40029): it is expired, mistyped \
    or from another mini program. Call wx.login for a new code.";
pub const DECRYPT_FAILED: &str = "encryptedData does not decrypt with this session's session_key: \
    it was probably made before the last wx.login. Call wx.login, send the code to \
    /api/v1/auth/refresh, then ask for the data again.";

/// An error of a service call: a contract code, a message for the caller, WeChat's answer where
/// it caused it, and a cause for the log only.
#[derive(Debug)]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub wechat: Option<WechatAnswer>,
    /// Seconds for `Retry-After` (429 answers).
    pub retry_after: Option<u64>,
    /// The `WWW-Authenticate` challenge of a 401, where the route gives one (forward auth).
    pub challenge: Option<&'static str>,
    /// Extra fields of the body (`bindTicket`).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            wechat: None,
            retry_after: None,
            challenge: None,
            extra: None,
            source: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Code::InvalidRequest, message)
    }

    pub fn unauthenticated() -> Self {
        Error::new(
            Code::Unauthenticated,
            "Sign in again: the token is missing, unknown, expired or revoked. Call wx.login and \
                POST the code to /api/v1/auth/login.",
        )
    }

    /// Redis or the database failed; the cause goes to the log, not to the caller.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error {
            source: Some(source.into()),
            ..Error::new(
                Code::ServiceUnavailable,
                "The service is briefly unavailable and nothing was changed. Try again in a \
                    moment.",
            )
        }
    }

    pub fn with_wechat(mut self, answer: WechatAnswer) -> Self {
        self.wechat = Some(answer);
        self
    }
}

impl From<crate::domain::InvalidInput> for Error {
    fn from(e: crate::domain::InvalidInput) -> Error {
        Error::invalid(e.0)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
