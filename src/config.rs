//! Configuration of `wxlogin serve`: flags, `WXLOGIN_*` environment variables and a TOML file.
//!
//! A flag beats the environment, which beats the file, which beats the built-in default. The
//! defaults need no outside service: SQLite in the working directory and an in-process session
//! store. Secrets are `SecretString` from the moment they are read, so neither `Debug`, `--help`
//! nor an error message can print them. This module imports nothing else of ours.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::{parser::ValueSource, ArgMatches, Args, FromArgMatches};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// The flags of `wxlogin serve`, each also read from its environment variable.
#[derive(Args, Clone)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys are the flag names with `_`), and
    /// `[[miniprogram]]` tables where several mini programs are served.
    #[arg(long, env = "WXLOGIN_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to serve on.
    #[arg(long, env = "WXLOGIN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// `sqlite://...` or `postgres://...`; migrations run at start.
    #[arg(long, env = "WXLOGIN_DATABASE_URL", default_value = "sqlite://wxlogin.db?mode=rwc", value_parser = secret, hide_env_values = true, hide_default_value = true)]
    pub database_url: SecretString,

    /// Redis for sessions, tickets and caches (`redis://`, `rediss://`); several URLs,
    /// comma-separated, name the nodes of a Redis Cluster. Unset: an in-process store, for a
    /// single node only.
    #[arg(long, env = "WXLOGIN_REDIS_URL", value_parser = secret, hide_env_values = true)]
    pub redis_url: Option<SecretString>,

    /// Keys that seal secrets kept in Redis (AES-256-GCM), as `id:base64-of-32-bytes`,
    /// comma-separated: the first seals, all open, so a new key goes first and the old one stays
    /// until its sessions expire. Make one with `openssl rand -base64 32`.
    #[arg(long, env = "WXLOGIN_SEALING_KEYS", value_parser = secret, hide_env_values = true)]
    pub sealing_keys: Option<SecretString>,

    /// Prefix of every Redis key, so that several deployments can share one Redis.
    #[arg(long, env = "WXLOGIN_REDIS_PREFIX", default_value = "wxlogin:")]
    pub redis_prefix: String,

    /// The URL at which browsers reach this server (for OAuth callbacks). Default: http:// and
    /// the listen address.
    #[arg(long, env = "WXLOGIN_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// Where WeChat's server APIs are (the emulator in tests and demos).
    #[arg(
        long,
        env = "WXLOGIN_WECHAT_API_BASE",
        default_value = "https://api.weixin.qq.com"
    )]
    pub wechat_api_base: Url,

    /// Where the browser is sent to authorize.
    #[arg(
        long,
        env = "WXLOGIN_WECHAT_OPEN_BASE",
        default_value = "https://open.weixin.qq.com"
    )]
    pub wechat_open_base: Url,

    /// Milliseconds one call to WeChat may take before it counts as failed.
    #[arg(long, env = "WXLOGIN_WECHAT_TIMEOUT_MS", default_value_t = 5000)]
    pub wechat_timeout_ms: u64,

    /// Calls to WeChat in flight at once; calls beyond it fail at once (502) instead of piling up.
    #[arg(long, env = "WXLOGIN_WECHAT_MAX_CONCURRENT", default_value_t = 256)]
    pub wechat_max_concurrent: usize,

    /// Requests per minute one client IP may make to `/api/v1/auth/*` and `/api/v1/accounts`,
    /// counted in Redis for all nodes; 0 turns the limit off.
    #[arg(long, env = "WXLOGIN_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,

    /// Serving threads where Redis is set, each with its own connections to Redis, the database
    /// and WeChat, so that a request's work stays on one thread; 0 is one per core. Without
    /// Redis, one runtime serves (the in-process store is one).
    #[arg(long, env = "WXLOGIN_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Comma-separated IPs or CIDRs of proxies whose `X-Forwarded-For` is believed.
    #[arg(long, env = "WXLOGIN_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

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
    #[arg(long, env = "WXLOGIN_OFFICIAL_ACCOUNT_SECRET", value_parser = secret, hide_env_values = true)]
    pub official_account_secret: Option<SecretString>,

    /// Comma-separated origins that web sign-in may return to.
    #[arg(long, env = "WXLOGIN_REDIRECT_ALLOWLIST", value_delimiter = ',')]
    pub redirect_allowlist: Vec<String>,

    /// What login does with an openid bound to no account: `auto_register` or `require_binding`.
    #[arg(long, env = "WXLOGIN_LOGIN_POLICY", default_value = "auto_register")]
    pub login_policy: LoginPolicy,

    /// Seconds a token lives without use (sliding).
    #[arg(long, env = "WXLOGIN_SESSION_TTL", default_value_t = 604_800)]
    pub session_ttl: u64,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "WXLOGIN_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Log format: `text` or `json`.
    #[arg(long, env = "WXLOGIN_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

