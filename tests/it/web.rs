//! Web sign-in: website QR login and Official Account pages, at the API level.

use serde_json::json;
use sha2::Digest;

use crate::helpers::*;

pub(crate) const WEBSITE: &str = "wx2000000000000002";
pub(crate) const OA: &str = "wx3000000000000003";
pub(crate) const SHOP: &str = "https://shop.example.com/signed-in?x=1";
/// The PKCE pair of RFC 7636's appendix B: the page keeps the verifier, sends the challenge.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub(crate) async fn web_app() -> TestApp {
    web_app_with(|_| {}).await
}

/// `web_app`, with settings of its own.
pub(crate) async fn web_app_with(tweak: impl FnOnce(&mut wxlogin::config::Config)) -> TestApp {
    spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.apps.website = Some(wxlogin::config::AppCredentials {
            appid: WEBSITE.into(),
            secret: "website-secret-02".into(),
        });
        c.apps.official_account = Some(wxlogin::config::AppCredentials {
            appid: OA.into(),
            secret: "oa-secret-0000003".into(),
        });
        c.login.redirect_allowlist = vec![
            url::Url::parse("https://shop.example.com/signed-in").unwrap(),
            url::Url::parse("https://shop.example.com/").unwrap(),
        ];
        c.wechat.open_base = c.wechat.api_base.clone();
        c.server.public_url = url::Url::parse("https://login.example.com").unwrap();
        tweak(c);
    })
    .await
}

impl TestApp {
    pub(crate) async fn get_page(&self, path: &str) -> Reply {
        self.get(path, None).await
    }

    pub(crate) async fn register_web_apps(&self) {
        self.emu(
            "POST",
            "/apps",
            json!({"appid": WEBSITE, "secret": "website-secret-02"}),
        )
        .await;
        self.emu(
            "POST",
            "/apps",
            json!({"appid": OA, "secret": "oa-secret-0000003"}),
        )
        .await;
    }

    /// `authorize`: the Location and the state in it.
    pub(crate) async fn authorize(
        &self,
        provider: &str,
        redirect: &str,
        scope: Option<&str>,
    ) -> (url::Url, String) {
        let mut path = format!(
            "/api/v1/oauth/{provider}/authorize?redirectUri={}&codeChallenge={CHALLENGE}",
            urlencode(redirect)
        );
        if let Some(s) = scope {
            path.push_str(&format!("&scope={s}"));
        }
        let r = self.get_page(&path).await;
        assert_eq!(r.status, 302, "{}", r.text);
        let location = url::Url::parse(r.headers["location"].to_str().unwrap()).unwrap();
        let state = location
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .to_string();
        (location, state)
    }

    pub(crate) async fn callback(&self, provider: &str, code: Option<&str>, state: &str) -> Reply {
        let mut path = format!("/api/v1/oauth/{provider}/callback?state={state}");
        if let Some(c) = code {
            path.push_str(&format!("&code={c}"));
        }
        self.get_page(&path).await
    }

