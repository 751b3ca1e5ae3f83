//! What signing in means: the login policy, unionid linking, session refresh, phone numbers and
//! open data. No HTTP here: `api` parses requests and calls these functions, which use `store`
//! and `wechat` and return `crate::error::Error`.

pub mod password;
pub mod tokens;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{AppCredentials, Config, LoginPolicy};
use crate::error::{Code, Error, Result, WechatAnswer, DECRYPT_FAILED};
use crate::store::kv::Kv;
use crate::store::seal::Sealer;
use crate::store::sessions::{Session, Sessions, Token};
use crate::store::users::{self, Identity, Phone, ProfileChange, Provider, Unbound, User, Users};
use crate::wechat::{self, crypto, errcode, WechatError};
use secrecy::SecretString;

/// How long a login code's first answer is replayed to a retry of the same code.
const REPLAY_WINDOW: Duration = Duration::from_secs(60);
/// How long the session_key before a refresh is still tried for decryption.
const PREVIOUS_KEY_GRACE: i64 = 300;
/// How long a retry waits for the first call of the same code to finish.
const REPLAY_WAIT: Duration = Duration::from_secs(15);
/// How long a bind ticket lives.
const BIND_TICKET_TTL: Duration = Duration::from_secs(600);
/// Wrong passwords for one username within `LOCK_WINDOW` that lock it for `LOCK_WINDOW`.
const LOCK_AFTER: i64 = 5;
const LOCK_WINDOW: Duration = Duration::from_secs(900);

/// What a bind ticket stands for: a WeChat login waiting for its account.
#[derive(Serialize, Deserialize)]
struct PendingBinding {
    appid: String,
    openid: String,
    unionid: Option<String>,
    session_key: String,
}

fn ticket_key(ticket: &str) -> String {
    format!("bind:{}", hex::encode(Sha256::digest(ticket.as_bytes())))
}

fn username_key(prefix: &str, username: &str) -> String {
    format!(
        "{prefix}:{}",
        hex::encode(Sha256::digest(username.to_lowercase().as_bytes()))
    )
}

/// The one answer for an unknown username and a wrong password, so that neither the code nor
/// the message tells which usernames exist.
fn invalid_credentials() -> Error {
    Error::new(
        Code::InvalidCredentials,
        "The username or the password is wrong.",
    )
}

/// A signed-in session as login answers it.
#[derive(Debug)]
pub struct SignedIn {
    pub token: Token,
    pub expires_in: u64,
    pub is_new_user: bool,
    pub user: User,
}

/// What login takes.
pub struct LoginInput {
    pub code: String,
    pub appid: Option<String>,
    pub username: Option<String>,
    pub password: Option<secrecy::SecretString>,
}

/// A phone number as `me/phone` answers it.
pub type PhoneNumber = Phone;

/// Open data after decryption, the watermark apart.
pub struct OpenData {
    pub data: serde_json::Map<String, serde_json::Value>,
    pub watermark: serde_json::Value,
}

/// What the first call of a login code answered, kept for its retries.
#[derive(Serialize, Deserialize)]
enum Replay {
    Pending,
    Done {
        token: String,
        user_id: String,
        is_new_user: bool,
    },
    Failed {
        code: String,
        message: String,
        wechat: Option<WechatAnswer>,
    },
}

/// The service: settings, stores and the WeChat client.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

/// The web sign-in's slice of the settings.
struct WebSettings {
    website: Option<AppCredentials>,
    official_account: Option<AppCredentials>,
    allowlist: Vec<url::Url>,
    public_url: url::Url,
    open_base: url::Url,
}

struct Inner {
    /// Seals the secrets this room keeps in the key-value store (tokens, session_keys).
    sealer: Sealer,
    miniprograms: Vec<AppCredentials>,
    rate_limit_per_minute: u32,
    web: WebSettings,
    login_policy: LoginPolicy,
    users: Users,
    sessions: Sessions,
    kv: Kv,
    wechat: wechat::Client,
    tokens: tokens::AccessTokens,
}

