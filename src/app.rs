//! Building and running the server: pools, clients, routes; `App::port()` for tests on port 0,
//! and `run(shutdown)` that finishes requests in flight before it returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{Endpoint, EndpointExt, Response, Server};
use secrecy::ExposeSecret;
use tokio::sync::Semaphore;

use crate::accounts::{Accounts, WebUrls};
use crate::config::Config;
use crate::readiness::Readiness;
use crate::slow_clients::{ConnectionLimits, Guarded};
use crate::store::{kv::Kv, seal::Sealer, users::Users, Stores};
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
    readiness: Readiness,
    connections: ConnectionLimits,
    port: u16,
    accounts: Accounts,
    edge: api::Edge,
    demo_page: Option<url::Url>,
    /// How long the audit log keeps an event (None: for ever).
    audit_retention: Option<std::time::Duration>,
}

/// Connects to the database and runs its migrations.
pub async fn database(config: &Config) -> Result<Users, StartError> {
    let users = connect_database(config, 1).await?;
    users.migrate().await.map_err(StartError::Database)?;
    Ok(users)
}

async fn connect_database(config: &Config, pools: usize) -> Result<Users, StartError> {
    Users::connect(config.storage.database_url.expose_secret(), pools)
        .await
        .map_err(StartError::Database)
}

/// Binds the listening socket (backlog 1024), as a listener each serving runtime can clone.
async fn listen(addr: SocketAddr) -> Result<std::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .and_then(|l| l.into_std())
        .map_err(|e| StartError::Listen(addr, e))
}

impl App {
    pub async fn build(config: &Config) -> Result<App, StartError> {
        let users = database(config).await?;
        let listener = listen(config.server.listen).await?;
        let in_flight = Arc::new(Semaphore::new(config.wechat.max_concurrent));
        App::assemble(config, users, listener, in_flight, Readiness::shared(1)).await
    }

    /// The server on a bound listener, with its own connections to Redis and WeChat; the cap on
    /// calls to WeChat in flight is `in_flight`, shared by every runtime of the process; its
    /// connections' health goes to `readiness`.
    async fn assemble(
        config: &Config,
        users: Users,
        listener: std::net::TcpListener,
        in_flight: Arc<Semaphore>,
        readiness: Readiness,
    ) -> Result<App, StartError> {
        let storage = &config.storage;
        let kv = match &storage.redis_url {
            // Redis behind Sentinel: the master it names, through failovers.
            Some(url) if url.expose_secret().starts_with("redis+sentinel://") => {
                Kv::sentinel(url.expose_secret(), &storage.redis_prefix)
                    .await
                    .map_err(StartError::Redis)?
            }
            // Several URLs name the nodes of a Redis Cluster.
            Some(url) if url.expose_secret().contains(',') => {
                Kv::cluster(url.expose_secret(), &storage.redis_prefix)
                    .await
                    .map_err(StartError::Redis)?
            }
            Some(url) => Kv::redis(url.expose_secret(), &storage.redis_prefix)
                .await
                .map_err(StartError::Redis)?,
            None => {
                tracing::warn!(
                    "WXLOGIN_REDIS_URL is not set: sessions live in this process only, for a \
                     single node; set it to run several"
                );
                Kv::memory(&storage.redis_prefix)
            }
        };
        let sealer = match &storage.sealing_keys {
            Some(spec) => Sealer::parse(spec).map_err(StartError::SealingKeys)?,
            None => Sealer::default(),
        };
        if kv.is_redis() && !sealer.is_sealing() {
            tracing::warn!(
                "WXLOGIN_SEALING_KEYS is not set: session_keys and tokens are kept in Redis \
                 unsealed"
            );
        }
        if config.apps.miniprograms.is_empty() {
            tracing::warn!(
                "no mini program is configured (WXLOGIN_MINIPROGRAM_APPID): mini program login \
                 answers 400"
            );
        }
        let client = wechat::Client::new(
            config.wechat.api_base.clone(),
            config.wechat.timeout,
            in_flight,
        )
        .map_err(StartError::Http)?;
        let login = &config.login;
        let stores = Stores::new(
            kv,
            sealer,
            users,
            (login.session_ttl, login.session_max_age),
            login.clock.clone(),
        );
        let web = WebUrls {
            public_url: config.server.public_url.clone(),
            open_base: config.wechat.open_base.clone(),
        };
        let sms = match &config.sms {
            Some(sms) => Some(
                crate::sms::Provider::new(sms, config.wechat.timeout).map_err(StartError::Http)?,
            ),
            None => None,
        };
        let accounts = Accounts::new(
            config.apps.clone(),
            config.login.clone(),
            config.tokens.clone(),
            web,
            stores,
            client,
            sms,
        );
        let acceptor = TcpAcceptor::from_std(listener)
            .map_err(|e| StartError::Listen(config.server.listen, e))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .unwrap_or_default();
        Ok(App {
            acceptor,
            readiness,
            connections: config.server.connections.clone(),
            port,
            accounts,
            edge: api::Edge {
                max_body_bytes: config.server.max_body_bytes,
                trusted_proxies: config.server.trusted_proxies.clone(),
                in_flight: Arc::new(Semaphore::new(config.server.max_in_flight)),
                queue_wait: config.server.queue_wait,
                deadline: config.server.request_deadline,
            },
            demo_page: config.demo_page.clone(),
            audit_retention: config.storage.audit_retention,
        })
    }

