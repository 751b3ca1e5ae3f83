//! HTTP: the contract's routes (poem-openapi), its error body, the bearer scheme and the edge
//! middleware that gives every answer an `x-request-id`, bounds request bodies, logs and counts.
//! Handlers parse, call one `accounts` function and map; SQL, Redis and WeChat are not seen here.

mod accounts;
mod admin;
mod auth;
mod client_ip;
pub mod errors;
mod me;
mod model;
mod oauth;
mod ops;
mod phone_model;
mod sms;
mod tokens;
mod wechat;

use std::sync::Arc;
use std::time::Instant;

use poem::http::{header, HeaderValue, StatusCode};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};
use poem_openapi::{auth::Bearer, OpenApiService, SecurityScheme, Tags};
use tracing::Instrument;

use crate::accounts::{Accounts, Authenticated};
use crate::error::{Code, Error};
use crate::readiness::Readiness;
use crate::telemetry;
use client_ip::client_ip;
use errors::ErrorBody;

/// Route groups, as Swagger UI shows them.
#[derive(Tags)]
pub enum Tag {
    /// Signing in: mini program login and binding, passwords, refresh, logout.
    Auth,
    /// Business accounts.
    Accounts,
    /// Web sign-in: website QR login and Official Account pages.
    Web,
    /// The signed-in user.
    Me,
    /// WeChat open data.
    Wechat,
    /// Tokens for the business's own services: JWKS, introspection, revocation, forward auth.
    Tokens,
    /// Health, readiness and metrics.
    Ops,
    /// Operators: find, disable, enable, delete users; the audit log (admin clients with HTTP
    /// Basic, admin users with their bearer token).
    Admin,
}

// A handler that takes `BearerAuth` gets the session behind the token and its user; a request
// without a live session is answered `unauthenticated` (or 503 where the store is down) before
// the handler runs. Handlers take it after their body, so that a malformed body is a 400
// whatever the token. (The `///` line below is the scheme's text in the OpenAPI document.)
/// `Authorization: Bearer <token>`, the UUID that login returned.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "UUID", checker = "authenticate")]
pub struct BearerAuth(Authenticated);

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<Authenticated> {
    let Some(accounts) = req.data::<Accounts>() else {
        return Err(poem::Error::from_status(StatusCode::SERVICE_UNAVAILABLE));
    };
    accounts
        .authenticate(&bearer.token)
        .await
        .map_err(into_poem)
}

/// Our error as poem carries it to the edge, which writes the contract's body.
pub(crate) fn into_poem(error: Error) -> poem::Error {
    let status =
        StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    poem::Error::new(error, status)
}

/// The OpenAPI service of the contract's routes.
pub fn service() -> OpenApiService<impl poem_openapi::OpenApi, ()> {
    let apis = (
        auth::AuthApi,
        accounts::AccountsApi,
        oauth::OauthApi,
        me::MeApi,
        sms::SmsApi,
        wechat::WechatApi,
        tokens::TokensApi,
        ops::OpsApi,
        admin::AdminApi,
    );
    OpenApiService::new(apis, "wxlogin", env!("CARGO_PKG_VERSION")).description(
        "Sign people in with WeChat. A mini program calls `wx.login`, sends the code to \
         `POST /api/v1/auth/login` and gets a bearer token; the WeChat session_key stays on the \
         server. Every answer carries `x-request-id`; errors have the body `ErrorBody`.",
    )
}

/// The served OpenAPI document (also `openapi/openapi.json` and `wxlogin openapi`).
pub fn openapi_json() -> String {
    service().spec()
}

/// What the edge middleware needs to know.
#[derive(Clone)]
pub struct Edge {
    pub max_body_bytes: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The requests this serving thread may work on at once (`WXLOGIN_MAX_IN_FLIGHT`).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// How long a request may wait for its turn when `in_flight` are being worked on.
    pub queue_wait: std::time::Duration,
    /// How long a request may take before it is answered 503.
    pub deadline: std::time::Duration,
}

