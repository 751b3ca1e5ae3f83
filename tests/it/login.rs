//! Login, refresh, logout and WeChat's errcodes on the way.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_creates_a_user_and_returns_a_token_never_the_session_key() {
    let app = spawn_app().await;
    let s = app.login("alice").await;
    let token = s["token"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(token).expect("token is a UUID");
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(s["isNewUser"], true);
    assert_eq!(s["expiresIn"], 604800);
    let wx = app.emu_user("alice", APPID).await;
    let ident = &s["user"]["identities"][0];
    assert_eq!(ident["provider"], "miniprogram");
    assert_eq!(ident["appid"], APPID);
    assert_eq!(ident["openid"], wx["openid"]);
    assert_eq!(ident["unionid"], wx["unionid"]);
    let key = wx["sessionKey"].as_str().unwrap();
    assert!(
        !s.to_string().contains(key),
        "the session_key must not leave the server"
    );

    let me = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], s["user"]["id"]);
}

#[tokio::test]
async fn a_returning_user_logs_in_to_the_same_account() {
    let app = spawn_app().await;
    let first = app.login("bob").await;
    let second = app.login("bob").await;
    assert_eq!(second["isNewUser"], false);
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_ne!(second["token"], first["token"]);
    let other = app.login("carol").await;
    assert_ne!(other["user"]["id"], first["user"]["id"]);
}

#[tokio::test]
async fn the_same_code_twice_answers_the_same_without_a_second_wechat_call() {
    let app = spawn_app().await;
    let code = app.wx_login("dave").await;
    let body = json!({"code": code, "appid": APPID});
    let key = "attempt-0001-of-dave";
    let (a, b) = tokio::join!(app.login_attempt(&body, key), app.login_attempt(&body, key));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(a.body["token"], b.body["token"]);
    let c = app.login_attempt(&body, key).await;
    assert_eq!(c.body["token"], a.body["token"]);
    assert_eq!(c.body["isNewUser"], true);
    assert_eq!(app.calls("/sns/jscode2session").await, 1);
}

#[tokio::test]
async fn a_replay_goes_only_to_the_caller_who_sent_the_code() {
    let app = spawn_app().await;
    // A code sent first with a key: anyone with another key, or none, gets WeChat's 40163.
    let code = app.wx_login("fay").await;
    let body = json!({"code": code, "appid": APPID});
    let first = app.login_attempt(&body, "the-phone-of-fay-1").await;
    assert_eq!(first.status, 200, "{}", first.text);
    for other in [
        app.login_attempt(&body, "an-eavesdropper-01").await,
        app.post("/api/v1/auth/login", None, body.clone()).await,
    ] {
        assert_error(&other, 401, "wechat_code_invalid");
        assert_eq!(other.body["wechat"]["errcode"], 40163);
        assert!(other.body.get("token").is_none());
    }
    // A code sent first without a key is answered to no one again.
    let code = app.wx_login("fay").await;
    let body = json!({"code": code, "appid": APPID});
    assert_eq!(
        app.post("/api/v1/auth/login", None, body.clone())
            .await
            .status,
        200
    );
    for again in [
        app.post("/api/v1/auth/login", None, body.clone()).await,
        app.login_attempt(&body, "the-phone-of-fay-2").await,
    ] {
        assert_error(&again, 401, "wechat_code_invalid");
        assert_eq!(again.body["wechat"]["errcode"], 40163);
    }
    // A key of the wrong length is refused before WeChat is asked.
    let code = app.wx_login("fay").await;
    let body = json!({"code": code, "appid": APPID});
    for bad in ["short", &"k".repeat(65)] {
        assert_error(&app.login_attempt(&body, bad).await, 400, "invalid_request");
    }
    assert_eq!(
        app.login_attempt(&body, "the-phone-of-fay-3").await.status,
        200
    );
    assert_eq!(app.calls("/sns/jscode2session").await, 3);
}

#[tokio::test]
async fn a_bad_code_is_wechat_code_invalid_with_wechats_answer() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": "no-such-code", "appid": APPID}),
        )
        .await;
    assert_error(&r, 401, "wechat_code_invalid");
    assert_eq!(r.body["wechat"]["errcode"], 40029);
    assert!(r.body["message"].as_str().unwrap().contains("wx.login"));
}

#[tokio::test]
async fn a_used_code_after_its_replay_is_gone_is_40163() {
    let app = spawn_app().await;
    let code = app.wx_login("erin").await;
    // Spend the code at WeChat behind the server's back, as a second server would.
    let spent = app
        .http
        .get(format!("{}/sns/jscode2session?appid={APPID}&secret={SECRET}&js_code={code}&grant_type=authorization_code", app.emu))
        .send()
        .await
        .unwrap();
    assert_eq!(spent.headers()["content-type"], "text/plain");
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": code, "appid": APPID}),
        )
        .await;
    assert_error(&r, 401, "wechat_code_invalid");
    assert_eq!(r.body["wechat"]["errcode"], 40163);
    assert!(r.body["message"].as_str().unwrap().contains("wx.login"));
}

#[tokio::test]
async fn wechat_errcodes_map_to_the_contract() {
    let app = spawn_app().await;
    for (errcode, status, code) in [
        (45011, 429, "wechat_rate_limited"),
        (40226, 403, "wechat_user_blocked"),
        (40125, 502, "wechat_error"),
    ] {
        app.fault(json!({"path": "/sns/jscode2session", "errcode": errcode}))
            .await;
        let code_ = app.wx_login("frank").await;
        let r = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"code": code_, "appid": APPID}),
            )
            .await;
        assert_error(&r, status, code);
        assert_eq!(r.body["wechat"]["errcode"], errcode);
    }
    // Nothing was created by the refused logins.
    let s = app.login("frank").await;
    assert_eq!(s["isNewUser"], true);
}

