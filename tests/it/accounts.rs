//! Business accounts: registration, passwords, lockout, first-login binding, require_binding,
//! unionid linking, credentials and unbinding.

use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::*;

const PASSWORD: &str = "correct horse battery";

async fn register(app: &TestApp, username: &str) -> Value {
    let r = app
        .post(
            "/api/v1/accounts",
            None,
            json!({"username": username, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

async fn password_login(app: &TestApp, username: &str, password: &str) -> Reply {
    app.post(
        "/api/v1/auth/password",
        None,
        json!({"username": username, "password": password}),
    )
    .await
}

#[tokio::test]
async fn accounts_register_with_rules_and_case_insensitive_usernames() {
    let app = spawn_app().await;
    let user = register(&app, "Band.Leader").await;
    assert_eq!(user["username"], "Band.Leader");
    assert!(user["identities"].as_array().unwrap().is_empty());
    assert!(!user.to_string().contains("argon2"));
    let r = app
        .post(
            "/api/v1/accounts",
            None,
            json!({"username": "band.leader", "password": PASSWORD}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    for body in [
        json!({"username": "ab", "password": PASSWORD}),
        json!({"username": "has space", "password": PASSWORD}),
        json!({"username": "okname", "password": "short"}),
        json!({"username": "okname", "password": "eleven-char"}),
        json!({"username": "okname"}),
    ] {
        assert_error(
            &app.post("/api/v1/accounts", None, body).await,
            400,
            "invalid_request",
        );
    }
    // The refused ones made nothing: that name is still free.
    register(&app, "okname").await;
}

#[tokio::test]
async fn password_sign_in_answers_unknown_users_like_wrong_passwords() {
    let app = spawn_app().await;
    register(&app, "walter").await;
    let ok = password_login(&app, "WALTER", PASSWORD).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["isNewUser"], false);
    let token = ok.body["token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/me", Some(token)).await.body["username"],
        "walter"
    );
    // A password session has no session_key: WeChat data needs a wx.login session.
    let r = app
        .post(
            "/api/v1/wechat/decrypt",
            Some(token),
            json!({"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        )
        .await;
    assert_error(&r, 400, "invalid_request");

    let wrong = password_login(&app, "walter", "not the password").await;
    let unknown = password_login(&app, "nobody-here", "not the password").await;
    assert_error(&wrong, 401, "invalid_credentials");
    assert_error(&unknown, 401, "invalid_credentials");
    assert_eq!(wrong.body["message"], unknown.body["message"]);
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_username_for_fifteen_minutes() {
    let app = spawn_app().await;
    register(&app, "xavier").await;
    register(&app, "yvonne").await;
    for _ in 0..5 {
        assert_error(
            &password_login(&app, "xavier", "wrong password").await,
            401,
            "invalid_credentials",
        );
    }
    let r = password_login(&app, "xavier", PASSWORD).await;
    assert_error(&r, 429, "account_locked");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // Counted per username, and the same for every way in.
    assert_eq!(password_login(&app, "yvonne", PASSWORD).await.status, 200);
    let code = app.wx_login("xavier-phone").await;
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": code, "appid": APPID, "username": "Xavier", "password": PASSWORD}),
        )
        .await;
    assert_error(&r, 429, "account_locked");
}

#[tokio::test]
async fn first_login_with_credentials_binds_the_openid_to_that_account() {
    let app = spawn_app().await;
    let account = register(&app, "zoe").await;
    let code = app.wx_login("zoe-phone").await;
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": code, "appid": APPID, "username": "zoe", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], false);
    assert_eq!(r.body["user"]["id"], account["id"]);
    assert_eq!(
        r.body["user"]["identities"][0]["openid"],
        app.emu_user("zoe-phone", APPID).await["openid"]
    );

    // Later, the code alone signs in to the same account.
    assert_eq!(app.login("zoe-phone").await["user"]["id"], account["id"]);

    // Another WeChat user of the same app cannot bind to it.
    let code = app.wx_login("zoe-other-phone").await;
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": code, "appid": APPID, "username": "zoe", "password": PASSWORD}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": "x", "appid": APPID, "username": "zoe"}),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn require_binding_answers_a_single_use_ticket() {
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.login.policy = wxlogin::config::LoginPolicy::RequireBinding
    })
    .await;
    let account = register(&app, "abby").await;
    let code = app.wx_login("abby-phone").await;
    let body = json!({"code": code, "appid": APPID});
    let r = app.login_attempt(&body, "abby-attempt-0001").await;
    assert_error(&r, 403, "binding_required");
    let ticket = r.body["bindTicket"].as_str().unwrap().to_string();
    // A retry of the same code, by the same caller, does not hand the ticket out again.
    let again = app.login_attempt(&body, "abby-attempt-0001").await;
    assert_error(&again, 401, "wechat_code_invalid");
    assert!(again.body.get("bindTicket").is_none());

    let bind = |password: &str| {
        app.post(
            "/api/v1/auth/bind",
            None,
            json!({"bindTicket": ticket, "username": "abby", "password": password}),
        )
    };
    assert_error(&bind("wrong password").await, 401, "invalid_credentials");
    let r = bind(PASSWORD).await;
    assert_eq!(
        r.status, 200,
        "the ticket survived a wrong password: {}",
        r.text
    );
    assert_eq!(r.body["user"]["id"], account["id"]);
    assert_eq!(r.body["user"]["identities"][0]["appid"], APPID);
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", Some(token)).await.status, 200);
    assert_error(&bind(PASSWORD).await, 401, "unauthenticated");
    // Bound now: the code alone signs in.
    assert_eq!(app.login("abby-phone").await["user"]["id"], account["id"]);
}

#[tokio::test]
async fn a_unionid_joins_a_second_apps_identity_to_the_same_user() {
    let app = spawn_app().await;
    let first = app.login("bella").await;
    let code = app.wx_login_in(SAMPLE_APPID, "bella").await;
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": code, "appid": SAMPLE_APPID}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], false);
    assert_eq!(r.body["user"]["id"], first["user"]["id"]);
    let ids = r.body["user"]["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0]["openid"], ids[1]["openid"]);
    assert_eq!(ids[0]["unionid"], ids[1]["unionid"]);
}

/// `DELETE /api/v1/me/identities/{appid}` with a proof of presence.
async fn unbind(app: &TestApp, token: &str, appid: &str, proof: Value) -> Reply {
    let path = format!("/api/v1/me/identities/{appid}");
    app.call("DELETE", &path, Some(token), Some(proof)).await
}

#[tokio::test]
async fn credentials_and_unbinding() {
    let app = spawn_app().await;
    let token = app.token("cara").await;
    let code = app.wx_login("cara").await;
    let r = unbind(&app, &token, APPID, json!({"code": code})).await;
    assert_error(&r, 409, "conflict");
    let r = unbind(&app, &token, "wxnotmine00000001", json!({})).await;
    assert_error(&r, 404, "not_found");

    register(&app, "taken").await;
    let (app, token) = (&app, &token);
    let put = |username: &'static str| async move {
        let code = app.wx_login("cara").await;
        app.call(
            "PUT",
            "/api/v1/me/credentials",
            Some(token),
            Some(json!({"username": username, "password": PASSWORD, "code": code})),
        )
        .await
    };
    assert_error(&put("TAKEN").await, 409, "conflict");
    assert_error(&put("no").await, 400, "invalid_request");
    let r = put("cara").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["username"], "cara");
    assert_error(&put("cara2").await, 409, "conflict");
    let by_password = password_login(app, "cara", PASSWORD).await;
    assert_eq!(by_password.body["user"]["id"], r.body["id"]);
    let password_token = by_password.body["token"].as_str().unwrap();

    let other_session = app.token("cara").await;
    let r = unbind(app, token, APPID, json!({"currentPassword": PASSWORD})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // That identity's sessions are over; the password session is not.
    assert_error(
        &app.get("/api/v1/me", Some(token)).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &app.get("/api/v1/me", Some(&other_session)).await,
        401,
        "unauthenticated",
    );
    let me = app.get("/api/v1/me", Some(password_token)).await;
    assert!(me.body["identities"].as_array().unwrap().is_empty());
    // The openid is free again: it signs in as a new user.
    assert_eq!(app.login("cara").await["isNewUser"], true);
}

/// A stolen bearer token cannot set a password or unbind WeChat: each lasting change needs a
/// fresh wx.login code of the account's own mini program identity, or its current password.
#[tokio::test]
async fn lasting_changes_need_proof_of_presence() {
    let app = spawn_app().await;
    let token = app.token("pia").await;
    let set = |proof: Option<String>| {
        let mut body = json!({"username": "pia", "password": PASSWORD});
        if let Some(code) = proof {
            body["code"] = code.into();
        }
        app.call("PUT", "/api/v1/me/credentials", Some(&token), Some(body))
    };
    let someone_else = app.wx_login("not-pia").await;
    for proof in [None, Some("made-up-code".to_string()), Some(someone_else)] {
        assert_error(&set(proof).await, 403, "reauthentication_required");
    }
    // Nothing changed: no password signs in.
    assert_error(
        &password_login(&app, "pia", PASSWORD).await,
        401,
        "invalid_credentials",
    );
    // A password shorter than 12 characters is refused when set.
    let code = app.wx_login("pia").await;
    let short = json!({"username": "pia", "password": "eleven-char", "code": code});
    let r = app
        .call("PUT", "/api/v1/me/credentials", Some(&token), Some(short))
        .await;
    assert_error(&r, 400, "invalid_request");
    assert!(
        r.body["message"].as_str().unwrap().contains("12"),
        "{}",
        r.text
    );
    assert_eq!(set(Some(app.wx_login("pia").await)).await.status, 200);

    // A second identity, so that unbinding is not refused as the last way in.
    let code = app.wx_login_in(SAMPLE_APPID, "pia").await;
    let login = json!({"code": code, "appid": SAMPLE_APPID});
    let r = app.post("/api/v1/auth/login", None, login).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["identities"].as_array().unwrap().len(), 2);
    for proof in [
        json!({}),
        json!({"currentPassword": "not the password at all"}),
        json!({"code": "made-up-code"}),
        json!({"code": app.wx_login("not-pia").await}),
        json!({"smsCode": "123456"}),
    ] {
        let r = unbind(&app, &token, APPID, proof.clone()).await;
        assert_error(&r, 403, "reauthentication_required");
    }
    let both = json!({"code": app.wx_login("pia").await, "currentPassword": PASSWORD});
    assert_error(
        &unbind(&app, &token, APPID, both).await,
        400,
        "invalid_request",
    );
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(
        me.body["identities"].as_array().unwrap().len(),
        2,
        "{}",
        me.text
    );
    // The right proof: the identity goes, with its sessions.
    let code = app.wx_login("pia").await;
    assert_eq!(
        unbind(&app, &token, APPID, json!({"code": code}))
            .await
            .status,
        204
    );
    assert_error(
        &app.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthenticated",
    );
}

/// Binding an openid again to the account it was unbound from makes a new binding: the
/// sessions of the old one stay over, on both backends and with or without Redis.
#[tokio::test]
async fn binding_an_openid_again_does_not_bring_its_old_sessions_back() {
    for (db, kv) in [
        (Db::Postgres, Kv::Redis),
        (Db::Sqlite, Kv::Memory),
        (Db::Postgres, Kv::Cluster),
    ] {
        let app = spawn_with(db, kv, |_| {}).await;
        register(&app, "rhea").await;
        let bind = || async {
            let code = app.wx_login("rhea").await;
            let r = app
                .post(
                    "/api/v1/auth/login",
                    None,
                    json!({"code": code, "appid": APPID, "username": "rhea", "password": PASSWORD}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body
        };
        let first = bind().await;
        let old = first["token"].as_str().unwrap().to_string();
        assert_eq!(app.get("/api/v1/me", Some(&old)).await.status, 200);
        let r = unbind(&app, &old, APPID, json!({"currentPassword": PASSWORD})).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_error(
            &app.get("/api/v1/me", Some(&old)).await,
            401,
            "unauthenticated",
        );

        let again = bind().await;
        assert_eq!(again["user"]["id"], first["user"]["id"], "the same account");
        let new = again["token"].as_str().unwrap();
        assert_eq!(app.get("/api/v1/me", Some(new)).await.status, 200);
        assert_error(
            &app.get("/api/v1/me", Some(&old)).await,
            401,
            "unauthenticated",
        );
        let phone = app.post("/api/v1/me/phone", Some(&old), json!({"code": "x"}));
        assert_error(&phone.await, 401, "unauthenticated");
        let open_data =
            json!({"encryptedData": "AAAAAAAAAAAAAAAAAAAAAA==", "iv": "r7BXXKkLb8qrSNn05n0qiA=="});
        let decrypt = app.post("/api/v1/wechat/decrypt", Some(&old), open_data);
        assert_error(&decrypt.await, 401, "unauthenticated");
    }
}

#[tokio::test]
async fn a_failure_between_two_writes_leaves_no_half_written_user() {
    let app = spawn_app().await;
    let url = secrecy::ExposeSecret::expose_secret(&app.config.storage.database_url).to_string();
    let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
    // The database fails the second write of a first login (the identity, after the user).
    sqlx::query("CREATE FUNCTION fail_identity() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql")
        .execute(&mut db).await.unwrap();
    sqlx::query("CREATE TRIGGER fail_identity BEFORE INSERT ON identities FOR EACH ROW EXECUTE FUNCTION fail_identity()")
        .execute(&mut db).await.unwrap();
    let r = app.try_login("dina").await;
    assert_error(&r, 503, "service_unavailable");
    let users: i64 = sqlx::Row::get(
        &sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&mut db)
            .await
            .unwrap(),
        0,
    );
    assert_eq!(users, 0, "the user row was rolled back with the identity");

    sqlx::query("DROP TRIGGER fail_identity ON identities")
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(app.login("dina").await["isNewUser"], true);
}

/// Counted before argon2 runs: of a burst of concurrent wrong guesses, at most five are
/// checked, and the rest are refused as locked at once.
#[tokio::test]
async fn concurrent_guesses_cannot_outrun_the_lockout() {
    let app = spawn_app().await;
    register(&app, "bursty").await;
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move { password_login(app, "bursty", &format!("wrong password {i}")).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers.iter().filter(|r| r.status == 401).count();
    let locked = answers.iter().filter(|r| r.status == 429).count();
    assert_eq!(checked + locked, 20);
    assert!(checked <= 5, "{checked} guesses were checked");
    for r in answers.iter().filter(|r| r.status == 429) {
        assert_error(r, 429, "account_locked");
    }
    // And the right password is locked out too, until the window ends.
    assert_error(
        &password_login(&app, "bursty", PASSWORD).await,
        429,
        "account_locked",
    );
}

/// Unauthenticated password routes cannot queue hashing work without end: past a bounded
/// queue, a request is answered 503 at once, and nothing else goes wrong.
#[tokio::test]
async fn a_burst_of_password_checks_beyond_the_queue_is_refused_at_once() {
    let app = spawn_app().await;
    let guesses = (0..80).map(|i| {
        let app = &app;
        async move { password_login(app, &format!("nobody-{i}"), "some password").await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let refused: Vec<_> = answers.iter().filter(|r| r.status == 503).collect();
    let checked = answers.iter().filter(|r| r.status == 401).count();
    assert_eq!(refused.len() + checked, 80);
    assert!(!refused.is_empty(), "80 hashes at once all queued");
    assert!(
        checked >= 16,
        "the queue holds at least 16: {checked} checked"
    );
    for r in refused {
        assert_error(r, 503, "service_unavailable");
    }
}
