//! WeChat's own paths, answered as WeChat answers them: HTTP 200 always, JSON served as
//! `text/plain`, errors as `{"errcode","errmsg"}` with a trace tag, no errcode on the success of
//! jscode2session and token fetches.

use std::collections::HashMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use poem::web::{Data, Query};
use poem::{handler, Body, Request, Response};
use serde_json::{json, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::state::{openid, rid, unionid, Fault, CODE_TTL, TOKEN_GRACE};
use super::Emulator;

type Params = Query<HashMap<String, String>>;

/// A WeChat answer: JSON text served as `text/plain`.
pub(super) fn answer(value: Value) -> Response {
    Response::builder()
        .content_type("text/plain")
        .body(value.to_string())
}

pub(super) fn error(errcode: i64, errmsg: &str) -> Response {
    answer(json!({ "errcode": errcode, "errmsg": format!("{errmsg}, rid: {}", rid()) }))
}

/// Counts the call and applies an injected fault: `Some` is the answer to give instead.
pub(super) async fn fault(emu: &Emulator, path: &str, user: Option<&str>) -> Option<Response> {
    let found: Option<Fault> = {
        let mut s = emu.lock();
        *s.calls.entry(path.to_string()).or_default() += 1;
        s.take_fault(path, user)
    };
    let f = found?;
    if f.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
    }
    if f.drop {
        return Some(dropped());
    }
    let errcode = f.errcode?;
    let errmsg = f
        .errmsg
        .clone()
        .unwrap_or_else(|| default_errmsg(errcode).to_string());
    Some(error(errcode, &errmsg))
}

/// Headers that promise a body that never comes: the client sees the connection drop.
pub(super) fn dropped() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<bytes::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped by the emulator",
        ))
    });
    Response::builder()
        .content_type("text/plain")
        .header("content-length", "64")
        .body(Body::from_bytes_stream(stream))
}

fn default_errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        40001 => "invalid credential, access_token is invalid or not latest",
        40013 => "invalid appid",
        40029 => "invalid code",
        40163 => "code been used",
        40226 => "code blocked",
        42001 => "access_token expired",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit mustslower retry next minute",
        _ => "emulated error",
    }
}

/// `GET /sns/jscode2session`
#[handler]
pub async fn jscode2session(emu: Data<&Emulator>, Query(q): Params) -> Response {
    let code = q.get("js_code").cloned().unwrap_or_default();
    let user = emu.lock().login_codes.get(&code).map(|c| c.user.clone());
    if let Some(r) = fault(&emu, "/sns/jscode2session", user.as_deref()).await {
        return r;
    }
    let mut s = emu.lock();
    let appid = q.get("appid").map(String::as_str).unwrap_or_default();
    let Some(app) = s.apps.get(appid) else {
        return error(40013, "invalid appid");
    };
    if q.get("secret").map(String::as_str) != Some(app.secret.as_str()) {
        return error(40125, "invalid appsecret");
    }
    if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return error(40002, "invalid grant_type");
    }
    let with_unionid = app.unionid;
    let now = s.now();
    let Some(c) = s.login_codes.get_mut(&code) else {
        return error(40029, "invalid code");
    };
    // A code of another app is "invalid", not "invalid appid" (WECHAT.md §7).
    if c.appid != appid || now - c.issued >= CODE_TTL {
        return error(40029, "invalid code");
    }
    if c.used {
        return error(40163, "code been used");
    }
    c.used = true;
    let user = c.user.clone();
    let session_key = s.session_key(appid, &user);
    let mut body = json!({ "session_key": session_key, "openid": openid(appid, &user) });
    if with_unionid {
        body["unionid"] = unionid(&user).into();
    }
    answer(body)
}

fn app_secret_ok(emu: &Emulator, appid: &str, secret: Option<&str>) -> Result<(), Response> {
    let s = emu.lock();
    match s.apps.get(appid) {
        None => Err(error(40013, "invalid appid")),
        Some(app) if Some(app.secret.as_str()) != secret => Err(error(40125, "invalid appsecret")),
        Some(_) => Ok(()),
    }
}

/// `GET /cgi-bin/token`: a new token at each call; the previous one works five more minutes.
#[handler]
pub async fn cgi_token(emu: Data<&Emulator>, Query(q): Params) -> Response {
    if let Some(r) = fault(&emu, "/cgi-bin/token", None).await {
        return r;
    }
    if q.get("grant_type").map(String::as_str) != Some("client_credential") {
        return error(40002, "invalid grant_type");
    }
    let appid = q.get("appid").cloned().unwrap_or_default();
    if let Err(r) = app_secret_ok(&emu, &appid, q.get("secret").map(String::as_str)) {
        return r;
    }
    let mut s = emu.lock();
    let now = s.now();
    let day = now / 86_400;
    let quota = s.token_quota.entry(appid.clone()).or_insert((day, 0));
    if quota.0 != day {
        *quota = (day, 0);
    }
    if quota.1 >= 2000 {
        return error(45009, "reach max api daily quota limit");
    }
    quota.1 += 1;
    if let Some(old) = s.latest_token.get(&appid).cloned() {
        if let Some(t) = s.tokens.get_mut(&old) {
            t.superseded_at.get_or_insert(now);
        }
    }
    let token = s.new_token(&appid);
    s.latest_token.insert(appid, token.clone());
    answer(json!({ "access_token": token, "expires_in": super::state::TOKEN_TTL }))
}

