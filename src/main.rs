//! `wxlogin`: `serve`, `emulator`, `demo`, `migrate`, `openapi`.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use secrecy::SecretString;
use url::Url;
use wxlogin::{api, app, config, emulator, telemetry};

/// mimalloc: a request makes many small, short-lived allocations (futures, headers, Redis
/// replies), which glibc's malloc serves at a measurable cost (`bench/run.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "wxlogin",
    version,
    about = "Sign people in with WeChat: mini program, website and Official Account login"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(config::ServeArgs),
    /// Run the WeChat emulator (WeChat's server APIs, for tests and demos).
    Emulator(EmulatorArgs),
    /// Run server and emulator in one process on embedded defaults, with a demo mini program.
    Demo(DemoArgs),
    /// Apply the database migrations and exit.
    Migrate(config::ServeArgs),
    /// Print the OpenAPI document the server serves.
    Openapi,
}

#[derive(Args)]
struct EmulatorArgs {
    /// Address to serve on.
    #[arg(
        long,
        env = "WXLOGIN_EMULATOR_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    listen: SocketAddr,
    /// An app WeChat knows, as `appid:secret`; repeat for several.
    #[arg(
        long = "app",
        env = "WXLOGIN_EMULATOR_APPS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    apps: Vec<String>,
}

#[derive(Args)]
struct DemoArgs {
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
    /// What login does with a WeChat user bound to no account: `auto_register` or `require_binding`.
    #[arg(long, default_value = "auto_register")]
    login_policy: config::LoginPolicy,
    /// Sign-in requests per client IP and minute; 0 turns the limit off (for load and fuzz runs).
    #[arg(long, default_value_t = 600)]
    rate_limit_per_minute: u32,
}

/// The AppIDs that `wxlogin demo` configures (the first also in miniprogram-demo/project.config.json).
const DEMO_MINIPROGRAM_APPID: &str = "wx1000000000000001";
const DEMO_WEBSITE_APPID: &str = "wx2000000000000002";
const DEMO_OFFICIAL_ACCOUNT_APPID: &str = "wx3000000000000003";

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wxlogin: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sub = matches.subcommand().map(|(_, m)| m.clone());
    match runtime.block_on(run(cli.command, sub)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wxlogin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, sub: Option<ArgMatches>) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Openapi => {
            println!("{}", api::openapi_json());
            Ok(())
        }
        Command::Serve(_) => {
            let config = config::ServeArgs::resolve(&sub.expect("serve has its matches"))?;
            telemetry::init(config.log_format, std::io::stdout);
            if config.redis_url.is_some() {
                let threads = match config.threads {
                    0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                    n => n,
                };
                return app::serve_threads(&config, threads, app::shutdown_signal()).await;
            }
            let app = app::App::build(&config).await?;
            tracing::info!(port = app.port(), "serving; Swagger UI at /docs");
            app.run(app::shutdown_signal()).await?;
            Ok(())
        }
        Command::Migrate(_) => {
            let config = config::ServeArgs::resolve(&sub.expect("migrate has its matches"))?;
            telemetry::init(config.log_format, std::io::stdout);
            app::database(&config).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Emulator(args) => {
            telemetry::init(config::LogFormat::Text, std::io::stdout);
            let emu = emulator::Emulator::new();
            for app in &args.apps {
                let (appid, secret) = app.split_once(':').ok_or_else(|| {
                    format!(
                        "--app `{}`: expected appid:secret",
                        app.split(':').next().unwrap_or_default()
                    )
                })?;
                emu.add_app(appid, secret, true);
            }
            let (acceptor, port) = app::bind(args.listen).await?;
            tracing::info!(
                port,
                "WeChat emulator serving; control API at /__emulator/docs"
            );
            app::serve(acceptor, emu.routes(), app::shutdown_signal()).await?;
            Ok(())
        }
        Command::Demo(args) => demo(args).await,
    }
}

/// Server and emulator in one process, on embedded defaults, with a demo mini program.
async fn demo(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init(config::LogFormat::Text, std::io::stdout);
    // Fresh secrets at each start: the demo's apps exist only between these two processes.
    let secret = || uuid::Uuid::new_v4().simple().to_string();
    let app_of = |appid: &str, secret: &str| config::AppCredentials {
        appid: appid.into(),
        secret: SecretString::from(secret.to_string()),
    };
    let (mp, web, oa) = (secret(), secret(), secret());
    let emu = emulator::Emulator::new();
    emu.add_app(DEMO_MINIPROGRAM_APPID, &mp, true);
    emu.add_app(DEMO_WEBSITE_APPID, &web, true);
    emu.add_app(DEMO_OFFICIAL_ACCOUNT_APPID, &oa, true);
    let (emu_acceptor, emu_port) = app::bind(args.emulator_listen).await?;
    let emulator_url = format!("http://{}:{emu_port}", args.emulator_listen.ip());

    // The public URL (for OAuth callbacks) needs the port before the server binds it.
    let mut listen = args.listen;
    if listen.port() == 0 {
        listen.set_port(std::net::TcpListener::bind(listen)?.local_addr()?.port());
    }
    let server_url = format!("http://{listen}");
    let mut config = config::Config::embedded(listen);
    config.database_url = SecretString::from(args.database_url);
    config.wechat_api_base = Url::parse(&emulator_url)?;
    config.wechat_open_base = Url::parse(&emulator_url)?;
    config.public_url = Url::parse(&server_url)?;
    config.redirect_allowlist = vec![Url::parse(&server_url)?];
    config.login_policy = args.login_policy;
    config.rate_limit_per_minute = args.rate_limit_per_minute;
    config.miniprograms = vec![app_of(DEMO_MINIPROGRAM_APPID, &mp)];
    config.website = Some(app_of(DEMO_WEBSITE_APPID, &web));
    config.official_account = Some(app_of(DEMO_OFFICIAL_ACCOUNT_APPID, &oa));
    config.demo_page = true;
    let server = app::App::build(&config).await?;
    println!("wxlogin demo");
    println!("  API and Swagger UI:  {server_url}/docs");
    println!("  web sign-in demo:    {server_url}/demo/");
    println!("  WeChat emulator:     {emulator_url}/__emulator/docs");
    println!("  demo mini program:   appid {DEMO_MINIPROGRAM_APPID}");
    println!("Try:  curl -s -X POST {emulator_url}/__emulator/login -H 'content-type: application/json' -d '{{\"appid\":\"{DEMO_MINIPROGRAM_APPID}\",\"user\":\"alice\"}}'");
    let emu_task = tokio::spawn(app::serve(
        emu_acceptor,
        emu.routes(),
        app::shutdown_signal(),
    ));
    server.run(app::shutdown_signal()).await?;
    emu_task.abort();
    Ok(())
}
