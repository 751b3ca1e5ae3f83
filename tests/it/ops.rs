//! Health, readiness, metrics, the OpenAPI document and what must never be written anywhere.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.text, "ok");
    assert_eq!(app.get("/readyz", None).await.status, 200);
    app.login("uma").await;
    let m = app.get("/metrics", None).await.text;
    assert!(
        m.contains("wxlogin_http_requests_total{operation=\"login\""),
        "{m}"
    );
    assert!(
        m.contains("wxlogin_wechat_calls_total{api=\"jscode2session\",outcome=\"ok\"}"),
        "{m}"
    );
    let r = app.get("/nope", None).await;
    assert_error(&r, 404, "not_found");
    let r = app.call("DELETE", "/api/v1/auth/login", None, None).await;
    assert_error(&r, 405, "method_not_allowed");
}

#[tokio::test]
async fn the_committed_openapi_document_is_the_served_one() {
    let app = spawn_app().await;
    let served: serde_json::Value = app.get("/openapi.json", None).await.body;
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
    // Every route has a summary, and every error answer an example.
    for (path, ops) in served["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path} has no summary"
            );
            for (status, resp) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') && path.starts_with("/api") {
                    let example =
                        &resp["content"]["application/json; charset=utf-8"]["schema"]["example"];
                    // OAuth's own routes answer OAuth's error body (RFC 6749 §5.2).
                    let field = if path.starts_with("/oauth2/") {
                        "error"
                    } else {
                        "code"
                    };
                    assert!(
                        example[field].is_string(),
                        "{method} {path} {status} has no example"
                    );
                }
            }
        }
    }
    assert!(app.get("/docs", None).await.text.contains("swagger"));
}

#[tokio::test]
async fn no_secret_reaches_a_response_or_a_log_line() {
    let app = spawn_app().await;
    let s = app.login("vera").await;
    let token = s["token"].as_str().unwrap().to_string();
    let first_key = app.emu_user("vera", APPID).await["sessionKey"]
        .as_str()
        .unwrap()
        .to_string();
    let code = app.wx_login("vera").await;
    app.post("/api/v1/auth/refresh", Some(&token), json!({"code": code}))
        .await;
    let second_key = app.emu_user("vera", APPID).await["sessionKey"]
        .as_str()
        .unwrap()
        .to_string();
    let data = app
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "vera", "data": {"x": 1}}),
        )
        .await;
    app.post(
        "/api/v1/wechat/decrypt",
        Some(&token),
        json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}),
    )
    .await;
    let phone = app
        .emu(
            "POST",
            "/phone-code",
            json!({"appid": APPID, "user": "vera"}),
        )
        .await["code"]
        .clone();
    app.post("/api/v1/me/phone", Some(&token), json!({"code": phone}))
        .await;
    app.fault(json!({"path": "/sns/jscode2session", "drop": true, "times": 3}))
        .await;
    let code = app.wx_login("vera").await;
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"code": code, "appid": APPID}),
    )
    .await;
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, 200);
    assert_eq!(
        app.call("POST", "/api/v1/auth/logout", Some(&token), None)
            .await
            .status,
        204
    );

    let password = "a secret password 42";
    app.post(
        "/api/v1/accounts",
        None,
        json!({"username": "vera-account", "password": password}),
    )
    .await;
    app.post(
        "/api/v1/auth/password",
        None,
        json!({"username": "vera-account", "password": password}),
    )
    .await;
    app.post(
        "/api/v1/auth/password",
        None,
        json!({"username": "vera-account", "password": "a wrong password 42"}),
    )
    .await;

    let logs = logs();
    assert!(logs.contains("signed in"), "the log sink saw the run");
    // Structured: every line is JSON, and request lines carry the request id.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    let request = lines
        .iter()
        .find(|l| l["message"] == "request" && l["path"] == "/api/v1/auth/logout")
        .expect("the logout's line");
    assert_eq!(request["request_id"].as_str().unwrap().len(), 32);
    assert_eq!(request["status"], 204);
    let responses = RESPONSES.lock().unwrap().join("\n");
    for secret in [
        SECRET,
        &first_key,
        &second_key,
        password,
        "a wrong password 42",
        "$argon2id$",
    ] {
        assert!(!logs.contains(secret), "a secret is in the logs");
        assert!(!responses.contains(secret), "a secret is in a response");
    }
    assert!(!logs.contains(&token), "a token is in the logs");
}

#[tokio::test]
async fn answers_with_tokens_are_not_stored_and_pages_cannot_be_framed() {
    let app = spawn_app().await;
    let login = app.try_login("nora").await;
    assert_eq!(login.status, 200);
    assert_eq!(login.headers["cache-control"], "no-store");
    let token = login.body["token"].as_str().unwrap();
    let me = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(me.headers["cache-control"], "no-store");
    let renewed = app.post("/api/v1/auth/token", Some(token), json!({})).await;
    assert_eq!(renewed.headers["cache-control"], "no-store");
    assert!(app
        .get("/healthz", None)
        .await
        .headers
        .get("cache-control")
        .is_none());

    let docs = app
        .http
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    let emulator_docs = app
        .http
        .get(format!("{}/__emulator/docs", app.emu))
        .send()
        .await
        .unwrap();
    for page in [docs, emulator_docs] {
        let h = page.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
}

/// The audit trail: sign-ins, failures, lockouts, bindings and ends of sessions are log events
/// with the client IP and the request id, and never the secret.
#[tokio::test]
async fn audit_events_carry_the_client_ip_and_the_request_id() {
    let app = spawn_with(Db::Sqlite, Kv::Memory, |c| {
        c.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let password = "an audited password 7";
    let username = "audit-account";
    app.post(
        "/api/v1/accounts",
        None,
        json!({"username": username, "password": password}),
    )
    .await;
    let mut request_ids = Vec::new();
    for _ in 0..5 {
        let r = app
            .http
            .post(format!("{}/api/v1/auth/password", app.base))
            .header("x-forwarded-for", "198.51.100.77")
            .json(&json!({"username": username, "password": "not the password 7"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        request_ids.push(r.headers()["x-request-id"].to_str().unwrap().to_string());
    }
    let token = app.token("audra").await;
    app.call("POST", "/api/v1/auth/logout", Some(&token), None)
        .await;

    let logs = logs();
    let events: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l.get("event").is_some())
        .collect();
    let of = |event: &str, request_id: &str| {
        events
            .iter()
            .find(|e| e["event"] == event && e["span"]["request_id"].as_str() == Some(request_id))
    };
    for id in &request_ids {
        let failed = of("sign_in_failed", id).expect("a failed sign-in is an event");
        assert_eq!(failed["span"]["client_ip"], "198.51.100.77");
        assert_eq!(failed["reason"], "invalid_credentials");
    }
    assert!(of("account_locked", request_ids.last().unwrap()).is_some());
    assert!(events.iter().any(|e| e["event"] == "signed_in"
        && e["span"]["client_ip"] == "127.0.0.1"
        && e["span"]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 32)));
    assert!(events.iter().any(|e| e["event"] == "signed_out"));
    for secret in [password, "not the password 7", username, &token] {
        assert!(!logs.contains(secret), "{secret} is in the logs");
    }
}