/// `POST /cgi-bin/stable_token`: the same token while it is valid, renewed in its last five
/// minutes; `force_refresh` replaces it at once (20 a day, 30 seconds apart).
#[handler]
pub async fn stable_token(emu: Data<&Emulator>, body: Body) -> Response {
    if let Some(r) = fault(&emu, "/cgi-bin/stable_token", None).await {
        return r;
    }
    let Ok(q) = serde_json::from_slice::<Value>(&body.into_vec().await.unwrap_or_default()) else {
        return error(47001, "data format error");
    };
    if q["grant_type"] != "client_credential" {
        return error(40002, "invalid grant_type");
    }
    let appid = q["appid"].as_str().unwrap_or_default().to_string();
    if let Err(r) = app_secret_ok(&emu, &appid, q["secret"].as_str()) {
        return r;
    }
    let force = q["force_refresh"].as_bool().unwrap_or(false);
    let mut s = emu.lock();
    let now = s.now();
    let current = s.stable_token.get(&appid).cloned().filter(|t| {
        s.tokens
            .get(t)
            .is_some_and(|t| !t.killed && t.expires_at - now > TOKEN_GRACE)
    });
    if let (Some(token), false) = (&current, force) {
        let expires_in = s.tokens[token].expires_at - now;
        return answer(json!({ "access_token": token, "expires_in": expires_in }));
    }
    if force {
        let day = now / 86_400;
        let quota = s
            .force_quota
            .entry(appid.clone())
            .or_insert((day, 0, i64::MIN / 2));
        if quota.0 != day {
            *quota = (day, 0, quota.2);
        }
        if quota.1 >= 20 {
            return error(45009, "reach max api daily quota limit");
        }
        if now - quota.2 < 30 {
            return error(
                45011,
                "api minute-quota reach limit mustslower retry next minute",
            );
        }
        quota.1 += 1;
        quota.2 = now;
        if let Some(old) = current.and_then(|t| s.tokens.get_mut(&t)) {
            old.killed = true;
        }
    }
    let token = s.new_token(&appid);
    s.stable_token.insert(appid, token.clone());
    answer(json!({ "access_token": token, "expires_in": super::state::TOKEN_TTL }))
}

/// Checks an access_token as WeChat does: its appid, or the errcode to answer.
fn check_token(emu: &Emulator, q: &HashMap<String, String>) -> Result<String, Response> {
    let token = q
        .get("access_token")
        .map(String::as_str)
        .unwrap_or_default();
    let s = emu.lock();
    let now = s.now();
    let Some(t) = s.tokens.get(token) else {
        return Err(if token.len() >= 64 {
            error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )
        } else {
            error(40014, "invalid access_token")
        });
    };
    if t.killed || t.superseded_at.is_some_and(|at| now - at >= TOKEN_GRACE) {
        return Err(error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ));
    }
    if now >= t.expires_at {
        return Err(error(42001, "access_token expired"));
    }
    Ok(t.appid.clone())
}

/// `POST /wxa/business/getuserphonenumber?access_token=`
#[handler]
pub async fn getuserphonenumber(emu: Data<&Emulator>, Query(q): Params, body: Body) -> Response {
    let body: Value =
        serde_json::from_slice(&body.into_vec().await.unwrap_or_default()).unwrap_or(Value::Null);
    let code = body["code"].as_str().unwrap_or_default().to_string();
    let user = emu.lock().phone_codes.get(&code).map(|c| c.user.clone());
    if let Some(r) = fault(&emu, "/wxa/business/getuserphonenumber", user.as_deref()).await {
        return r;
    }
    let appid = match check_token(&emu, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut s = emu.lock();
    let now = s.now();
    let Some(c) = s.phone_codes.get_mut(&code) else {
        return error(40029, "invalid code");
    };
    if c.appid != appid {
        return error(40013, "invalid appid");
    }
    if c.used || now - c.issued >= CODE_TTL {
        return error(40029, "invalid code");
    }
    if let Some(o) = body["openid"].as_str() {
        if o != openid(&appid, &c.user) {
            return error(40029, "invalid code");
        }
    }
    c.used = true;
    let (user, issued) = (c.user.clone(), c.issued);
    let u = s.user(&user);
    let phone = if u.country_code == "86" {
        u.pure_phone.clone()
    } else {
        format!("+{} {}", u.country_code, u.pure_phone)
    };
    answer(json!({
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": phone,
            "purePhoneNumber": u.pure_phone,
            "countryCode": u.country_code,
            "watermark": { "timestamp": issued, "appid": appid }
        }
    }))
}

/// `GET /wxa/checksession`: whether a session_key is the user's current one, by its signature
/// (HMAC-SHA256 keyed with the session_key's base64 text, over the empty string).
#[handler]
pub async fn checksession(emu: Data<&Emulator>, Query(q): Params) -> Response {
    if let Some(r) = fault(&emu, "/wxa/checksession", None).await {
        return r;
    }
    let appid = match check_token(&emu, &q) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if q.get("sig_method").map(String::as_str) != Some("hmac_sha256") {
        return error(87008, "invalid sig_method");
    }
    let want_openid = q.get("openid").cloned().unwrap_or_default();
    let s = emu.lock();
    let key = s
        .users
        .iter()
        .find(|(id, _)| openid(&appid, id) == want_openid)
        .and_then(|(_, u)| u.keys.get(&appid));
    let Some(key) = key else {
        return error(87009, "invalid signature");
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(b"");
    let expected = hex::encode(mac.finalize().into_bytes());
    let given = q.get("signature").map(String::as_str).unwrap_or_default();
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        answer(json!({ "errcode": 0, "errmsg": "ok" }))
    } else {
        error(87009, "invalid signature")
    }
}

/// Anything else under WeChat's host.
#[handler]
pub async fn unknown(req: &Request) -> Response {
    let _ = req;
    error(-1, "system error: no such API in the emulator")
}
