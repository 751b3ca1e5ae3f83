//! Phone numbers verified by SMS: `sms/code`, `auth/sms`, `me/phone` with `smsCode`, the
//! proof of presence by SMS, and the provider's failures; against the emulator's Tencent Cloud
//! SMS side, which checks the request's signature.

use serde_json::{json, Value};

use crate::helpers::*;

impl TestApp {
    pub(crate) async fn send_code(&self, phone: &str, purpose: &str) -> Reply {
        self.post(
            "/api/v1/sms/code",
            None,
            json!({"phoneNumber": phone, "purpose": purpose}),
        )
        .await
    }

    /// The codes the emulator's inbox holds for a phone (E.164), oldest first.
    pub(crate) async fn inbox(&self, phone: &str) -> Vec<String> {
        let url = format!("{}/__emulator/sms", self.emu);
        let sent: Value = self
            .http
            .get(url)
            .query(&[("phone", phone)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sent.as_array()
            .unwrap()
            .iter()
            .map(|m| m["params"][0].as_str().unwrap().to_string())
            .collect()
    }

    pub(crate) async fn sms_login(&self, phone: &str, code: &str) -> Reply {
        let body = json!({"phoneNumber": phone, "code": code});
        self.post("/api/v1/auth/sms", None, body).await
    }

    /// Sends a code and reads it from the inbox.
    pub(crate) async fn sms_code(&self, phone_e164: &str, purpose: &str) -> String {
        let r = self.send_code(phone_e164, purpose).await;
        assert_eq!(r.status, 202, "{}", r.text);
        self.inbox(phone_e164).await.pop().expect("a code was sent")
    }
}

/// A phone number no other test uses.
pub(crate) fn new_phone() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 100_000_000;
    format!("+86139{n:08}")
}

async fn sms_sign_in_creates_a_user_then_finds_them(app: TestApp) {
    let phone = new_phone();
    let mainland = phone.trim_start_matches("+86").to_string();
    let r = app.send_code(&mainland, "login").await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body, json!({"resendAfter": 60}));
    let codes = app.inbox(&phone).await;
    assert_eq!(codes.len(), 1, "sent once, to the number in E.164");
    assert!(codes[0].len() == 6 && codes[0].bytes().all(|b| b.is_ascii_digit()));

    // Another code at once: 429 with how long to wait, and nothing sent.
    let again = app.send_code(&phone, "login").await;
    assert_error(&again, 429, "rate_limited");
    let wait: u64 = again.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(app.inbox(&phone).await.len(), 1);

    // A wrong code, then the right one: signed in as a new user with that phone.
    let wrong = if codes[0] == "000000" {
        "000001"
    } else {
        "000000"
    };
    let r = app.sms_login(&phone, wrong).await;
    assert_error(&r, 401, "sms_code_invalid");
    let r = app.sms_login(&mainland, &codes[0]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], true);
    assert_eq!(r.body["user"]["phoneNumber"], phone.as_str());
    let token = r.body["token"].as_str().unwrap().to_string();
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.body["phoneNumber"], phone.as_str());
    assert_eq!(me.body["id"], r.body["user"]["id"]);

    // Used up: the same code again is refused.
    let r = app.sms_login(&phone, &codes[0]).await;
    assert_error(&r, 401, "sms_code_invalid");
}

#[tokio::test]
async fn sms_sign_in_on_sqlite() {
    sms_sign_in_creates_a_user_then_finds_them(spawn_app().await).await;
}

#[tokio::test]
async fn sms_sign_in_on_postgres_and_redis() {
    sms_sign_in_creates_a_user_then_finds_them(spawn_with(Db::Postgres, Kv::Redis, |_| {}).await)
        .await;
}

