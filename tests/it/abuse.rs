//! Abuse and overload: the per-IP limit on sign-in routes, trusted proxies, and a cap on calls
//! to a slow WeChat that leaves other routes alone.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

async fn login_from(app: &TestApp, forwarded_for: Option<&str>) -> Reply {
    login_through(app, forwarded_for.as_slice()).await
}

/// A login whose request carries these `X-Forwarded-For` header lines.
async fn login_through(app: &TestApp, lines: &[&str]) -> Reply {
    let mut req = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"code": "x", "appid": APPID}));
    for line in lines {
        req = req.header("x-forwarded-for", *line);
    }
    read_reply(req.send().await.unwrap()).await
}

#[tokio::test]
async fn sign_in_routes_are_limited_per_ip_and_others_are_not() {
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.login.rate_limit_per_minute = 5
    })
    .await;
    let token = app.token("rhea").await; // 1
    for _ in 0..4 {
        assert_ne!(login_from(&app, None).await.status, 429);
    }
    let r = login_from(&app, None).await;
    assert_error(&r, 429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_error(
        &app.post(
            "/api/v1/accounts",
            None,
            json!({"username": "rhea", "password": "correct horse battery"}),
        )
        .await,
        429,
        "rate_limited",
    );
    // Sending and using SMS codes counts too.
    let sms = json!({"phoneNumber": "+8613800138000", "purpose": "login"});
    let r = app.post("/api/v1/sms/code", None, sms).await;
    assert_error(&r, 429, "rate_limited");
    let sms = json!({"phoneNumber": "+8613800138000", "code": "123456"});
    let r = app.post("/api/v1/auth/sms", None, sms).await;
    assert_error(&r, 429, "rate_limited");
    // Other routes are not sign-in routes.
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, 200);
    // An untrusted peer cannot pick its IP with X-Forwarded-For.
    assert_error(
        &login_from(&app, Some("203.0.113.7")).await,
        429,
        "rate_limited",
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.login.rate_limit_per_minute = 3;
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(login_from(&app, Some("203.0.113.7")).await.status, 401);
    }
    assert_error(
        &login_from(&app, Some("203.0.113.7")).await,
        429,
        "rate_limited",
    );
    // Another client behind the same proxy, and the left-most spoofed hop is not believed.
    assert_eq!(login_from(&app, Some("203.0.113.8")).await.status, 401);
    assert_error(
        &login_from(&app, Some("198.51.100.1, 203.0.113.7")).await,
        429,
        "rate_limited",
    );
}

#[tokio::test]
async fn forwarded_clients_are_read_whole_and_ipv6_is_counted_per_64() {
    let app = spawn_with(Db::Sqlite, Kv::Memory, |c| {
        c.login.rate_limit_per_minute = 2;
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    // An IPv6 client rotating its address within its /64 is one client.
    for ip in ["2001:db8:7:7::1", "2001:db8:7:7::2"] {
        assert_eq!(login_through(&app, &[ip]).await.status, 401);
    }
    let r = login_through(&app, &["[2001:db8:7:7:abcd::9]:443"]).await;
    assert_error(&r, 429, "rate_limited");
    // Another /64 is another client.
    assert_eq!(login_through(&app, &["2001:db8:7:8::1"]).await.status, 401);
    // Two header lines are one list: the nearest untrusted hop is the client, whichever line
    // it is on, and a port does not turn it into the proxy.
    for lines in [
        &["198.51.100.20", "203.0.113.50"][..],
        &["203.0.113.50:4431"],
    ] {
        assert_eq!(login_through(&app, lines).await.status, 401);
    }
    let r = login_through(&app, &["198.51.100.21", "203.0.113.50, 127.0.0.9"]).await;
    assert_error(&r, 429, "rate_limited");
    // The proxy itself (127.0.0.1) is not what was counted: it still may sign in.
    assert_eq!(login_through(&app, &[]).await.status, 401);
}

#[tokio::test]
async fn a_slow_wechat_cannot_pile_up_calls_or_slow_other_routes() {
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| c.wechat.max_concurrent = 1).await;
    let token = app.token("sven").await;
    app.fault(json!({"path": "/sns/jscode2session", "delayMs": 1500}))
        .await;
    let slow_code = app.wx_login("tess").await;
    let slow = {
        let base = app.base.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"code": slow_code, "appid": APPID}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The one slot is taken: the next call to WeChat fails at once instead of queueing.
    let r = app.try_login("uma").await;
    assert_error(&r, 502, "wechat_unavailable");
    // Routes that do not call WeChat answer meanwhile.
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, 200);
    assert!(!slow.is_finished(), "the slow call is still in flight");
    assert_eq!(slow.await.unwrap(), 200, "it finishes once WeChat answers");
}

