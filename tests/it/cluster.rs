//! Sessions and everything else of the key-value store on a real three-node Redis Cluster: each
//! operation touches keys of one slot, so it runs on one node.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_whole_flow_runs_on_a_redis_cluster_shared_by_two_nodes() {
    let a = spawn_with(Db::Postgres, Kv::Cluster, |c| {
        c.login.rate_limit_per_minute = 100
    })
    .await;
    let b = start(a.config.clone(), a.emu.clone()).await;

    // Login on one node, the session on the other; the code replayed across nodes.
    let code = a.wx_login("cleo").await;
    let body = json!({"code": code, "appid": APPID});
    let first = a.login_attempt(&body, "cleo-attempt-0001").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let token = first.body["token"].as_str().unwrap().to_string();
    assert_eq!(
        b.login_attempt(&body, "cleo-attempt-0001").await.body["token"],
        token.as_str()
    );
    assert_eq!(b.get("/api/v1/me", Some(&token)).await.status, 200);

    // Refresh, decrypt with the current and the previous key, phone with the shared access_token.
    let old = a
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "cleo", "data": {"k": 1}}),
        )
        .await;
    let code = a.wx_login("cleo").await;
    assert_eq!(
        b.post("/api/v1/auth/refresh", Some(&token), json!({"code": code}))
            .await
            .status,
        200
    );
    let r = a
        .post(
            "/api/v1/wechat/decrypt",
            Some(&token),
            json!({"encryptedData": old["encryptedData"], "iv": old["iv"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for node in [&a, &b] {
        let code = node
            .emu(
                "POST",
                "/phone-code",
                json!({"appid": APPID, "user": "cleo"}),
            )
            .await["code"]
            .clone();
        assert_eq!(
            node.post("/api/v1/me/phone", Some(&token), json!({"code": code}))
                .await
                .status,
            200
        );
    }
    assert_eq!(a.calls("/cgi-bin/stable_token").await, 1);

    // Lockout and the rate limit count across nodes; bind tickets and unbinding work.
    assert_eq!(
        a.post(
            "/api/v1/accounts",
            None,
            json!({"username": "cleo", "password": "correct horse battery"})
        )
        .await
        .status,
        201
    );
    wrong_passwords(&[&a, &b], "cleo", 5).await;
    let r = b
        .post(
            "/api/v1/auth/password",
            None,
            json!({"username": "cleo", "password": "correct horse battery"}),
        )
        .await;
    assert_error(&r, 429, "account_locked");
    let r = a
        .call(
            "PUT",
            "/api/v1/me/credentials",
            Some(&token),
            Some(json!({
                "username": "cleo2",
                "password": "correct horse battery",
                "code": a.wx_login("cleo").await,
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = b
        .call(
            "DELETE",
            &format!("/api/v1/me/identities/{APPID}"),
            Some(&token),
            Some(json!({"currentPassword": "correct horse battery"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(
        &a.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthenticated",
    );

    // Logout on one node ends the session on both.
    let t = b.token("dani").await;
    assert_eq!(
        a.call("POST", "/api/v1/auth/logout", Some(&t), None)
            .await
            .status,
        204
    );
    assert_error(&b.get("/api/v1/me", Some(&t)).await, 401, "unauthenticated");
    assert_eq!(a.get("/readyz", None).await.status, 200);
}