/// A person who used the mini program's phone button signs in by SMS as the same user.
#[tokio::test]
async fn the_phone_button_and_sms_sign_in_are_one_user() {
    let app = spawn_with(Db::Postgres, Kv::Redis, |_| {}).await;
    let user = format!("button-{}", uuid::Uuid::new_v4().simple());
    let signed_in = app.login(&user).await;
    let token = signed_in["token"].as_str().unwrap();
    let code = app
        .emu("POST", "/phone-code", json!({"appid": APPID, "user": user}))
        .await["code"]
        .clone();
    let r = app
        .post("/api/v1/me/phone", Some(token), json!({ "code": code }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let phone = r.body["phoneNumber"].as_str().unwrap().to_string();
    assert!(
        phone.starts_with("+86"),
        "E.164 from the button too: {phone}"
    );
    assert_eq!(r.body["countryCode"], "86");
    assert_eq!(
        format!("+86{}", r.body["purePhoneNumber"].as_str().unwrap()),
        phone
    );

    let code = app.sms_code(&phone, "login").await;
    let r = app.sms_login(&phone, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], false);
    assert_eq!(r.body["user"]["id"], signed_in["user"]["id"]);
}

/// Five wrong tries kill a code: the right one after them is refused too.
#[tokio::test]
async fn a_code_dies_after_five_wrong_tries() {
    let app = spawn_app().await;
    let phone = new_phone();
    let code = app.sms_code(&phone, "login").await;
    let wrong = if code == "999999" { "999998" } else { "999999" };
    for _ in 0..5 {
        let r = app.sms_login(&phone, wrong).await;
        assert_error(&r, 401, "sms_code_invalid");
    }
    let r = app.sms_login(&phone, &code).await;
    assert_error(&r, 429, "rate_limited");
}

/// A code binds a phone to the signed-in user; a phone another user verified is a 409; a code
/// sent for signing in does not bind.
#[tokio::test]
async fn a_code_binds_a_phone_and_a_taken_phone_is_a_conflict() {
    let app = spawn_with(Db::Sqlite, Kv::Redis, |_| {}).await;
    let clock = app.config.login.clock.clone();
    let phone = new_phone();
    let token = app.token("binder").await;
    let login_code = app.sms_code(&phone, "login").await;
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"phoneNumber": phone, "smsCode": login_code}),
        )
        .await;
    assert_error(&r, 401, "sms_code_invalid");
    assert!(app.get("/api/v1/me", Some(&token)).await.body["phoneNumber"].is_null());

    clock.advance(61);
    let code = app.sms_code(&phone, "bind").await;
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"phoneNumber": phone, "smsCode": code}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["phoneNumber"], phone.as_str());
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.body["phoneNumber"], phone.as_str());

    // Someone else with a right code for that phone (a recycled number, say): 409, and the
    // phone stays the first user's.
    let second = app.token("second-binder").await;
    clock.advance(61);
    let code = app.sms_code(&phone, "bind").await;
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&second),
            json!({"phoneNumber": phone, "smsCode": code}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    assert!(app.get("/api/v1/me", Some(&second)).await.body["phoneNumber"].is_null());
    // Mixed forms are malformed.
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&second),
            json!({"phoneNumber": phone, "code": "abc"}),
        )
        .await;
    assert_error(&r, 400, "invalid_request");
}