/// Reads until the server closes the connection; the time that took, or None past `limit`.
async fn closed_within(
    conn: &mut tokio::net::TcpStream,
    limit: Duration,
) -> Option<(Duration, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + limit),
            conn.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((started.elapsed(), seen)),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_request_heads_and_idle_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_with(Db::Sqlite, Kv::Memory, |c| {
        c.server.connections.head = Duration::from_secs(1);
        c.server.connections.idle = Duration::from_secs(3);
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let connect = || tokio::net::TcpStream::connect(addr.clone());

    // A client that says nothing.
    let mut silent = connect().await.unwrap();
    let (took, _) = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // A client that trickles its head, a header line every 300 ms (slowloris): closed by the
    // head's deadline, though it never idles.
    let mut slow = connect().await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let _ = trickle.await;
    let (_, answered) = closed_within(&mut slow, Duration::from_secs(1))
        .await
        .expect("closed");
    assert!(
        !answered.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answered)
    );

    // A kept-alive connection: each request in time is answered, however many; then it idles
    // and is closed by the idle timeout, not by the head's deadline.
    let mut kept = connect().await.unwrap();
    for _ in 0..3 {
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let (took, answers) = closed_within(&mut kept, Duration::from_secs(6))
        .await
        .expect("closed");
    let answers = String::from_utf8_lossy(&answers);
    assert_eq!(answers.matches("HTTP/1.1 200").count(), 3, "{answers}");
    assert!(
        took > Duration::from_millis(500),
        "closed for idling, later: {took:?}"
    );
}

/// Beyond `WXLOGIN_MAX_CONNECTIONS` open connections, a new one is not served until another
/// closes (it waits in the listen queue); then it is.
#[tokio::test]
async fn a_connection_beyond_the_cap_is_served_once_another_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(Db::Sqlite, Kv::Memory, |c| {
        c.server.connections = wxlogin::slow_clients::ConnectionLimits::new(2);
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    async fn answer(conn: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(within, conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            _ => None,
        }
    }
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        conn.write_all(HEALTHZ).await.unwrap();
        let answered = answer(&mut conn, Duration::from_secs(5)).await;
        assert!(answered.unwrap().starts_with("HTTP/1.1 200"));
        open.push(conn);
    }
    // The kernel completes the handshake; the server does not take the connection yet.
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    assert_eq!(answer(&mut third, Duration::from_millis(500)).await, None);
    drop(open.pop());
    let answered = answer(&mut third, Duration::from_secs(5)).await;
    assert!(answered.unwrap().starts_with("HTTP/1.1 200"));
}

/// Backpressure: beyond `WXLOGIN_MAX_IN_FLIGHT` requests at once, a request waits its turn a
/// while, then 503 (health and readiness still answered); a request that outlives the
/// deadline is answered 503.
#[tokio::test]
async fn requests_beyond_the_limit_or_the_deadline_are_503_and_health_still_answers() {
    let app = spawn_with(Db::Sqlite, Kv::Memory, |c| {
        c.server.max_in_flight = 2;
        c.server.queue_wait = Duration::from_millis(500);
        c.server.request_deadline = Duration::from_secs(2);
        c.wechat.timeout = Duration::from_secs(10);
        c.login.rate_limit_per_minute = 0;
    })
    .await;
    // Two are worked on for 1.5 s: the other two wait their turn half a second, then 503.
    app.fault(json!({"path": "/sns/jscode2session", "delayMs": 1500, "times": 4}))
        .await;
    let logins = concurrent_logins(&app, "busy", 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Two are being worked on: health and readiness answer regardless.
    assert_eq!(app.get("/healthz", None).await.status, 200);
    assert_eq!(app.get("/readyz", None).await.status, 200);
    let mut statuses = Vec::new();
    for l in logins {
        let (status, retry_after) = l.await.unwrap();
        if status == 503 {
            assert_eq!(retry_after.unwrap(), "1");
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 503, 503]);

    // Two are worked on for 0.1 s: the third waits its turn, and is served.
    app.emu("DELETE", "/faults", serde_json::Value::Null).await;
    app.fault(json!({"path": "/sns/jscode2session", "delayMs": 100, "times": 3}))
        .await;
    let mut statuses = Vec::new();
    for l in concurrent_logins(&app, "queued", 3).await {
        statuses.push(l.await.unwrap().0);
    }
    assert_eq!(statuses, [200, 200, 200]);

    // A request that WeChat keeps past the deadline is given up with a 503, not left waiting.
    app.emu("DELETE", "/faults", serde_json::Value::Null).await;
    app.fault(json!({"path": "/sns/jscode2session", "delayMs": 4000, "times": 1}))
        .await;
    let r = app.try_login("slow-one").await;
    assert_error(&r, 503, "service_unavailable");
    assert!(
        r.body["message"].as_str().unwrap().contains("2 seconds"),
        "{}",
        r.text
    );
}

/// `n` logins of new users at once: each task's status and Retry-After.
async fn concurrent_logins(
    app: &TestApp,
    prefix: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(u16, Option<reqwest::header::HeaderValue>)>> {
    let mut codes = Vec::new();
    for i in 0..n {
        codes.push(app.wx_login(&format!("{prefix}-{i}")).await);
    }
    codes
        .into_iter()
        .map(|code| {
            let base = app.base.clone();
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(&json!({"code": code, "appid": APPID}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.headers().get("retry-after").cloned())
            })
        })
        .collect()
}
