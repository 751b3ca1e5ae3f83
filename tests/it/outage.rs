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
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    use sqlx::Connection;
    let app = spawn_app().await;
    let token = app.token("xia").await;
    let url = url::Url::parse(secrecy::ExposeSecret::expose_secret(
        &app.config.storage.database_url,
    ))
    .unwrap();
    let db = url.path().trim_start_matches('/').to_string();
    let mut admin = sqlx::AnyConnection::connect(&std::env::var("TEST_POSTGRES_URL").unwrap())
        .await
        .unwrap();
    // The database goes away: no new connections, and the pool's are cut.
    sqlx::query(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity WHERE datname = '{db}'"
    ))
    .fetch_all(&mut admin)
    .await
    .unwrap();

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

    sqlx::query(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .unwrap();
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
