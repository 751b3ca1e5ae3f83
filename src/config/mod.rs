//! Configuration of `wxlogin serve`: flags, `WXLOGIN_*` environment variables and a TOML file.
//!
//! A flag beats the environment, which beats the file, which beats the built-in default: the
//! file's keys become the flags' defaults (`file`), so clap alone decides. Settings come in
//! groups, one `Args` struct each (flattened into `ServeArgs`, with a heading in `--help`), and
//! each group is checked and resolved on its own into the typed group the server runs with.
//! Each default is written once, in the `DEFAULT_*` constants. The defaults need no outside
//! service: SQLite in the working directory and an in-process session store. Secrets are
//! `SecretString` from the moment they are read, so neither `Debug`, `--help` nor an error
//! message can print them.

mod file;
mod groups;
mod login;
mod sms;
mod tokens;

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use clap::Args;
use secrecy::SecretString;
use serde::Deserialize;

pub use file::FileSettings;
pub use groups::{Apps, AppsArgs, Server, ServerArgs, Storage, StorageArgs, Wechat, WechatArgs};
pub use login::{Login, LoginArgs};
pub use sms::{
    AliyunSettings, Sms, SmsArgs, SmsProviderKind, TencentSettings, EMULATOR_ACCESS_KEY_ID,
    EMULATOR_ACCESS_KEY_SECRET, EMULATOR_SDK_APP_ID, EMULATOR_SECRET_ID, EMULATOR_SECRET_KEY,
    EMULATOR_SIGN_NAME, EMULATOR_TEMPLATE_CODE, EMULATOR_TEMPLATE_ID,
};
pub use tokens::{Client, Tokens, TokensArgs};

/// The flags of `wxlogin serve`, each also read from its environment variable.
#[derive(Args, Clone)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys are the flag names with `_`), and
    /// `[[miniprogram]]` tables where several mini programs are served.
    #[arg(long, env = "WXLOGIN_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub wechat: WechatArgs,
    #[command(flatten)]
    pub apps: AppsArgs,
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub tokens: TokensArgs,
    #[command(flatten)]
    pub sms: SmsArgs,
}

impl ServeArgs {
    /// Checks every group and resolves it; `file` adds the apps of its tables.
    pub fn resolve(self, file: &FileSettings) -> Result<Config, ConfigError> {
        let server = self.server.resolve()?;
        let wechat = self.wechat.resolve()?;
        let https = server.public_url.scheme() == "https";
        let sms = self.sms.resolve(&wechat.api_base, https)?;
        let login = self.login.resolve()?;
        if login.web_require_phone && sms.is_none() {
            return Err(ConfigError(
                "WXLOGIN_WEB_REQUIRE_PHONE needs an SMS provider (WXLOGIN_SMS_PROVIDER)".into(),
            ));
        }
        Ok(Config {
            tokens: self.tokens.resolve(&server.public_url_as_given, file)?,
            sms,
            server,
            storage: self.storage.resolve()?,
            wechat,
            apps: self.apps.resolve(file)?,
            login,
            demo_page: None,
        })
    }
}

/// The validated settings the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: Server,
    pub storage: Storage,
    pub wechat: Wechat,
    pub apps: Apps,
    pub login: Login,
    pub tokens: Tokens,
    /// Who sends SMS codes; None: nobody (the SMS routes answer 404).
    pub sms: Option<Sms>,
    /// Serve the web demo page at `/demo/`, with this emulator's SMS inbox (set by `wxlogin
    /// demo`, not a setting).
    pub demo_page: Option<url::Url>,
}

impl Config {
    /// The settings for one node on embedded defaults (used by `demo` and tests).
    pub fn embedded(listen: SocketAddr) -> Config {
        let server = Server::embedded(listen);
        Config {
            tokens: Tokens::embedded(&server.public_url_as_given),
            server,
            storage: Storage::embedded(),
            wechat: Wechat::embedded(),
            apps: Apps::default(),
            login: Login::embedded(),
            sms: None,
            demo_page: None,
        }
    }
}

/// A setting that is missing or malformed; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

pub(crate) fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
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

impl LoginPolicy {
    fn as_str(self) -> &'static str {
        match self {
            LoginPolicy::AutoRegister => "auto_register",
            LoginPolicy::RequireBinding => "require_binding",
        }
    }
}

impl fmt::Display for LoginPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LoginPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [LoginPolicy::AutoRegister, LoginPolicy::RequireBinding]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("`{s}` is neither auto_register nor require_binding"))
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
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

#[cfg(test)]
mod tests;