/// All routes with the edge middleware, ready to serve.
pub fn routes(
    svc: Accounts,
    edge: Edge,
    readiness: Readiness,
    demo_page: Option<url::Url>,
) -> impl Endpoint<Output = Response> {
    let api = service();
    let spec = api.spec();
    let docs = api.swagger_ui();
    let mut route = poem::Route::new();
    if let Some(emulator) = demo_page {
        // The web demo of `wxlogin demo`: one static page that uses the public API, and links
        // to the emulator's SMS inbox.
        let origin = emulator.origin().ascii_serialization();
        let page = include_str!("static/demo.html").replace("__EMULATOR__", &origin);
        route = route.at(
            "/demo/",
            poem::endpoint::make_sync(move |_| {
                Response::builder()
                    .content_type("text/html; charset=utf-8")
                    .body(page.clone())
            }),
        );
    }
    // The operators' console: one static page that uses the admin API.
    route = route.at(
        "/admin/",
        poem::endpoint::make_sync(|_| {
            Response::builder()
                .content_type("text/html; charset=utf-8")
                .body(include_str!("static/admin.html"))
        }),
    );
    route
        .nest("/docs", docs)
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                Response::builder()
                    .content_type("application/json; charset=utf-8")
                    .body(spec.clone())
            }),
        )
        .nest("/", api)
        .data(svc.clone())
        .data(readiness)
        .around(move |ep, req| edge_layer(ep, req, svc.clone(), edge.clone()))
}

/// The routes whose answers carry a token, a ticket or a phone number: no cache may keep them.
const NO_STORE: [&str; 18] = [
    "login",
    "bind",
    "passwordLogin",
    "smsLogin",
    "bindPhone",
    "appLogin",
    "exportMe",
    "adminSearchUsers",
    "adminGetUser",
    "adminAudit",
    "redeemTicket",
    "accessToken",
    "refresh",
    "getMe",
    "patchMe",
    "setPhone",
    "decrypt",
    "oauthCallback",
];

/// Whether a path is one of the sign-in routes that the per-IP limit guards.
fn rate_limited_path(path: &str) -> bool {
    path.starts_with("/api/v1/auth/")
        || path.starts_with("/api/v1/accounts")
        || path == "/api/v1/sms/code"
        || (path.starts_with("/api/v1/oauth/") && path.ends_with("/authorize"))
}

/// Whether a path's requests may write audit events: sign-in, sign-out, binding, the
/// account's lasting changes, revocation.
fn audited_path(path: &str) -> bool {
    rate_limited_path(path)
        || path.starts_with("/api/v1/me/")
        || path.starts_with("/api/v1/oauth/")
        || path == "/oauth2/revoke"
}

/// A 503 of a server at its limits, to be tried again in a second.
fn overloaded(message: &str) -> Error {
    let mut e = Error::new(Code::ServiceUnavailable, message);
    e.retry_after = Some(1);
    e
}

