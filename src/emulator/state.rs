//! The emulator's memory: apps, test users, codes, access_tokens, injected faults and a clock
//! that tests can move forward. Rules are WECHAT.md's: codes are single-use and live five
//! minutes, each `wx.login` gives the user a new session_key, a superseded access_token works
//! five more minutes, a stable_token is the same until its last five minutes.

use std::collections::HashMap;

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Seconds a login or phone code lives.
pub const CODE_TTL: i64 = 300;
/// Seconds a native app's code (the Open SDK's `SendAuth`) lives.
pub const APP_CODE_TTL: i64 = 600;
/// Seconds an access_token lives.
pub const TOKEN_TTL: i64 = 7200;
/// Seconds a superseded access_token keeps working.
pub const TOKEN_GRACE: i64 = 300;

pub struct App {
    pub secret: String,
    /// Bound to an Open Platform account: answers carry the unionid.
    pub unionid: bool,
}

pub struct User {
    pub pure_phone: String,
    pub country_code: String,
    /// Current session_key per appid.
    pub keys: HashMap<String, String>,
}

pub struct Code {
    pub appid: String,
    pub user: String,
    pub issued: i64,
    pub used: bool,
}

pub struct Token {
    pub appid: String,
    pub expires_at: i64,
    /// When a newer token replaced it (it then works `TOKEN_GRACE` more seconds).
    pub superseded_at: Option<i64>,
    /// Killed at once by a forced refresh.
    pub killed: bool,
}

/// A code of web sign-in (website QR login or an Official Account page).
pub struct OauthCode {
    pub appid: String,
    pub user: String,
    pub scope: String,
    pub issued: i64,
    pub used: bool,
    /// Seconds it lives: five minutes for the web, ten for a native app's (SMS.md).
    pub lifetime: i64,
}

/// A web access_token or refresh_token.
pub struct OauthGrant {
    pub appid: String,
    pub user: String,
    pub scope: String,
    pub expires_at: i64,
}

/// A browser waiting on WeChat's QR or consent page.
pub struct Pending {
    pub appid: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: String,
}

/// Seconds a web access_token lives, and a refresh_token (30 days, never extended).
pub const OAUTH_TOKEN_TTL: i64 = 7200;
pub const REFRESH_TTL: i64 = 30 * 86_400;

#[derive(Clone)]
pub struct Fault {
    pub path: String,
    pub user: Option<String>,
    pub errcode: Option<i64>,
    pub errmsg: Option<String>,
    pub delay_ms: u64,
    pub drop: bool,
    pub remaining: u32,
}

#[derive(Default)]
pub struct State {
    pub apps: HashMap<String, App>,
    pub users: HashMap<String, User>,
    pub login_codes: HashMap<String, Code>,
    pub phone_codes: HashMap<String, Code>,
    pub tokens: HashMap<String, Token>,
    /// The latest /cgi-bin/token token per appid.
    pub latest_token: HashMap<String, String>,
    /// The stable_token per appid.
    pub stable_token: HashMap<String, String>,
    /// (day, count) of /cgi-bin/token fetches per appid, for 45009.
    pub token_quota: HashMap<String, (i64, u32)>,
    /// (day, count, last time) of forced stable_token refreshes per appid.
    pub force_quota: HashMap<String, (i64, u32, i64)>,
    pub oauth_codes: HashMap<String, OauthCode>,
    pub oauth_tokens: HashMap<String, OauthGrant>,
    pub refresh_tokens: HashMap<String, OauthGrant>,
    pub pending: HashMap<String, Pending>,
    pub faults: Vec<Fault>,
    pub calls: HashMap<String, u64>,
    pub clock_offset: i64,
    /// The SMS side's inbox, oldest first.
    pub sms: Vec<super::sms::SentSms>,
    /// Alibaba Cloud's SignatureNonces seen (each may sign one request).
    pub aliyun_nonces: std::collections::HashSet<String>,
}

pub fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    STANDARD.encode(buf)
}

fn random_code(len: usize) -> String {
    let mut buf = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD
        .encode(buf)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect()
}

/// WeChat's trace tag: three groups of eight hex digits.
pub fn rid() -> String {
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    let h = hex::encode(b);
    format!("{}-{}-{}", &h[0..8], &h[8..16], &h[16..24])
}

fn derived_id(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    format!("o{}", &URL_SAFE_NO_PAD.encode(digest)[..27])
}

/// A user's openid in an app: stable, different per app.
pub fn openid(appid: &str, user: &str) -> String {
    derived_id(&format!("openid\0{appid}\0{user}"))
}

