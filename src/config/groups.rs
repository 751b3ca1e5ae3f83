//! The groups of settings: each an `Args` struct as clap reads it, and the checked, typed
//! group it resolves into.

use std::{fmt, net::SocketAddr, time::Duration};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{secret, AppCredentials, ConfigError, FileSettings, LogFormat};
use crate::domain::{AppId, Shaped};
use crate::slow_clients;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_DATABASE_URL: &str = "sqlite://wxlogin.db?mode=rwc";
const DEFAULT_REDIS_PREFIX: &str = "wxlogin:";
const DEFAULT_WECHAT_API_BASE: &str = "https://api.weixin.qq.com";
const DEFAULT_WECHAT_OPEN_BASE: &str = "https://open.weixin.qq.com";
const DEFAULT_WECHAT_TIMEOUT_MS: u64 = 5000;
const DEFAULT_WECHAT_MAX_CONCURRENT: usize = 256;
const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Days the audit log keeps an event.
const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 180;
/// Requests one serving thread works on at once.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// How long a request may wait for its turn beyond `WXLOGIN_MAX_IN_FLIGHT`.
const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(1);
/// How long a request may take, WeChat's slowest answer and its retry included.
const DEFAULT_REQUEST_DEADLINE: Duration = Duration::from_secs(15);

pub(super) fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

/// `http://` and the listen address: the public URL where none is set.
fn http_url(listen: SocketAddr) -> String {
    format!("http://{listen}")
}

/// The non-empty entries of a comma-separated list, trimmed.
pub(super) fn entries(list: &[String]) -> impl Iterator<Item = &str> {
    list.iter().map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Where and how this server serves.
#[derive(Args, Clone)]
#[command(next_help_heading = "Server")]
pub struct ServerArgs {
    /// Address to serve on.
    #[arg(long, env = "WXLOGIN_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// The URL at which browsers reach this server (for OAuth callbacks). Default: http:// and
    /// the listen address.
    #[arg(long, env = "WXLOGIN_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Serving threads where Redis is set, each with its own connections to Redis, the database
    /// and WeChat, so that a request's work stays on one thread; 0 is one per core. Without
    /// Redis, one runtime serves (the in-process store is one).
    #[arg(long, env = "WXLOGIN_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "WXLOGIN_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Requests one serving thread works on at once; beyond it, a request waits up to a second
    /// for its turn, then 503 (health, readiness and metrics never wait).
    #[arg(long, env = "WXLOGIN_MAX_IN_FLIGHT", default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,

    /// Connections this process keeps open at once; beyond, new ones wait in the listen queue.
    #[arg(long, env = "WXLOGIN_MAX_CONNECTIONS", default_value_t = slow_clients::MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Comma-separated IPs or CIDRs of proxies whose `X-Forwarded-For` is believed.
    #[arg(long, env = "WXLOGIN_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Log format: `text` or `json`.
    #[arg(long, env = "WXLOGIN_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Where and how this server serves, checked.
#[derive(Clone, Debug)]
pub struct Server {
    pub listen: SocketAddr,
    pub public_url: Url,
    /// The public URL as it was given (the default issuer of access tokens).
    pub public_url_as_given: String,
    /// Serving threads (0: one per core).
    pub threads: usize,
    pub max_body_bytes: usize,
    pub max_in_flight: usize,
    /// How long a request may wait for its turn beyond `max_in_flight` before it is answered
    /// 503 (1 s; set otherwise only by tests).
    pub queue_wait: Duration,
    /// How long a request may take before it is answered 503 (15 s; set otherwise only by
    /// tests).
    pub request_deadline: Duration,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub log_format: LogFormat,
    /// The cap on open connections (`WXLOGIN_MAX_CONNECTIONS`, shared by every clone of this
    /// value), a request head's deadline and the idle timeout between requests (10 s and 60 s;
    /// fixed, set otherwise only by tests).
    pub connections: slow_clients::ConnectionLimits,
}

impl ServerArgs {
    pub fn resolve(self) -> Result<Server, ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(invalid("WXLOGIN_MAX_BODY_BYTES must be at least 1024"));
        }
        let trusted_proxies = entries(&self.trusted_proxies)
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        invalid(format!(
                            "WXLOGIN_TRUSTED_PROXIES: `{s}` is not an IP or a CIDR"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let given = self.public_url.unwrap_or_else(|| http_url(self.listen));
        let public_url = Url::parse(&given)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                invalid(format!(
                    "WXLOGIN_PUBLIC_URL: `{given}` is not an http(s) URL"
                ))
            })?;
        Ok(Server {
            public_url,
            public_url_as_given: given,
            listen: self.listen,
            threads: self.threads,
            max_body_bytes: self.max_body_bytes,
            max_in_flight: self.max_in_flight.max(1),
            queue_wait: DEFAULT_QUEUE_WAIT,
            request_deadline: DEFAULT_REQUEST_DEADLINE,
            trusted_proxies,
            log_format: self.log_format,
            connections: slow_clients::ConnectionLimits::new(self.max_connections),
        })
    }
}

