//! `wxlogin keys rotate [--now]` and `wxlogin keys list`: the keys that sign access tokens, in
//! the database that `serve` uses (read with the same settings, sealing keys included).

use clap::{Args, Subcommand};

use super::Failure;
use crate::accounts::AccessTokens;
use crate::config::{Config, ServeArgs};
use crate::store::{seal::Sealer, signing_keys::SigningKeys};
use crate::{app, domain};

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Subcommand)]
pub enum KeysAction {
    /// Add a signing key: published at once, signing from WXLOGIN_KEY_PUBLISH_DELAY later.
    Rotate {
        /// Sign with it at once (verifiers that cached the JWK Set fetch it again on its kid).
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        settings: ServeArgs,
    },
    /// Show each key's kid, state and dates (never key material).
    List {
        #[command(flatten)]
        settings: ServeArgs,
    },
}

impl KeysAction {
    pub fn settings(&self) -> &ServeArgs {
        match self {
            KeysAction::Rotate { settings, .. } | KeysAction::List { settings } => settings,
        }
    }
}

fn date(secs: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

async fn tokens(config: &Config) -> Result<AccessTokens, Failure> {
    let users = app::database(config).await?;
    let sealer = match &config.storage.sealing_keys {
        Some(spec) => Sealer::parse(spec).map_err(|e| format!("WXLOGIN_SEALING_KEYS: {e}"))?,
        None => Sealer::default(),
    };
    let store = SigningKeys::new(&users, sealer);
    Ok(AccessTokens::new(store, config.tokens.clone()))
}

pub async fn rotate(config: Config, now: bool) -> Result<(), Failure> {
    let tokens = tokens(&config).await?;
    let delay = if now {
        0
    } else {
        config.tokens.key_publish_delay.as_secs() as i64
    };
    let signs_from = domain::now() + delay;
    let kid = tokens.add_key(signs_from).await?;
    println!(
        "added key {kid}: published now, signs from {}",
        date(signs_from)
    );
    Ok(())
}

pub async fn list(config: Config) -> Result<(), Failure> {
    let tokens = tokens(&config).await?;
    println!("{:<24} {:<26} {:<22} signs from", "kid", "state", "created");
    for key in tokens.list().await? {
        println!(
            "{:<24} {:<26} {:<22} {}",
            key.kid,
            key.state,
            date(key.created_at),
            date(key.signs_from)
        );
    }
    Ok(())
}
