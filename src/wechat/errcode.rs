//! WeChat's errcodes and how each becomes a contract error (API.md's table).

use crate::error::{Code, Error, WechatAnswer, CODE_INVALID, CODE_USED};

/// busy, retry
pub const SYSTEM_BUSY: i64 = -1;
/// bad or expired code, or a code of another appid
pub const INVALID_CODE: i64 = 40029;
/// code reused
pub const CODE_BEEN_USED: i64 = 40163;
/// per-user frequency limit
pub const RATE_LIMIT: i64 = 45011;
/// high-risk user
pub const CODE_BLOCKED: i64 = 40226;
/// access_token invalid or superseded (or a wrong secret)
pub const INVALID_CREDENTIAL: i64 = 40001;
/// access_token expired
pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
/// OAuth code expired (web sign-in)
pub const CODE_EXPIRED: i64 = 42003;

/// What went wrong on a call to WeChat.
#[derive(Debug, thiserror::Error)]
pub enum WechatError {
    /// WeChat answered with an errcode.
    #[error("WeChat answered errcode {} ({})", .0.errcode, .0.errmsg)]
    Api(WechatAnswer),
    /// No usable answer: a timeout, a refused or dropped connection, a body that is not JSON,
    /// or -1 after the bounded retries. The text never holds a URL (they carry the secret).
    #[error("WeChat could not be reached: {0}")]
    Unavailable(String),
}

impl WechatError {
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WechatError::Api(a) => Some(a.errcode),
            WechatError::Unavailable(_) => None,
        }
    }
}

impl From<WechatError> for Error {
    fn from(e: WechatError) -> Error {
        let answer = match e {
            WechatError::Unavailable(reason) => {
                return Error {
                    source: Some(reason.into()),
                    ..Error::new(
                        Code::WechatUnavailable,
                        "WeChat did not answer in time. Call wx.login for a new code and try \
                            again in a moment.",
                    )
                };
            }
            WechatError::Api(a) => a,
        };
        let (code, message) = match answer.errcode {
            INVALID_CODE => (Code::WechatCodeInvalid, CODE_INVALID),
            CODE_BEEN_USED => (Code::WechatCodeInvalid, CODE_USED),
            CODE_EXPIRED => (
                Code::WechatCodeInvalid,
                "WeChat says this code expired (42003): \
                start the sign-in again for a new code.",
            ),
            RATE_LIMIT => (
                Code::WechatRateLimited,
                "WeChat limits how often one user may sign in \
                (45011). Wait a minute, then call wx.login again.",
            ),
            CODE_BLOCKED => (
                Code::WechatUserBlocked,
                "WeChat refused this user as high-risk \
                (40226). The user cannot sign in with WeChat now.",
            ),
            SYSTEM_BUSY => (
                Code::WechatUnavailable,
                "WeChat is busy (-1). Call wx.login for a \
                new code and try again in a moment.",
            ),
            _ => (
                Code::WechatError,
                "WeChat refused the call; its errcode and errmsg are in \
                `wechat`. Check the server's AppID and AppSecret.",
            ),
        };
        Error::new(code, message).with_wechat(answer)
    }
}
