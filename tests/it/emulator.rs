//! The emulator answers as WECHAT.md says WeChat does.

use serde_json::{json, Value};

use crate::helpers::*;

async fn wechat(app: &TestApp, path: &str) -> (String, Value) {
    let r = app
        .http
        .get(format!("{}{path}", app.emu))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "WeChat answers HTTP 200, errors included");
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (ct, serde_json::from_str(&r.text().await.unwrap()).unwrap())
}

#[tokio::test]
async fn codes_are_single_use_expire_and_belong_to_their_app() {
    let app = spawn_app().await;
    let swap = |code: &str, appid: &str, secret: &str| {
        format!("/sns/jscode2session?appid={appid}&secret={secret}&js_code={code}&grant_type=authorization_code")
    };
    let code = app.wx_login("wendy").await;
    let (ct, ok) = wechat(&app, &swap(&code, APPID, SECRET)).await;
    assert_eq!(ct, "text/plain");
    assert!(ok.get("errcode").is_none(), "no errcode on success: {ok}");
    assert!(ok["openid"].is_string() && ok["session_key"].is_string() && ok["unionid"].is_string());
    let (_, again) = wechat(&app, &swap(&code, APPID, SECRET)).await;
    assert_eq!(again["errcode"], 40163);
    assert!(again["errmsg"].as_str().unwrap().contains("rid: "));

    let code = app.wx_login("wendy").await;
    let (_, other) = wechat(&app, &swap(&code, "wxotherapp0000001", "other-secret-0001")).await;
    assert_eq!(
        other["errcode"], 40029,
        "a code of another app is invalid, not 40013"
    );
    let (_, bad_secret) = wechat(&app, &swap(&code, APPID, "wrong")).await;
    assert_eq!(bad_secret["errcode"], 40125);

    let code = app.wx_login("wendy").await;
    app.emu("POST", "/clock", json!({"advanceSeconds": 301}))
        .await;
    let (_, expired) = wechat(&app, &swap(&code, APPID, SECRET)).await;
    assert_eq!(expired["errcode"], 40029);
}

#[tokio::test]
async fn each_wx_login_gives_a_new_session_key() {
    let app = spawn_app().await;
    app.wx_login("xena").await;
    let a = app.emu_user("xena", APPID).await["sessionKey"].clone();
    app.wx_login("xena").await;
    let b = app.emu_user("xena", APPID).await["sessionKey"].clone();
    assert_ne!(a, b);
    assert_eq!(
        app.emu_user("xena", APPID).await["openid"],
        app.emu_user("xena", APPID).await["openid"]
    );
    assert_ne!(
        app.emu_user("xena", APPID).await["openid"],
        app.emu_user("xena", SAMPLE_APPID).await["openid"]
    );
}

