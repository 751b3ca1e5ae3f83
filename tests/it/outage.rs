//! Redis or the database going away: a 503 with the contract's body, nothing half-written, and
//! service again once it is back, with no restart of wxlogin.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

/// A Redis of this test's own, so that stopping it disturbs no other test.
struct OwnRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    async fn start(port: u16) -> OwnRedis {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        until_port(port).await;
        OwnRedis {
            port,
            child: Some(child),
        }
    }

    async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
    }
}

/// The test's PostgreSQL database, as its administrator sees it.
struct Database {
    admin: sqlx::AnyConnection,
    name: String,
}

impl Database {
    async fn of(app: &TestApp) -> Database {
        use sqlx::Connection;
        let url = secrecy::ExposeSecret::expose_secret(&app.config.storage.database_url);
        let name = url::Url::parse(url).unwrap().path()[1..].to_string();
        let admin_url = std::env::var("TEST_POSTGRES_URL").unwrap();
        let admin = sqlx::AnyConnection::connect(&admin_url).await.unwrap();
        Database { admin, name }
    }

    /// Cuts every connection to the database (`pg_terminate_backend`).
    async fn cut_connections(&mut self) {
        let name = &self.name;
        sqlx::query(&format!(
            "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .fetch_all(&mut self.admin)
        .await
        .unwrap();
    }

    /// Lets connections in, or keeps them out.
    async fn allow_connections(&mut self, allow: bool) {
        let name = &self.name;
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}"))
            .execute(&mut self.admin)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn redis_down_is_503_and_service_returns_with_it() {
    let port = free_port();
    let mut redis = OwnRedis::start(port).await;
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.storage.redis_url = Some(format!("redis://127.0.0.1:{port}").into());
    })
    .await;
    let token = app.token("quinn").await;
    assert_eq!(app.get("/readyz", None).await.status, 200);

    redis.stop().await;
    let r = app.get("/api/v1/me", Some(&token)).await;
    assert_error(&r, 503, "service_unavailable");
    let r = app.try_login("rita").await;
    assert_error(&r, 503, "service_unavailable");
    assert_eq!(app.get("/readyz", None).await.status, 503);
    assert_eq!(app.get("/healthz", None).await.status, 200);

    // Back (empty: the sessions were in the Redis that died), and wxlogin with it.
    let _redis = OwnRedis::start(redis.port).await;
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/readyz", None).await.status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again without a restart");
    let s = app.login("rita").await;
    assert_eq!(s["isNewUser"], true, "the refused login wrote no user");
}

#[tokio::test]
async fn postgres_down_is_503_and_service_returns_with_it() {
    let app = spawn_app().await;
    let token = app.token("xia").await;
    let mut db = Database::of(&app).await;
    // The database goes away: no new connections, and the pool's are cut.
    db.allow_connections(false).await;
    db.cut_connections().await;

    // A signed-in user read lately is served from the shared cache; writes need the database.
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.status, 200, "/me from the user cache: {}", me.body);
    let r = app
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&token),
            Some(json!({"nickname": "during the outage"})),
        )
        .await;
    assert_error(&r, 503, "service_unavailable");
    let r = app.try_login("yuki").await;
    assert_error(&r, 503, "service_unavailable");
    assert_eq!(app.get("/readyz", None).await.status, 503);

    db.allow_connections(true).await;
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/readyz", None).await.status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again without a restart");
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.status, 200, "the session outlived the outage");
    assert_eq!(
        me.body["nickname"],
        Value::Null,
        "the refused write changed nothing"
    );
    let s = app.login("yuki").await;
    assert_eq!(s["isNewUser"], true, "the refused login wrote no user");
}

/// `wxlogin serve` as a process of its own, on `threads` serving threads.
struct Served {
    base: String,
    _child: tokio::process::Child,
}

