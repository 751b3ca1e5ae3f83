//! Session lifetimes: "sign out everywhere", the absolute lifetime beside the sliding TTL.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_of_the_user_on_every_node() {
    for (db, kv) in [(Db::Postgres, Kv::Redis), (Db::Sqlite, Kv::Memory)] {
        let a = spawn_with(db, kv, |_| {}).await;
        let phone = a.login("nina").await;
        let tablet = a.login("nina").await;
        let other_user = a.token("oscar").await;
        let (phone, tablet_at) = (
            phone["token"].as_str().unwrap().to_string(),
            tablet["accessToken"].as_str().unwrap().to_string(),
        );
        let tablet = tablet["token"].as_str().unwrap().to_string();
        let r = a
            .call("POST", "/api/v1/auth/logout?all=true", Some(&phone), None)
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        for token in [&phone, &tablet, &tablet_at] {
            assert_error(
                &a.get("/api/v1/me", Some(token)).await,
                401,
                "unauthenticated",
            );
        }
        assert_eq!(a.get("/api/v1/authz", Some(&tablet_at)).await.status, 401);
        // Someone else's session goes on; the user signs in again as before.
        assert_eq!(a.get("/api/v1/me", Some(&other_user)).await.status, 200);
        let again = a.token("nina").await;
        assert_eq!(a.get("/api/v1/me", Some(&again)).await.status, 200);
        // A plain logout ends only its own session.
        let second = a.token("nina").await;
        let r = a
            .call("POST", "/api/v1/auth/logout", Some(&second), None)
            .await;
        assert_eq!(r.status, 204);
        assert_eq!(a.get("/api/v1/me", Some(&again)).await.status, 200);
    }
}

#[tokio::test]
async fn sign_out_everywhere_is_seen_by_another_node_at_once() {
    let a = spawn_with(Db::Postgres, Kv::Redis, |_| {}).await;
    let b = start(a.config.clone(), a.emu.clone()).await;
    let token = a.token("pete").await;
    let other = a.token("pete").await;
    // The other node has the user cached from reading this session.
    assert_eq!(b.get("/api/v1/me", Some(&other)).await.status, 200);
    let r = a
        .call("POST", "/api/v1/auth/logout?all=true", Some(&token), None)
        .await;
    assert_eq!(r.status, 204);
    assert_error(
        &b.get("/api/v1/me", Some(&other)).await,
        401,
        "unauthenticated",
    );
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_much_it_is_used() {
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.login.session_max_age = Duration::from_secs(3);
    })
    .await;
    let login = app.login("quin").await;
    let expires_in = login["expiresIn"].as_u64().unwrap();
    assert!(
        (2..=3).contains(&expires_in),
        "what is left of the lifetime: {expires_in}"
    );
    let token = login["token"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/me", Some(token)).await.status, 200);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_error(
        &app.get("/api/v1/me", Some(token)).await,
        401,
        "unauthenticated",
    );
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            Some(token),
            json!({"code": app.wx_login("quin").await}),
        )
        .await;
    assert_error(&refresh, 401, "unauthenticated");
}