fn already_bound() -> Error {
    Error::new(
        Code::Conflict,
        "This account is bound to another WeChat user of this app already.",
    )
}

fn username_taken() -> Error {
    Error::new(Code::Conflict, "This username is taken: choose another.")
}

/// The WeChat part of a session: appid, openid and session_key.
fn wechat_part(session: &Session) -> Result<(&str, &str)> {
    match (&session.appid, &session.openid, &session.session_key) {
        (Some(a), Some(o), Some(_)) => Ok((a, o)),
        _ => Err(Error::invalid(
            "This session was made with a username and password: WeChat data needs a session from wx.login (/api/v1/auth/login).",
        )),
    }
}

/// Checks a code from `wx.login` or `getPhoneNumber` before it goes to WeChat.
fn check_code(field: &str, code: &str) -> Result<()> {
    if code.is_empty() || code.len() > 128 || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(format!(
            "`{field}` must be the code WeChat gave the mini program (1 to 128 visible ASCII characters)."
        )));
    }
    Ok(())
}

impl Accounts {
    /// Stores a secret-bearing value, sealed under its key.
    async fn put_sealed(&self, key: &str, plain: &[u8], ttl: Duration) -> Result<()> {
        let sealed = self.inner.sealer.seal(key, plain);
        Ok(self.inner.kv.set(key, &sealed, ttl).await?)
    }

    /// Reads a sealed value; one that does not open is treated as absent.
    async fn get_sealed(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let bytes = self.inner.kv.get(key).await?;
        Ok(bytes.and_then(|b| self.inner.sealer.open(key, &b)))
    }

    /// Reads and deletes a sealed value in one step.
    async fn take_sealed(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let bytes = self.inner.kv.take(key).await?;
        Ok(bytes.and_then(|b| self.inner.sealer.open(key, &b)))
    }

    pub fn new(
        config: &Config,
        users: Users,
        sessions: Sessions,
        kv: Kv,
        wechat: wechat::Client,
        sealer: Sealer,
    ) -> Self {
        Accounts {
            inner: Arc::new(Inner {
                miniprograms: config.miniprograms.clone(),
                rate_limit_per_minute: config.rate_limit_per_minute,
                web: WebSettings {
                    website: config.website.clone(),
                    official_account: config.official_account.clone(),
                    allowlist: config.redirect_allowlist.clone(),
                    public_url: config.public_url.clone(),
                    open_base: config.wechat_open_base.clone(),
                },
                login_policy: config.login_policy,
                tokens: tokens::AccessTokens::new(kv.clone(), wechat.clone(), sealer.clone()),
                sealer,
                users,
                sessions,
                kv,
                wechat,
            }),
        }
    }

    pub fn users(&self) -> &Users {
        &self.inner.users
    }

    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Counts a request of a client IP to the sign-in routes; past the per-minute limit, a 429
    /// with the seconds until the window ends. Counted in the key-value store, so all nodes share
    /// it.
    pub async fn rate_limit(&self, ip: std::net::IpAddr) -> Result<()> {
        let limit = self.inner.rate_limit_per_minute;
        if limit == 0 {
            return Ok(());
        }
        let key = format!("rl:{ip}");
        let count = self.inner.kv.incr(&key, Duration::from_secs(60)).await?;
        if count <= i64::from(limit) {
            return Ok(());
        }
        let mut e = Error::new(
            Code::RateLimited,
            "Too many sign-in requests from this address. Wait a moment, then try again.",
        );
        e.retry_after = Some(self.inner.kv.ttl(&key).await?.unwrap_or(60).max(1));
        Err(e)
    }

