//! WeChat's web side: the website QR page (`/connect/qrconnect`), the Official Account consent
//! page (`/connect/oauth2/authorize`), and the `/sns/*` APIs that swap their codes. Pages answer
//! HTML; APIs answer as WeChat's do (HTTP 200, `text/plain` JSON, errcode on failure).

use std::collections::HashMap;

use poem::web::{Data, Query};
use poem::{handler, http::StatusCode, Request, Response};
use serde_json::json;

use super::state::{openid, unionid, Pending};
use super::wechat_paths::{answer, error, fault};
use super::Emulator;

type Params = Query<HashMap<String, String>>;

fn html(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:28rem;margin:2rem auto;\
         text-align:center}}\
         button{{font-size:1rem;padding:.6rem 1.2rem;margin:.3rem}}\
         input{{font-size:1rem;padding:.4rem}}\
         .allow{{background:#07c160;color:#fff;border:0}}</style></head><body>{body}</body></html>",
        title = escape(title)
    )
}

/// Opens a waiting page: checks the app, keeps where the browser goes back to.
fn pending(
    emu: &Emulator,
    q: &HashMap<String, String>,
    scopes: &[&str],
) -> Result<(String, String), Response> {
    let appid = q.get("appid").cloned().unwrap_or_default();
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let scope = q.get("scope").cloned().unwrap_or_default();
    let mut s = emu.lock();
    if !s.apps.contains_key(&appid) {
        return Err(html(
            StatusCode::OK,
            page("Error", "<h2>参数错误 (invalid appid)</h2>"),
        ));
    }
    if !scopes.contains(&scope.as_str()) {
        return Err(html(
            StatusCode::OK,
            page("Error", "<h2>Scope 参数错误或没有 Scope 权限</h2>"),
        ));
    }
    if !redirect_uri.starts_with("http://") && !redirect_uri.starts_with("https://") {
        return Err(html(
            StatusCode::OK,
            page("Error", "<h2>redirect_uri 参数错误</h2>"),
        ));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    s.pending.insert(
        id.clone(),
        Pending {
            appid: appid.clone(),
            redirect_uri,
            state: q.get("state").cloned(),
            scope,
        },
    );
    Ok((id, appid))
}

fn confirm_form(id: &str, prompt: &str) -> String {
    format!(
        "<form action=\"/connect/confirm\" method=\"get\">\
         <input type=\"hidden\" name=\"uuid\" value=\"{id}\">\
         <p>{prompt}</p><p><label>Test user \
         <input name=\"user\" value=\"alice\" aria-label=\"test user\"></label></p>\
         <p><button class=\"allow\" name=\"action\" value=\"allow\">Allow</button>\
         <button name=\"action\" value=\"refuse\">Refuse</button></p></form>"
    )
}

/// `GET /connect/qrconnect`: the website QR page. The QR code is a real, scannable image of the
/// confirm URL; the form below it is the phone's "scan and confirm" for tests and demos.
#[handler]
pub async fn qrconnect(emu: Data<&Emulator>, req: &Request, Query(q): Params) -> Response {
    let (id, appid) = match pending(&emu, &q, &["snsapi_login"]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let host = req.header("host").unwrap_or("127.0.0.1");
    let confirm_url = format!("http://{host}/connect/confirm?uuid={id}&user=alice&action=allow");
    let qr = qrcode::QrCode::new(confirm_url.as_bytes())
        .map(|c| {
            c.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .build()
        })
        .unwrap_or_default();
    let body = format!(
        "<h2>WeChat QR login</h2><p>Scan with WeChat to sign in to {app}</p>\
         <div id=\"qrcode\">{qr}</div>{form}",
        app = escape(&appid),
        form = confirm_form(&id, "Emulator: scan and confirm as a test user")
    );
    html(StatusCode::OK, page("WeChat QR login", &body))
}

/// `GET /connect/oauth2/authorize`: the Official Account's in-app consent page.
#[handler]
pub async fn oauth2_authorize(emu: Data<&Emulator>, Query(q): Params) -> Response {
    let (id, appid) = match pending(&emu, &q, &["snsapi_base", "snsapi_userinfo"]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body = format!(
        "<h2>{app} requests</h2><p>your public profile (nickname, avatar)</p>{form}",
        app = escape(&appid),
        form = confirm_form(&id, "Emulator: continue as a test user")
    );
    html(StatusCode::OK, page("WeChat authorization", &body))
}

/// The person's answer on either page: back to the site with a code, or (refused) without one.
#[handler]
pub async fn confirm(emu: Data<&Emulator>, Query(q): Params) -> Response {
    let id = q.get("uuid").cloned().unwrap_or_default();
    let user = q
        .get("user")
        .cloned()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "alice".into());
    let mut s = emu.lock();
    let Some(p) = s.pending.remove(&id) else {
        return html(
            StatusCode::OK,
            page(
                "Expired",
                "<h2>二维码已失效 (this QR code has expired)</h2>",
            ),
        );
    };
    let mut target = match url::Url::parse(&p.redirect_uri) {
        Ok(u) => u,
        Err(_) => {
            return html(
                StatusCode::OK,
                page("Error", "<h2>redirect_uri 参数错误</h2>"),
            )
        }
    };
    {
        let mut pairs = target.query_pairs_mut();
        if q.get("action").map(String::as_str) != Some("refuse") {
            let code = s.mint_oauth_code(&p.appid, &user, &p.scope);
            pairs.append_pair("code", &code);
        }
        if let Some(state) = &p.state {
            pairs.append_pair("state", state);
        }
    }
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", target.as_str())
        .finish()
}

fn grant_answer(
    appid: &str,
    user: &str,
    scope: &str,
    access: &str,
    refresh: &str,
    with_unionid: bool,
) -> Response {
    let mut body = json!({
        "access_token": access,
        "expires_in": super::state::OAUTH_TOKEN_TTL,
        "refresh_token": refresh,
        "openid": openid(appid, user),
        "scope": scope,
    });
    // An Official Account gives the unionid only with snsapi_userinfo.
    if with_unionid && scope != "snsapi_base" {
        body["unionid"] = unionid(user).into();
    }
    answer(body)
}

/// `GET /sns/oauth2/access_token`
#[handler]
pub async fn oauth_access_token(emu: Data<&Emulator>, Query(q): Params) -> Response {
    let code = q.get("code").cloned().unwrap_or_default();
    let user = emu.lock().oauth_codes.get(&code).map(|c| c.user.clone());
    if let Some(r) = fault(&emu, "/sns/oauth2/access_token", user.as_deref()).await {
        return r;
    }
    let appid = q.get("appid").cloned().unwrap_or_default();
    let mut s = emu.lock();
    let Some(app) = s.apps.get(&appid) else {
        return error(40013, "invalid appid");
    };
    if q.get("secret") != Some(&app.secret) {
        return error(40125, "invalid appsecret");
    }
    if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return error(40002, "invalid grant_type");
    }
    let with_unionid = app.unionid;
    let now = s.now();
    let Some(c) = s.oauth_codes.get_mut(&code) else {
        return error(40029, "invalid code");
    };
    if c.appid != appid {
        return error(40029, "invalid code");
    }
    if c.used {
        return error(40163, "code been used");
    }
    if now - c.issued >= c.lifetime {
        return error(42003, "code expired");
    }
    c.used = true;
    let (user, scope) = (c.user.clone(), c.scope.clone());
    let (access, refresh) = s.grant(&appid, &user, &scope, None);
    grant_answer(&appid, &user, &scope, &access, &refresh, with_unionid)
}

/// `GET /sns/oauth2/refresh_token`: a new access_token; the refresh_token keeps its 30 days.
#[handler]
pub async fn oauth_refresh_token(emu: Data<&Emulator>, Query(q): Params) -> Response {
    if let Some(r) = fault(&emu, "/sns/oauth2/refresh_token", None).await {
        return r;
    }
    let appid = q.get("appid").cloned().unwrap_or_default();
    let token = q.get("refresh_token").cloned().unwrap_or_default();
    let mut s = emu.lock();
    let Some(app) = s.apps.get(&appid) else {
        return error(40013, "invalid appid");
    };
    let with_unionid = app.unionid;
    let now = s.now();
    let Some(g) = s.refresh_tokens.get(&token).filter(|g| g.appid == appid) else {
        return error(40030, "invalid refresh_token");
    };
    if now >= g.expires_at {
        return error(42002, "refresh_token timeout");
    }
    let (user, scope) = (g.user.clone(), g.scope.clone());
    let (access, refresh) = s.grant(&appid, &user, &scope, Some(token));
    grant_answer(&appid, &user, &scope, &access, &refresh, with_unionid)
}

fn check_web_token(
    emu: &Emulator,
    q: &HashMap<String, String>,
) -> Result<(String, String, String), Response> {
    let s = emu.lock();
    let token = q
        .get("access_token")
        .map(String::as_str)
        .unwrap_or_default();
    let Some(g) = s.oauth_tokens.get(token) else {
        return Err(error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ));
    };
    if s.now() >= g.expires_at {
        return Err(error(42001, "access_token expired"));
    }
    if q.get("openid").map(String::as_str) != Some(openid(&g.appid, &g.user).as_str()) {
        return Err(error(40003, "invalid openid"));
    }
    Ok((g.appid.clone(), g.user.clone(), g.scope.clone()))
}

