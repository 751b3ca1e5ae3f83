//! Tokens for the business's own services: discovery and the JWK Set (to verify access tokens
//! offline), introspection and revocation (RFC 7662, RFC 7009, for configured clients, with
//! OAuth's own error body), and forward auth for a reverse proxy (`/api/v1/authz`).

use poem::http::HeaderMap;
use poem::web::Data;
use poem::Request;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::SecretString;

use super::errors::{error_set, Reply};
use super::Tag;
use crate::accounts::access_tokens::WechatIds;
use crate::accounts::{Accounts, ClientAuth, Introspection};
use crate::error::{Code, Error};

error_set!(KeysErrors: ServiceUnavailable);
error_set!(oauth ClientErrors: InvalidRequest, InvalidClient, PayloadTooLarge, ServiceUnavailable);
error_set!(AuthzErrors: Unauthenticated, ServiceUnavailable);

/// How long verifiers may keep the JWK Set: well under the delay between a key's publication
/// and its first signature (`WXLOGIN_KEY_PUBLISH_DELAY`).
const JWKS_MAX_AGE: &str = "public, max-age=300";

/// OpenID Provider metadata (OpenID Connect Discovery 1.0 §3); the endpoints are absolute URLs
/// under the issuer.
#[derive(Object)]
#[oai(example)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub token_endpoint: String,
    pub authorization_endpoint: String,
    pub userinfo_endpoint: String,
    pub end_session_endpoint: String,
    pub response_types_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub claims_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Discovery {
    fn of(issuer: &str) -> Discovery {
        let auth_methods = strings(&["client_secret_basic", "client_secret_post"]);
        Discovery {
            issuer: issuer.to_string(),
            jwks_uri: under(issuer, "/.well-known/jwks.json"),
            introspection_endpoint: under(issuer, "/oauth2/introspect"),
            revocation_endpoint: under(issuer, "/oauth2/revoke"),
            token_endpoint: under(issuer, "/oauth2/token"),
            authorization_endpoint: under(issuer, "/oauth2/authorize"),
            userinfo_endpoint: under(issuer, "/oauth2/userinfo"),
            end_session_endpoint: under(issuer, "/oauth2/logout"),
            response_types_supported: strings(&["code"]),
            grant_types_supported: strings(&["authorization_code", "refresh_token"]),
            code_challenge_methods_supported: strings(&["S256"]),
            id_token_signing_alg_values_supported: strings(&["ES256"]),
            subject_types_supported: strings(&["public"]),
            scopes_supported: strings(&["openid", "profile", "phone"]),
            claims_supported: strings(&[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "jti",
                "client_id",
                "sid",
                "openid",
                "appid",
                "unionid",
            ]),
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            introspection_endpoint_auth_methods_supported: auth_methods.clone(),
            revocation_endpoint_auth_methods_supported: auth_methods,
        }
    }
}

impl poem_openapi::types::Example for Discovery {
    fn example() -> Self {
        Discovery::of("https://login.example.com")
    }
}

/// A public key of the JWK Set (RFC 7517): P-256, for ES256.
#[derive(Object, serde::Deserialize)]
pub struct Jwk {
    /// `EC`.
    pub kty: String,
    /// `P-256`.
    pub crv: String,
    /// The point's x coordinate, base64url.
    pub x: String,
    /// The point's y coordinate, base64url.
    pub y: String,
    /// The key's id, as access tokens name it in their header.
    pub kid: String,
    /// `sig`.
    #[oai(rename = "use")]
    #[serde(rename = "use")]
    pub use_: String,
    /// `ES256`.
    pub alg: String,
}

/// The JWK Set: every published public key.
#[derive(Object)]
#[oai(example)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl poem_openapi::types::Example for Jwks {
    fn example() -> Self {
        Jwks {
            keys: vec![Jwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: "WbbXwVYGdJoP4Xm3qCkGvBRcRvKtEfXDbWvPzpPS4KM".into(),
                y: "lHE4KBK1SDyHP4Eo8gTnZzKcoSZkfZpVp3ZGJnKK9rE".into(),
                kid: "2026-12-02-a1b2c3d4".into(),
                use_: "sig".into(),
                alg: "ES256".into(),
            }],
        }
    }
}