impl Server {
    pub fn embedded(listen: SocketAddr) -> Server {
        Server {
            listen,
            public_url: Url::parse(&http_url(listen)).expect("a socket address is a URL host"),
            public_url_as_given: http_url(listen),
            threads: 0,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            queue_wait: DEFAULT_QUEUE_WAIT,
            request_deadline: DEFAULT_REQUEST_DEADLINE,
            trusted_proxies: Vec::new(),
            log_format: LogFormat::Text,
            connections: Default::default(),
        }
    }
}

/// Where users, sessions and caches are kept.
#[derive(Args, Clone)]
#[command(next_help_heading = "Storage")]
pub struct StorageArgs {
    /// `sqlite://...` or `postgres://...`; migrations run at start.
    #[arg(
        long,
        env = "WXLOGIN_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        value_parser = secret,
        hide_env_values = true,
        hide_default_value = true
    )]
    pub database_url: SecretString,

    /// Redis for sessions, tickets and caches (`redis://`, `rediss://`); several URLs,
    /// comma-separated, name the nodes of a Redis Cluster; `redis+sentinel://host:port,.../name`
    /// follows the master that Redis Sentinel names. Unset: an in-process store, for a single
    /// node only.
    #[arg(long, env = "WXLOGIN_REDIS_URL", value_parser = secret, hide_env_values = true)]
    pub redis_url: Option<SecretString>,

    /// Keys that seal secrets kept in Redis (AES-256-GCM), as `id:base64-of-32-bytes`,
    /// comma-separated: the first seals, all open, so a new key goes first and the old one stays
    /// until its sessions expire. Make one with `openssl rand -base64 32`.
    #[arg(long, env = "WXLOGIN_SEALING_KEYS", value_parser = secret, hide_env_values = true)]
    pub sealing_keys: Option<SecretString>,

    /// Prefix of every Redis key, so that several deployments can share one Redis.
    #[arg(long, env = "WXLOGIN_REDIS_PREFIX", default_value = DEFAULT_REDIS_PREFIX)]
    pub redis_prefix: String,

    /// Days the audit log keeps an event; older ones are deleted every hour (by every node,
    /// which does no harm). 0 keeps them for ever.
    #[arg(long, env = "WXLOGIN_AUDIT_RETENTION_DAYS", default_value_t = DEFAULT_AUDIT_RETENTION_DAYS)]
    pub audit_retention_days: u32,
}

/// Where users, sessions and caches are kept, checked.
#[derive(Clone)]
pub struct Storage {
    pub database_url: SecretString,
    pub redis_url: Option<SecretString>,
    pub sealing_keys: Option<SecretString>,
    pub redis_prefix: String,
    /// How long the audit log keeps an event (None: for ever).
    pub audit_retention: Option<Duration>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("database_url", &"<hidden>")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<hidden>"))
            .field("redis_prefix", &self.redis_prefix)
            .finish_non_exhaustive()
    }
}

