//! The settings of access tokens (what the business's own services verify) and of the clients
//! that may introspect and revoke them.

use std::{fmt, time::Duration};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::{secret, ConfigError, FileSettings};

const DEFAULT_ACCESS_TOKEN_TTL: u64 = 900;
const DEFAULT_KEY_PUBLISH_DELAY: u64 = 3600;

/// Access tokens and the clients of introspection and revocation.
#[derive(Args, Clone)]
#[command(next_help_heading = "Access tokens")]
pub struct TokensArgs {
    /// The `iss` of access tokens and of discovery, exactly as given. Default: the public URL.
    #[arg(long, env = "WXLOGIN_ISSUER")]
    pub issuer: Option<String>,

    /// The `aud` of access tokens. Default: the issuer.
    #[arg(long, env = "WXLOGIN_ACCESS_TOKEN_AUDIENCE")]
    pub access_token_audience: Option<String>,

    /// Seconds an access token lives (verifiers accept it until then, even after a logout).
    #[arg(long, env = "WXLOGIN_ACCESS_TOKEN_TTL", default_value_t = DEFAULT_ACCESS_TOKEN_TTL)]
    pub access_token_ttl: u64,

    /// Seconds between `wxlogin keys rotate` publishing a key and the key signing, so that
    /// verifiers have fetched it first.
    #[arg(long, env = "WXLOGIN_KEY_PUBLISH_DELAY", default_value_t = DEFAULT_KEY_PUBLISH_DELAY)]
    pub key_publish_delay: u64,

    /// Clients that may introspect and revoke tokens, as `id:secret`, comma-separated (more, with
    /// names and redirect URIs, as `[[client]]` tables in the file).
    #[arg(long, env = "WXLOGIN_CLIENTS", value_parser = secret, hide_env_values = true)]
    pub clients: Option<SecretString>,

    /// Machines that call the admin API with HTTP Basic, as `id:secret`, comma-separated (or
    /// `admin = true` on a `[[client]]`).
    #[arg(long, env = "WXLOGIN_ADMIN_CLIENTS", value_parser = secret, hide_env_values = true)]
    pub admin_clients: Option<SecretString>,

    /// People who call the admin API with their own session: usernames or user ids,
    /// comma-separated.
    #[arg(long, env = "WXLOGIN_ADMIN_USERS", value_delimiter = ',')]
    pub admin_users: Vec<String>,
}

/// A client of the business (a service or a web app) with its secret.
#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub secret: SecretString,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    /// May call the admin API.
    pub admin: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("secret", &"<hidden>")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Access tokens and clients, checked.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
    pub key_publish_delay: Duration,
    pub clients: Vec<Client>,
    /// Usernames (without regard to case) or user ids of operators.
    pub admin_users: Vec<String>,
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

impl TokensArgs {
    /// `public_url` is the public URL as given, the issuer where none is set.
    pub fn resolve(self, public_url: &str, file: &FileSettings) -> Result<Tokens, ConfigError> {
        let issuer = self.issuer.unwrap_or_else(|| public_url.to_string());
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(invalid("WXLOGIN_ISSUER must be an http(s) URL"));
        }
        if !(60..=86_400).contains(&self.access_token_ttl) {
            return Err(invalid(
                "WXLOGIN_ACCESS_TOKEN_TTL must be 60 to 86400 seconds",
            ));
        }
        let mut clients = Vec::new();
        for (list, admin, var) in [
            (&self.clients, false, "WXLOGIN_CLIENTS"),
            (&self.admin_clients, true, "WXLOGIN_ADMIN_CLIENTS"),
        ] {
            let Some(list) = list else { continue };
            for entry in list.expose_secret().split(',').map(str::trim) {
                if entry.is_empty() {
                    continue;
                }
                let (id, secret) = entry
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("{var}: each client is `id:secret`")))?;
                clients.push(Client {
                    id: id.to_string(),
                    secret: SecretString::from(secret.to_string()),
                    name: None,
                    redirect_uris: Vec::new(),
                    admin,
                });
            }
        }
        for c in &file.tables.client {
            clients.push(Client {
                id: c.id.clone(),
                secret: SecretString::from(c.secret.clone()),
                name: c.name.clone(),
                redirect_uris: c.redirect_uris.clone(),
                admin: c.admin,
            });
        }
        for (i, c) in clients.iter().enumerate() {
            let shaped = !c.id.is_empty()
                && c.id.len() <= 64
                && c.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !shaped {
                return Err(invalid(format!(
                    "client id `{}` must be 1 to 64 letters, digits, `_`, `.` or `-`",
                    c.id
                )));
            }
            if c.secret.expose_secret().len() < 16 {
                return Err(invalid(format!(
                    "the secret of client `{}` must be at least 16 characters",
                    c.id
                )));
            }
            if clients[..i].iter().any(|o| o.id == c.id) {
                return Err(invalid(format!("client `{}` is given twice", c.id)));
            }
        }
        Ok(Tokens {
            audience: self.access_token_audience.unwrap_or_else(|| issuer.clone()),
            issuer,
            access_token_ttl: Duration::from_secs(self.access_token_ttl),
            key_publish_delay: Duration::from_secs(self.key_publish_delay),
            clients,
            admin_users: self
                .admin_users
                .iter()
                .map(|u| u.trim().to_lowercase())
                .filter(|u| !u.is_empty())
                .collect(),
        })
    }
}

impl Tokens {
    pub fn embedded(public_url: &str) -> Tokens {
        Tokens {
            issuer: public_url.to_string(),
            audience: public_url.to_string(),
            access_token_ttl: Duration::from_secs(DEFAULT_ACCESS_TOKEN_TTL),
            key_publish_delay: Duration::from_secs(DEFAULT_KEY_PUBLISH_DELAY),
            clients: Vec::new(),
            admin_users: Vec::new(),
        }
    }
}