#[derive(ApiResponse)]
pub enum DiscoveryOk {
    /// The metadata.
    #[oai(status = 200)]
    Ok(Json<Discovery>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub enum JwksOk {
    /// The public keys.
    #[oai(status = 200)]
    Ok(Json<Jwks>, #[oai(header = "Cache-Control")] String),
}

/// `POST /oauth2/introspect` and `/oauth2/revoke`, as a form.
#[derive(Object, serde::Deserialize)]
pub struct TokenForm {
    /// A session token or an access token.
    #[oai(validator(max_length = 8192))]
    pub token: String,
    /// `access_token` or `refresh_token`; a hint only.
    pub token_type_hint: Option<String>,
    /// With `client_secret`, where the client does not use HTTP Basic.
    pub client_id: Option<String>,
    #[oai(write_only)]
    pub client_secret: Option<String>,
}

/// What introspection says of a token (RFC 7662 §2.2): for a live one, whose it is; for
/// anything else, `{"active": false}` and nothing more.
#[derive(Object, Default)]
#[oai(example)]
pub struct IntrospectionBody {
    /// Whether the token is a live session's.
    pub active: bool,
    /// The user id.
    #[oai(skip_serializing_if_is_none)]
    pub sub: Option<String>,
    /// The appid the session was made with, or `wxlogin`.
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub aud: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub iss: Option<String>,
    /// Unix seconds: the access token's expiry, or the session's if no use slides it.
    #[oai(skip_serializing_if_is_none)]
    pub exp: Option<i64>,
    /// Unix seconds an access token was issued.
    #[oai(skip_serializing_if_is_none)]
    pub iat: Option<i64>,
    /// The session (not its token).
    #[oai(skip_serializing_if_is_none)]
    pub sid: Option<String>,
    /// `Bearer`.
    #[oai(skip_serializing_if_is_none)]
    pub token_type: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub openid: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub appid: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub unionid: Option<String>,
}

impl From<Introspection> for IntrospectionBody {
    fn from(i: Introspection) -> Self {
        IntrospectionBody {
            active: true,
            sub: Some(i.sub),
            client_id: Some(i.client_id),
            aud: Some(i.aud),
            iss: Some(i.iss),
            exp: Some(i.exp),
            iat: i.iat,
            sid: Some(i.sid),
            token_type: Some(i.token_type.into()),
            openid: i.wechat.openid,
            appid: i.wechat.appid,
            unionid: i.wechat.unionid,
        }
    }
}

impl poem_openapi::types::Example for IntrospectionBody {
    fn example() -> Self {
        IntrospectionBody {
            active: true,
            sub: Some("8d7f2c1e-3b4a-4c5d-9e6f-7a8b9c0d1e2f".into()),
            client_id: Some("wx4f4bc4dec97d474b".into()),
            aud: Some("https://login.example.com".into()),
            iss: Some("https://login.example.com".into()),
            exp: Some(1_764_650_700),
            iat: Some(1_764_649_800),
            sid: Some("q1w2e3r4t5y6u7i8o9p0aa".into()),
            token_type: Some("Bearer".into()),
            openid: Some("oGZUI0egBJY1zhBYw2KhdUfwVJJE".into()),
            appid: Some("wx4f4bc4dec97d474b".into()),
            unionid: Some("ocMvos6NjeKLIBqg5Mr9QjxrP1FA".into()),
        }
    }
}

#[derive(ApiResponse)]
pub enum IntrospectOk {
    /// `{"active": true, ...}` for a live token, `{"active": false}` for anything else.
    #[oai(status = 200)]
    Ok(
        Json<IntrospectionBody>,
        #[oai(header = "Cache-Control")] String,
    ),
}

#[derive(ApiResponse)]
pub enum RevokeOk {
    /// Done, or there was nothing to end (RFC 7009 §2.2).
    #[oai(status = 200)]
    Ok,
}

#[derive(ApiResponse)]
pub enum AuthzOk {
    /// A live session: who it is, in headers for the proxy to pass on.
    #[oai(status = 200)]
    Ok(
        /// The user id.
        #[oai(header = "X-Wxlogin-User")]
        String,
        /// The app the session was made with, where it was a WeChat sign-in.
        #[oai(header = "X-Wxlogin-Appid")]
        Option<String>,
        /// The openid of that app, where there is one.
        #[oai(header = "X-Wxlogin-Openid")]
        Option<String>,
        /// The UnionID, where known.
        #[oai(header = "X-Wxlogin-Unionid")]
        Option<String>,
    ),
}

/// The client's credentials: HTTP Basic (RFC 6749 §2.3.1, form-encoded id and secret), or
/// `client_id` and `client_secret` in the form.
fn client_auth(headers: &HeaderMap, form: &TokenForm) -> Option<ClientAuth> {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    if let Some(encoded) = basic {
        use base64::{engine::general_purpose::STANDARD, Engine};
        let decoded = STANDARD.decode(encoded.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        return Some(ClientAuth {
            id: decode(id)?,
            secret: SecretString::from(decode(secret)?),
        });
    }
    Some(ClientAuth {
        id: form.client_id.clone()?,
        secret: SecretString::from(form.client_secret.clone()?),
    })
}

/// An absolute URL under the issuer.
fn under(issuer: &str, path: &str) -> String {
    format!("{}{path}", issuer.trim_end_matches('/'))
}

/// The bearer of an `Authorization` header, where there is one.
fn bearer(req: &Request) -> Option<&str> {
    let value = req.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub struct TokensApi;

#[OpenApi(tag = "Tag::Tokens")]
impl TokensApi {
    /// OpenID Provider metadata
    ///
    /// Where the JWK Set, introspection and revocation are, for libraries that configure
    /// themselves from the issuer (Spring Security's `issuer-uri`, `jose`, PyJWT).
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        operation_id = "openidConfiguration"
    )]
    async fn discovery(&self, accounts: Data<&Accounts>) -> Reply<DiscoveryOk, KeysErrors> {
        let issuer = &accounts.access_tokens().settings().issuer;
        let document = Discovery::of(issuer);
        Ok(DiscoveryOk::Ok(
            Json(document),
            "public, max-age=3600".into(),
        ))
    }

    /// The public keys that sign access tokens (JWK Set)
    ///
    /// ES256 keys with their `kid`. A new key is published before it signs; a retired one stays
    /// until the last token it signed has expired.
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, accounts: Data<&Accounts>) -> Reply<JwksOk, KeysErrors> {
        let keys = accounts.access_tokens().jwks().await?;
        let keys: Jwks = Jwks {
            keys: serde_json::from_value(keys["keys"].clone()).map_err(Error::unavailable)?,
        };
        Ok(JwksOk::Ok(Json(keys), JWKS_MAX_AGE.into()))
    }

    /// Token introspection (RFC 7662)
    ///
    /// For a configured client (HTTP Basic, or `client_id` and `client_secret` in the form):
    /// whether a session token or an access token is live, and whose it is. A logged-out,
    /// revoked or unbound session, an expired access token and anything else are
    /// `{"active": false}`.
    #[oai(
        path = "/oauth2/introspect",
        method = "post",
        operation_id = "introspect"
    )]
    async fn introspect(
        &self,
        accounts: Data<&Accounts>,
        req: &Request,
        form: Form<TokenForm>,
    ) -> Reply<IntrospectOk, ClientErrors> {
        accounts.check_client(client_auth(req.headers(), &form.0).as_ref())?;
        let answer = match accounts.introspect(form.0.token.trim()).await? {
            Some(found) => IntrospectionBody::from(found),
            None => IntrospectionBody::default(),
        };
        Ok(IntrospectOk::Ok(Json(answer), "no-store".into()))
    }

