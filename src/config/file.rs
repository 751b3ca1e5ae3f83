//! The TOML file of `--config`: its keys are the flags' names with `_`, and they become the
//! flags' defaults, so that a flag or an environment variable still beats them and clap parses
//! every value the same way whatever its source. The `[[miniprogram]]`, `[website]`,
//! `[official_account]` and `[[client]]` tables, which no flag holds, are kept apart. An unknown
//! key is refused, so that a typo is not ignored.

use std::path::Path;

use clap::{Args, Command};
use serde::Deserialize;

use super::{ConfigError, ServeArgs};

/// An app of the file's tables.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileApp {
    pub appid: String,
    pub secret: String,
}

/// A client of the file's `[[client]]` tables.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileClient {
    pub id: String,
    pub secret: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub name: Option<String>,
    /// May call the admin API (HTTP Basic).
    #[serde(default)]
    pub admin: bool,
}

/// The file's tables: apps and clients.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileTables {
    #[serde(default)]
    pub miniprogram: Vec<FileApp>,
    pub website: Option<FileApp>,
    pub official_account: Option<FileApp>,
    /// Native apps (the WeChat Open SDK's mobile applications).
    #[serde(default)]
    pub app: Vec<FileApp>,
    #[serde(default)]
    pub client: Vec<FileClient>,
}

/// What the settings file holds: flag values by name, and tables.
#[derive(Default, Clone)]
pub struct FileSettings {
    /// (flag id, values): one value, or several for a list.
    flags: Vec<(String, Vec<String>)>,
    pub tables: FileTables,
}

const TABLES: [&str; 5] = [
    "miniprogram",
    "website",
    "official_account",
    "app",
    "client",
];

impl FileSettings {
    /// Reads and checks the file.
    pub fn read(path: &Path) -> Result<FileSettings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))
    }

    fn parse(text: &str) -> Result<FileSettings, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let known = ServeArgs::augment_args(Command::new("serve"));
        let mut settings = FileSettings::default();
        let mut tables = toml::Table::new();
        for (key, value) in table {
            if TABLES.contains(&key.as_str()) {
                tables.insert(key, value);
                continue;
            }
            let is_flag = key != "config" && known.get_arguments().any(|a| a.get_id() == &key);
            if !is_flag {
                return Err(format!("unknown key `{key}`"));
            }
            let values = match value {
                toml::Value::Array(items) => items.into_iter().map(text_of).collect(),
                one => text_of(one).map(|v| vec![v]),
            }
            .ok_or_else(|| format!("`{key}` must be a string, a number or a list of them"))?;
            settings.flags.push((key, values));
        }
        settings.tables = tables
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        Ok(settings)
    }

    /// `command` (which takes `ServeArgs`) with the file's values as its flags' defaults.
    pub fn apply(&self, mut command: Command) -> Command {
        for (id, values) in &self.flags {
            let values = values.clone();
            command = command.mut_arg(id, move |arg| {
                // Hidden: a default from the file may be a secret.
                arg.default_values(values).hide_default_value(true)
            });
        }
        command
    }
}

/// A TOML scalar as the text a flag would take.
fn text_of(value: toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}