/// Request id, per-IP limit, body limit, error bodies, log line and metrics for every request.
async fn edge_layer<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    svc: Accounts,
    edge: Edge,
) -> poem::Result<Response> {
    let max_body_bytes = edge.max_body_bytes;
    let started = Instant::now();
    let request_id = telemetry::accept_request_id(req.header("x-request-id"));
    let method = req.method().clone();
    // The path only: query strings carry OAuth codes.
    let path = req.uri().path().to_string();
    let oauth = path.starts_with("/oauth2/");

    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let forwarded_for = req.headers().get_all("x-forwarded-for");
    let forwarded_for = forwarded_for.iter().filter_map(|line| line.to_str().ok());
    let client = client_ip(peer, forwarded_for, &edge.trusted_proxies);
    // The audit events of a request (sign-ins, failures, lockouts, bindings, ends of sessions
    // and tokens) carry who asked and which request it was.
    let span = if audited_path(&path) {
        let client = client.map(|ip| ip.to_string()).unwrap_or_default();
        tracing::info_span!("request", request_id = %request_id, client_ip = %client)
    } else {
        tracing::Span::none()
    };
    let work = async {
        let limited = match client {
            Some(ip) if rate_limited_path(&path) => svc.rate_limit(ip).await.err(),
            _ => None,
        };
        let body = match limited {
            // Over the limit (or the limiter's store is down): answered before the body is read.
            Some(error) => Err(error),
            None => Ok(req.take_body().into_bytes_limit(max_body_bytes).await),
        };
        match body {
            Err(error) => Err(into_poem(error)),
            Ok(Ok(bytes)) => {
                req.set_body(bytes);
                let info = telemetry::RequestInfo {
                    request_id: request_id.clone(),
                    client_ip: client,
                    path: path.clone(),
                };
                telemetry::with_request(info, ep.call(req).instrument(span))
                    .await
                    .map(IntoResponse::into_response)
            }
            Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => Err(poem::Error::new(
                Error::new(
                    Code::PayloadTooLarge,
                    format!("The request body is larger than {max_body_bytes} bytes."),
                ),
                StatusCode::PAYLOAD_TOO_LARGE,
            )),
            Ok(Err(e)) => Err(poem::Error::new(
                Error::invalid(format!("The request body could not be read: {e}")),
                StatusCode::BAD_REQUEST,
            )),
        }
    };
    // Backpressure: a thread works on at most `in_flight` requests (health, readiness and
    // metrics are always answered); beyond, a request waits its turn for `queue_wait`, idle
    // (a connection waiting sends nothing more, where a quick 503 would invite its next
    // request at once and the rejections would eat the CPU of the work); and none is worked
    // on for longer than the deadline.
    let always = matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics");
    let permit = match always {
        true => None,
        false => Some(match edge.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => tokio::time::timeout(edge.queue_wait, edge.in_flight.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        }),
    };
    let result = match permit {
        Some(None) => Err(into_poem(overloaded(
            "This server is working on as many requests as it takes: try again in a moment.",
        ))),
        // The permit (where one is taken) is held until the answer is made.
        _ => match tokio::time::timeout(edge.deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(into_poem(overloaded(&format!(
                "This request took longer than {} seconds and was given up: try again.",
                edge.deadline.as_secs()
            )))),
        },
    };
    let operation = match &result {
        Ok(r) => r.data::<poem_openapi::OperationId>().map(|o| o.0),
        Err(e) => e.data::<poem_openapi::OperationId>().map(|o| o.0),
    }
    .unwrap_or(if path.starts_with("/docs") {
        "docs"
    } else {
        "other"
    });
    let mut resp = match result {
        Ok(resp) if resp.status().is_client_error() || resp.status().is_server_error() => {
            // Answers made by poem itself (404, 405, ...) get the contract's body too.
            let status = resp.status();
            error_response(
                &from_status(status, status.canonical_reason().unwrap_or("error")),
                &request_id,
                oauth,
            )
        }
        Ok(resp) => resp,
        Err(e) => {
            let error = match e.downcast::<Error>() {
                Ok(error) => error,
                Err(e) => from_status(e.status(), &e.to_string()),
            };
            // A rejection under overload (no cause) is counted in the metrics, not logged
            // one line each: that would slow the server down when it can least afford it.
            let overload = error.code == Code::ServiceUnavailable && error.source.is_none();
            if error.code.status() >= 500 && !overload {
                let cause = error
                    .source
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                tracing::warn!(
                    request_id = %request_id,
                    code = %error.code,
                    cause = %cause,
                    "request failed"
                );
            }
            error_response(&error, &request_id, oauth)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if NO_STORE.contains(&operation) {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let status = resp.status().as_u16();
    telemetry::record_http(operation, method.as_str(), status, started.elapsed());
    tracing::info!(
        request_id = %request_id,
        method = %method,
        path = %path,
        status,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(resp)
}

/// An error poem or poem-openapi made (a body that does not parse, a missing header, no route).
fn from_status(status: StatusCode, text: &str) -> Error {
    let code = match status.as_u16() {
        401 => return Error::unauthenticated(),
        404 => Code::NotFound,
        405 => Code::MethodNotAllowed,
        413 => Code::PayloadTooLarge,
        503 => Code::ServiceUnavailable,
        400..=499 => Code::InvalidRequest,
        _ => Code::ServiceUnavailable,
    };
    let message = match code {
        Code::InvalidRequest => {
            format!("The request is malformed: {text}. Check it against /docs.")
        }
        Code::NotFound => "No such route: see /docs for the routes.".to_string(),
        Code::MethodNotAllowed => "This route does not take this method: see /docs.".to_string(),
        Code::PayloadTooLarge => "The request body is too large.".to_string(),
        _ => "The service is briefly unavailable and nothing was changed. Try again in a moment."
            .to_string(),
    };
    Error::new(code, message)
}

/// The error body of OAuth's own routes (RFC 6749 §5.2), which OAuth clients parse.
fn oauth_error_body(error: &Error) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "error": errors::oauth_error(error.code),
        "error_description": error.message,
    }))
    .unwrap_or_default()
}

fn error_response(error: &Error, request_id: &str, oauth: bool) -> Response {
    let body = if oauth {
        oauth_error_body(error)
    } else {
        serde_json::to_vec(&poem_openapi::types::ToJSON::to_json(&ErrorBody::new(
            error, request_id,
        )))
        .unwrap_or_default()
    };
    let mut resp = Response::builder()
        .status(
            StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        )
        .content_type("application/json; charset=utf-8")
        .body(body);
    if let Some(secs) = error.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(challenge) = error.challenge {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    resp
}
