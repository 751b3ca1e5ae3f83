//! SIGTERM: stop accepting, finish requests in flight, exit 0.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_exits_zero() {
    sigterm_while_busy(&[]).await;
}

/// With Redis, `serve` runs one runtime per thread on one socket: each finishes its own.
#[tokio::test]
async fn sigterm_finishes_requests_in_flight_on_every_serving_thread() {
    let prefix = format!("t:{}:", uuid::Uuid::new_v4().simple());
    sigterm_while_busy(&[
        (
            "WXLOGIN_REDIS_URL",
            std::env::var("TEST_REDIS_URL").unwrap(),
        ),
        ("WXLOGIN_REDIS_PREFIX", prefix),
        ("WXLOGIN_THREADS", "3".into()),
    ])
    .await;
}

async fn sigterm_while_busy(env: &[(&str, String)]) {
    let app = spawn_app().await; // for its emulator
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db =
        std::env::temp_dir().join(format!("wxlogin-stop-{}.db", uuid::Uuid::new_v4().simple()));
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_wxlogin"))
        .arg("serve")
        .env("WXLOGIN_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "WXLOGIN_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .env("WXLOGIN_MINIPROGRAM_APPID", APPID)
        .env("WXLOGIN_MINIPROGRAM_SECRET", SECRET)
        .env("WXLOGIN_WECHAT_API_BASE", &app.emu)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Logins that WeChat takes a second to answer, each on its own connection (so on whichever
    // thread accepted it), are in flight when SIGTERM comes.
    app.fault(json!({"path": "/sns/jscode2session", "delayMs": 1000, "times": 6}))
        .await;
    let mut in_flight = Vec::new();
    for i in 0..6 {
        let code = app.wx_login(&format!("walt{i}")).await;
        let (http, base) = (reqwest::Client::new(), base.clone());
        in_flight.push(tokio::spawn(async move {
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"code": code}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());

    for login in in_flight {
        assert_eq!(login.await.unwrap().expect("answered, not cut off"), 200);
    }
    let status = tokio::time::timeout(Duration::from_secs(15), server.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "no longer accepting"
    );
    let _ = std::fs::remove_file(db);
}