/// The time-bound rules, by the server's clock: one code a minute, five minutes of life, ten
/// codes a day (Beijing's), then the next day again.
#[tokio::test]
async fn codes_expire_and_sending_is_limited_per_minute_and_per_day() {
    let app = spawn_with(Db::Postgres, Kv::Redis, |_| {}).await;
    let clock = app.config.login.clock.clone();
    let phone = new_phone();
    let code = app.sms_code(&phone, "login").await;
    clock.advance(301);
    let r = app.sms_login(&phone, &code).await;
    assert_error(&r, 401, "sms_code_invalid");

    // Nine more today (ten in all), a minute apart; the eleventh waits for tomorrow.
    for _ in 0..9 {
        app.sms_code(&phone, "login").await;
        let r = app.send_code(&phone, "login").await;
        assert_error(&r, 429, "rate_limited");
        clock.advance(61);
    }
    let r = app.send_code(&phone, "login").await;
    assert_error(&r, 429, "rate_limited");
    let wait: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        wait > 60 && wait <= 86_400,
        "until Beijing's next day: {wait}"
    );
    assert_eq!(app.inbox(&phone).await.len(), 10);
    clock.advance(wait);
    let code = app.sms_code(&phone, "login").await;
    let r = app.sms_login(&phone, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// The provider fails, refuses, or says a limit was hit: 502 or 429, no code is kept, and the
/// person may ask again at once; its internal errors are tried again once.
#[tokio::test]
async fn provider_failures_are_502_or_429_and_internal_errors_are_retried() {
    let app = spawn_app().await;
    let phone = new_phone();
    let fault =
        |code: &str, path: &str, times: u32| json!({"path": path, "errmsg": code, "times": times});
    app.fault(fault("InternalError.Timeout", "/sms/tencent", 2))
        .await;
    let r = app.send_code(&phone, "login").await;
    assert_error(&r, 502, "sms_unavailable");
    assert_eq!(app.calls("/sms/tencent").await, 2, "tried again once");
    assert!(app.inbox(&phone).await.is_empty());

    app.fault(fault(
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "/sms/tencent",
        1,
    ))
    .await;
    let r = app.send_code(&phone, "login").await;
    assert_error(&r, 502, "sms_unavailable");
    assert_eq!(app.calls("/sms/tencent").await, 3, "a refusal is final");

    app.fault(fault(
        "LimitExceeded.PhoneNumberDailyLimit",
        "/sms/tencent/number",
        1,
    ))
    .await;
    let r = app.send_code(&phone, "login").await;
    assert_error(&r, 429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));

    // An internal error once: tried again, sent.
    app.fault(fault("InternalError.Timeout", "/sms/tencent", 1))
        .await;
    let code = app.sms_code(&phone, "login").await;
    let r = app.sms_login(&phone, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A wrong SecretKey: the emulator (like Tencent Cloud) refuses the signature; 502.
#[tokio::test]
async fn a_bad_signature_is_refused_by_the_provider() {
    let app = spawn_with(Db::Sqlite, Kv::Memory, |c| {
        let sms = c.sms.as_mut().unwrap();
        sms.tencent.as_mut().unwrap().secret_key = "not-the-emulator-key".into();
    })
    .await;
    let phone = new_phone();
    let r = app.send_code(&phone, "login").await;
    assert_error(&r, 502, "sms_unavailable");
    assert!(app.inbox(&phone).await.is_empty());
    assert!(
        !logs().contains("not-the-emulator-key"),
        "the SecretKey reaches no log line"
    );
}

/// Malformed input is a 400; without a provider the SMS routes are 404.
#[tokio::test]
async fn bad_input_is_400_and_no_provider_is_404() {
    let app = spawn_app().await;
    for (phone, purpose) in [
        ("1380013800", "login"),
        ("+0861380013800", "login"),
        ("23800138000", "login"),
        ("+8613800138000", "steal"),
    ] {
        assert_error(&app.send_code(phone, purpose).await, 400, "invalid_request");
    }
    for code in ["12345", "1234567", "12a456"] {
        let r = app.sms_login("+8613800138000", code).await;
        assert_error(&r, 400, "invalid_request");
    }
    let off = spawn_with(Db::Sqlite, Kv::Memory, |c| c.sms = None).await;
    assert_error(
        &off.send_code("+8613800138000", "login").await,
        404,
        "not_found",
    );
    let r = off.sms_login("+8613800138000", "123456").await;
    assert_error(&r, 404, "not_found");
}

/// An SMS code sent to the account's verified phone proves presence for unbinding.
#[tokio::test]
async fn an_sms_code_proves_presence() {
    let app = spawn_app().await;
    let phone = new_phone();
    let token = app.token("prover").await;
    let code = app.sms_code(&phone, "bind").await;
    let r = app
        .post(
            "/api/v1/me/phone",
            Some(&token),
            json!({"phoneNumber": phone, "smsCode": code}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A password too, so that unbinding the mini program leaves a way to sign in.
    let credentials = json!({
        "username": "prover-user",
        "password": "correct horse battery 1",
        "code": app.wx_login("prover").await,
    });
    let r = app
        .call(
            "PUT",
            "/api/v1/me/credentials",
            Some(&token),
            Some(credentials),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let path = format!("/api/v1/me/identities/{APPID}");
    let r = app
        .call(
            "DELETE",
            &path,
            Some(&token),
            Some(json!({"smsCode": "000000"})),
        )
        .await;
    assert_error(&r, 403, "reauthentication_required");
    app.config.login.clock.advance(61);
    let code = app.sms_code(&phone, "bind").await;
    let r = app
        .call(
            "DELETE",
            &path,
            Some(&token),
            Some(json!({"smsCode": code})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_error(&me, 401, "unauthenticated");
}

/// Numbers stored before E.164 (as the phone button gave them) are rewritten by the migration,
/// so that an SMS sign-in with that phone finds their user.
#[tokio::test]
async fn numbers_stored_before_are_found_by_sms_after_the_migration() {
    let dir = std::env::temp_dir().join(format!("wxlogin-mig-{}", uuid::Uuid::new_v4().simple()));
    let old = dir.join("migrations");
    std::fs::create_dir_all(&old).unwrap();
    for entry in std::fs::read_dir("migrations/sqlite").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() < "0005" {
            std::fs::copy(&path, old.join(&name)).unwrap();
        }
    }
    let url = format!("sqlite://{}?mode=rwc", dir.join("old.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO users (id, phone_number, pure_phone_number, country_code, created_at, \
         updated_at) VALUES (?, '13580006666', '13580006666', '86', 0, 0)",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let app = spawn_with(Db::Sqlite, Kv::Memory, |c| {
        c.storage.database_url = url.clone().into();
    })
    .await;
    let code = app.sms_code("+8613580006666", "login").await;
    let r = app.sms_login("13580006666", &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["isNewUser"], false);
    assert_eq!(r.body["user"]["id"], id.as_str());
    assert_eq!(r.body["user"]["phoneNumber"], "+8613580006666");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Under `require_binding`, an SMS sign-in of a phone no account has answers 403 with a bind
/// ticket; the username and password then bind the phone to that account.
#[tokio::test]
async fn under_require_binding_a_new_phone_binds_to_an_account() {
    let app = spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.login.policy = wxlogin::config::LoginPolicy::RequireBinding;
    })
    .await;
    let phone = new_phone();
    let code = app.sms_code(&phone, "login").await;
    let r = app.sms_login(&phone, &code).await;
    assert_error(&r, 403, "binding_required");
    let ticket = r.body["bindTicket"].as_str().unwrap().to_string();

    let username = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let password = "correct horse battery 7";
    let r = app
        .post(
            "/api/v1/accounts",
            None,
            json!({"username": username, "password": password}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let bind =
        |password: &str| json!({"bindTicket": ticket, "username": username, "password": password});
    let r = app
        .post("/api/v1/auth/bind", None, bind("wrong password 1234"))
        .await;
    assert_error(&r, 401, "invalid_credentials");
    let r = app.post("/api/v1/auth/bind", None, bind(password)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["phoneNumber"], phone.as_str());
    let account = r.body["user"]["id"].clone();
    let r = app.post("/api/v1/auth/bind", None, bind(password)).await;
    assert_error(&r, 401, "unauthenticated");

    // From now on the phone signs in to that account.
    app.config.login.clock.advance(61);
    let code = app.sms_code(&phone, "login").await;
    let r = app.sms_login(&phone, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["id"], account);
}
