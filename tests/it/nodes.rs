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
        a.login_attempt(&body, "otto-attempt-0001"),
        b.login_attempt(&body, "otto-attempt-0001")
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
    wrong_passwords(&[&a, &b], "shared", 5).await;
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

/// Every string value under this app's Redis prefix.
pub(crate) async fn redis_values(app: &TestApp) -> Vec<Vec<u8>> {
    let client = redis::Client::open(std::env::var("TEST_REDIS_URL").unwrap()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.config.storage.redis_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut values = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if kind == "string" {
            values.push(
                redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap(),
            );
        } else {
            let members: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            values.extend(members);
        }
        values.push(key.into_bytes());
    }
    values
}

#[tokio::test]
async fn a_copy_of_redis_gives_an_attacker_nothing_to_use() {
    use base64::Engine;
    let app = spawn_app().await;
    let s = app.login("vince").await;
    let token = s["token"].as_str().unwrap().to_string();
    // A phone number read caches an access_token; a replayable login answer holds a token.
    let code = app
        .emu(
            "POST",
            "/phone-code",
            json!({"appid": APPID, "user": "vince"}),
        )
        .await["code"]
        .clone();
    assert_eq!(
        app.post("/api/v1/me/phone", Some(&token), json!({"code": code}))
            .await
            .status,
        200
    );
    let key = app.emu_user("vince", APPID).await["sessionKey"]
        .as_str()
        .unwrap()
        .to_string();
    let raw_key = base64::engine::general_purpose::STANDARD
        .decode(&key)
        .unwrap();
    let token_bytes = uuid::Uuid::parse_str(&token).unwrap().as_bytes().to_vec();

    let values = redis_values(&app).await;
    assert!(
        values.len() >= 4,
        "sessions, replay, index and token cache are there: {}",
        values.len()
    );
    let contains = |needle: &[u8]| {
        values
            .iter()
            .any(|v| v.windows(needle.len()).any(|w| w == needle))
    };
    assert!(
        !contains(key.as_bytes()) && !contains(&raw_key),
        "a session_key is readable in Redis"
    );
    assert!(
        !contains(token.as_bytes()) && !contains(&token_bytes),
        "a token is readable in Redis"
    );
    assert!(
        !contains(s["user"]["id"].as_str().unwrap().as_bytes()),
        "sessions are sealed whole"
    );
    // The user cache and the session index hold the openid and the phone number: sealed, and
    // keyed by hashes.
    let openid = app.emu_user("vince", APPID).await["openid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !contains(openid.as_bytes()),
        "an openid is readable in Redis"
    );
    let me = app.get("/api/v1/me", Some(&token)).await;
    let phone = me.body["phoneNumber"].as_str().unwrap();
    assert!(
        !contains(phone.as_bytes()),
        "a phone number is readable in Redis"
    );
}

#[tokio::test]
async fn sealing_keys_rotate_without_signing_anyone_out() {
    let old = spawn_app().await;
    let before = old.token("wren").await;
    // A new key first, the old one kept: old sessions open, new ones are sealed with the new key.
    let mut rotated = old.config.clone();
    rotated.storage.sealing_keys = Some(format!("2:{SEALING_KEY_2},1:{SEALING_KEY_1}").into());
    let rotated = start(rotated, old.emu.clone()).await;
    assert_eq!(rotated.get("/api/v1/me", Some(&before)).await.status, 200);
    let after = rotated.token("wren").await;
    // Once the old key is dropped, only what the new key sealed opens.
    let mut new_only = old.config.clone();
    new_only.storage.sealing_keys = Some(format!("2:{SEALING_KEY_2}").into());
    let new_only = start(new_only, old.emu.clone()).await;
    assert_eq!(new_only.get("/api/v1/me", Some(&after)).await.status, 200);
    assert_error(
        &new_only.get("/api/v1/me", Some(&before)).await,
        401,
        "unauthenticated",
    );
}

/// Users are cached in Redis for every node: a write on one node is what the other reads next.
#[tokio::test]
async fn a_write_on_one_node_is_read_on_the_other_at_once() {
    let a = spawn_app().await;
    let b = start(a.config.clone(), a.emu.clone()).await;
    let signed_in = a.login("petra").await;
    let token = signed_in["token"].as_str().unwrap().to_string();
    let first_id = signed_in["user"]["id"].clone();
    // Both nodes have read petra, so both have served her from the cache.
    for node in [&a, &b] {
        let me = node.get("/api/v1/me", Some(&token)).await;
        assert_eq!(me.body["nickname"], serde_json::Value::Null);
    }
    for (writer, reader, name) in [(&a, &b, "Petra"), (&b, &a, "P."), (&a, &b, "Pe")] {
        let r = writer
            .call(
                "PATCH",
                "/api/v1/me",
                Some(&token),
                Some(json!({"nickname": name})),
            )
            .await;
        assert_eq!(r.status, 200);
        let me = reader.get("/api/v1/me", Some(&token)).await;
        assert_eq!(me.body["nickname"], name, "the other node read the write");
        // A returning sign-in reads the user through its identity: the write shows there too.
        let again = reader.login("petra").await;
        assert_eq!(again["user"]["nickname"], name, "sign-in read the write");
    }
    let r = a
        .call(
            "PUT",
            "/api/v1/me/credentials",
            Some(&token),
            Some(json!({
                "username": "petra",
                "password": "correct horse battery",
                "code": a.wx_login("petra").await,
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        b.get("/api/v1/me", Some(&token)).await.body["username"],
        "petra"
    );
    // Unbound on one node (just after a sign-in on the other), the WeChat user is a stranger
    // to the other: a new user.
    assert_eq!(b.login("petra").await["user"]["username"], "petra");
    let r = b
        .call(
            "DELETE",
            &format!("/api/v1/me/identities/{APPID}"),
            None,
            Some(json!({"currentPassword": "correct horse battery"})),
        )
        .await;
    assert_error(&r, 401, "unauthenticated");
    let password = a
        .post(
            "/api/v1/auth/password",
            None,
            json!({"username": "petra", "password": "correct horse battery"}),
        )
        .await;
    let password_token = password.body["token"].as_str().unwrap().to_string();
    let r = b
        .call(
            "DELETE",
            &format!("/api/v1/me/identities/{APPID}"),
            Some(&password_token),
            Some(json!({"currentPassword": "correct horse battery"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        a.get("/api/v1/me", Some(&password_token)).await.body["identities"],
        json!([]),
        "the other node read the unbinding"
    );
    let again = a.login("petra").await;
    assert_eq!(again["isNewUser"], true);
    assert_ne!(again["user"]["id"], first_id);
}