impl StorageArgs {
    pub fn resolve(self) -> Result<Storage, ConfigError> {
        let url = self.database_url.expose_secret();
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return Err(invalid(
                "WXLOGIN_DATABASE_URL must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if let Some(urls) = &self.redis_url {
            let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
            let urls = urls.expose_secret();
            let sentinel = urls.starts_with("redis+sentinel://");
            for r in urls.split(',').map(str::trim).filter(|_| !sentinel) {
                if !schemes.iter().any(|scheme| r.starts_with(scheme)) {
                    return Err(invalid(
                        "WXLOGIN_REDIS_URL must be a redis:// or rediss:// URL",
                    ));
                }
            }
        }
        Ok(Storage {
            database_url: self.database_url,
            redis_url: self.redis_url,
            sealing_keys: self.sealing_keys,
            redis_prefix: self.redis_prefix,
            audit_retention: retention(self.audit_retention_days),
        })
    }
}

impl Storage {
    pub fn embedded() -> Storage {
        Storage {
            database_url: SecretString::from(DEFAULT_DATABASE_URL),
            redis_url: None,
            sealing_keys: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.into(),
            audit_retention: retention(DEFAULT_AUDIT_RETENTION_DAYS),
        }
    }
}

fn retention(days: u32) -> Option<Duration> {
    (days > 0).then(|| Duration::from_secs(u64::from(days) * 86_400))
}

/// How WeChat is reached.
#[derive(Args, Clone)]
#[command(next_help_heading = "WeChat")]
pub struct WechatArgs {
    /// Where WeChat's server APIs are (the emulator in tests and demos).
    #[arg(long, env = "WXLOGIN_WECHAT_API_BASE", default_value = DEFAULT_WECHAT_API_BASE)]
    pub wechat_api_base: Url,

    /// Where the browser is sent to authorize.
    #[arg(long, env = "WXLOGIN_WECHAT_OPEN_BASE", default_value = DEFAULT_WECHAT_OPEN_BASE)]
    pub wechat_open_base: Url,

    /// Milliseconds one call to WeChat may take before it counts as failed.
    #[arg(long, env = "WXLOGIN_WECHAT_TIMEOUT_MS", default_value_t = DEFAULT_WECHAT_TIMEOUT_MS)]
    pub wechat_timeout_ms: u64,

    /// Calls to WeChat in flight at once; calls beyond it fail at once (502) instead of piling up.
    #[arg(
        long,
        env = "WXLOGIN_WECHAT_MAX_CONCURRENT",
        default_value_t = DEFAULT_WECHAT_MAX_CONCURRENT
    )]
    pub wechat_max_concurrent: usize,
}

/// How WeChat is reached, checked.
#[derive(Clone, Debug)]
pub struct Wechat {
    pub api_base: Url,
    pub open_base: Url,
    pub timeout: Duration,
    pub max_concurrent: usize,
}

impl WechatArgs {
    pub fn resolve(self) -> Result<Wechat, ConfigError> {
        if self.wechat_timeout_ms == 0 {
            return Err(invalid("WXLOGIN_WECHAT_TIMEOUT_MS must be above 0"));
        }
        if self.wechat_max_concurrent == 0 {
            return Err(invalid("WXLOGIN_WECHAT_MAX_CONCURRENT must be above 0"));
        }
        Ok(Wechat {
            api_base: self.wechat_api_base,
            open_base: self.wechat_open_base,
            timeout: Duration::from_millis(self.wechat_timeout_ms),
            max_concurrent: self.wechat_max_concurrent,
        })
    }
}

impl Wechat {
    pub fn embedded() -> Wechat {
        Wechat {
            api_base: Url::parse(DEFAULT_WECHAT_API_BASE).expect("a URL"),
            open_base: Url::parse(DEFAULT_WECHAT_OPEN_BASE).expect("a URL"),
            timeout: Duration::from_millis(DEFAULT_WECHAT_TIMEOUT_MS),
            max_concurrent: DEFAULT_WECHAT_MAX_CONCURRENT,
        }
    }
}

/// The WeChat apps this server signs people in with (several mini programs in the file).
#[derive(Args, Clone)]
#[command(next_help_heading = "Apps")]
pub struct AppsArgs {
    /// AppID of the mini program.
    #[arg(long, env = "WXLOGIN_MINIPROGRAM_APPID")]
    pub miniprogram_appid: Option<String>,

    /// AppSecret of the mini program.
    #[arg(long, env = "WXLOGIN_MINIPROGRAM_SECRET", value_parser = secret, hide_env_values = true)]
    pub miniprogram_secret: Option<SecretString>,

    /// AppID of the website application (QR login).
    #[arg(long, env = "WXLOGIN_WEBSITE_APPID")]
    pub website_appid: Option<String>,

    /// AppSecret of the website application.
    #[arg(long, env = "WXLOGIN_WEBSITE_SECRET", value_parser = secret, hide_env_values = true)]
    pub website_secret: Option<SecretString>,