/// What login does with an openid that no account carries yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginPolicy {
    /// Create a user for it.
    AutoRegister,
    /// Answer `binding_required` with a bind ticket.
    RequireBinding,
}

impl FromStr for LoginPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto_register" => Ok(Self::AutoRegister),
            "require_binding" => Ok(Self::RequireBinding),
            other => Err(format!(
                "`{other}` is neither auto_register nor require_binding"
            )),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("`{other}` is neither text nor json")),
        }
    }
}

/// The kind of WeChat application an AppID belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppKind {
    MiniProgram,
    Website,
    OfficialAccount,
}

/// An AppID and its AppSecret.
#[derive(Clone)]
pub struct AppCredentials {
    pub appid: String,
    pub secret: SecretString,
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("appid", &self.appid)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// The validated settings the server runs with.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: SecretString,
    pub redis_url: Option<SecretString>,
    pub sealing_keys: Option<SecretString>,
    pub redis_prefix: String,
    pub public_url: Url,
    pub wechat_api_base: Url,
    pub wechat_open_base: Url,
    pub wechat_timeout: Duration,
    pub wechat_max_concurrent: usize,
    pub rate_limit_per_minute: u32,
    /// Serving threads (0: one per core).
    pub threads: usize,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub miniprograms: Vec<AppCredentials>,
    pub website: Option<AppCredentials>,
    pub official_account: Option<AppCredentials>,
    pub redirect_allowlist: Vec<Url>,
    pub login_policy: LoginPolicy,
    pub session_ttl: Duration,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    /// Serve the web demo page at `/demo/` (set by `wxlogin demo`, not a setting).
    pub demo_page: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &"<hidden>")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<hidden>"))
            .field("redis_prefix", &self.redis_prefix)
            .field("public_url", &self.public_url.as_str())
            .field("wechat_api_base", &self.wechat_api_base.as_str())
            .field("miniprograms", &self.miniprograms)
            .field("website", &self.website)
            .field("official_account", &self.official_account)
            .field("login_policy", &self.login_policy)
            .field("session_ttl", &self.session_ttl)
            .finish_non_exhaustive()
    }
}

/// A setting that is missing or malformed; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// The TOML file: every key optional, unknown keys refused so that a typo is not ignored.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    redis_url: Option<String>,
    sealing_keys: Option<String>,
    redis_prefix: Option<String>,
    public_url: Option<Url>,
    wechat_api_base: Option<Url>,
    wechat_open_base: Option<Url>,
    wechat_timeout_ms: Option<u64>,
    wechat_max_concurrent: Option<usize>,
    rate_limit_per_minute: Option<u32>,
    threads: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
    miniprogram_appid: Option<String>,
    miniprogram_secret: Option<String>,
    website_appid: Option<String>,
    website_secret: Option<String>,
    official_account_appid: Option<String>,
    official_account_secret: Option<String>,
    redirect_allowlist: Option<Vec<String>>,
    login_policy: Option<LoginPolicy>,
    session_ttl: Option<u64>,
    max_body_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    miniprogram: Vec<FileApp>,
    website: Option<FileApp>,
    official_account: Option<FileApp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApp {
    appid: String,
    secret: String,
}

