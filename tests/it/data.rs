//! Open data, phone numbers and the profile.

use serde_json::{json, Value};

use crate::helpers::*;

const SAMPLE_IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
const SAMPLE_DATA: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";
const SAMPLE_PLAIN: &str = r#"{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0","unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}"#;

async fn phone_code(app: &TestApp, user: &str) -> Value {
    app.emu("POST", "/phone-code", json!({"appid": APPID, "user": user}))
        .await["code"]
        .clone()
}

async fn sample_session(app: &TestApp) -> String {
    // WeChat's sample was made for wx4f4bc4dec97d474b with this session_key; the emulator
    // gives the test user that key at its wx.login.
    let code = app
        .emu(
            "POST",
            "/login",
            json!({"appid": SAMPLE_APPID, "user": "band", "sessionKey": SAMPLE_KEY}),
        )
        .await["code"]
        .clone();
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"code": code, "appid": SAMPLE_APPID}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn wechats_published_sample_decrypts_to_its_published_plaintext() {
    let app = spawn_app().await;
    let token = sample_session(&app).await;
    let r = app
        .post(
            "/api/v1/wechat/decrypt",
            Some(&token),
            json!({"encryptedData": SAMPLE_DATA, "iv": SAMPLE_IV}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut want: Value = serde_json::from_str(SAMPLE_PLAIN).unwrap();
    let watermark = want.as_object_mut().unwrap().remove("watermark").unwrap();
    assert_eq!(r.body["data"], want);
    assert_eq!(r.body["watermark"], watermark);
    // The decrypted unionId is recorded on the identity, where it had none... here WeChat gave
    // one at login already; the identity keeps the one it had.
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert!(me.body["identities"][0]["unionid"].is_string());
}

#[tokio::test]
async fn decrypt_refuses_what_does_not_fit_with_the_contracts_codes() {
    let app = spawn_app().await;
    let token = app.token("nina").await;
    let good = app
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "nina", "data": {"nickName": "Nina"}}),
        )
        .await;
    let post = |body: Value| app.post("/api/v1/wechat/decrypt", Some(&token), body);

    let r = post(json!({"encryptedData": good["encryptedData"], "iv": good["iv"], "rawData": good["rawData"], "signature": good["signature"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["nickName"], "Nina");
    assert_eq!(r.body["watermark"]["appid"], APPID);

    assert_error(
        &post(json!({"encryptedData": "%%%", "iv": good["iv"]})).await,
        400,
        "invalid_request",
    );
    assert_error(
        &post(json!({"encryptedData": good["encryptedData"], "iv": "AAAA"})).await,
        400,
        "invalid_request",
    );
    assert_error(
        &post(json!({"encryptedData": "AAAA", "iv": good["iv"]})).await,
        400,
        "invalid_request",
    );
    assert_error(
        &post(json!({"encryptedData": good["encryptedData"]})).await,
        400,
        "invalid_request",
    );
    assert_error(
        &post(json!({"encryptedData": good["encryptedData"], "iv": good["iv"], "rawData": "{}"}))
            .await,
        400,
        "invalid_request",
    );

    // Made with a key this session never had: the message says what to do.
    let foreign = app.emu("POST", "/encrypt", json!({"appid": APPID, "user": "nina", "data": {"a": 1}, "sessionKey": "HyVFkGl5F5OQWJZZaNzBBg=="})).await;
    let r = post(json!({"encryptedData": foreign["encryptedData"], "iv": foreign["iv"]})).await;
    assert_error(&r, 400, "decrypt_failed");
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("/api/v1/auth/refresh"));

    let elsewhere = app.emu("POST", "/encrypt", json!({"appid": APPID, "user": "nina", "data": {"a": 1}, "watermarkAppid": "wxsomeoneelse0001"})).await;
    assert_error(
        &post(json!({"encryptedData": elsewhere["encryptedData"], "iv": elsewhere["iv"]})).await,
        400,
        "watermark_mismatch",
    );

    let r = post(json!({"encryptedData": good["encryptedData"], "iv": good["iv"], "rawData": good["rawData"], "signature": "0".repeat(40)})).await;
    assert_error(&r, 400, "signature_mismatch");
    assert_error(
        &app.post(
            "/api/v1/wechat/decrypt",
            None,
            json!({"encryptedData": "x", "iv": "y"}),
        )
        .await,
        401,
        "unauthenticated",
    );
}

/// An app bound to no Open Platform account: WeChat gives its logins no unionid.
async fn app_without_unionids() -> TestApp {
    let app = spawn_app().await;
    app.emu(
        "POST",
        "/apps",
        json!({"appid": APPID, "secret": SECRET, "unionid": false}),
    )
    .await;
    app
}

/// `wechat/decrypt` of what the emulator's `/encrypt` made.
async fn decrypt(app: &TestApp, token: &str, encrypted: &Value) -> Reply {
    let body = json!({"encryptedData": encrypted["encryptedData"], "iv": encrypted["iv"]});
    app.post("/api/v1/wechat/decrypt", Some(token), body).await
}

#[tokio::test]
async fn a_unionid_learned_from_open_data_is_recorded() {
    let app = app_without_unionids().await;
    let s = app.login("olga").await;
    let token = s["token"].as_str().unwrap();
    assert!(s["user"]["identities"][0]["unionid"].is_null());
    let data = app.emu("POST", "/encrypt", json!({"appid": APPID, "user": "olga", "data": {"unionId": "oUNIONolga000000000000000000"}})).await;
    let r = decrypt(&app, token, &data).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(
        me.body["identities"][0]["unionid"],
        "oUNIONolga000000000000000000"
    );

    // Recorded once: the next decryptions of the session write nothing, since the user they
    // read with the session has the unionid (were the row cleared behind our back, they would
    // not fill it again).
    let url = secrecy::ExposeSecret::expose_secret(&app.config.storage.database_url).to_string();
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("UPDATE identities SET unionid = NULL WHERE appid = $1")
        .bind(APPID)
        .execute(&mut db)
        .await
        .unwrap();
    for _ in 0..3 {
        let r = decrypt(&app, token, &data).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let row = sqlx::query("SELECT unionid FROM identities WHERE appid = $1")
        .bind(APPID)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(sqlx::Row::get::<Option<String>, _>(&row, 0), None);
}

#[tokio::test]
async fn a_unionid_of_data_that_names_another_openid_is_not_recorded() {
    let app = app_without_unionids().await;
    let s = app.login("pia-data").await;
    let token = s["token"].as_str().unwrap().to_string();
    let user_id = s["user"]["id"].as_str().unwrap();
    let data = app
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "pia-data", "data": {
                "openId": "oSOMEONEELSE0000000000000000",
                "unionId": "oUNIONsomeoneelse00000000000",
            }}),
        )
        .await;
    for _ in 0..3 {
        let r = decrypt(&app, &token, &data).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert!(me.body["identities"][0]["unionid"].is_null(), "{}", me.text);
    // Warned of once for the session, not at every call.
    let warned = logs()
        .lines()
        .filter(|l| l.contains("names another openId") && l.contains(user_id))
        .count();
    assert_eq!(warned, 1, "{}", logs());
}