    /// AppID of the Official Account.
    #[arg(long, env = "WXLOGIN_OFFICIAL_ACCOUNT_APPID")]
    pub official_account_appid: Option<String>,

    /// AppSecret of the Official Account.
    #[arg(
        long,
        env = "WXLOGIN_OFFICIAL_ACCOUNT_SECRET",
        value_parser = secret,
        hide_env_values = true
    )]
    pub official_account_secret: Option<SecretString>,

    /// AppID of the native (iOS/Android) app, from the WeChat Open Platform.
    #[arg(long, env = "WXLOGIN_APP_APPID")]
    pub app_appid: Option<String>,

    /// AppSecret of the native app (kept here: it must never ship in the app).
    #[arg(long, env = "WXLOGIN_APP_SECRET", value_parser = secret, hide_env_values = true)]
    pub app_secret: Option<SecretString>,
}

/// The WeChat apps, checked.
#[derive(Clone, Debug, Default)]
pub struct Apps {
    pub miniprograms: Vec<AppCredentials>,
    pub website: Option<AppCredentials>,
    pub official_account: Option<AppCredentials>,
    /// Native apps (`POST /api/v1/auth/app`).
    pub mobile_apps: Vec<AppCredentials>,
}

/// Checks that an AppID comes with its AppSecret and looks like one.
fn app_pair(
    kind: &str,
    appid: Option<String>,
    secret: Option<SecretString>,
) -> Result<Option<AppCredentials>, ConfigError> {
    let (appid, secret) = match (appid, secret) {
        (None, None) => return Ok(None),
        (Some(appid), Some(secret)) => (appid, secret),
        (Some(_), None) => {
            return Err(invalid(format!(
                "WXLOGIN_{kind}_SECRET is missing (WXLOGIN_{kind}_APPID is set)"
            )))
        }
        (None, Some(_)) => {
            return Err(invalid(format!(
                "WXLOGIN_{kind}_APPID is missing (WXLOGIN_{kind}_SECRET is set)"
            )))
        }
    };
    let appid = AppId::parse(appid).map_err(|e| {
        invalid(format!(
            "WXLOGIN_{kind}_APPID is not an AppID (letters and digits, like \
             wx1234567890abcdef): {e}"
        ))
    })?;
    if secret.expose_secret().is_empty() {
        return Err(invalid(format!("WXLOGIN_{kind}_SECRET is empty")));
    }
    Ok(Some(AppCredentials {
        appid: appid.into(),
        secret,
    }))
}

impl AppsArgs {
    /// The apps of the flags, and of the file's `[[miniprogram]]`, `[website]`,
    /// `[official_account]` and `[[app]]` tables (a flag's app first).
    pub fn resolve(self, file: &FileSettings) -> Result<Apps, ConfigError> {
        let from_file = |kind: &str, app: Option<&super::file::FileApp>| match app {
            Some(a) => app_pair(kind, Some(a.appid.clone()), Some(a.secret.clone().into())),
            None => Ok(None),
        };
        // A flag's app first, then the file's others.
        let several = |kind: &str, flag: Option<AppCredentials>, table: &[super::file::FileApp]| {
            let mut apps: Vec<AppCredentials> = flag.into_iter().collect();
            for app in table {
                let app = from_file(kind, Some(app))?.expect("both parts given");
                if !apps.iter().any(|a| a.appid == app.appid) {
                    apps.push(app);
                }
            }
            Ok::<_, ConfigError>(apps)
        };
        let flag = app_pair(
            "MINIPROGRAM",
            self.miniprogram_appid,
            self.miniprogram_secret,
        )?;
        let miniprograms = several("MINIPROGRAM", flag, &file.tables.miniprogram)?;
        let flag = app_pair("APP", self.app_appid, self.app_secret)?;
        let mobile_apps = several("APP", flag, &file.tables.app)?;
        let website = match app_pair("WEBSITE", self.website_appid, self.website_secret)? {
            Some(app) => Some(app),
            None => from_file("WEBSITE", file.tables.website.as_ref())?,
        };
        let official_account = match app_pair(
            "OFFICIAL_ACCOUNT",
            self.official_account_appid,
            self.official_account_secret,
        )? {
            Some(app) => Some(app),
            None => from_file("OFFICIAL_ACCOUNT", file.tables.official_account.as_ref())?,
        };
        Ok(Apps {
            miniprograms,
            website,
            official_account,
            mobile_apps,
        })
    }
}