impl ServeArgs {
    /// Builds the settings from parsed flags, reading the TOML file where one is named. `matches`
    /// tells which values came from a flag or the environment, so that those beat the file.
    pub fn resolve(matches: &ArgMatches) -> Result<Config, ConfigError> {
        let args = ServeArgs::from_arg_matches(matches).map_err(|e| ConfigError(e.to_string()))?;
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| {
                    ConfigError(format!("config file {}: {}", path.display(), e.message()))
                })?
            }
            None => FileConfig::default(),
        };
        args.merge(matches, file)
    }

    fn merge(self, m: &ArgMatches, file: FileConfig) -> Result<Config, ConfigError> {
        // Whether the flag or its environment variable gave this value (and so beats the file).
        let explicit = |id: &str| {
            matches!(
                m.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        macro_rules! pick {
            ($field:ident) => {
                if explicit(stringify!($field)) {
                    self.$field
                } else {
                    file.$field.unwrap_or(self.$field)
                }
            };
            (opt $field:ident) => {
                if explicit(stringify!($field)) {
                    self.$field
                } else {
                    file.$field.or(self.$field)
                }
            };
            (secret $field:ident) => {
                if explicit(stringify!($field)) {
                    self.$field
                } else {
                    file.$field.map(SecretString::from).or(self.$field)
                }
            };
        }

        let listen = pick!(listen);
        let database_url = if explicit("database_url") {
            self.database_url.clone()
        } else {
            file.database_url
                .map(SecretString::from)
                .unwrap_or(self.database_url.clone())
        };
        let url = database_url.expose_secret();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError(
                "WXLOGIN_DATABASE_URL must start with sqlite:, postgres:// or postgresql://".into(),
            ));
        }
        let redis_url = pick!(secret redis_url);
        if let Some(urls) = &redis_url {
            for r in urls.expose_secret().split(',').map(str::trim) {
                if !(r.starts_with("redis://")
                    || r.starts_with("rediss://")
                    || r.starts_with("redis+unix://")
                    || r.starts_with("unix://"))
                {
                    return Err(ConfigError(
                        "WXLOGIN_REDIS_URL must be a redis:// or rediss:// URL".into(),
                    ));
                }
            }
        }
        let public_url = pick!(opt public_url)
            .map(Ok)
            .unwrap_or_else(|| Url::parse(&format!("http://{listen}")))
            .map_err(|e| ConfigError(format!("WXLOGIN_PUBLIC_URL: {e}")))?;

        let mut miniprograms = Vec::new();
        if let Some(app) = app_pair(
            "MINIPROGRAM",
            pick!(opt miniprogram_appid),
            pick!(secret miniprogram_secret),
        )? {
            miniprograms.push(app);
        }
        for app in file.miniprogram {
            let app = app_pair("MINIPROGRAM", Some(app.appid), Some(app.secret.into()))?
                .expect("both parts given");
            if !miniprograms.iter().any(|a| a.appid == app.appid) {
                miniprograms.push(app);
            }
        }
        let website = match app_pair(
            "WEBSITE",
            pick!(opt website_appid),
            pick!(secret website_secret),
        )? {
            Some(app) => Some(app),
            None => file
                .website
                .map(|a| app_pair("WEBSITE", Some(a.appid), Some(a.secret.into())))
                .transpose()?
                .flatten(),
        };
        let official_account = match app_pair(
            "OFFICIAL_ACCOUNT",
            pick!(opt official_account_appid),
            pick!(secret official_account_secret),
        )? {
            Some(app) => Some(app),
            None => file
                .official_account
                .map(|a| app_pair("OFFICIAL_ACCOUNT", Some(a.appid), Some(a.secret.into())))
                .transpose()?
                .flatten(),
        };

        let allow = if explicit("redirect_allowlist") {
            self.redirect_allowlist.clone()
        } else {
            file.redirect_allowlist
                .unwrap_or(self.redirect_allowlist.clone())
        };
        let redirect_allowlist = allow
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                Url::parse(s)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "WXLOGIN_REDIRECT_ALLOWLIST: `{s}` is not an http(s) origin"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let session_ttl = pick!(session_ttl);
        if session_ttl < 60 {
            return Err(ConfigError(
                "WXLOGIN_SESSION_TTL must be at least 60 seconds".into(),
            ));
        }
        let wechat_timeout_ms = pick!(wechat_timeout_ms);
        if wechat_timeout_ms == 0 {
            return Err(ConfigError(
                "WXLOGIN_WECHAT_TIMEOUT_MS must be above 0".into(),
            ));
        }
        let proxies = if explicit("trusted_proxies") {
            self.trusted_proxies.clone()
        } else {
            file.trusted_proxies.unwrap_or(self.trusted_proxies.clone())
        };
        let trusted_proxies = proxies
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "WXLOGIN_TRUSTED_PROXIES: `{s}` is not an IP or a CIDR"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let wechat_max_concurrent = pick!(wechat_max_concurrent);
        if wechat_max_concurrent == 0 {
            return Err(ConfigError(
                "WXLOGIN_WECHAT_MAX_CONCURRENT must be above 0".into(),
            ));
        }
        let max_body_bytes = pick!(max_body_bytes);
        if max_body_bytes < 1024 {
            return Err(ConfigError(
                "WXLOGIN_MAX_BODY_BYTES must be at least 1024".into(),
            ));
        }
        Ok(Config {
            listen,
            database_url,
            redis_url,
            sealing_keys: pick!(secret sealing_keys),
            redis_prefix: pick!(redis_prefix),
            public_url,
            wechat_api_base: pick!(wechat_api_base),
            wechat_open_base: pick!(wechat_open_base),
            wechat_timeout: Duration::from_millis(wechat_timeout_ms),
            wechat_max_concurrent,
            rate_limit_per_minute: pick!(rate_limit_per_minute),
            threads: pick!(threads),
            trusted_proxies,
            miniprograms,
            website,
            official_account,
            redirect_allowlist,
            login_policy: pick!(login_policy),
            session_ttl: Duration::from_secs(session_ttl),
            max_body_bytes,
            log_format: pick!(log_format),
            demo_page: false,
        })
    }
}