    /// Token revocation (RFC 7009)
    ///
    /// For a configured client: ends the session of a session token or of one of its access
    /// tokens, on every node; introspection and forward auth refuse them all from then on.
    /// Answers 200 for an unknown token too.
    #[oai(path = "/oauth2/revoke", method = "post", operation_id = "revoke")]
    async fn revoke(
        &self,
        accounts: Data<&Accounts>,
        req: &Request,
        form: Form<TokenForm>,
    ) -> Reply<RevokeOk, ClientErrors> {
        accounts.check_client(client_auth(req.headers(), &form.0).as_ref())?;
        accounts.revoke(form.0.token.trim()).await?;
        Ok(RevokeOk::Ok)
    }

    /// Forward auth for a reverse proxy
    ///
    /// For nginx `auth_request`, Caddy `forward_auth`, Traefik ForwardAuth, Envoy ext_authz:
    /// reads `Authorization: Bearer` (a session token or an access token), never a body. A live
    /// session answers 200 with `X-Wxlogin-*` headers for the proxy to pass to the API; else
    /// 401 with `WWW-Authenticate`.
    #[oai(path = "/api/v1/authz", method = "get", operation_id = "forwardAuth")]
    async fn authz(&self, accounts: Data<&Accounts>, req: &Request) -> Reply<AuthzOk, AuthzErrors> {
        forward_auth(&accounts, req).await
    }

    /// Forward auth for a reverse proxy (HEAD)
    ///
    /// As `GET /api/v1/authz`, without a body.
    #[oai(
        path = "/api/v1/authz",
        method = "head",
        operation_id = "forwardAuthHead"
    )]
    async fn authz_head(
        &self,
        accounts: Data<&Accounts>,
        req: &Request,
    ) -> Reply<AuthzOk, AuthzErrors> {
        forward_auth(&accounts, req).await
    }
}

async fn forward_auth(accounts: &Accounts, req: &Request) -> Reply<AuthzOk, AuthzErrors> {
    let Some(token) = bearer(req) else {
        let mut e = Error::unauthenticated();
        e.challenge = Some("Bearer");
        return Err(e.into());
    };
    let Some(auth) = accounts.live(token).await? else {
        let mut e = Error::new(
            Code::Unauthenticated,
            "The token is unknown, expired or revoked: sign in again.",
        );
        e.challenge = Some("Bearer error=\"invalid_token\"");
        return Err(e.into());
    };
    let ids = WechatIds::of(&auth.session, &auth.user);
    Ok(AuthzOk::Ok(
        auth.user.id,
        ids.appid,
        ids.openid,
        ids.unionid,
    ))
}
