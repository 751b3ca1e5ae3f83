//! SIGTERM: stop accepting, finish requests in flight, exit 0.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_exits_zero() {
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

    // A login that WeChat takes a second to answer is in flight when SIGTERM comes.
    app.fault(json!({"path": "/sns/jscode2session", "delayMs": 1000}))
        .await;
    let code = app.wx_login("walt").await;
    let in_flight = tokio::spawn({
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"code": code}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());

    assert_eq!(
        in_flight.await.unwrap().expect("answered, not cut off"),
        200
    );
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
