//! The audit log: what it never holds, and how long it keeps events.

use serde_json::json;

use crate::admin::{admin_app, kinds};
use crate::helpers::*;

/// No token, code, password, phone number or openid in any row of the audit log.
#[tokio::test]
async fn the_audit_log_holds_no_secret_and_names_no_phone_or_openid() {
    let app = admin_app(Db::Postgres, Kv::Redis).await;
    let person = format!("audited-{}", uuid::Uuid::new_v4().simple());
    let code = app.wx_login(&person).await;
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": code, "appid": APPID}),
        )
        .await;
    let token = r.body["token"].as_str().unwrap().to_string();
    let openid = r.body["user"]["identities"][0]["openid"]
        .as_str()
        .unwrap()
        .to_string();
    let phone_code = app
        .emu(
            "POST",
            "/phone-code",
            json!({"appid": APPID, "user": person}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({ "code": phone_code }),
        )
        .await;
    let phone = r.body["phoneNumber"].as_str().unwrap().to_string();
    let account =
        json!({"username": format!("u{}", &person[8..20]), "password": "a wrong one 12345"});
    app.post("/api/v1/auth/password", None, account).await;
    app.post("/api/v1/auth/logout", Some(&token), json!({}))
        .await;

    let r = app.admin("GET", "/admin/v1/audit?limit=100").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(kinds(r.body["events"].as_array().unwrap()).contains(&"sign_in_failed"));
    let secrets = [
        &token[..],
        &code,
        &phone_code,
        &phone,
        &phone[3..],
        &openid,
        "a wrong one",
    ];
    for secret in secrets {
        assert!(!r.text.contains(secret), "the audit log holds {secret}");
    }
}

/// The audit log keeps events `WXLOGIN_AUDIT_RETENTION_DAYS` (180); each node deletes older
/// ones at its start and every hour, which any number of nodes may do at once.
#[tokio::test]
async fn old_audit_events_are_deleted() {
    use secrecy::ExposeSecret;
    let a = admin_app(Db::Postgres, Kv::Redis).await;
    a.login("recent").await;
    let pool = sqlx::PgPool::connect(a.config.storage.database_url.expose_secret())
        .await
        .unwrap();
    let long_ago = wxlogin::domain::now_ms() - 200 * 86_400_000;
    sqlx::query("INSERT INTO audit_events (id, at, type) VALUES ($1, $2, 'ancient')")
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(long_ago)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        a.admin("GET", "/admin/v1/audit?type=ancient").await.body["events"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // `before` a time: only the old one.
    let at = wxlogin::domain::now_ms() - 100 * 86_400_000;
    let before = a
        .admin("GET", &format!("/admin/v1/audit?before={at}"))
        .await;
    assert_eq!(
        kinds(before.body["events"].as_array().unwrap()),
        ["ancient"],
        "{}",
        before.text
    );

    // Two more nodes start, as every node's hour comes.
    let _b = start(a.config.clone(), a.emu.clone()).await;
    let _c = start(a.config.clone(), a.emu.clone()).await;
    let mut left = 1;
    for _ in 0..50 {
        let r = a.admin("GET", "/admin/v1/audit?type=ancient").await;
        left = r.body["events"].as_array().unwrap().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the old event is gone");
    let recent = a.admin("GET", "/admin/v1/audit?type=signed_in").await;
    assert_eq!(
        recent.body["events"].as_array().unwrap().len(),
        1,
        "the recent one stays"
    );
}
