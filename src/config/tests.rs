use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use secrecy::ExposeSecret;

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Parses as `wxlogin serve` does: the file's keys become defaults, then the flags decide.
fn resolve(args: &[&str]) -> Result<Config, ConfigError> {
    let argv: Vec<&str> = std::iter::once("wxlogin")
        .chain(args.iter().copied())
        .collect();
    let parse = |cmd: clap::Command| {
        let m = cmd
            .try_get_matches_from(&argv)
            .map_err(|e| ConfigError(e.to_string()))?;
        Cli::from_arg_matches(&m).map_err(|e| ConfigError(e.to_string()))
    };
    let first = parse(Cli::command())?;
    let file = match &first.serve.config {
        Some(path) => FileSettings::read(path)?,
        None => FileSettings::default(),
    };
    parse(file.apply(Cli::command()))?.serve.resolve(&file)
}

#[test]
fn defaults_need_no_outside_service() {
    let c = resolve(&[]).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert!(c.storage.redis_url.is_none());
    assert_eq!(
        c.storage.database_url.expose_secret(),
        "sqlite://wxlogin.db?mode=rwc"
    );
    assert_eq!(c.server.public_url.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(c.login.policy, LoginPolicy::AutoRegister);
    let embedded = Config::embedded(c.server.listen);
    assert_eq!(
        format!("{embedded:?}"),
        format!("{c:?}"),
        "one set of defaults"
    );
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
         [[miniprogram]]\nappid = \"wxa\"\nsecret = \"sa\"\n\
         [[miniprogram]]\nappid = \"wxb\"\nsecret = \"sb\"\n\
         [[app]]\nappid = \"wxios\"\nsecret = \"si\"\n\
         [[app]]\nappid = \"wxandroid\"\nsecret = \"sd\"\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let c = resolve(&["--config", p, "--session-ttl", "120"]).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(c.login.session_ttl, Duration::from_secs(120));
    assert_eq!(c.login.policy, LoginPolicy::RequireBinding);
    assert_eq!(c.apps.miniprograms.len(), 2);
    let mobile: Vec<_> = c
        .apps
        .mobile_apps
        .iter()
        .map(|a| a.appid.as_str())
        .collect();
    assert_eq!(mobile, ["wxios", "wxandroid"]);
    std::fs::write(&path, "lisen = \"x\"\n").unwrap();
    let err = resolve(&["--config", p]).err().unwrap();
    assert!(err.to_string().contains("lisen"), "{err}");
}

#[test]
fn sms_settings_are_checked() {
    assert!(resolve(&[]).unwrap().sms.is_none());
    let emulator = resolve(&["--sms-provider", "emulator"])
        .unwrap()
        .sms
        .unwrap();
    let endpoint = emulator.tencent.unwrap().endpoint;
    assert_eq!(
        endpoint.as_str(),
        "https://api.weixin.qq.com/",
        "WeChat's base: the emulator"
    );
    let err = resolve(&["--sms-provider", "tencent"]).err().unwrap();
    assert!(err.to_string().contains("WXLOGIN_SMS_SECRET_ID"), "{err}");
    let err = resolve(&["--sms-provider", "carrier-pigeon"])
        .err()
        .unwrap();
    assert!(err.to_string().contains("WXLOGIN_SMS_PROVIDER"), "{err}");
    let err = resolve(&["--web-require-phone", "true"]).err().unwrap();
    assert!(
        err.to_string().contains("WXLOGIN_WEB_REQUIRE_PHONE"),
        "{err}"
    );
    // Codes in a log are for a developer's machine: not where the public URL is https.
    let https = [
        "--sms-provider",
        "log",
        "--public-url",
        "https://login.example.com",
    ];
    assert!(resolve(&https).unwrap().sms.is_none());
    assert!(resolve(&["--sms-provider", "log"]).unwrap().sms.is_some());
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
    // A site is not a redirect URI: its page must be named.
    for origin in ["https://shop.example.com", "https://shop.example.com?x=1"] {
        let refused = resolve(&["--redirect-allowlist", origin]).err().unwrap();
        assert!(
            refused.to_string().contains("WXLOGIN_REDIRECT_ALLOWLIST"),
            "{refused}"
        );
        assert!(refused.to_string().contains("no path"), "{refused}");
    }
    for page in [
        "https://shop.example.com/",
        "https://shop.example.com/signed-in?x=1",
    ] {
        assert!(resolve(&["--redirect-allowlist", page]).is_ok(), "{page}");
    }
    assert!(resolve(&["--database-url", "mysql://x"])
        .err()
        .unwrap()
        .to_string()
        .contains("WXLOGIN_DATABASE_URL"));
}
