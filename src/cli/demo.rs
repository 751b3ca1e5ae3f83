//! `wxlogin demo`: server and emulator in one process, on embedded defaults, with a demo mini
//! program, website, Official Account and native app configured, and the emulator as SMS
//! provider.

use std::net::SocketAddr;

use clap::Args;
use secrecy::SecretString;
use url::Url;

use super::Failure;
use crate::config::{AppCredentials, Config, LogFormat, LoginPolicy, Sms};
use crate::domain::{Credentials, Password, Shaped, Username};
use crate::{app, emulator, telemetry};

/// The AppIDs that `wxlogin demo` configures (the first also in
/// miniprogram-demo/project.config.json).
const DEMO_MINIPROGRAM_APPID: &str = "wx1000000000000001";
const DEMO_WEBSITE_APPID: &str = "wx2000000000000002";
const DEMO_OFFICIAL_ACCOUNT_APPID: &str = "wx3000000000000003";
const DEMO_APP_APPID: &str = "wx4000000000000004";

#[derive(Args)]
pub struct DemoArgs {
    /// Address of the server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the emulated WeChat.
    #[arg(long, default_value = "127.0.0.1:8081")]
    emulator_listen: SocketAddr,
    /// The database.
    #[arg(
        long,
        env = "WXLOGIN_DATABASE_URL",
        default_value = "sqlite://wxlogin-demo.db?mode=rwc",
        hide_env_values = true
    )]
    database_url: String,
    /// What login does with a WeChat user bound to no account: `auto_register` or
    /// `require_binding`.
    #[arg(long, default_value_t = LoginPolicy::AutoRegister)]
    login_policy: LoginPolicy,
    /// Sign-in requests per client IP and minute; 0 turns the limit off (for load and fuzz runs).
    #[arg(long, default_value_t = 600)]
    rate_limit_per_minute: u32,
    /// Web sign-in of a person with no verified phone waits for one (verified by an SMS code
    /// from the emulator's inbox).
    #[arg(long)]
    web_require_phone: bool,
}

pub async fn run(args: DemoArgs) -> Result<(), Failure> {
    telemetry::init(LogFormat::Text, std::io::stdout);
    // Fresh secrets at each start: the demo's apps exist only between these two processes.
    let secret = || uuid::Uuid::new_v4().simple().to_string();
    let app_of = |appid: &str, secret: &str| AppCredentials {
        appid: appid.into(),
        secret: SecretString::from(secret.to_string()),
    };
    let (mp, web, oa, mobile) = (secret(), secret(), secret(), secret());
    let emu = emulator::Emulator::new();
    emu.add_app(DEMO_MINIPROGRAM_APPID, &mp, true);
    emu.add_app(DEMO_WEBSITE_APPID, &web, true);
    emu.add_app(DEMO_OFFICIAL_ACCOUNT_APPID, &oa, true);
    emu.add_app(DEMO_APP_APPID, &mobile, true);
    let (emu_acceptor, emu_port) = app::bind(args.emulator_listen).await?;
    let emulator_url = format!("http://{}:{emu_port}", args.emulator_listen.ip());

    // The public URL (for OAuth callbacks) needs the port before the server binds it.
    let mut listen = args.listen;
    if listen.port() == 0 {
        listen.set_port(std::net::TcpListener::bind(listen)?.local_addr()?.port());
    }
    let server_url = format!("http://{listen}");
    let mut config = Config::embedded(listen);
    config.storage.database_url = SecretString::from(args.database_url);
    config.wechat.api_base = Url::parse(&emulator_url)?;
    config.wechat.open_base = Url::parse(&emulator_url)?;
    config.server.public_url = Url::parse(&server_url)?;
    config.login.redirect_allowlist = vec![Url::parse(&format!("{server_url}/demo/"))?];
    config.login.policy = args.login_policy;
    config.login.rate_limit_per_minute = args.rate_limit_per_minute;
    config.login.web_require_phone = args.web_require_phone;
    config.apps.miniprograms = vec![app_of(DEMO_MINIPROGRAM_APPID, &mp)];
    config.apps.website = Some(app_of(DEMO_WEBSITE_APPID, &web));
    config.apps.official_account = Some(app_of(DEMO_OFFICIAL_ACCOUNT_APPID, &oa));
    config.apps.mobile_apps = vec![app_of(DEMO_APP_APPID, &mobile)];
    config.sms = Some(Sms::emulator(Url::parse(&emulator_url)?));
    // An operator for the console, new at each start (the demo's database may outlive it).
    let operator = format!("operator-{}", &secret()[..6]);
    let operator_password = secret();
    config.tokens.admin_users = vec![operator.clone()];
    config.demo_page = Some(Url::parse(&emulator_url)?);
    let server = app::App::build(&config).await?;
    let credentials = Credentials {
        username: Username::parse(operator.clone()).map_err(|e| Failure::from(e.0))?,
        password: Password::parse(operator_password.clone()).map_err(|e| Failure::from(e.0))?,
    };
    server
        .accounts()
        .register(credentials)
        .await
        .map_err(|e| Failure::from(e.message))?;
    println!("wxlogin demo");
    println!("  API and Swagger UI:  {server_url}/docs");
    println!("  web sign-in demo:    {server_url}/demo/");
    println!(
        "  operator console:    {server_url}/admin/  (username {operator}, password \
         {operator_password})"
    );
    println!("  WeChat emulator:     {emulator_url}/__emulator/docs");
    println!("  SMS inbox:           {emulator_url}/__emulator/sms?phone=%2B8613800138000");
    println!("  demo mini program:   appid {DEMO_MINIPROGRAM_APPID}");
    println!("  demo native app:     appid {DEMO_APP_APPID}");
    println!(
        "Try:  curl -s -X POST {emulator_url}/__emulator/login -H 'content-type: \
         application/json' -d '{{\"appid\":\"{DEMO_MINIPROGRAM_APPID}\",\"user\":\"alice\"}}'"
    );
    let emu_task = tokio::spawn(app::serve(
        emu_acceptor,
        emu.routes(),
        Default::default(),
        app::shutdown_signal(),
    ));
    server.run(app::shutdown_signal()).await?;
    emu_task.abort();
    Ok(())
}