    pub(crate) async fn web_code(&self, appid: &str, user: &str, scope: &str) -> String {
        self.emu(
            "POST",
            "/oauth-code",
            json!({"appid": appid, "user": user, "scope": scope}),
        )
        .await["code"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A whole web sign-in; the ticket's session.
    pub(crate) async fn web_sign_in(
        &self,
        provider: &str,
        appid: &str,
        user: &str,
        scope: &str,
    ) -> serde_json::Value {
        let (_, state) = self.authorize(provider, SHOP, Some(scope)).await;
        let code = self.web_code(appid, user, scope).await;
        let r = self.callback(provider, Some(&code), &state).await;
        assert_eq!(r.status, 302, "{}", r.text);
        let back = url::Url::parse(r.headers["location"].to_str().unwrap()).unwrap();
        assert_eq!(back.origin(), url::Url::parse(SHOP).unwrap().origin());
        let ticket = back
            .fragment()
            .unwrap()
            .strip_prefix("ticket=")
            .unwrap()
            .to_string();
        let r = self.redeem(&ticket, Some(VERIFIER)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    pub(crate) async fn redeem(&self, ticket: &str, verifier: Option<&str>) -> Reply {
        let body = match verifier {
            Some(v) => json!({"ticket": ticket, "codeVerifier": v}),
            None => json!({"ticket": ticket}),
        };
        self.post("/api/v1/auth/ticket", None, body).await
    }

    /// A callback's ticket, from its Location.
    pub(crate) async fn ticket_for(&self, user: &str) -> String {
        let (_, state) = self.authorize("website", SHOP, None).await;
        let code = self.web_code(WEBSITE, user, "snsapi_login").await;
        let r = self.callback("website", Some(&code), &state).await;
        assert_eq!(r.status, 302, "{}", r.text);
        let location = r.headers["location"].to_str().unwrap();
        location.split("#ticket=").nth(1).unwrap().to_string()
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn authorize_redirects_to_wechat_with_a_state() {
    let app = web_app().await;
    let (qr, _) = app.authorize("website", SHOP, None).await;
    assert_eq!(qr.path(), "/connect/qrconnect");
    assert_eq!(qr.fragment(), Some("wechat_redirect"));
    let q: std::collections::HashMap<_, _> = qr.query_pairs().into_owned().collect();
    assert_eq!(q["appid"], WEBSITE);
    assert_eq!(q["scope"], "snsapi_login");
    assert_eq!(q["response_type"], "code");
    assert_eq!(
        q["redirect_uri"],
        "https://login.example.com/api/v1/oauth/website/callback"
    );
    assert!(q["state"].len() <= 128 && q["state"].chars().all(|c| c.is_ascii_alphanumeric()));

    let (oa, _) = app.authorize("official_account", SHOP, None).await;
    assert_eq!(oa.path(), "/connect/oauth2/authorize");
    assert!(oa.query().unwrap().contains("scope=snsapi_userinfo"));
    let (base, _) = app
        .authorize("official_account", SHOP, Some("snsapi_base"))
        .await;
    assert!(base.query().unwrap().contains("scope=snsapi_base"));
}

#[tokio::test]
async fn no_open_redirect() {
    let app = web_app().await;
    for bad in [
        // The same site, another page: an open redirect there would carry the ticket away.
        "https://shop.example.com/open-redirect?to=https://evil.example.com/",
        "https://shop.example.com/signed-in/",
        "https://shop.example.com/signed-in#x",
        "https://shop.example.com/signed-in/../open-redirect",
        "https://evil.example.com/",
        "https://shop.example.com.evil.com/",
        "http://shop.example.com/",
        "https://shop.example.com:8443/",
        "https://user:pw@shop.example.com/",
        "javascript:alert(1)",
        "//evil.example.com/",
        "",
    ] {
        let r = app
            .get_page(&format!(
                "/api/v1/oauth/website/authorize?redirectUri={}&codeChallenge={CHALLENGE}",
                urlencode(bad)
            ))
            .await;
        assert_error(&r, 400, "invalid_request");
        assert!(
            r.body["message"].as_str().unwrap().contains("redirectUri"),
            "{bad}"
        );
    }
    assert_error(
        &app.get_page("/api/v1/oauth/website/authorize").await,
        400,
        "invalid_request",
    );
    // At most 2,048 bytes, query included.
    let long = format!("{SHOP}&pad={}", "a".repeat(2048 - SHOP.len() - 5 + 1));
    assert_eq!(long.len(), 2049);
    let r = app
        .get_page(&format!(
            "/api/v1/oauth/website/authorize?redirectUri={}&codeChallenge={CHALLENGE}",
            urlencode(&long)
        ))
        .await;
    assert_error(&r, 400, "invalid_request");
    assert!(
        r.body["message"].as_str().unwrap().contains("2048"),
        "{}",
        r.text
    );
    let (back, _) = app.authorize("website", &long[..2048], None).await;
    assert_eq!(back.path(), "/connect/qrconnect");
    let r = app
        .get_page(&format!(
            "/api/v1/oauth/github/authorize?redirectUri={}",
            urlencode(SHOP)
        ))
        .await;
    assert_error(&r, 400, "invalid_request");
    let r = app
        .get_page(&format!(
            "/api/v1/oauth/website/authorize?redirectUri={}&scope=snsapi_base",
            urlencode(SHOP)
        ))
        .await;
    assert_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn a_website_sign_in_is_the_mini_program_user_by_unionid() {
    let app = web_app().await;
    app.register_web_apps().await;
    let mini = app.login("alice").await;
    let web = app
        .web_sign_in("website", WEBSITE, "alice", "snsapi_login")
        .await;
    assert_eq!(web["user"]["id"], mini["user"]["id"]);
    assert_eq!(web["isNewUser"], false);
    let ids = web["user"]["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids
        .iter()
        .any(|i| i["provider"] == "website" && i["appid"] == WEBSITE));
    assert_eq!(ids[0]["unionid"], ids[1]["unionid"]);
    assert_eq!(web["user"]["nickname"], "alice", "from sns/userinfo");

    // The Official Account page too: three identities, one user.
    let oa = app
        .web_sign_in("official_account", OA, "alice", "snsapi_userinfo")
        .await;
    assert_eq!(oa["user"]["id"], mini["user"]["id"]);
    assert_eq!(oa["user"]["identities"].as_array().unwrap().len(), 3);
    // WeChat's web tokens stay on the server.
    assert!(!oa.to_string().contains("refresh"));
}

#[tokio::test]
async fn snsapi_base_reads_no_profile() {
    let app = web_app().await;
    app.register_web_apps().await;
    let s = app
        .web_sign_in("official_account", OA, "bruno", "snsapi_base")
        .await;
    assert_eq!(s["isNewUser"], true);
    assert!(
        s["user"]["identities"][0]["unionid"].is_null(),
        "no unionid for snsapi_base"
    );
    assert_eq!(app.calls("/sns/userinfo").await, 0);
}

#[tokio::test]
async fn states_and_tickets_work_once() {
    let app = web_app().await;
    app.register_web_apps().await;
    let (_, state) = app.authorize("website", SHOP, None).await;
    let code = app.web_code(WEBSITE, "carl", "snsapi_login").await;
    let r = app.callback("website", Some(&code), &state).await;
    assert_eq!(r.status, 302, "{}", r.text);
    let ticket = r.headers["location"]
        .to_str()
        .unwrap()
        .split("#ticket=")
        .nth(1)
        .unwrap()
        .to_string();
    // The same state again (a replayed callback): refused.
    let code2 = app.web_code(WEBSITE, "carl", "snsapi_login").await;
    assert_error(
        &app.callback("website", Some(&code2), &state).await,
        400,
        "invalid_request",
    );
    assert_error(
        &app.callback("website", Some(&code2), "no-such-state").await,
        400,
        "invalid_request",
    );
    assert_error(
        &app.get_page("/api/v1/oauth/website/callback?code=x").await,
        400,
        "invalid_request",
    );

    assert_eq!(app.redeem(&ticket, Some(VERIFIER)).await.status, 200);
    assert_error(
        &app.redeem(&ticket, Some(VERIFIER)).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &app.redeem("made-up", Some(VERIFIER)).await,
        401,
        "unauthenticated",
    );

    // A state of the other provider is not this one's.
    let (_, state) = app.authorize("official_account", SHOP, None).await;
    let code = app.web_code(WEBSITE, "carl", "snsapi_login").await;
    assert_error(
        &app.callback("website", Some(&code), &state).await,
        400,
        "invalid_request",
    );
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let app = web_app().await;
    app.register_web_apps().await;
    let (_, state) = app.authorize("website", SHOP, None).await;
    // Ten minutes pass for this state in Redis.
    let key = format!(
        "{}oauth:{}",
        app.config.storage.redis_prefix,
        hex::encode(sha2::Sha256::digest(state.as_bytes()))
    );
    let client = redis::Client::open(std::env::var("TEST_REDIS_URL").unwrap()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let expired: i64 = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(expired, 1, "the state is kept under its hash");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let code = app.web_code(WEBSITE, "dora", "snsapi_login").await;
    assert_error(
        &app.callback("website", Some(&code), &state).await,
        400,
        "invalid_request",
    );
}

#[tokio::test]
async fn refusal_and_wechats_code_errors() {
    let app = web_app().await;
    app.register_web_apps().await;
    let (_, state) = app.authorize("website", SHOP, None).await;
    let r = app.callback("website", None, &state).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.headers["location"],
        "https://shop.example.com/signed-in?x=1#error=access_denied"
    );

    let (_, state) = app.authorize("website", SHOP, None).await;
    let r = app.callback("website", Some("unknown-code"), &state).await;
    assert_error(&r, 401, "wechat_code_invalid");
    assert_eq!(r.body["wechat"]["errcode"], 40029);

    let code = app.web_code(WEBSITE, "ed", "snsapi_login").await;
    let (_, state) = app.authorize("website", SHOP, None).await;
    assert_eq!(
        app.callback("website", Some(&code), &state).await.status,
        302
    );
    let (_, state) = app.authorize("website", SHOP, None).await;
    let r = app.callback("website", Some(&code), &state).await;
    assert_error(&r, 401, "wechat_code_invalid");
    assert_eq!(r.body["wechat"]["errcode"], 40163);
}

#[tokio::test]
async fn a_sign_in_is_bound_to_the_page_that_started_it() {
    let app = web_app().await;
    app.register_web_apps().await;
    // No challenge, or a malformed one: no sign-in starts.
    for query in [
        "",
        "&codeChallenge=short",
        "&codeChallenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
    ] {
        let r = app
            .get_page(&format!(
                "/api/v1/oauth/website/authorize?redirectUri={}{query}",
                urlencode(SHOP)
            ))
            .await;
        assert_error(&r, 400, "invalid_request");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("codeChallenge"),
            "{query}"
        );
    }
    // A ticket sent to someone else (no verifier, or their own): 400, and the ticket is burnt,
    // so that the right page cannot be raced either.
    let other = "x".repeat(43);
    for wrong in [None, Some(other.as_str()), Some("short")] {
        let ticket = app.ticket_for("mallory").await;
        assert_error(&app.redeem(&ticket, wrong).await, 400, "invalid_request");
        assert_error(
            &app.redeem(&ticket, Some(VERIFIER)).await,
            401,
            "unauthenticated",
        );
    }
    let ticket = app.ticket_for("mallory").await;
    let r = app.redeem(&ticket, Some(VERIFIER)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
