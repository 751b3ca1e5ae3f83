//! Tokens for the business's own services: access tokens (ES256 JWTs) with every session, the
//! JWK Set and discovery, introspection and revocation for configured clients, forward auth,
//! and key rotation seen by every node.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};

use crate::helpers::*;

const CLIENT: &str = "orders";
const CLIENT_SECRET: &str = "orders-secret-0123456789";

async fn app() -> TestApp {
    spawn_with(Db::Postgres, Kv::Redis, |c| {
        c.tokens.clients = vec![wxlogin::config::Client {
            id: CLIENT.into(),
            secret: CLIENT_SECRET.into(),
            name: None,
            redirect_uris: Vec::new(),
            admin: false,
        }]
    })
    .await
}

fn part(token: &str, i: usize) -> Value {
    let text = token.split('.').nth(i).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
}

/// Verifies with the served JWK Set, as an API server would.
async fn verifies(app: &TestApp, token: &str) -> bool {
    let jwks = app.get("/.well-known/jwks.json", None).await.body;
    let keys: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| wxlogin::jose::PublicKey::from_jwk(k).unwrap())
        .collect();
    wxlogin::jose::verify::<Value>(token, "at+jwt", &keys).is_ok()
}

async fn form(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    body: &[(&str, &str)],
) -> Reply {
    let mut req = app.http.post(format!("{}{path}", app.base)).form(body);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    read_reply(req.send().await.unwrap()).await
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let r = form(
        app,
        "/oauth2/introspect",
        Some((CLIENT, CLIENT_SECRET)),
        &[("token", token)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn every_session_comes_with_an_access_token_that_names_the_user() {
    let app = app().await;
    let login = app.login("tara").await;
    let at = login["accessToken"].as_str().expect("accessToken");
    assert_eq!(login["accessTokenExpiresIn"], 900);
    let header = part(at, 0);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].is_string());
    let claims = part(at, 1);
    let user = &login["user"];
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["client_id"], APPID);
    assert_eq!(claims["appid"], APPID);
    assert_eq!(claims["openid"], user["identities"][0]["openid"]);
    assert_eq!(claims["unionid"], user["identities"][0]["unionid"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    let sid = claims["sid"].as_str().unwrap();
    let token = login["token"].as_str().unwrap();
    assert_ne!(sid, token, "sid is not the session token");
    for secret in [token, "session_key"] {
        assert!(!claims.to_string().contains(secret), "{claims}");
    }
    assert!(verifies(&app, at).await);

    // A tampered token does not verify.
    let mut forged = part(at, 1);
    forged["sub"] = json!("someone-else");
    let forged = format!(
        "{}.{}.{}",
        at.split('.').next().unwrap(),
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        at.split('.').nth(2).unwrap()
    );
    assert!(!verifies(&app, &forged).await);
    let r = app.get("/api/v1/me", Some(&forged)).await;
    assert_error(&r, 401, "unauthenticated");
}

#[tokio::test]
async fn bearer_routes_take_an_access_token_of_a_live_session() {
    let app = app().await;
    let login = app.login("ulla").await;
    let (token, at) = (
        login["token"].as_str().unwrap(),
        login["accessToken"].as_str().unwrap(),
    );
    let me = app.get("/api/v1/me", Some(at)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], login["user"]["id"]);

    // Refresh takes either; it answers the credential it was given, never the session token.
    let code = app.wx_login("ulla").await;
    let r = app
        .post("/api/v1/auth/refresh", Some(at), json!({"code": code}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token"], at);
    assert!(r.body["expiresIn"].as_u64().unwrap() <= 900);

    // auth/token renews with the session token only.
    let renewed = app.post("/api/v1/auth/token", Some(token), json!({})).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let fresh = renewed.body["accessToken"].as_str().unwrap();
    assert_eq!(part(fresh, 1)["sid"], part(at, 1)["sid"]);
    let r = app.post("/api/v1/auth/token", Some(at), json!({})).await;
    assert_error(&r, 401, "unauthenticated");

    // Logging out ends the session and every access token of it.
    let out = app.post("/api/v1/auth/logout", Some(at), json!({})).await;
    assert_eq!(out.status, 204, "{}", out.text);
    for t in [token, at, fresh] {
        assert_error(
            &app.get("/api/v1/me", Some(t)).await,
            401,
            "unauthenticated",
        );
    }
}

#[tokio::test]
async fn discovery_names_the_keys_and_endpoints_under_the_issuer() {
    let app = app().await;
    let d = app.get("/.well-known/openid-configuration", None).await;
    assert_eq!(d.status, 200);
    assert_eq!(d.body["issuer"], ISSUER);
    for (field, path) in [
        ("jwks_uri", "/.well-known/jwks.json"),
        ("introspection_endpoint", "/oauth2/introspect"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("token_endpoint", "/oauth2/token"),
    ] {
        assert_eq!(d.body[field], format!("{ISSUER}{path}"), "{field}");
    }
    assert_eq!(
        d.body["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let jwks = app.get("/.well-known/jwks.json", None).await;
    let cache = jwks.headers["cache-control"].to_str().unwrap();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    let keys = jwks.body["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for k in keys {
        assert_eq!(k["kty"], "EC");
        assert_eq!(k["alg"], "ES256");
        assert!(k.get("d").is_none(), "public keys only: {k}");
    }
}

#[tokio::test]
async fn introspection_and_revocation_are_for_configured_clients() {
    let app = app().await;
    let login = app.login("vera").await;
    let (token, at) = (
        login["token"].as_str().unwrap(),
        login["accessToken"].as_str().unwrap(),
    );

    // No client, a wrong secret, an unknown client: OAuth's own 401.
    for basic in [
        None,
        Some((CLIENT, "wrong-secret-0123456789")),
        Some(("nobody", CLIENT_SECRET)),
    ] {
        let r = form(&app, "/oauth2/introspect", basic, &[("token", token)]).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.body["error"], "invalid_client", "{}", r.text);
        assert_eq!(r.headers["www-authenticate"], "Basic realm=\"wxlogin\"");
        assert!(r.body.get("code").is_none());
    }
    // client_secret_post works as Basic does.
    let post = form(
        &app,
        "/oauth2/introspect",
        None,
        &[
            ("token", at),
            ("client_id", CLIENT),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(post.body["active"], true, "{}", post.text);

    for t in [token, at] {
        let i = introspect(&app, t).await;
        assert_eq!(i["active"], true, "{i}");
        assert_eq!(i["sub"], login["user"]["id"]);
        assert_eq!(i["client_id"], APPID);
        assert_eq!(i["iss"], ISSUER);
        assert_eq!(i["sid"], part(at, 1)["sid"]);
        // When the session began (a session token) or the access token was issued: the same
        // second or near it, never in the future.
        let iat = i["iat"].as_i64().expect("iat");
        let issued = part(at, 1)["iat"].as_i64().unwrap();
        assert!((issued - 5..=issued).contains(&iat), "{i}");
        assert!(i["exp"].as_i64().unwrap() > iat);
    }
    assert_eq!(
        introspect(&app, "not a token").await,
        json!({"active": false})
    );
    let missing = form(
        &app,
        "/oauth2/introspect",
        Some((CLIENT, CLIENT_SECRET)),
        &[],
    )
    .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["error"], "invalid_request");

    // Revoking the access token ends the session: both tokens die.
    let r = form(
        &app,
        "/oauth2/revoke",
        Some((CLIENT, CLIENT_SECRET)),
        &[("token", at)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for t in [token, at] {
        assert_eq!(introspect(&app, t).await, json!({"active": false}));
        assert_error(
            &app.get("/api/v1/me", Some(t)).await,
            401,
            "unauthenticated",
        );
    }
    let again = form(
        &app,
        "/oauth2/revoke",
        Some((CLIENT, CLIENT_SECRET)),
        &[("token", "nothing")],
    )
    .await;
    assert_eq!(
        again.status, 200,
        "unknown tokens are revoked too (RFC 7009)"
    );
}

#[tokio::test]
async fn forward_auth_answers_with_headers_or_a_challenge() {
    let app = app().await;
    let login = app.login("wanda").await;
    let at = login["accessToken"].as_str().unwrap();
    for t in [login["token"].as_str().unwrap(), at] {
        for method in ["GET", "HEAD"] {
            let r = app.call(method, "/api/v1/authz", Some(t), None).await;
            assert_eq!(r.status, 200, "{method}: {}", r.text);
            let h = |name: &str| r.headers[name].to_str().unwrap().to_string();
            assert_eq!(h("x-wxlogin-user"), login["user"]["id"].as_str().unwrap());
            assert_eq!(h("x-wxlogin-appid"), APPID);
            assert_eq!(
                h("x-wxlogin-openid"),
                login["user"]["identities"][0]["openid"].as_str().unwrap()
            );
        }
    }
    let none = app.get("/api/v1/authz", None).await;
    assert_error(&none, 401, "unauthenticated");
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    let bad = app.get("/api/v1/authz", Some("e30.e30.AAAA")).await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
}

#[tokio::test]
async fn nodes_share_keys_and_see_each_others_revocations() {
    let a = app().await;
    let b = start(a.config.clone(), a.emu.clone()).await;
    let login = a.login("xena").await;
    let at = login["accessToken"].as_str().unwrap();
    assert_eq!(
        a.get("/.well-known/jwks.json", None).await.body,
        b.get("/.well-known/jwks.json", None).await.body
    );
    assert_eq!(b.get("/api/v1/me", Some(at)).await.status, 200);
    let r = form(
        &a,
        "/oauth2/revoke",
        Some((CLIENT, CLIENT_SECRET)),
        &[("token", at)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect(&b, at).await, json!({"active": false}));
    assert_eq!(b.get("/api/v1/authz", Some(at)).await.status, 401);
}

/// `wxlogin keys ...` on a test's database, with its sealing key.
fn keys_command(app: &TestApp, args: &[&str]) -> String {
    let db = secrecy::ExposeSecret::expose_secret(&app.config.storage.database_url).to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wxlogin"))
        .arg("keys")
        .args(args)
        .env("WXLOGIN_DATABASE_URL", &db)
        .env("WXLOGIN_SEALING_KEYS", format!("1:{SEALING_KEY_1}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_rotated_key_is_published_at_once_and_old_tokens_still_verify() {
    let app = app().await;
    let before = app.login("yara").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let kid_before = part(&before, 0)["kid"].clone();
    let added = keys_command(&app, &["rotate", "--now"]);
    // Seen within the reload period (15 s; the contract allows 30).
    let mut after = String::new();
    for _ in 0..40 {
        after = app.login("zoe").await["accessToken"]
            .as_str()
            .unwrap()
            .to_string();
        if part(&after, 0)["kid"] != kid_before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let listed = keys_command(&app, &["list"]);
    assert_ne!(part(&after, 0)["kid"], kid_before, "{added}{listed}");
    let jwks = app.get("/.well-known/jwks.json", None).await.body;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    assert!(verifies(&app, &before).await && verifies(&app, &after).await);
    assert_eq!(app.get("/api/v1/me", Some(&before)).await.status, 200);
    assert!(
        listed.contains("signing") && listed.contains("retired, still published"),
        "{listed}"
    );
    assert!(listed.contains(kid_before.as_str().unwrap()), "{listed}");
    assert!(!listed.contains("\"x\""), "no key material: {listed}");
}

#[tokio::test]
async fn unbinding_ends_the_access_tokens_of_that_identity() {
    let app = app().await;
    let login = app.login("una").await;
    let (token, at) = (
        login["token"].as_str().unwrap(),
        login["accessToken"].as_str().unwrap(),
    );
    let code = app.wx_login("una").await;
    let body =
        json!({"username": "una-account", "password": "correct horse battery", "code": code});
    let r = app
        .call("PUT", "/api/v1/me/credentials", Some(token), Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let path = format!("/api/v1/me/identities/{APPID}");
    let proof = json!({"currentPassword": "correct horse battery"});
    let r = app.call("DELETE", &path, Some(token), Some(proof)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_error(
        &app.get("/api/v1/me", Some(at)).await,
        401,
        "unauthenticated",
    );
    assert_eq!(introspect(&app, at).await, json!({"active": false}));
    assert_eq!(app.get("/api/v1/authz", Some(at)).await.status, 401);
}