    /// Whether Redis (or the in-process store) and the database answer.
    pub async fn ready(&self) -> std::result::Result<(), String> {
        self.inner.kv.ping().await.map_err(|e| e.to_string())?;
        self.inner.users.ping().await.map_err(|e| e.to_string())
    }

    /// The mini program a request names, or the only one configured.
    fn miniprogram(&self, appid: Option<&str>) -> Result<&AppCredentials> {
        let apps = &self.inner.miniprograms;
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

    /// Signs a mini program user in with a `wx.login` code. The same code sent again within a
    /// minute answers what its first call answered, without a second call to WeChat.
    pub async fn login(&self, input: LoginInput) -> Result<SignedIn> {
        let app = self.miniprogram(input.appid.as_deref())?.clone();
        check_code("code", &input.code)?;
        let credentials = match (input.username, input.password) {
            (Some(u), Some(p)) => {
                password::check_username(&u)?;
                password::check_password(&p)?;
                Some((u, p))
            }
            (None, None) => None,
            _ => {
                return Err(Error::invalid(
                    "Send `username` and `password` together, or neither.",
                ))
            }
        };
        let replay_key = format!(
            "login:{}",
            hex::encode(Sha256::digest(format!("{}\0{}", app.appid, input.code)))
        );
        let pending = serde_json::to_vec(&Replay::Pending).expect("serializable");
        let pending = self.inner.sealer.seal(&replay_key, &pending);
        if !self
            .inner
            .kv
            .set_nx(&replay_key, &pending, REPLAY_WINDOW)
            .await?
        {
            return self.replay(&replay_key).await;
        }
        let outcome = self
            .login_once(&app, &input.code, credentials, &replay_key)
            .await;
        let record = match &outcome {
            // Written with the session, in its round trip.
            Ok(_) => return outcome,
            // No answer from WeChat or our storage: the code may still be good, let a retry try.
            Err(e) if matches!(e.code, Code::WechatUnavailable | Code::ServiceUnavailable) => None,
            // A ticket is single-use: a retry of the code must not hand it out again.
            Err(e) if e.code == Code::BindingRequired => Some(Replay::Failed {
                code: Code::WechatCodeInvalid.as_str().to_string(),
                message: crate::error::CODE_USED.to_string(),
                wechat: None,
            }),
            Err(e) => Some(Replay::Failed {
                code: e.code.as_str().to_string(),
                message: e.message.clone(),
                wechat: e.wechat.clone(),
            }),
        };
        let stored = match record {
            Some(r) => {
                let bytes = serde_json::to_vec(&r).expect("serializable");
                self.put_sealed(&replay_key, &bytes, REPLAY_WINDOW).await
            }
            None => self
                .inner
                .kv
                .del(&replay_key)
                .await
                .map(|_| ())
                .map_err(Error::from),
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, "could not record the login code's answer for retries");
        }
        outcome
    }

    async fn replay(&self, key: &str) -> Result<SignedIn> {
        let deadline = tokio::time::Instant::now() + REPLAY_WAIT;
        loop {
            let record = match self.get_sealed(key).await? {
                Some(bytes) => serde_json::from_slice::<Replay>(&bytes).ok(),
                None => None,
            };
            match record {
                Some(Replay::Pending) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some(Replay::Done { token, user_id, is_new_user }) => {
                    let token = Token::parse(&token).ok_or_else(Error::unauthenticated)?;
                    if self.inner.sessions.get(&token).await?.is_none() {
                        // Logged out since: the code is spent, as WeChat would say.
                        return Err(Error::from(WechatError::Api(WechatAnswer {
                            errcode: errcode::CODE_BEEN_USED,
                            errmsg: "code been used".into(),
                        })));
                    }
                    let user = self.user(&user_id).await?;
                    return Ok(SignedIn {
                        token,
                        expires_in: self.inner.sessions.ttl().as_secs(),
                        is_new_user,
                        user,
                    });
                }
                Some(Replay::Failed { code, message, wechat }) => {
                    let code = Code::ALL.into_iter().find(|c| c.as_str() == code).unwrap_or(Code::WechatError);
                    let mut e = Error::new(code, message);
                    e.wechat = wechat;
                    return Err(e);
                }
                // The first call is still running past the wait, or failed without an answer.
                Some(Replay::Pending) | None => {
                    return Err(Error::new(
                        Code::WechatUnavailable,
                        "This code is being used by another request that has not finished. Call wx.login for a new code and try again.",
                    ))
                }
            }
        }
    }