#[tokio::test]
async fn phone_by_code_is_stored_and_a_stale_access_token_is_replaced_once() {
    let app = spawn_app().await;
    let token = app.token("paul").await;
    let wx = app.emu_user("paul", APPID).await;
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"code": phone_code(&app, "paul").await}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["purePhoneNumber"], wx["purePhoneNumber"]);
    assert_eq!(r.body["countryCode"], "86");
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.body["phoneNumber"],
        r.body["phoneNumber"]
    );
    assert_eq!(app.calls("/cgi-bin/stable_token").await, 1);

    // A second number read uses the cached access_token.
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"code": phone_code(&app, "paul").await}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.calls("/cgi-bin/stable_token").await, 1);

    // WeChat says the token is stale: one new token, then the call succeeds.
    app.fault(json!({"path": "/wxa/business/getuserphonenumber", "errcode": 40001}))
        .await;
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"code": phone_code(&app, "paul").await}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.calls("/cgi-bin/stable_token").await >= 2);

    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"code": "spent-or-unknown"}),
        )
        .await;
    assert_error(&r, 401, "wechat_code_invalid");
    assert_error(
        &app.post("/api/v1/me/phone", Some(&token), json!({})).await,
        400,
        "invalid_request",
    );
    assert_error(
        &app.post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"code": "a", "iv": "b"}),
        )
        .await,
        400,
        "invalid_request",
    );
}

#[tokio::test]
async fn phone_by_encrypted_data_checks_the_watermark_and_is_stored() {
    let app = spawn_app().await;
    let token = app.token("rosa").await;
    let phone = json!({"phoneNumber": "13580006666", "purePhoneNumber": "13580006666", "countryCode": "86"});
    let data = app
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "rosa", "data": phone}),
        )
        .await;
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}),
        )
        .await;
    // Stored and answered in E.164; WeChat's two parts beside.
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["phoneNumber"], "+8613580006666");
    assert_eq!(r.body["purePhoneNumber"], "13580006666");
    assert_eq!(r.body["countryCode"], "86");
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.body["phoneNumber"],
        "+8613580006666"
    );

    // The same number for another user is a conflict, and that user keeps no number.
    let other = app.token("sam").await;
    let data = app
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "sam", "data": phone}),
        )
        .await;
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&other),
            json!({"encryptedData": data["encryptedData"], "iv": data["iv"]}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    assert!(app.get("/api/v1/me", Some(&other)).await.body["phoneNumber"].is_null());

    let wrong = app
        .emu(
            "POST",
            "/encrypt",
            json!({"appid": APPID, "user": "rosa", "data": phone, "watermarkAppid": SAMPLE_APPID}),
        )
        .await;
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"encryptedData": wrong["encryptedData"], "iv": wrong["iv"]}),
        )
        .await;
    assert_error(&r, 400, "watermark_mismatch");
}

#[tokio::test]
async fn patch_me_changes_only_what_is_sent() {
    let app = spawn_app().await;
    let token = app.token("tina").await;
    let r = app
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&token),
            Some(json!({"nickname": "Tina", "avatarUrl": "https://example.com/a.png"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&token),
            Some(json!({"avatarUrl": null})),
        )
        .await;
    assert_eq!(r.body["nickname"], "Tina");
    assert!(r.body["avatarUrl"].is_null());
    let r = app
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&token),
            Some(json!({"avatarUrl": "javascript:alert(1)"})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = app
        .call(
            "PATCH",
            "/api/v1/me",
            Some(&token),
            Some(json!({"nickname": "x".repeat(65)})),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
    assert_eq!(
        app.get("/api/v1/me", Some(&token)).await.body["nickname"],
        "Tina"
    );
}
