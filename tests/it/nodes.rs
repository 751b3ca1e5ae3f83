//! Several `wxlogin serve` nodes on one Redis and one PostgreSQL are copies of one another.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn two_nodes_share_sessions_lockout_and_the_access_token() {
    let a = spawn_app().await;
    let b = start(a.config.clone(), a.emu.clone()).await;

    // A token made by one works on the other; logout on one ends it on both.
    let token = a.token("nora").await;
    assert_eq!(b.get("/api/v1/me", Some(&token)).await.status, 200);
    assert_eq!(
        b.call("POST", "/api/v1/auth/logout", Some(&token), None)
            .await
            .status,
        204
    );
    assert_error(
        &a.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthenticated",
    );

    // The same code on both nodes: one WeChat call, one answer.
    let code = a.wx_login("otto").await;
    let body = json!({"code": code, "appid": APPID});
    let (x, y) = tokio::join!(
        a.post("/api/v1/auth/login", None, body.clone()),
        b.post("/api/v1/auth/login", None, body)
    );
    assert_eq!(x.body["token"], y.body["token"]);
    assert_eq!(
        a.calls("/sns/jscode2session").await,
        2,
        "nora's login and otto's, once"
    );

    // Wrong passwords count across nodes.
    assert_eq!(
        a.post(
            "/api/v1/accounts",
            None,
            json!({"username": "shared", "password": "correct horse battery"})
        )
        .await
        .status,
        201
    );
    for node in [&a, &b, &a, &b, &a] {
        node.post(
            "/api/v1/auth/password",
            None,
            json!({"username": "shared", "password": "wrong password"}),
        )
        .await;
    }
    let r = b
        .post(
            "/api/v1/auth/password",
            None,
            json!({"username": "shared", "password": "correct horse battery"}),
        )
        .await;
    assert_error(&r, 429, "account_locked");

    // One access_token for both: phone numbers read on either node fetch it once.
    let t1 = a.token("pia").await;
    let t2 = b.token("quin").await;
    for (node, token, user) in [
        (&a, &t1, "pia"),
        (&b, &t2, "quin"),
        (&a, &t1, "pia"),
        (&b, &t2, "quin"),
    ] {
        let code = node
            .emu("POST", "/phone-code", json!({"appid": APPID, "user": user}))
            .await["code"]
            .clone();
        let r = node
            .post("/api/v1/me/phone", Some(token), json!({"code": code}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(a.calls("/cgi-bin/stable_token").await, 1);
}
