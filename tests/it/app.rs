//! Native apps signing in with a code of the WeChat Open SDK (`POST /api/v1/auth/app`),
//! joined by UnionID with the same person's mini program identity.

use serde_json::json;

use crate::helpers::*;

const MOBILE: &str = "wx4000000000000004";
const MOBILE_2: &str = "wx4000000000000005";

async fn app_with_mobile_apps(count: usize) -> TestApp {
    let apps = [
        (MOBILE, "mobile-secret-0004"),
        (MOBILE_2, "mobile-secret-0005"),
    ];
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.apps.mobile_apps = apps[..count]
            .iter()
            .map(|(appid, secret)| wxlogin::config::AppCredentials {
                appid: (*appid).into(),
                secret: (*secret).into(),
            })
            .collect();
    })
    .await;
    for (appid, secret) in apps {
        app.emu("POST", "/apps", json!({"appid": appid, "secret": secret}))
            .await;
    }
    app
}

impl TestApp {
    async fn app_code(&self, appid: &str, user: &str) -> String {
        let code = self
            .emu("POST", "/app-code", json!({"appid": appid, "user": user}))
            .await;
        code["code"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn a_native_app_signs_in_and_is_the_mini_program_user_by_unionid() {
    let app = app_with_mobile_apps(1).await;
    let person = format!("mobile-{}", uuid::Uuid::new_v4().simple());
    let mini = app.login(&person).await;

    let code = app.app_code(MOBILE, &person).await;
    let r = app
        .post("/api/v1/auth/app", None, json!({ "code": code }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], false);
    assert_eq!(r.body["user"]["id"], mini["user"]["id"]);
    let identities = r.body["user"]["identities"].as_array().unwrap();
    let app_identity = identities
        .iter()
        .find(|i| i["provider"] == "app")
        .expect("an identity of provider `app`");
    assert_eq!(app_identity["appid"], MOBILE);
    let token = r.body["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", Some(token)).await.status, 200);

    // A code works once (WeChat's 40163).
    let again = app
        .post("/api/v1/auth/app", None, json!({ "code": code }))
        .await;
    assert_error(&again, 401, "wechat_code_invalid");

    // A stranger is a new user.
    let code = app.app_code(MOBILE, &format!("new-{person}")).await;
    let r = app
        .post(
            "/api/v1/auth/app",
            None,
            json!({"code": code, "appid": MOBILE}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], true);
}

/// The Open SDK's codes live ten minutes, not five.
#[tokio::test]
async fn an_app_code_lives_ten_minutes() {
    let app = app_with_mobile_apps(1).await;
    let code = app.app_code(MOBILE, "patient").await;
    app.emu("POST", "/clock", json!({"advanceSeconds": 540}))
        .await;
    let r = app
        .post("/api/v1/auth/app", None, json!({ "code": code }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let code = app.app_code(MOBILE, "late").await;
    app.emu("POST", "/clock", json!({"advanceSeconds": 601}))
        .await;
    let r = app
        .post("/api/v1/auth/app", None, json!({ "code": code }))
        .await;
    assert_error(&r, 401, "wechat_code_invalid");
}

/// Which app: named, or the only one; an unknown or missing one is a 400.
#[tokio::test]
async fn the_app_is_named_where_several_are_configured() {
    let app = app_with_mobile_apps(2).await;
    let code = app.app_code(MOBILE_2, "second").await;
    let r = app
        .post("/api/v1/auth/app", None, json!({ "code": code }))
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = app
        .post(
            "/api/v1/auth/app",
            None,
            json!({"code": code, "appid": "wx9999999999999999"}),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = app
        .post(
            "/api/v1/auth/app",
            None,
            json!({"code": code, "appid": MOBILE_2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let none = spawn_app().await;
    let r = none
        .post("/api/v1/auth/app", None, json!({"code": "anything"}))
        .await;
    assert_error(&r, 400, "invalid_request");
}
