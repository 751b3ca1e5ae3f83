//! Web sign-in's guards: the per-IP limit on `authorize`, and states and tickets sealed, so
//! that a forged one is no ticket.

use serde_json::json;
use sha2::Digest;

use crate::helpers::*;
use crate::web::{urlencode, web_app, CHALLENGE, SHOP, VERIFIER, WEBSITE};

#[tokio::test]
async fn authorize_is_under_the_per_ip_limit() {
    let app = spawn_with(Db::Sqlite, Kv::Memory, |c| {
        c.apps.website = Some(wxlogin::config::AppCredentials {
            appid: WEBSITE.into(),
            secret: "website-secret-02".into(),
        });
        c.login.redirect_allowlist =
            vec![url::Url::parse("https://shop.example.com/signed-in").unwrap()];
        c.login.rate_limit_per_minute = 3;
    })
    .await;
    for _ in 0..3 {
        app.authorize("website", SHOP, None).await;
    }
    let r = app
        .get_page(&format!(
            "/api/v1/oauth/website/authorize?redirectUri={}&codeChallenge={CHALLENGE}",
            urlencode(SHOP)
        ))
        .await;
    assert_error(&r, 429, "rate_limited");
}

#[tokio::test]
async fn states_and_tickets_are_sealed_and_a_forged_one_is_no_ticket() {
    let app = web_app().await;
    app.register_web_apps().await;
    let client = redis::Client::open(std::env::var("TEST_REDIS_URL").unwrap()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = app.config.storage.redis_prefix.clone();
    let key_of = |kind: &str, secret: &str| {
        format!(
            "{prefix}{kind}:{}",
            hex::encode(sha2::Sha256::digest(secret.as_bytes()))
        )
    };
    let (_, state) = app.authorize("website", SHOP, None).await;
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(key_of("oauth", &state))
        .query_async(&mut conn)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&stored);
    assert!(
        !text.contains("shop.example.com") && !text.contains(CHALLENGE),
        "{text}"
    );

    let ticket = app.ticket_for("sven").await;
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(key_of("ticket", &ticket))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("user_id"));

    // Someone who can write Redis but has no sealing key writes a ticket of their choosing.
    let forged = "0d9bd3f2-5b6e-4c1a-9f8e-7d6c5b4a3f21";
    let me = app.login("victim-of-forgery").await;
    let mut value = vec![0u8];
    value.extend(
        json!({
            "user_id": me["user"]["id"],
            "appid": WEBSITE,
            "openid": "o-forged",
            "is_new_user": false,
            "code_challenge": CHALLENGE,
        })
        .to_string()
        .into_bytes(),
    );
    let _: () = redis::cmd("SET")
        .arg(key_of("ticket", forged))
        .arg(value)
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_error(
        &app.redeem(forged, Some(VERIFIER)).await,
        401,
        "unauthenticated",
    );
}