/// A user's unionid: the same in every app.
pub fn unionid(user: &str) -> String {
    derived_id(&format!("unionid\0{user}"))
}

impl State {
    pub fn now(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        real + self.clock_offset
    }

    /// A test user, made on first mention with a phone number of its own.
    pub fn user(&mut self, id: &str) -> &mut User {
        self.users.entry(id.to_string()).or_insert_with(|| {
            let digest = Sha256::digest(format!("phone\0{id}").as_bytes());
            let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 100_000_000;
            User {
                pure_phone: format!("138{n:08}"),
                country_code: "86".into(),
                keys: HashMap::new(),
            }
        })
    }

    /// The user's current session_key in an app, made where it has none.
    pub fn session_key(&mut self, appid: &str, user: &str) -> String {
        self.user(user)
            .keys
            .entry(appid.to_string())
            .or_insert_with(|| random_b64(16))
            .clone()
    }

    /// `wx.login`: a new code, and (as a rule) a new session_key.
    pub fn mint_login_code(
        &mut self,
        appid: &str,
        user: &str,
        session_key: Option<String>,
        rotate: bool,
    ) -> String {
        let key = match session_key {
            Some(k) => k,
            None if rotate => random_b64(16),
            None => self.session_key(appid, user),
        };
        self.user(user).keys.insert(appid.to_string(), key);
        let (code, record) = self.new_code(24, appid, user);
        self.login_codes.insert(code.clone(), record);
        code
    }

    /// A fresh single-use code of `len` characters for a user of an app, issued now.
    fn new_code(&self, len: usize, appid: &str, user: &str) -> (String, Code) {
        let record = Code {
            appid: appid.into(),
            user: user.into(),
            issued: self.now(),
            used: false,
        };
        (random_code(len), record)
    }

    pub fn mint_phone_code(&mut self, appid: &str, user: &str) -> String {
        self.user(user);
        let (code, record) = self.new_code(32, appid, user);
        self.phone_codes.insert(code.clone(), record);
        code
    }

    pub fn new_token(&mut self, appid: &str) -> String {
        let token = format!("{}{}", random_code(48), random_code(48));
        let expires_at = self.now() + TOKEN_TTL;
        self.tokens.insert(
            token.clone(),
            Token {
                appid: appid.into(),
                expires_at,
                superseded_at: None,
                killed: false,
            },
        );
        token
    }

    /// The person confirmed on WeChat's page: a one-use web code.
    pub fn mint_oauth_code(&mut self, appid: &str, user: &str, scope: &str) -> String {
        self.mint_oauth_code_for(appid, user, scope, CODE_TTL)
    }

    /// `mint_oauth_code` with a lifetime of its own.
    pub fn mint_oauth_code_for(
        &mut self,
        appid: &str,
        user: &str,
        scope: &str,
        lifetime: i64,
    ) -> String {
        self.user(user);
        let code = random_code(32);
        let issued = self.now();
        self.oauth_codes.insert(
            code.clone(),
            OauthCode {
                appid: appid.into(),
                user: user.into(),
                scope: scope.into(),
                issued,
                used: false,
                lifetime,
            },
        );
        code
    }

    /// A web access_token and refresh_token for a confirmed code.
    pub fn grant(
        &mut self,
        appid: &str,
        user: &str,
        scope: &str,
        refresh_token: Option<String>,
    ) -> (String, String) {
        let now = self.now();
        let access = format!("{}{}", random_code(48), random_code(48));
        self.oauth_tokens.insert(
            access.clone(),
            OauthGrant {
                appid: appid.into(),
                user: user.into(),
                scope: scope.into(),
                expires_at: now + OAUTH_TOKEN_TTL,
            },
        );
        let refresh = refresh_token.unwrap_or_else(|| {
            let r = format!("{}{}", random_code(48), random_code(48));
            self.refresh_tokens.insert(
                r.clone(),
                OauthGrant {
                    appid: appid.into(),
                    user: user.into(),
                    scope: scope.into(),
                    expires_at: now + REFRESH_TTL,
                },
            );
            r
        });
        (access, refresh)
    }

    /// Takes the first fault that matches this call, counting it down.
    pub fn take_fault(&mut self, path: &str, user: Option<&str>) -> Option<Fault> {
        let i = self.faults.iter().position(|f| {
            f.path == path && f.remaining > 0 && f.user.as_deref().is_none_or(|u| Some(u) == user)
        })?;
        let fault = self.faults[i].clone();
        self.faults[i].remaining -= 1;
        if self.faults[i].remaining == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }
}