#[tokio::test]
async fn access_tokens_behave_like_wechats() {
    let app = spawn_app().await;
    let token = |app: &TestApp| {
        let url = format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}",
            app.emu
        );
        let http = app.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let phone = |t: &str| {
        format!("/wxa/checksession?access_token={t}&openid=x&signature=y&sig_method=hmac_sha256")
    };
    let first = token(&app).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let second = token(&app).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    // The superseded token works five more minutes (87009: it passed the token check).
    assert_eq!(wechat(&app, &phone(&first)).await.1["errcode"], 87009);
    app.emu("POST", "/clock", json!({"advanceSeconds": 301}))
        .await;
    assert_eq!(wechat(&app, &phone(&first)).await.1["errcode"], 40001);
    assert_eq!(wechat(&app, &phone(&second)).await.1["errcode"], 87009);
    assert_eq!(wechat(&app, &phone("junk")).await.1["errcode"], 40014);
    app.emu("POST", "/clock", json!({"advanceSeconds": 7200}))
        .await;
    assert_eq!(wechat(&app, &phone(&second)).await.1["errcode"], 42001);

    let stable = |force: bool| {
        let http = app.http.clone();
        let url = format!("{}/cgi-bin/stable_token", app.emu);
        async move {
            http.post(url)
                .json(&json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": force}))
                .send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    let s1 = stable(false).await;
    let s2 = stable(false).await;
    assert_eq!(
        s1["access_token"], s2["access_token"],
        "the same stable token while valid"
    );
    let s3 = stable(true).await;
    assert_ne!(s3["access_token"], s1["access_token"]);
    assert_eq!(
        stable(true).await["errcode"],
        45011,
        "forced refreshes are 30 s apart"
    );
}

#[tokio::test]
async fn checksession_verifies_the_hmac_of_the_current_session_key() {
    use hmac::{Hmac, Mac};
    let app = spawn_app().await;
    app.wx_login("yuri").await;
    let user = app.emu_user("yuri", APPID).await;
    let key = user["sessionKey"].as_str().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(b"");
    let sig = hex::encode(mac.finalize().into_bytes());
    let t = app
        .http
        .post(format!("{}/cgi-bin/stable_token", app.emu))
        .json(&json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!(
        "/wxa/checksession?access_token={t}&openid={}&signature={sig}&sig_method=hmac_sha256",
        user["openid"].as_str().unwrap()
    );
    assert_eq!(
        wechat(&app, &path).await.1,
        json!({"errcode": 0, "errmsg": "ok"})
    );
}

#[test]
fn wechats_published_checksession_vector() {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"o0q0otL8aEzpcZL/FT9WsQ==").unwrap();
    mac.update(br#"{"foo":"bar"}"#);
    assert_eq!(
        hex::encode(mac.finalize().into_bytes()),
        "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
    );
}

#[tokio::test]
async fn web_tokens_refresh_for_thirty_days_and_sns_auth_checks_them() {
    let app = spawn_app().await;
    let web = "wxweb000000000001";
    app.emu(
        "POST",
        "/apps",
        json!({"appid": web, "secret": "web-secret-000001"}),
    )
    .await;
    let code = app
        .emu(
            "POST",
            "/oauth-code",
            json!({"appid": web, "user": "zara", "scope": "snsapi_login"}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_string();
    let swap = format!("/sns/oauth2/access_token?appid={web}&secret=web-secret-000001&code={code}&grant_type=authorization_code");
    let (ct, grant) = wechat(&app, &swap).await;
    assert_eq!(ct, "text/plain");
    for field in [
        "access_token",
        "refresh_token",
        "openid",
        "scope",
        "unionid",
    ] {
        assert!(grant[field].is_string(), "{field}: {grant}");
    }
    assert_eq!(grant["expires_in"], 7200);
    assert_eq!(wechat(&app, &swap).await.1["errcode"], 40163);
    let (access, openid) = (
        grant["access_token"].as_str().unwrap(),
        grant["openid"].as_str().unwrap(),
    );
    assert_eq!(
        wechat(
            &app,
            &format!("/sns/auth?access_token={access}&openid={openid}")
        )
        .await
        .1,
        json!({"errcode": 0, "errmsg": "ok"})
    );
    assert_eq!(
        wechat(
            &app,
            &format!("/sns/auth?access_token={access}&openid=oSomeoneElse")
        )
        .await
        .1["errcode"],
        40003
    );
    let info = wechat(
        &app,
        &format!("/sns/userinfo?access_token={access}&openid={openid}&lang=en"),
    )
    .await
    .1;
    assert_eq!(info["openid"], openid);
    assert!(info["headimgurl"].as_str().unwrap().ends_with("/132"));

    let refresh = format!(
        "/sns/oauth2/refresh_token?appid={web}&grant_type=refresh_token&refresh_token={}",
        grant["refresh_token"].as_str().unwrap()
    );
    let renewed = wechat(&app, &refresh).await.1;
    assert_ne!(renewed["access_token"], grant["access_token"]);
    assert_eq!(
        renewed["refresh_token"], grant["refresh_token"],
        "the refresh_token is not extended"
    );
    app.emu("POST", "/clock", json!({"advanceSeconds": 30 * 86_400}))
        .await;
    assert_eq!(wechat(&app, &refresh).await.1["errcode"], 42002);
    let junk = format!(
        "/sns/oauth2/refresh_token?appid={web}&grant_type=refresh_token&refresh_token=junk"
    );
    assert_eq!(wechat(&app, &junk).await.1["errcode"], 40030);
}
