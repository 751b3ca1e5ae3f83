//! What signing in means: the login policy, unionid linking, binding, passwords, sessions,
//! phone numbers and open data. One flow per file, each an `impl Accounts` block:
//!
//! - `login`: mini program login and its replay cache;
//! - `identity`: who an identity signs in as (`resolve_identity`), and linking to an account;
//! - `binding`: bind tickets, binding with a username and password, credentials, unbinding;
//! - `passwords`: argon2id and the lockout;
//! - `sessions`: starting, authenticating, refreshing and ending sessions; the profile;
//! - `phone`: phone numbers and open data;
//! - `web`: website QR login and Official Account pages;
//! - `wechat_tokens`: each app's WeChat access_token.
//!
//! No HTTP here: `api` parses requests into `domain` types and calls these functions, which use
//! `store` and `wechat` and return `crate::error::Error`.

pub mod access_tokens;
mod audit;
mod binding;
mod identity;
mod login;
mod native_app;
mod oauth;
mod passwords;
mod phone;
mod presence;
mod rights;
mod sessions;
mod sms;
mod web;
mod web_phone;
mod wechat_tokens;

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::{AppCredentials, Apps, Login, LoginPolicy, Tokens};
use crate::domain::{Token, User};
use crate::error::{Code, Error, Result};
use crate::store::Stores;
use crate::wechat;

pub use access_tokens::{AccessTokens, Issued, KeyState};
pub use login::LoginInput;
pub use oauth::{ClientAuth, Introspection};
pub use phone::OpenData;
pub use presence::Proof;
pub use rights::{detail_of, UserRecord};
pub use sessions::{Authenticated, Credential, Refreshed};
pub use sms::{SmsPurpose, RESEND_AFTER};

/// A signed-in session as the sign-in routes answer it.
#[derive(Debug)]
pub struct SignedIn {
    pub token: Token,
    pub expires_in: u64,
    pub is_new_user: bool,
    pub user: User,
    /// An access token of the session, for the business's own services.
    pub access_token: Issued,
}

/// Where web sign-in sends browsers: the settings it needs besides the apps.
#[derive(Clone)]
pub struct WebUrls {
    /// Where browsers reach this server (for WeChat's callback).
    pub public_url: url::Url,
    /// Where browsers authorize at WeChat.
    pub open_base: url::Url,
}

/// The service: settings, stores and the WeChat client.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    apps: Apps,
    login: Login,
    web: WebUrls,
    stores: Stores,
    wechat: wechat::Client,
    wechat_tokens: wechat_tokens::WechatTokens,
    access_tokens: AccessTokens,
    /// Who sends SMS codes (None: nobody; the SMS routes answer 404).
    sms: Option<crate::sms::Provider>,
    auditor: audit::Auditor,
}

impl Accounts {
    pub fn new(
        apps: Apps,
        login: Login,
        tokens: Tokens,
        web: WebUrls,
        stores: Stores,
        wechat: wechat::Client,
        sms: Option<crate::sms::Provider>,
    ) -> Self {
        let wechat_tokens =
            wechat_tokens::WechatTokens::new(stores.wechat_tokens.clone(), wechat.clone());
        let access_tokens = AccessTokens::new(stores.signing_keys.clone(), tokens);
        let auditor = audit::Auditor::start(stores.users.clone());
        Accounts {
            inner: Arc::new(Inner {
                apps,
                login,
                web,
                stores,
                wechat,
                wechat_tokens,
                access_tokens,
                sms,
                auditor,
            }),
        }
    }

    /// Counts a request of a client IP to the sign-in routes; past the per-minute limit, a 429
    /// with the seconds until the window ends. Counted in the shared store, so all nodes share
    /// it.
    pub async fn rate_limit(&self, ip: IpAddr) -> Result<()> {
        let limit = self.inner.login.rate_limit_per_minute;
        if limit == 0 {
            return Ok(());
        }
        let Some(retry_after) = self.inner.stores.limits.count_request(ip, limit).await? else {
            return Ok(());
        };
        let mut e = Error::new(
            Code::RateLimited,
            "Too many sign-in requests from this address. Wait a moment, then try again.",
        );
        e.retry_after = Some(retry_after);
        Err(e)
    }

    /// Whether Redis (or the in-process store) and the database answer.
    pub async fn ready(&self) -> std::result::Result<(), String> {
        self.inner.stores.ping().await.map_err(|e| e.to_string())
    }

    /// The mini program a request names, or the only one configured.
    fn miniprogram(&self, appid: Option<&str>) -> Result<&AppCredentials> {
        let apps = &self.inner.apps.miniprograms;
        match appid {
            Some(id) => apps.iter().find(|a| a.appid == id).ok_or_else(|| {
                Error::invalid(format!(
                    "appid `{id}` is not a mini program this server serves."
                ))
            }),
            None if apps.len() == 1 => Ok(&apps[0]),
            None if apps.is_empty() => Err(Error::invalid(
                "This server has no mini program configured.",
            )),
            None => Err(Error::invalid(
                "Several mini programs are configured: send `appid` with the code.",
            )),
        }
    }

    /// The access tokens: issuing, verifying, the keys.
    pub fn access_tokens(&self) -> &AccessTokens {
        &self.inner.access_tokens
    }

    fn policy(&self) -> LoginPolicy {
        self.inner.login.policy
    }

    /// A user by id; a session whose user is gone is no session.
    pub async fn user(&self, user_id: &str) -> Result<User> {
        self.inner
            .stores
            .users
            .get(user_id)
            .await?
            .ok_or_else(Error::unauthenticated)
    }
}
