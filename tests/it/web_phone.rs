//! `WXLOGIN_WEB_REQUIRE_PHONE`: the first QR scan binds a phone verified by SMS, and joins the
//! user who verified it elsewhere (the mini program's phone button).

use serde_json::{json, Value};

use crate::helpers::*;
use crate::sms::new_phone;
use crate::web::{web_app_with, SHOP, VERIFIER, WEBSITE};

async fn phone_app() -> TestApp {
    let app = web_app_with(|c| c.login.web_require_phone = true).await;
    app.register_web_apps().await;
    app
}

impl TestApp {
    /// A website QR sign-in up to the ticket's redemption, as it answers.
    async fn scan(&self, user: &str) -> Reply {
        let (_, state) = self.authorize("website", SHOP, None).await;
        let code = self.web_code(WEBSITE, user, "snsapi_login").await;
        let r = self.callback("website", Some(&code), &state).await;
        assert_eq!(r.status, 302, "{}", r.text);
        let location = r.headers["location"].to_str().unwrap().to_string();
        let ticket = location.split("#ticket=").nth(1).expect("a ticket");
        self.redeem(ticket, Some(VERIFIER)).await
    }

    /// A scan that must wait for a phone: its bind ticket.
    async fn scan_waiting(&self, user: &str) -> String {
        let r = self.scan(user).await;
        assert_error(&r, 403, "phone_required");
        r.body["bindTicket"].as_str().unwrap().to_string()
    }

    async fn bind_phone(&self, ticket: &str, phone: &str, code: &str) -> Reply {
        let body = json!({"bindTicket": ticket, "phoneNumber": phone, "code": code});
        self.post("/api/v1/auth/bind-phone", None, body).await
    }

    /// A mini program user whose phone came from the phone button: their id and phone.
    async fn button_user(&self, user: &str) -> (Value, String) {
        let session = self.login(user).await;
        let code = self
            .emu("POST", "/phone-code", json!({"appid": APPID, "user": user}))
            .await["code"]
            .clone();
        let token = session["token"].as_str().unwrap();
        let r = self
            .post("/api/v1/me/phone", Some(token), json!({ "code": code }))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let phone = r.body["phoneNumber"].as_str().unwrap().to_string();
        (session["user"]["id"].clone(), phone)
    }
}

/// A stranger's first scan makes nobody until a phone is verified; then one user with the
/// identity and the phone, who signs in directly at the next scan.
#[tokio::test]
async fn a_first_scan_waits_for_a_phone_then_makes_one_user() {
    let app = phone_app().await;
    // A scan that waits makes no user: the same person's first mini program login (same
    // unionid) is a new user.
    let probe = format!("probe-{}", uuid::Uuid::new_v4().simple());
    app.scan_waiting(&probe).await;
    assert_eq!(app.login(&probe).await["isNewUser"], true);

    let person = format!("scanner-{}", uuid::Uuid::new_v4().simple());
    let ticket = app.scan_waiting(&person).await;
    let phone = new_phone();

    // A code for signing in does not bind; a wrong code neither; the ticket survives both.
    let login_code = app.sms_code(&phone, "login").await;
    assert_error(
        &app.bind_phone(&ticket, &phone, &login_code).await,
        401,
        "sms_code_invalid",
    );
    app.config.login.clock.advance(61);
    let code = app.sms_code(&phone, "bind").await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_error(
        &app.bind_phone(&ticket, &phone, wrong).await,
        401,
        "sms_code_invalid",
    );
    assert_error(
        &app.bind_phone("no-such-ticket", &phone, &code).await,
        401,
        "unauthenticated",
    );

    let r = app.bind_phone(&ticket, &phone, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], true);
    assert_eq!(r.body["user"]["phoneNumber"], phone.as_str());
    let providers: Vec<&str> = r.body["user"]["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["website"]);
    let user_id = r.body["user"]["id"].clone();
    // The ticket worked once.
    assert_error(
        &app.bind_phone(&ticket, &phone, &code).await,
        401,
        "unauthenticated",
    );

    // The next scan signs in at once, as the same user.
    let r = app.scan(&person).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], false);
    assert_eq!(r.body["user"]["id"], user_id);
}

/// A first scan by another WeChat person (another unionid) with the phone that a mini program
/// user verified with the phone button joins that user.
#[tokio::test]
async fn a_first_scan_joins_the_user_with_that_verified_phone() {
    let app = phone_app().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (user_id, phone) = app.button_user(&format!("mp-{id}")).await;
    let ticket = app.scan_waiting(&format!("web-{id}")).await;
    let code = app.sms_code(&phone, "bind").await;
    let r = app.bind_phone(&ticket, &phone, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], false);
    assert_eq!(r.body["user"]["id"], user_id);
    let identities = r.body["user"]["identities"].as_array().unwrap().len();
    assert_eq!(identities, 2, "the mini program's and the website's");
}

/// The same WeChat person (one unionid): with a phone already, the scan signs in at once;
/// without one, the phone is added to their user.
#[tokio::test]
async fn the_same_person_signs_in_at_once_or_adds_a_phone_to_their_user() {
    let app = phone_app().await;
    let with = format!("with-{}", uuid::Uuid::new_v4().simple());
    let (user_id, _) = app.button_user(&with).await;
    let r = app.scan(&with).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["id"], user_id);

    let without = format!("without-{}", uuid::Uuid::new_v4().simple());
    let session = app.login(&without).await;
    let ticket = app.scan_waiting(&without).await;
    let phone = new_phone();
    let code = app.sms_code(&phone, "bind").await;
    let r = app.bind_phone(&ticket, &phone, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], false);
    assert_eq!(r.body["user"]["id"], session["user"]["id"]);
    assert_eq!(r.body["user"]["phoneNumber"], phone.as_str());
}

/// Without the setting, nothing changes: a first scan signs in at once.
#[tokio::test]
async fn without_the_setting_a_first_scan_signs_in() {
    let app = web_app_with(|_| {}).await;
    app.register_web_apps().await;
    let r = app
        .scan(&format!("free-{}", uuid::Uuid::new_v4().simple()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], true);
}