    /// A login, once the code is known to be new; the answer is also written under
    /// `replay_key` with the session, for a retry of the same code.
    async fn login_once(
        &self,
        app: &AppCredentials,
        code: &str,
        credentials: Option<(String, SecretString)>,
        replay_key: &str,
    ) -> Result<SignedIn> {
        let wx = self
            .inner
            .wechat
            .code2session(&app.appid, &app.secret, code)
            .await?;
        let users = &self.inner.users;
        let identity = Identity {
            provider: Provider::MiniProgram,
            appid: app.appid.clone(),
            openid: wx.openid.clone(),
            unionid: wx.unionid.clone(),
            binding: None,
        };
        let mut unionid_known = wx.unionid.is_some();
        let (user_id, is_new_user) = match users.find_identity(&app.appid, &wx.openid).await? {
            // A bound openid signs in with its code alone.
            Some(user) => {
                let known_unionid = user
                    .identity(&app.appid, &wx.openid)
                    .and_then(|i| i.unionid.as_deref());
                unionid_known |= known_unionid.is_some();
                match (known_unionid, &wx.unionid) {
                    (None, Some(u)) => {
                        users
                            .record_unionid(&user.id, &app.appid, &wx.openid, u)
                            .await?;
                        (user.id, false)
                    }
                    // The user as read: no second lookup.
                    _ => {
                        let mut session =
                            Session::wechat(&user.id, &app.appid, &wx.openid, wx.session_key);
                        session.unionid_known = unionid_known;
                        return self
                            .sign_in_as(user, false, session, Some(replay_key))
                            .await;
                    }
                }
            }
            None => match credentials {
                Some((username, password)) => {
                    (self.bind(&identity, &username, password).await?, false)
                }
                None => {
                    let linked = match &wx.unionid {
                        Some(u) => users.find_user_by_unionid(u).await?,
                        None => None,
                    };
                    match (linked, self.inner.login_policy) {
                        (Some(owner), _) => {
                            let (owner, _) = users.link_identity(&owner, &identity).await?;
                            (owner, false)
                        }
                        (None, LoginPolicy::AutoRegister) => {
                            users.create_with_identity(&identity).await?
                        }
                        (None, LoginPolicy::RequireBinding) => {
                            return Err(self.binding_required(identity, wx.session_key).await?);
                        }
                    }
                }
            },
        };
        let mut session = Session::wechat(&user_id, &app.appid, &wx.openid, wx.session_key);
        session.unionid_known = unionid_known;
        let user = self.user(&user_id).await?;
        self.sign_in_as(user, is_new_user, session, Some(replay_key))
            .await
    }

    /// Stores the session and answers it.
    async fn sign_in(
        &self,
        user_id: &str,
        is_new_user: bool,
        session: Session,
    ) -> Result<SignedIn> {
        let user = self.user(user_id).await?;
        self.sign_in_as(user, is_new_user, session, None).await
    }

