//! The sign-in group of settings: the login policy, session lifetimes, where web sign-in may
//! return, the per-IP limit and the password rule.

use std::time::Duration;

use clap::Args;
use url::Url;

use super::groups::{entries, invalid};
use super::{ConfigError, LoginPolicy};

const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 600;
/// Fewest characters of a password being set (ASVS V2.1.1).
const DEFAULT_PASSWORD_MIN_LENGTH: usize = 12;
const DEFAULT_SESSION_TTL: u64 = 604_800;
/// The absolute lifetime of a session: 30 days.
const DEFAULT_SESSION_MAX_AGE: u64 = 2_592_000;

/// Who may sign in, how, and for how long.
#[derive(Args, Clone)]
#[command(next_help_heading = "Sign-in")]
pub struct LoginArgs {
    /// What login does with an openid bound to no account: `auto_register` or `require_binding`.
    #[arg(long, env = "WXLOGIN_LOGIN_POLICY", default_value_t = LoginPolicy::AutoRegister)]
    pub login_policy: LoginPolicy,

    /// Seconds a token lives without use (sliding).
    #[arg(long, env = "WXLOGIN_SESSION_TTL", default_value_t = DEFAULT_SESSION_TTL)]
    pub session_ttl: u64,

    /// Seconds a session lives at most from sign-in, however much it is used.
    #[arg(long, env = "WXLOGIN_SESSION_MAX_AGE", default_value_t = DEFAULT_SESSION_MAX_AGE)]
    pub session_max_age: u64,

    /// Comma-separated redirect URIs that web sign-in may return to, each with its path
    /// (`https://shop.example.com/signed-in`; `https://shop.example.com/` for the root page).
    #[arg(long, env = "WXLOGIN_REDIRECT_ALLOWLIST", value_delimiter = ',')]
    pub redirect_allowlist: Vec<String>,

    /// Fewest characters of a password being set (12 by default, not below 8); sign-in takes
    /// any stored password.
    #[arg(
        long,
        env = "WXLOGIN_PASSWORD_MIN_LENGTH",
        default_value_t = DEFAULT_PASSWORD_MIN_LENGTH
    )]
    pub password_min_length: usize,

    /// Requests per minute one client IP may make to `/api/v1/auth/*` and `/api/v1/accounts`,
    /// counted in Redis for all nodes; 0 turns the limit off.
    #[arg(
        long,
        env = "WXLOGIN_RATE_LIMIT_PER_MINUTE",
        default_value_t = DEFAULT_RATE_LIMIT_PER_MINUTE
    )]
    pub rate_limit_per_minute: u32,

    /// Web sign-in (website QR, Official Account) of a person with no verified phone waits for
    /// one, verified by an SMS code (`phone_required`, then `auth/bind-phone`). Needs an SMS
    /// provider.
    #[arg(long, env = "WXLOGIN_WEB_REQUIRE_PHONE", default_value_t = false, action = clap::ArgAction::Set)]
    pub web_require_phone: bool,
}

/// Who may sign in, how, and for how long, checked.
#[derive(Clone, Debug)]
pub struct Login {
    pub policy: LoginPolicy,
    pub session_ttl: Duration,
    pub session_max_age: Duration,
    pub redirect_allowlist: Vec<Url>,
    pub rate_limit_per_minute: u32,
    pub password_min_length: usize,
    /// Web sign-in waits for a verified phone (`WXLOGIN_WEB_REQUIRE_PHONE`).
    pub web_require_phone: bool,
    /// The clock of SMS codes and their limits (not a setting: tests move it forward).
    pub clock: crate::domain::Clock,
}

/// An entry of `WXLOGIN_REDIRECT_ALLOWLIST`: a whole http(s) redirect URI, path included, so
/// that an open redirect elsewhere on the same site cannot carry a ticket away.
fn redirect_uri(entry: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(entry)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            invalid(format!(
                "WXLOGIN_REDIRECT_ALLOWLIST: `{entry}` is not an http(s) redirect URI"
            ))
        })?;
    // The parser turns `https://a.example` into `https://a.example/`: look at what was written.
    let after_host = entry.split_once("://").map_or("", |(_, rest)| rest);
    let has_path = after_host
        .split(['?', '#'])
        .next()
        .is_some_and(|authority_and_path| authority_and_path.contains('/'));
    if !has_path {
        return Err(invalid(format!(
            "WXLOGIN_REDIRECT_ALLOWLIST: `{entry}` has no path; redirect URIs are matched \
             exactly, so name the page (`{entry}/signed-in`, or `{entry}/` for the root page)"
        )));
    }
    Ok(url)
}

impl LoginArgs {
    pub fn resolve(self) -> Result<Login, ConfigError> {
        if self.session_ttl < 60 {
            return Err(invalid("WXLOGIN_SESSION_TTL must be at least 60 seconds"));
        }
        if self.session_max_age < 60 {
            return Err(invalid(
                "WXLOGIN_SESSION_MAX_AGE must be at least 60 seconds",
            ));
        }
        let redirect_allowlist = entries(&self.redirect_allowlist)
            .map(redirect_uri)
            .collect::<Result<_, _>>()?;
        if !(8..=128).contains(&self.password_min_length) {
            return Err(invalid("WXLOGIN_PASSWORD_MIN_LENGTH must be 8 to 128"));
        }
        Ok(Login {
            password_min_length: self.password_min_length,
            policy: self.login_policy,
            session_ttl: Duration::from_secs(self.session_ttl),
            session_max_age: Duration::from_secs(self.session_max_age),
            redirect_allowlist,
            rate_limit_per_minute: self.rate_limit_per_minute,
            web_require_phone: self.web_require_phone,
            clock: Default::default(),
        })
    }
}

impl Login {
    pub fn embedded() -> Login {
        Login {
            policy: LoginPolicy::AutoRegister,
            session_ttl: Duration::from_secs(DEFAULT_SESSION_TTL),
            session_max_age: Duration::from_secs(DEFAULT_SESSION_MAX_AGE),
            redirect_allowlist: Vec::new(),
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            password_min_length: DEFAULT_PASSWORD_MIN_LENGTH,
            web_require_phone: false,
            clock: Default::default(),
        }
    }
}
