//! `wxlogin emulator`: WeChat's server APIs, for tests and demos.

use std::net::SocketAddr;

use clap::Args;

use super::Failure;
use crate::config::LogFormat;
use crate::{app, emulator, telemetry};

#[derive(Args)]
pub struct EmulatorArgs {
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

pub async fn run(args: EmulatorArgs) -> Result<(), Failure> {
    telemetry::init(LogFormat::Text, std::io::stdout);
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
    let limits = Default::default();
    app::serve(acceptor, emu.routes(), limits, app::shutdown_signal()).await?;
    Ok(())
}
