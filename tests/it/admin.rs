//! Users' rights and operators: deleting one's account, exporting what is stored, and the
//! admin API (admin clients with HTTP Basic, admin users with their bearer token).

use serde_json::{json, Value};

use crate::helpers::*;
use crate::nodes::redis_values;

const OPS: (&str, &str) = ("ops", "ops-secret-0123456789");

pub(crate) async fn admin_app(db: Db, kv: Kv) -> TestApp {
    spawn_with(db, kv, |c| {
        c.tokens.clients.push(wxlogin::config::Client {
            id: OPS.0.into(),
            secret: OPS.1.into(),
            name: None,
            redirect_uris: Vec::new(),
            admin: true,
        });
        c.tokens.admin_users = vec!["boss".into()];
    })
    .await
}

impl TestApp {
    /// An admin API call as the admin client.
    pub(crate) async fn admin(&self, method: &str, path: &str) -> Reply {
        let resp = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .basic_auth(OPS.0, Some(OPS.1))
            .send()
            .await
            .unwrap();
        read_reply(resp).await
    }

    async fn events_of(&self, user_id: &str) -> Vec<Value> {
        let r = self
            .admin("GET", &format!("/admin/v1/audit?user={user_id}&limit=100"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["events"].as_array().unwrap().clone()
    }
}

pub(crate) fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn deleting_my_account(app: TestApp) {
    let person = format!("leaver-{}", uuid::Uuid::new_v4().simple());
    let first = app.login(&person).await;
    let token = first["token"].as_str().unwrap().to_string();
    let access = first["accessToken"].as_str().unwrap().to_string();
    let id = first["user"]["id"].as_str().unwrap().to_string();

    // No proof, or a wrong one: nothing happens.
    let r = app
        .call("DELETE", "/api/v1/me", Some(&token), Some(json!({})))
        .await;
    assert_error(&r, 403, "reauthentication_required");
    let wrong = json!({"code": app.wx_login("someone-else").await});
    let r = app
        .call("DELETE", "/api/v1/me", Some(&token), Some(wrong))
        .await;
    assert_error(&r, 403, "reauthentication_required");
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, 200);

    let proof = json!({"code": app.wx_login(&person).await});
    let r = app
        .call("DELETE", "/api/v1/me", Some(&token), Some(proof))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(
        &app.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &app.get("/api/v1/me", Some(&access)).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &app.admin("GET", &format!("/admin/v1/users/{id}")).await,
        404,
        "not_found",
    );

    // The same WeChat user again: a new user.
    let again = app.login(&person).await;
    assert_eq!(again["isNewUser"], true);
    assert_ne!(again["user"]["id"], first["user"]["id"]);

    // The log keeps that it happened, and no client IP of that user.
    let events = app.events_of(&id).await;
    assert_eq!(kinds(&events)[0], "user_deleted");
    assert!(kinds(&events).contains(&"signed_in"));
    assert!(events.iter().all(|e| e["clientIp"].is_null()), "{events:?}");
}

#[tokio::test]
async fn deleting_my_account_on_postgres_and_redis() {
    deleting_my_account(admin_app(Db::Postgres, Kv::Redis).await).await;
}

#[tokio::test]
async fn deleting_my_account_on_sqlite() {
    deleting_my_account(admin_app(Db::Sqlite, Kv::Memory).await).await;
}

/// The export holds the profile, identities, phone, the session and the audit events; no token.
#[tokio::test]
async fn the_export_holds_what_is_stored_and_no_token() {
    let app = admin_app(Db::Postgres, Kv::Redis).await;
    let person = format!("exporter-{}", uuid::Uuid::new_v4().simple());
    let session = app.login(&person).await;
    let token = session["token"].as_str().unwrap();
    let code = app
        .emu(
            "POST",
            "/phone-code",
            json!({"appid": APPID, "user": person}),
        )
        .await["code"]
        .clone();
    let r = app
        .post("/api/v1/me/phone", Some(token), json!({ "code": code }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get("/api/v1/me/export", Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["id"], session["user"]["id"]);
    assert!(r.body["user"]["phoneNumber"]
        .as_str()
        .unwrap()
        .starts_with("+86"));
    assert_eq!(r.body["user"]["identities"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["currentSession"]["appid"], APPID);
    let sessions = r.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(
        sessions[0]["lastUsed"].as_i64().unwrap() >= sessions[0]["createdAt"].as_i64().unwrap()
    );
    let kinds = kinds(r.body["auditEvents"].as_array().unwrap());
    assert!(
        kinds.contains(&"signed_in") && kinds.contains(&"phone_changed"),
        "{kinds:?}"
    );
    assert!(!r.text.contains(token));
    assert!(!r.text.contains(session["accessToken"].as_str().unwrap()));
    assert_eq!(r.headers["cache-control"], "no-store");
}

/// Operators find users every way, disable one (whose live token stops at once on another
/// node, and who cannot sign in), enable, end sessions, delete; every action is in the log
/// with who did it.
#[tokio::test]
async fn operators_on_two_nodes_of_postgres_and_redis() {
    let a = admin_app(Db::Postgres, Kv::Redis).await;
    let b = start(a.config.clone(), a.emu.clone()).await;
    operators_find_disable_enable_end_sessions_and_delete(&a, &b).await;
}

#[tokio::test]
async fn operators_on_sqlite_and_the_in_process_store() {
    let app = admin_app(Db::Sqlite, Kv::Memory).await;
    operators_find_disable_enable_end_sessions_and_delete(&app, &app).await;
}

/// The operators' flow with node `a` for the operator and node `b` for the user.
async fn operators_find_disable_enable_end_sessions_and_delete(a: &TestApp, b: &TestApp) {
    let person = format!("member-{}", uuid::Uuid::new_v4().simple());
    let session = b.login(&person).await;
    let token = session["token"].as_str().unwrap().to_string();
    let id = session["user"]["id"].as_str().unwrap().to_string();
    let openid = session["user"]["identities"][0]["openid"]
        .as_str()
        .unwrap()
        .to_string();
    let wx = b.emu_user(&person, APPID).await;
    let unionid = wx["unionid"].as_str().unwrap().to_string();

    // A phone from the phone button: found by its 11 mainland digits as by its E.164 form.
    let code = b
        .emu(
            "POST",
            "/phone-code",
            json!({"appid": APPID, "user": person}),
        )
        .await["code"]
        .clone();
    let r = b
        .post("/api/v1/me/phone", Some(&token), json!({ "code": code }))
        .await;
    let pure = r.body["purePhoneNumber"].as_str().unwrap().to_string();
    for q in [
        id.as_str(),
        openid.as_str(),
        unionid.as_str(),
        pure.as_str(),
    ] {
        let r = a.admin("GET", &format!("/admin/v1/users?q={q}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let found: Vec<&str> = r.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap())
            .collect();
        assert_eq!(found, [id.as_str()], "by {q}");
    }
    // Paged: one at a time, the cursor leads on.
    b.login(&format!("other-{person}")).await;
    let r = a.admin("GET", "/admin/v1/users?limit=1").await;
    assert_eq!(r.body["users"].as_array().unwrap().len(), 1);
    let cursor = r.body["nextCursor"]
        .as_str()
        .expect("more than one user")
        .to_string();
    let next = a
        .admin("GET", &format!("/admin/v1/users?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(next.status, 200, "{}", next.text);
    assert_ne!(next.body["users"][0]["id"], r.body["users"][0]["id"]);
    assert_error(
        &a.admin("GET", "/admin/v1/users?cursor=%25%25").await,
        400,
        "invalid_request",
    );

    // Disabled on node a: the token stops on node b at once, and sign-in is refused.
    let r = a
        .admin("POST", &format!("/admin/v1/users/{id}/disable"))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(
        &b.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthenticated",
    );
    assert_error(&b.try_login(&person).await, 403, "account_disabled");
    let detail = a.admin("GET", &format!("/admin/v1/users/{id}")).await;
    assert_eq!(detail.body["disabled"], true);

    let r = a
        .admin("POST", &format!("/admin/v1/users/{id}/enable"))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    // The sessions ended with the disabling stay ended.
    assert_error(
        &b.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthenticated",
    );
    let token = b.login(&person).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(b.get("/api/v1/me", Some(&token)).await.status, 200);

    let r = a
        .admin("POST", &format!("/admin/v1/users/{id}/sessions/end"))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(
        &b.get("/api/v1/me", Some(&token)).await,
        401,
        "unauthenticated",
    );

    let r = a.admin("DELETE", &format!("/admin/v1/users/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(
        &a.admin("POST", &format!("/admin/v1/users/{id}/disable"))
            .await,
        404,
        "not_found",
    );

    let events = a.events_of(&id).await;
    let actions: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| !e["actor"].is_null())
        .map(|e| (e["type"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("user_deleted", "client:ops"),
            ("sessions_ended", "client:ops"),
            ("user_enabled", "client:ops"),
            ("user_disabled", "client:ops"),
        ]
    );
    // A refused sign-in is in the log too (written by node b).
    let r = a
        .admin("GET", "/admin/v1/audit?type=sign_in_refused&limit=100")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Who may call the admin API: admin clients and admin users; 401 without credentials or with
/// a wrong secret, 403 for another user's token.
#[tokio::test]
async fn only_operators_call_the_admin_api() {
    let app = admin_app(Db::Sqlite, Kv::Memory).await;
    assert_error(
        &app.get("/admin/v1/users", None).await,
        401,
        "unauthenticated",
    );
    let wrong = app
        .http
        .get(format!("{}/admin/v1/users", app.base))
        .basic_auth(OPS.0, Some("not-the-secret-000000"))
        .send()
        .await
        .unwrap();
    assert_error(&read_reply(wrong).await, 401, "unauthenticated");
    let someone = app.token("someone").await;
    assert_error(
        &app.get("/admin/v1/users", Some(&someone)).await,
        403,
        "forbidden",
    );

    // The operator "boss": an account with a password, signed in with it.
    let boss = json!({"username": "boss", "password": "correct horse battery 8"});
    assert_eq!(
        app.post("/api/v1/accounts", None, boss.clone())
            .await
            .status,
        201
    );
    let r = app.post("/api/v1/auth/password", None, boss).await;
    let boss_token = r.body["token"].as_str().unwrap().to_string();
    let r = app.get("/admin/v1/users?q=boss", Some(&boss_token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["users"][0]["username"], "boss");
}

/// After a deletion no Redis key of the user is left: none names the user's id (as text or as
/// the UUID's bytes) or openid, with sealing off so that values are readable.
#[tokio::test]
async fn a_deletion_leaves_no_redis_key_of_the_user() {
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| c.storage.sealing_keys = None).await;
    let person = format!("erased-{}", uuid::Uuid::new_v4().simple());
    let first = app.login(&person).await;
    let second = app.login(&person).await;
    let token = second["token"].as_str().unwrap().to_string();
    let id = first["user"]["id"].as_str().unwrap().to_string();
    let openid = first["user"]["identities"][0]["openid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, 200);
    let uuid_bytes = uuid::Uuid::parse_str(&id).unwrap().as_bytes().to_vec();
    let names = |values: &[Vec<u8>]| {
        values.iter().any(|v| {
            let contains = |needle: &[u8]| v.windows(needle.len()).any(|w| w == needle);
            contains(id.as_bytes()) || contains(&uuid_bytes) || contains(openid.as_bytes())
        })
    };
    assert!(
        names(&redis_values(&app).await),
        "the scan finds the user before"
    );

    let proof = json!({"code": app.wx_login(&person).await});
    let r = app
        .call("DELETE", "/api/v1/me", Some(&token), Some(proof))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(
        !names(&redis_values(&app).await),
        "a Redis key of the deleted user is left"
    );
    // And no row of the user in SQL.
    use secrecy::ExposeSecret;
    let pool = sqlx::PgPool::connect(app.config.storage.database_url.expose_secret())
        .await
        .unwrap();
    for table in ["users WHERE id = $1", "identities WHERE user_id = $1"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 0, "{table}");
    }
    assert_error(
        &app.get("/api/v1/me", Some(first["token"].as_str().unwrap()))
            .await,
        401,
        "unauthenticated",
    );
}

/// Replacing a user's phone needs a proof of presence: a stolen token alone cannot move the
/// account to another number. The same number again needs none.
#[tokio::test]
async fn replacing_a_phone_needs_a_proof_of_presence() {
    use crate::sms::new_phone;
    let app = admin_app(Db::Sqlite, Kv::Memory).await;
    let clock = app.config.login.clock.clone();
    let person = format!("mover-{}", uuid::Uuid::new_v4().simple());
    let token = app.token(&person).await;
    let (first, second) = (new_phone(), new_phone());
    let code = app.sms_code(&first, "bind").await;
    let body = json!({"phoneNumber": first, "smsCode": code});
    assert_eq!(
        app.post("/api/v1/me/phone", Some(&token), body)
            .await
            .status,
        200
    );

    let code = app.sms_code(&second, "bind").await;
    let body = json!({"phoneNumber": second, "smsCode": code});
    let r = app.post("/api/v1/me/phone", Some(&token), body).await;
    assert_error(&r, 403, "reauthentication_required");
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.body["phoneNumber"],
        first.as_str()
    );

    clock.advance(61);
    let code = app.sms_code(&second, "bind").await;
    let proof = app.wx_login(&person).await;
    let body = json!({"phoneNumber": second, "smsCode": code, "proofCode": proof});
    let r = app.post("/api/v1/me/phone", Some(&token), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.body["phoneNumber"],
        second.as_str()
    );
}