    /// Stores the session of a user read already; with `replay_key`, the login answer for a
    /// retry of its code too, in the same round trip.
    async fn sign_in_as(
        &self,
        user: User,
        is_new_user: bool,
        mut session: Session,
        replay_key: Option<&str>,
    ) -> Result<SignedIn> {
        // The session keeps the binding it signs in through (see `authenticate`).
        if let (Some(appid), Some(openid)) = (&session.appid, &session.openid) {
            session.binding = user.identity(appid, openid).and_then(|i| i.binding);
        }
        let sealer = &self.inner.sealer;
        let replay = |token: &Token| {
            let key = replay_key?;
            let record = Replay::Done {
                token: token.reveal(),
                user_id: user.id.clone(),
                is_new_user,
            };
            let bytes = serde_json::to_vec(&record).expect("serializable");
            Some((key.to_string(), sealer.seal(key, &bytes), REPLAY_WINDOW))
        };
        let token = self.inner.sessions.create_with(&session, replay).await?;
        tracing::info!(user_id = %user.id, appid = session.appid.as_deref().unwrap_or("-"), is_new_user, "signed in");
        Ok(SignedIn {
            token,
            expires_in: self.inner.sessions.ttl().as_secs(),
            is_new_user,
            user,
        })
    }

    /// The 403 of `require_binding`, with a ticket that lets the client bind without a second
    /// `wx.login` (single use, ten minutes).
    async fn binding_required(&self, identity: Identity, session_key: String) -> Result<Error> {
        let ticket = Token::new().reveal();
        let pending = PendingBinding {
            appid: identity.appid,
            openid: identity.openid,
            unionid: identity.unionid,
            session_key,
        };
        let bytes = serde_json::to_vec(&pending).expect("serializable");
        self.put_sealed(&ticket_key(&ticket), &bytes, BIND_TICKET_TTL)
            .await?;
        let mut e = Error::new(
            Code::BindingRequired,
            "This WeChat user is bound to no account yet. Ask for the username and password and send them with `bindTicket` to /api/v1/auth/bind (within 10 minutes).",
        );
        let mut extra = serde_json::Map::new();
        extra.insert("bindTicket".into(), ticket.into());
        e.extra = Some(extra);
        Ok(e)
    }

    /// Checks a username and password, with the lockout: the user id, or the one answer for
    /// every failure.
    async fn check_credentials(&self, username: &str, password: SecretString) -> Result<String> {
        let kv = &self.inner.kv;
        let lock = username_key("pwlock", username);
        if let Some(left) = kv.ttl(&lock).await? {
            let mut e = Error::new(
                Code::AccountLocked,
                format!(
                    "Too many wrong passwords: this account is locked for {} more minutes.",
                    left.div_ceil(60)
                ),
            );
            e.retry_after = Some(left.max(1));
            return Err(e);
        }
        let found = self.inner.users.credentials(username).await?;
        let (user_id, hash) = match found {
            Some(c) => (Some(c.user_id), Some(c.password_hash)),
            None => (None, None),
        };
        if password::verify(password, hash).await? {
            if let Some(user_id) = user_id {
                kv.del(&username_key("pwfail", username)).await?;
                return Ok(user_id);
            }
        }
        let failures = kv
            .incr(&username_key("pwfail", username), LOCK_WINDOW)
            .await?;
        if failures >= LOCK_AFTER {
            kv.set(&lock, b"1", LOCK_WINDOW).await?;
            kv.del(&username_key("pwfail", username)).await?;
            tracing::warn!("an account was locked after {LOCK_AFTER} wrong passwords");
        }
        Err(invalid_credentials())
    }

