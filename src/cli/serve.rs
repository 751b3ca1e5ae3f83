//! `wxlogin serve` and `wxlogin migrate`.

use super::Failure;
use crate::config::Config;
use crate::{app, telemetry};

/// Serves until SIGTERM or Ctrl-C: one runtime per serving thread where Redis is set (what
/// the threads share), else one.
pub async fn serve(config: Config) -> Result<(), Failure> {
    telemetry::init(config.server.log_format, std::io::stdout);
    if config.storage.redis_url.is_some() {
        let threads = match config.server.threads {
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

/// Applies the database migrations.
pub async fn migrate(config: Config) -> Result<(), Failure> {
    telemetry::init(config.server.log_format, std::io::stdout);
    app::database(&config).await?;
    tracing::info!("migrations applied");
    Ok(())
}