/// `GET /sns/userinfo`
#[handler]
pub async fn userinfo(emu: Data<&Emulator>, Query(q): Params) -> Response {
    if let Some(r) = fault(&emu, "/sns/userinfo", None).await {
        return r;
    }
    let (appid, user, scope) = match check_web_token(&emu, &q) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if scope == "snsapi_base" {
        return error(48001, "api unauthorized");
    }
    let with_unionid = emu.lock().apps.get(&appid).is_some_and(|a| a.unionid);
    let avatar_seed = &unionid(&user)[1..17];
    let mut body = json!({
        "openid": openid(&appid, &user),
        "nickname": user,
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": format!("https://thirdwx.qlogo.cn/mmopen/vi_32/{avatar_seed}/132"),
        "privilege": [],
    });
    if with_unionid {
        body["unionid"] = unionid(&user).into();
    }
    answer(body)
}

/// `GET /sns/auth`: whether a web access_token is valid for an openid.
#[handler]
pub async fn sns_auth(emu: Data<&Emulator>, Query(q): Params) -> Response {
    if let Some(r) = fault(&emu, "/sns/auth", None).await {
        return r;
    }
    match check_web_token(&emu, &q) {
        Ok(_) => answer(json!({"errcode": 0, "errmsg": "ok"})),
        Err(r) => r,
    }
}