/// Checks that an AppID comes with its AppSecret and looks like one.
fn app_pair(
    kind: &str,
    appid: Option<String>,
    secret: Option<SecretString>,
) -> Result<Option<AppCredentials>, ConfigError> {
    match (appid, secret) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError(format!(
            "WXLOGIN_{kind}_SECRET is missing (WXLOGIN_{kind}_APPID is set)"
        ))),
        (None, Some(_)) => Err(ConfigError(format!(
            "WXLOGIN_{kind}_APPID is missing (WXLOGIN_{kind}_SECRET is set)"
        ))),
        (Some(appid), Some(secret)) => {
            if !valid_appid(&appid) {
                return Err(ConfigError(format!(
                    "WXLOGIN_{kind}_APPID `{appid}` is not an AppID (letters and digits, like wx1234567890abcdef)"
                )));
            }
            if secret.expose_secret().is_empty() {
                return Err(ConfigError(format!("WXLOGIN_{kind}_SECRET is empty")));
            }
            Ok(Some(AppCredentials { appid, secret }))
        }
    }
}

/// An AppID as WeChat issues them: `wx` and 16 hex digits, loosened to 1..=32 ASCII letters,
/// digits and `_` so that test apps can be named freely.
pub fn valid_appid(appid: &str) -> bool {
    (1..=32).contains(&appid.len())
        && appid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Config {
    /// The settings for one node on embedded defaults (used by `demo` and tests).
    pub fn embedded(listen: SocketAddr) -> Config {
        Config {
            listen,
            database_url: SecretString::from("sqlite://wxlogin.db?mode=rwc"),
            redis_url: None,
            sealing_keys: None,
            redis_prefix: "wxlogin:".into(),
            public_url: Url::parse(&format!("http://{listen}"))
                .expect("socket address is a URL host"),
            wechat_api_base: Url::parse("https://api.weixin.qq.com").expect("static URL"),
            wechat_open_base: Url::parse("https://open.weixin.qq.com").expect("static URL"),
            wechat_timeout: Duration::from_secs(5),
            wechat_max_concurrent: 256,
            rate_limit_per_minute: 600,
            threads: 0,
            trusted_proxies: Vec::new(),
            miniprograms: Vec::new(),
            website: None,
            official_account: None,
            redirect_allowlist: Vec::new(),
            login_policy: LoginPolicy::AutoRegister,
            session_ttl: Duration::from_secs(604_800),
            max_body_bytes: 64 * 1024,
            log_format: LogFormat::Text,
            demo_page: false,
        }
    }

    /// The credentials of a configured app, by AppID.
    pub fn app(&self, appid: &str) -> Option<(AppKind, &AppCredentials)> {
        self.miniprograms
            .iter()
            .map(|a| (AppKind::MiniProgram, a))
            .chain(self.website.iter().map(|a| (AppKind::Website, a)))
            .chain(
                self.official_account
                    .iter()
                    .map(|a| (AppKind::OfficialAccount, a)),
            )
            .find(|(_, a)| a.appid == appid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn resolve(args: &[&str]) -> Result<Config, ConfigError> {
        let m = Cli::command()
            .try_get_matches_from(std::iter::once("wxlogin").chain(args.iter().copied()))
            .map_err(|e| ConfigError(e.to_string()))?;
        ServeArgs::resolve(&m)
    }

    #[test]
    fn defaults_need_no_outside_service() {
        let c = resolve(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.redis_url.is_none());
        assert_eq!(
            c.database_url.expose_secret(),
            "sqlite://wxlogin.db?mode=rwc"
        );
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(c.login_policy, LoginPolicy::AutoRegister);
    }

    #[test]
    fn appid_without_secret_names_the_missing_setting() {
        let err = resolve(&["--miniprogram-appid", "wx1234567890abcdef"])
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("WXLOGIN_MINIPROGRAM_SECRET"),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let c = resolve(&[
            "--miniprogram-appid",
            "wx1",
            "--miniprogram-secret",
            "s3cr3t-value",
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("wx1"));
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let dir = std::env::temp_dir().join(format!("wxlogin-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nsession_ttl = 3600\nlogin_policy = \"require_binding\"\n\
             [[miniprogram]]\nappid = \"wxa\"\nsecret = \"sa\"\n[[miniprogram]]\nappid = \"wxb\"\nsecret = \"sb\"\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = resolve(&["--config", p, "--session-ttl", "120"]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.session_ttl, Duration::from_secs(120));
        assert_eq!(c.login_policy, LoginPolicy::RequireBinding);
        assert_eq!(c.miniprograms.len(), 2);
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = resolve(&["--config", p]).err().unwrap();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn malformed_values_are_refused_by_name() {
        assert!(resolve(&["--login-policy", "open"])
            .err()
            .unwrap()
            .to_string()
            .contains("login-policy"));
        assert!(resolve(&["--redirect-allowlist", "javascript:alert(1)"])
            .err()
            .unwrap()
            .to_string()
            .contains("WXLOGIN_REDIRECT_ALLOWLIST"));
        assert!(resolve(&["--database-url", "mysql://x"])
            .err()
            .unwrap()
            .to_string()
            .contains("WXLOGIN_DATABASE_URL"));
    }
}