    /// Binds a WeChat identity to the account of a username and password.
    async fn bind(
        &self,
        identity: &Identity,
        username: &str,
        password: SecretString,
    ) -> Result<String> {
        let user_id = self.check_credentials(username, password).await?;
        if self
            .inner
            .users
            .has_identity_of(&user_id, &identity.appid)
            .await?
        {
            return Err(already_bound());
        }
        let (owner, added) = self
            .inner
            .users
            .link_identity(&user_id, identity)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => already_bound(),
                e => e.into(),
            })?;
        if !added && owner != user_id {
            return Err(Error::new(
                Code::Conflict,
                "This WeChat user is bound to another account already.",
            ));
        }
        tracing::info!(user_id = %user_id, appid = %identity.appid, "identity bound to an account");
        Ok(user_id)
    }

    /// `auth/bind`: finishes a login that answered `binding_required`.
    pub async fn bind_with_ticket(
        &self,
        ticket: &str,
        username: &str,
        password: SecretString,
    ) -> Result<SignedIn> {
        password::check_username(username)?;
        password::check_password(&password)?;
        let bad_ticket = || {
            Error::new(
                Code::Unauthenticated,
                "This bindTicket is unknown, used or older than 10 minutes. Call wx.login and /api/v1/auth/login again.",
            )
        };
        let key = ticket_key(ticket);
        if self.get_sealed(&key).await?.is_none() {
            return Err(bad_ticket());
        }
        let user_id = self.check_credentials(username, password).await?;
        let Some(bytes) = self.get_sealed(&key).await? else {
            return Err(bad_ticket());
        };
        let pending: PendingBinding = serde_json::from_slice(&bytes).map_err(|_| bad_ticket())?;
        if self
            .inner
            .users
            .has_identity_of(&user_id, &pending.appid)
            .await?
        {
            return Err(already_bound());
        }
        // Used once: of two concurrent binds with one ticket, one takes it.
        if self.take_sealed(&key).await?.is_none() {
            return Err(bad_ticket());
        }
        let identity = Identity {
            provider: Provider::MiniProgram,
            appid: pending.appid.clone(),
            openid: pending.openid.clone(),
            unionid: pending.unionid,
            binding: None,
        };
        let (owner, added) = self
            .inner
            .users
            .link_identity(&user_id, &identity)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => already_bound(),
                e => e.into(),
            })?;
        if !added && owner != user_id {
            return Err(Error::new(
                Code::Conflict,
                "This WeChat user is bound to another account already.",
            ));
        }
        self.sign_in(
            &user_id,
            false,
            Session::wechat(
                &user_id,
                &pending.appid,
                &pending.openid,
                pending.session_key,
            ),
        )
        .await
    }

    /// `accounts`: a new account with a username and password.
    pub async fn register(&self, username: &str, password: SecretString) -> Result<User> {
        password::check_username(username)?;
        password::check_password(&password)?;
        if self.inner.users.credentials(username).await?.is_some() {
            return Err(username_taken());
        }
        let hash = password::hash(password).await?;
        let id = self
            .inner
            .users
            .create_account(username, &hash)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => username_taken(),
                e => e.into(),
            })?;
        tracing::info!(user_id = %id, "account created");
        self.user(&id).await
    }

    /// `auth/password`: signs in with a username and password.
    pub async fn password_login(&self, username: &str, password: SecretString) -> Result<SignedIn> {
        // Malformed input gets the same answer as a wrong password: no hint about the rules'
        // relation to existing accounts.
        if password::check_username(username).is_err()
            || password::check_password(&password).is_err()
        {
            return Err(invalid_credentials());
        }
        let user_id = self.check_credentials(username, password).await?;
        self.sign_in(&user_id, false, Session::password(&user_id))
            .await
    }

    /// `me/credentials`: gives a WeChat-only user a username and password.
    pub async fn set_credentials(
        &self,
        user_id: &str,
        username: &str,
        password: SecretString,
    ) -> Result<User> {
        password::check_username(username)?;
        password::check_password(&password)?;
        let hash = password::hash(password).await?;
        let set = self
            .inner
            .users
            .set_credentials(user_id, username, &hash)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => username_taken(),
                e => e.into(),
            })?;
        if !set {
            return Err(Error::new(
                Code::Conflict,
                "This account has a username and password already.",
            ));
        }
        self.user(user_id).await
    }

    /// `me/identities/{appid}`: unbinds an identity and ends its sessions.
    pub async fn unbind(&self, user_id: &str, appid: &str) -> Result<()> {
        match self.inner.users.unbind(user_id, appid).await? {
            Unbound::Done(openid) => {
                let ended = self.inner.sessions.end_identity(appid, &openid).await?;
                tracing::info!(user_id = %user_id, appid = %appid, ended, "identity unbound");
                Ok(())
            }
            Unbound::NotFound => Err(Error::new(Code::NotFound, "This account has no identity of this appid.")),
            Unbound::LastWay => Err(Error::new(
                Code::Conflict,
                "This is the account's last way to sign in: set a username and password (PUT /api/v1/me/credentials) or bind another app first.",
            )),
        }
    }

    /// The session of a bearer token, and its user: one round trip to Redis where this node has
    /// read the token before and the user cache holds the user. A session of a WeChat identity is good while its user has that
    /// identity with the binding the session was made with, so an unbinding ends every session
    /// of it, and binding the openid again does not bring them back.
    pub async fn authenticate(&self, token: &str) -> Result<(Token, Session, User)> {
        let token = Token::parse(token).ok_or_else(Error::unauthenticated)?;
        let (session, entry) = self
            .inner
            .sessions
            .get(&token)
            .await?
            .ok_or_else(Error::unauthenticated)?;
        let cached = entry.and_then(|e| self.inner.users.from_entry(&session.user_id, &e));
        let user = match cached {
            Some(user) => user,
            None => self.user(&session.user_id).await?,
        };
        if let (Some(appid), Some(openid)) = (&session.appid, &session.openid) {
            match user.identity(appid, openid) {
                Some(i) if i.binding == session.binding => {}
                _ => return Err(Error::unauthenticated()),
            }
        }
        Ok((token, session, user))
    }

    /// Gives a session the new session_key of a fresh `wx.login` code; the old key is kept for
    /// decryption for five minutes. A code of another openid changes nothing.
    pub async fn refresh(&self, token: &Token, session: Session, code: &str) -> Result<()> {
        check_code("code", code)?;
        let (appid, openid) = wechat_part(&session)?;
        let app = self.miniprogram(Some(appid))?;
        let wx = self
            .inner
            .wechat
            .code2session(&app.appid, &app.secret, code)
            .await?;
        if wx.openid != openid {
            return Err(Error::new(
                Code::Conflict,
                "This code belongs to another WeChat user than the session's. Sign in with /api/v1/auth/login instead.",
            ));
        }
        if let Some(u) = &wx.unionid {
            self.inner
                .users
                .record_unionid(&session.user_id, appid, openid, u)
                .await?;
        }
        let refreshed = Session {
            previous_key: session.session_key.clone(),
            previous_until: Some(users::now() + PREVIOUS_KEY_GRACE),
            session_key: Some(wx.session_key),
            ..session.clone()
        };
        self.inner.sessions.put(token, &refreshed).await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn logout(&self, token: &Token) -> Result<()> {
        self.inner.sessions.delete(token).await?;
        Ok(())
    }

    /// A user by id; a session whose user is gone is no session.
    pub async fn user(&self, user_id: &str) -> Result<User> {
        self.inner
            .users
            .get(user_id)
            .await?
            .ok_or_else(Error::unauthenticated)
    }

    /// Changes nickname and avatar.
    pub async fn update_profile(&self, user_id: &str, change: ProfileChange) -> Result<User> {
        self.inner.users.update_profile(user_id, &change).await?;
        self.user(user_id).await
    }

    /// Reads the phone number with a `getPhoneNumber` code and stores it on the user.
    pub async fn phone_by_code(&self, session: &Session, code: &str) -> Result<PhoneNumber> {
        check_code("code", code)?;
        let (appid, openid) = wechat_part(session)?;
        let app = self.miniprogram(Some(appid))?;
        let tokens = &self.inner.tokens;
        let mut access_token = tokens.get(app).await?;
        let mut refreshed = false;
        let info = loop {
            match self
                .inner
                .wechat
                .phone_number(&access_token, code, Some(openid))
                .await
            {
                Err(WechatError::Api(a))
                    if !refreshed
                        && matches!(
                            a.errcode,
                            errcode::INVALID_CREDENTIAL | errcode::ACCESS_TOKEN_EXPIRED
                        ) =>
                {
                    tracing::warn!(appid = %app.appid, errcode = a.errcode, "access_token refused; fetching a new one");
                    access_token = tokens.replace(app, &access_token).await?;
                    refreshed = true;
                }
                other => break other?,
            }
        };
        let phone = Phone {
            phone_number: info.phone_number,
            pure_phone_number: info.pure_phone_number,
            country_code: info.country_code,
        };
        self.inner.users.set_phone(&session.user_id, &phone).await?;
        Ok(phone)
    }

    /// Reads the phone number from the older button's encryptedData and stores it on the user.
    pub async fn phone_by_data(
        &self,
        session: &Session,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<PhoneNumber> {
        let open = self.decrypt(session, encrypted_data, iv, None).await?;
        let field = |name: &str| match open.data.get(name) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (Some(phone_number), Some(pure_phone_number), Some(country_code)) = (
            field("phoneNumber"),
            field("purePhoneNumber"),
            field("countryCode"),
        ) else {
            return Err(Error::invalid(
                "This encryptedData holds no phone number: send what the getPhoneNumber button gave.",
            ));
        };
        let phone = Phone {
            phone_number,
            pure_phone_number,
            country_code,
        };
        self.inner.users.set_phone(&session.user_id, &phone).await?;
        Ok(phone)
    }

    /// Decrypts open data with the session's session_key (the previous one too, within five
    /// minutes of a refresh), checks the watermark and, where given, the signature, and records a
    /// unionId the identity had not.
    pub async fn decrypt(
        &self,
        session: &Session,
        encrypted_data: &str,
        iv: &str,
        signed: Option<(&str, &str)>,
    ) -> Result<OpenData> {
        let bad = |e: crypto::DecryptError| {
            Error::invalid(format!(
                "{e}: send encryptedData and iv exactly as WeChat gave them (base64; iv is 16 bytes)."
            ))
        };
        let (appid, openid) = wechat_part(session)?;
        let iv = crypto::decode_block("iv", iv).map_err(bad)?;
        let data = crypto::decode_b64("encryptedData", encrypted_data).map_err(bad)?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(bad(crypto::DecryptError::Length("encryptedData")));
        }
        let now = users::now();
        let mut found = None;
        for key_text in session.decryption_keys(now) {
            let Ok(key) = crypto::decode_block("session_key", key_text) else {
                continue;
            };
            if let Ok(plain) = crypto::decrypt_raw(&key, &iv, data.clone()) {
                found = Some((key_text, plain));
                break;
            }
        }
        let Some((key_used, mut data)) = found else {
            return Err(Error::new(Code::DecryptFailed, DECRYPT_FAILED));
        };
        let watermark = data.remove("watermark").unwrap_or(serde_json::Value::Null);
        if watermark.get("appid").and_then(|a| a.as_str()) != Some(appid) {
            return Err(Error::new(
                Code::WatermarkMismatch,
                "The data's watermark names another mini program: it was not made for this session. Ask for the data again in this mini program.",
            ));
        }
        if let Some((raw_data, signature)) = signed {
            if !crypto::signature_matches(raw_data, key_used, signature) {
                return Err(Error::new(
                    Code::SignatureMismatch,
                    "signature is not sha1(rawData + session_key): send rawData and signature unchanged, from the same call as encryptedData.",
                ));
            }
        }
        if let (false, Some(serde_json::Value::String(unionid))) =
            (session.unionid_known, data.get("unionId"))
        {
            self.inner
                .users
                .record_unionid(&session.user_id, appid, openid, unionid)
                .await?;
        }
        Ok(OpenData { data, watermark })
    }
}