async fn serve_process(app: &TestApp, redis_port: u16, threads: usize) -> Served {
    let port = free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wxlogin"))
        .arg("serve")
        .env("WXLOGIN_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "WXLOGIN_DATABASE_URL",
            secrecy::ExposeSecret::expose_secret(&app.config.storage.database_url),
        )
        .env(
            "WXLOGIN_REDIS_URL",
            format!("redis://127.0.0.1:{redis_port}"),
        )
        .env("WXLOGIN_THREADS", threads.to_string())
        .env("WXLOGIN_RATE_LIMIT_PER_MINUTE", "0")
        .env("WXLOGIN_MINIPROGRAM_APPID", APPID)
        .env("WXLOGIN_MINIPROGRAM_SECRET", SECRET)
        .env("WXLOGIN_WECHAT_API_BASE", &app.emu)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Served {
        base,
        _child: child,
    }
}

/// A client that opens a new connection for every request, so that requests land on every
/// serving thread (each accepts from the one socket).
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn readyz(http: &reqwest::Client, base: &str) -> u16 {
    match http.get(format!("{base}/readyz")).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Polls `/readyz` until it answers `status` (within 15 s).
async fn until_readyz(http: &reqwest::Client, base: &str, status: u16) {
    for _ in 0..300 {
        if readyz(http, base).await == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered {status}");
}

/// 200 requests, each on a new connection: 100 first logins, each followed by `/me` with its
/// token. Returns the ones that did not answer 200.
async fn two_hundred_requests(app: &TestApp, http: &reqwest::Client, base: &str) -> Vec<String> {
    let mut failed = Vec::new();
    for i in 0..100 {
        let code = app
            .wx_login(&format!("after-{}-{i}", uuid::Uuid::new_v4().simple()))
            .await;
        let r = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status != 200 {
            failed.push(format!("login {i}: {status} {body}"));
            continue;
        }
        let token = body["token"].as_str().unwrap();
        let me = http
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if me.status() != 200 {
            failed.push(format!("/me {i}: {}", me.status()));
        }
    }
    failed
}

/// Redis stopped and started again under a server of three serving threads: from the first
/// 200 of `/readyz` on, nothing fails on any thread.
#[tokio::test]
async fn after_redis_returns_every_serving_thread_serves_from_the_first_ready() {
    let app = spawn_app().await;
    let port = free_port();
    let mut redis = OwnRedis::start(port).await;
    let served = serve_process(&app, port, 3).await;
    let http = fresh_connections();
    assert!(two_hundred_requests(&app, &http, &served.base)
        .await
        .is_empty());

    redis.stop().await;
    until_readyz(&http, &served.base, 503).await;
    let _redis = OwnRedis::start(port).await;
    until_readyz(&http, &served.base, 200).await;
    let failed = two_hundred_requests(&app, &http, &served.base).await;
    assert!(failed.is_empty(), "after /readyz said 200: {failed:#?}");
}

/// The same for PostgreSQL: every connection cut (`pg_terminate_backend`), then the database
/// refusing connections and accepting them again.
#[tokio::test]
async fn after_postgres_returns_every_serving_thread_serves_from_the_first_ready() {
    let app = spawn_app().await;
    let port = free_port();
    let _redis = OwnRedis::start(port).await;
    let served = serve_process(&app, port, 3).await;
    let http = fresh_connections();
    assert!(two_hundred_requests(&app, &http, &served.base)
        .await
        .is_empty());

    let mut db = Database::of(&app).await;
    // Every connection of every thread's pool cut at once.
    db.cut_connections().await;
    until_readyz(&http, &served.base, 200).await;
    let failed = two_hundred_requests(&app, &http, &served.base).await;
    assert!(
        failed.is_empty(),
        "after the connections were cut: {failed:#?}"
    );

    // Down (no connections at all), then up again.
    db.allow_connections(false).await;
    db.cut_connections().await;
    until_readyz(&http, &served.base, 503).await;
    db.allow_connections(true).await;
    until_readyz(&http, &served.base, 200).await;
    let failed = two_hundred_requests(&app, &http, &served.base).await;
    assert!(
        failed.is_empty(),
        "after the database came back: {failed:#?}"
    );
}
