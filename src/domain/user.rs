//! Users and the WeChat identities that sign in to them.

use serde::{Deserialize, Serialize};

use super::input::{HttpUrl, Nickname};

/// Which WeChat product an identity signs in through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Provider {
    MiniProgram,
    Website,
    OfficialAccount,
    /// A native iOS/Android app, through the WeChat Open SDK.
    App,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::MiniProgram => "miniprogram",
            Provider::Website => "website",
            Provider::OfficialAccount => "official_account",
            Provider::App => "app",
        }
    }

    /// The provider of a stored name; anything unknown is a mini program, as the first
    /// rows were.
    pub fn from_stored(s: &str) -> Provider {
        match s {
            "website" => Provider::Website,
            "official_account" => Provider::OfficialAccount,
            "app" => Provider::App,
            _ => Provider::MiniProgram,
        }
    }
}

/// The two web products of web sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebProvider {
    Website,
    OfficialAccount,
}

impl WebProvider {
    /// The provider of the identities it signs in.
    pub fn identity(self) -> Provider {
        match self {
            WebProvider::Website => Provider::Website,
            WebProvider::OfficialAccount => Provider::OfficialAccount,
        }
    }

    /// As it stands in paths and settings.
    pub fn as_str(self) -> &'static str {
        self.identity().as_str()
    }
}

/// One WeChat openid of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub provider: Provider,
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    /// The random number of this binding of the openid to its user, as read from the store
    /// (None in a new one, whose insert draws its own; None too for rows bound before 0.2).
    pub binding: Option<i64>,
}

impl Identity {
    /// An identity not stored yet.
    pub fn new(provider: Provider, appid: &str, openid: &str, unionid: Option<String>) -> Self {
        Identity {
            provider,
            appid: appid.to_string(),
            openid: openid.to_string(),
            unionid,
            binding: None,
        }
    }
}

/// A user with the identities that sign in to it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: Option<String>,
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub phone_number: Option<String>,
    pub pure_phone_number: Option<String>,
    pub country_code: Option<String>,
    pub created_at: i64,
    pub identities: Vec<Identity>,
    /// Sessions made before this time (unix milliseconds) are over: "sign out everywhere".
    pub sessions_not_before: Option<i64>,
    /// An operator disabled the user: no sign-in, no session.
    pub disabled: bool,
}

impl User {
    /// The user's identity of an openid of an app.
    pub fn identity(&self, appid: &str, openid: &str) -> Option<&Identity> {
        self.identities
            .iter()
            .find(|i| i.appid == appid && i.openid == openid)
    }
}

/// A phone number as WeChat gives it.
#[derive(Clone, Debug)]
pub struct Phone {
    pub phone_number: String,
    pub pure_phone_number: String,
    pub country_code: String,
}

/// A change of profile: `None` leaves a field, `Some(None)` clears it.
#[derive(Default)]
pub struct ProfileChange {
    pub nickname: Option<Option<Nickname>>,
    pub avatar_url: Option<Option<HttpUrl>>,
}

/// A user made by a sign-in, or found made by a concurrent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub user_id: String,
    /// False where a concurrent sign-in made the identity first (its user is `user_id`).
    pub created: bool,
    /// The user as written, where this call made it and knows it whole.
    pub user: Option<User>,
}

/// An identity added to a user, or found owned already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// The user the identity belongs to now.
    pub owner: String,
    /// False where the identity was owned already (by `owner`).
    pub added: bool,
}

/// How an unbinding ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Unbound {
    /// Gone; this was its openid.
    Done(String),
    /// The user has no identity of this app.
    NotFound,
    /// It is the user's last way to sign in: kept.
    LastWay,
}

/// Unix seconds now.
pub fn now() -> i64 {
    now_ms() / 1000
}

/// The time that SMS codes and their limits go by: the system's, moved forward only by tests
/// (as the emulator's clock is), so that a one-minute or one-day rule is tested without
/// waiting. Clones share one offset.
#[derive(Clone, Debug, Default)]
pub struct Clock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Clock {
    /// Unix seconds.
    pub fn now(&self) -> i64 {
        now() + self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves this clock (and every clone) forward.
    pub fn advance(&self, seconds: i64) {
        self.0
            .fetch_add(seconds, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