    /// The accounts this server serves (`wxlogin demo` makes its operator with them).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish (bounded).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        // Ends with the runtime: the process's, or this serving thread's.
        tokio::spawn(self.readiness.clone().watch(self.accounts.clone()));
        if let Some(age) = self.audit_retention {
            tokio::spawn(forget_old_audit_events(self.accounts.clone(), age));
        }
        let routes = api::routes(self.accounts, self.edge, self.readiness, self.demo_page);
        serve(self.acceptor, routes, self.connections, shutdown).await
    }
}

/// Enforces the audit log's retention: at start, then every hour.
async fn forget_old_audit_events(accounts: Accounts, age: std::time::Duration) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match accounts.forget_old_audit_events(age).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "old audit events deleted"),
            Err(e) => tracing::warn!(error = %e, "old audit events not deleted"),
        }
    }
}

/// Serves an endpoint on a bound acceptor until `shutdown`; HTML pages get the headers of
/// `page_headers`; connections are capped, and one that is slow to send a request head, or
/// idles between requests, is closed (`slow_clients`).
pub async fn serve<E>(
    acceptor: TcpAcceptor,
    ep: E,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    let ep = ep.map(|resp| async move { page_headers(resp) });
    Server::new_with_acceptor(Guarded::new(acceptor, &limits))
        .idle_timeout(limits.idle)
        .run_with_graceful_shutdown(ep, shutdown, Some(GRACE))
        .await
}

/// An HTML page (Swagger UI, the web demo, the emulator's pages) may not be framed, sniffed as
/// another type, or send a `Referer` (tickets travel in fragments, tokens must never travel in
/// a Referer).
fn page_headers(mut resp: Response) -> Response {
    let html = resp
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        let headers = resp.headers_mut();
        let set = |headers: &mut poem::http::HeaderMap, name: &'static str, value: &'static str| {
            headers.insert(name, poem::http::HeaderValue::from_static(value));
        };
        set(headers, "x-content-type-options", "nosniff");
        set(headers, "referrer-policy", "no-referrer");
        // Swagger UI and the pages load their own scripts and styles inline.
        set(
            headers,
            "content-security-policy",
            "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        );
    }
    resp
}

/// Serves on `threads` runtimes of one thread each, all accepting on one socket, each with its
/// own connections to Redis, the database and WeChat: a request's tasks (and those of the
/// Redis connection it waits on) then wake on the thread they run on, with no cross-thread
/// wakeups. Needs Redis, which is what the threads share, as the nodes of a cluster do.
/// Migrations run once, first; `shutdown` stops every thread, and each lets its requests in
/// flight finish.
pub async fn serve_threads(
    config: &Config,
    threads: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let threads = threads.max(1);
    drop(database(config).await?);
    let listener = listen(config.server.listen).await?;
    let port = listener.local_addr()?.port();
    let in_flight = Arc::new(Semaphore::new(config.wechat.max_concurrent));
    let readiness = Readiness::shared(threads);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut started = Vec::new();
    let mut finished = Vec::new();
    for i in 0..threads {
        let (config, listener) = (config.clone(), listener.try_clone()?);
        let (in_flight, mut stopped) = (in_flight.clone(), stopped.clone());
        let readiness = readiness.slot(i);
        let (ready, ready_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        let (done, done_rx) = tokio::sync::oneshot::channel::<std::io::Result<()>>();
        started.push(ready_rx);
        finished.push(done_rx);
        std::thread::Builder::new()
            .name(format!("wxlogin-{i}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => return drop(ready.send(Err(e.to_string()))),
                };
                runtime.block_on(async move {
                    let built = match connect_database(&config, threads).await {
                        Ok(users) => {
                            App::assemble(&config, users, listener, in_flight, readiness).await
                        }
                        Err(e) => Err(e),
                    };
                    let app = match built {
                        Ok(app) => app,
                        Err(e) => return drop(ready.send(Err(e.to_string()))),
                    };
                    let _ = ready.send(Ok(()));
                    let stop = async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    };
                    let _ = done.send(app.run(stop).await);
                });
            })?;
    }
    for ready in started {
        if let Err(e) = ready
            .await
            .unwrap_or_else(|_| Err("a serving thread died".into()))
        {
            let _ = stop.send(true);
            return Err(e.into());
        }
    }
    tracing::info!(port, threads, "serving; Swagger UI at /docs");
    shutdown.await;
    let _ = stop.send(true);
    for done in finished {
        done.await.unwrap_or(Ok(()))?;
    }
    Ok(())
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
