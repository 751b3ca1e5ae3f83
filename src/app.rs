//! Building and running the server: pools, clients, routes; `App::port()` for tests on port 0,
//! and `run(shutdown)` that finishes requests in flight before it returns.

use std::future::Future;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{Endpoint, Response, Server};
use secrecy::ExposeSecret;

use crate::accounts::Accounts;
use crate::config::Config;
use crate::store::{cache::Cache, kv::Kv, seal::Sealer, sessions::Sessions, users::Users};
use crate::{api, wechat};

/// How long a stop waits for requests in flight.
const GRACE: Duration = Duration::from_secs(10);

/// Why the server did not start; the message names the setting or service.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    #[error("database (WXLOGIN_DATABASE_URL): {0}")]
    Database(crate::store::StoreError),
    #[error("redis (WXLOGIN_REDIS_URL): {0}")]
    Redis(crate::store::StoreError),
    #[error("HTTP client: {0}")]
    Http(reqwest::Error),
    #[error("WXLOGIN_SEALING_KEYS: {0}")]
    SealingKeys(String),
}

/// A server bound to its port, not yet serving.
pub struct App {
    acceptor: TcpAcceptor,
    port: u16,
    accounts: Accounts,
    edge: api::Edge,
    demo_page: bool,
}

/// Connects to the database and runs its migrations.
pub async fn database(config: &Config) -> Result<Users, StartError> {
    let users = Users::connect(config.database_url.expose_secret())
        .await
        .map_err(StartError::Database)?;
    users.migrate().await.map_err(StartError::Database)?;
    Ok(users)
}

impl App {
    pub async fn build(config: &Config) -> Result<App, StartError> {
        let users = database(config).await?;
        let kv = match &config.redis_url {
            // Several URLs name the nodes of a Redis Cluster.
            Some(url) if url.expose_secret().contains(',') => {
                Kv::cluster(url.expose_secret(), &config.redis_prefix)
                    .await
                    .map_err(StartError::Redis)?
            }
            Some(url) => Kv::redis(url.expose_secret(), &config.redis_prefix)
                .await
                .map_err(StartError::Redis)?,
            None => {
                tracing::warn!("WXLOGIN_REDIS_URL is not set: sessions live in this process only, for a single node; set it to run several");
                Kv::memory(&config.redis_prefix)
            }
        };
        let sealer = match &config.sealing_keys {
            Some(spec) => Sealer::parse(spec).map_err(StartError::SealingKeys)?,
            None => Sealer::default(),
        };
        let users = users.with_cache(Cache::new(kv.clone(), sealer.clone()));
        if kv.is_redis() && !sealer.is_sealing() {
            tracing::warn!("WXLOGIN_SEALING_KEYS is not set: session_keys and tokens are kept in Redis unsealed");
        }
        if config.miniprograms.is_empty() {
            tracing::warn!("no mini program is configured (WXLOGIN_MINIPROGRAM_APPID): mini program login answers 400");
        }
        let client = wechat::Client::new(
            config.wechat_api_base.clone(),
            config.wechat_timeout,
            config.wechat_max_concurrent,
        )
        .map_err(StartError::Http)?;
        let sessions = Sessions::new(kv.clone(), config.session_ttl, sealer.clone());
        let accounts = Accounts::new(config, users, sessions, kv, client, sealer);
        let acceptor = TcpListener::bind(config.listen)
            .into_acceptor()
            .await
            .map_err(|e| StartError::Listen(config.listen, e))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .unwrap_or_default();
        Ok(App {
            acceptor,
            port,
            accounts,
            edge: api::Edge {
                max_body_bytes: config.max_body_bytes,
                trusted_proxies: config.trusted_proxies.clone(),
            },
            demo_page: config.demo_page,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish (bounded).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let routes = api::routes(self.accounts, self.edge, self.demo_page);
        serve(self.acceptor, routes, shutdown).await
    }
}

/// Serves an endpoint on a bound acceptor until `shutdown`.
pub async fn serve<E>(
    acceptor: TcpAcceptor,
    ep: E,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(ep, shutdown, Some(GRACE))
        .await
}

/// Binds an address, for the emulator and demos.
pub async fn bind(addr: std::net::SocketAddr) -> Result<(TcpAcceptor, u16), StartError> {
    let acceptor = TcpListener::bind(addr)
        .into_acceptor()
        .await
        .map_err(|e| StartError::Listen(addr, e))?;
    let port = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().map(|s| s.port()))
        .unwrap_or_default();
    Ok((acceptor, port))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("stopping: finishing requests in flight");
}