#[tokio::test]
async fn system_busy_once_is_retried_and_persistent_busy_is_502() {
    let app = spawn_app().await;
    app.fault(json!({"path": "/sns/jscode2session", "errcode": -1}))
        .await;
    let s = app.login("gina").await;
    assert_eq!(s["isNewUser"], true);
    assert_eq!(app.calls("/sns/jscode2session").await, 2);

    app.fault(json!({"path": "/sns/jscode2session", "errcode": -1, "times": 10}))
        .await;
    let r = app.try_login("gina").await;
    assert_error(&r, 502, "wechat_unavailable");
    assert_eq!(
        app.calls("/sns/jscode2session").await,
        2 + 3,
        "bounded: three attempts"
    );
}

#[tokio::test]
async fn a_dropped_connection_or_a_timeout_is_wechat_unavailable() {
    let app = spawn_app().await;
    app.fault(json!({"path": "/sns/jscode2session", "drop": true, "times": 3}))
        .await;
    let r = app.try_login("hank").await;
    assert_error(&r, 502, "wechat_unavailable");

    app.fault(json!({"path": "/sns/jscode2session", "delayMs": 1500, "times": 3}))
        .await;
    let code = app.wx_login("hank").await;
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": code, "appid": APPID}),
        )
        .await;
    assert_error(&r, 502, "wechat_unavailable");
    // The code was not spent by the failed calls' answers being lost: a new one works.
    let s = app.login("hank").await;
    assert_eq!(s["isNewUser"], true);
}

#[tokio::test]
async fn malformed_logins_are_400_and_change_nothing() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"code": 5}),
        json!({"code": ""}),
        json!({"code": "a b"}),
        json!({"code": "x", "appid": "wxunknown"}),
        // Only a JSON string is a code, an appid or a username.
        json!({"code": true}),
        json!({"code": "x", "appid": 7}),
        json!({"code": "x", "username": false, "password": "correct horse battery"}),
    ] {
        let r = app.post("/api/v1/auth/login", None, body.clone()).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let big = "x".repeat(70 * 1024);
    let r = app
        .post("/api/v1/auth/login", None, json!({"code": big}))
        .await;
    assert_error(&r, 413, "payload_too_large");
    assert_eq!(
        app.calls("/sns/jscode2session").await,
        0,
        "WeChat was not asked"
    );
}

#[tokio::test]
async fn tokens_that_are_missing_malformed_or_unknown_are_401() {
    let app = spawn_app().await;
    for token in [
        None,
        Some("garbage"),
        Some("2b1f8a3e-6c4d-4e5f-8a9b-0c1d2e3f4a5b"),
    ] {
        let r = app.get("/api/v1/me", token).await;
        assert_error(&r, 401, "unauthenticated");
    }
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let token = app.token("ivan").await;
    let r = app
        .call("POST", "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(
        &app.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &app.call("POST", "/api/v1/auth/logout", Some(&token), None)
            .await,
        401,
        "unauthenticated",
    );
}

#[tokio::test]
async fn refresh_swaps_the_session_key_and_refuses_another_openid() {
    let app = spawn_app().await;
    let token = app.token("judy").await;
    // Data made with the key of the first login, before the refresh's wx.login.
    let old = app
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "judy", "data": {"stepInfoList": [{"step": 100}]}}),
        )
        .await;
    let code = app.wx_login("judy").await;
    let r = app
        .post("/api/v1/auth/refresh", Some(&token), json!({"code": code}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token"], token.as_str());
    let new = app
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "judy", "data": {"k": "new"}}),
        )
        .await;
    for data in [&new, &old] {
        let r = app
            .post(
                "/api/v1/wechat/decrypt",
                Some(&token),
                json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    let other = app.wx_login("mallory").await;
    let r = app
        .post("/api/v1/auth/refresh", Some(&token), json!({"code": other}))
        .await;
    assert_error(&r, 409, "conflict");
    // Unchanged: the current key still decrypts.
    let r = app
        .post(
            "/api/v1/wechat/decrypt",
            Some(&token),
            json!({"encryptedData": new["encryptedData"], "iv": new["iv"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_error(
        &app.post("/api/v1/auth/refresh", None, json!({"code": "x"}))
            .await,
        401,
        "unauthenticated",
    );
}

#[tokio::test]
async fn with_redis_sessions_survive_a_restart() {
    let app = spawn_app().await;
    let token = app.token("kate").await;
    let again = start(app.config.clone(), app.emu.clone()).await;
    let r = again.get("/api/v1/me", Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn sqlite_and_the_in_process_store_serve_the_same_flow() {
    let app = spawn_with(Db::Sqlite, Kv::Memory, |_| {}).await;
    let s = app.login("liam").await;
    let token = s["token"].as_str().unwrap();
    let r = app
        .call(
            "PATCH",
            "/api/v1/me",
            Some(token),
            Some(json!({"nickname": "Liam"})),
        )
        .await;
    assert_eq!(r.body["nickname"], "Liam");
    let code = app
        .emu(
            "POST",
            "/phone-code",
            json!({"appid": APPID, "user": "liam"}),
        )
        .await["code"]
        .clone();
    let r = app
        .post("/api/v1/me/phone", Some(token), json!({"code": code}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call("POST", "/api/v1/auth/logout", Some(token), None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(app.get("/api/v1/me", Some(token)).await.status, 401);
}
