//! The contract's error body, and how each route documents the errors it can answer.
//!
//! A route returns `Reply<T, S>`: `S` is a marker listing the route's error codes, so the
//! OpenAPI document shows, for each route, exactly its error statuses with the codes behind them
//! and an example body. The body itself is written by the edge middleware
//! (`super::edge_layer`), which knows the request id.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::{LazyLock, Mutex};

use poem_openapi::registry::{
    MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};

use crate::error::{Code, Error, WechatAnswer};

/// WeChat's own answer, where it caused the error.
#[derive(Object)]
pub struct WechatBody {
    /// WeChat's errcode.
    pub errcode: i64,
    /// WeChat's errmsg, with its trace tag.
    pub errmsg: String,
}

/// Every error answer.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Machine code from the contract's table.
    pub code: String,
    /// What happened and what to do about it.
    pub message: String,
    /// The id of this request, also in the `x-request-id` header; quote it in bug reports.
    pub request_id: String,
    /// WeChat's answer, where WeChat's answer caused the error.
    #[oai(skip_serializing_if_is_none)]
    pub wechat: Option<WechatBody>,
    /// With `binding_required`: the single-use ticket for `/api/v1/auth/bind` (10 minutes).
    #[oai(skip_serializing_if_is_none)]
    pub bind_ticket: Option<String>,
}

impl ErrorBody {
    pub fn new(e: &Error, request_id: &str) -> ErrorBody {
        ErrorBody {
            code: e.code.as_str().to_string(),
            message: e.message.clone(),
            request_id: request_id.to_string(),
            wechat: e
                .wechat
                .as_ref()
                .map(|WechatAnswer { errcode, errmsg }| WechatBody {
                    errcode: *errcode,
                    errmsg: errmsg.clone(),
                }),
            bind_ticket: e
                .extra
                .as_ref()
                .and_then(|x| x.get("bindTicket"))
                .and_then(|v| v.as_str())
                .map(str::to_string),
        }
    }
}

/// The error body of OAuth's own routes (`/oauth2/*`, RFC 6749 §5.2), which OAuth clients
/// parse instead of ours.
#[derive(Object)]
pub struct OauthErrorBody {
    /// `invalid_request`, `invalid_client` or `temporarily_unavailable`.
    pub error: String,
    /// What happened and what to do about it.
    pub error_description: String,
}

/// The OAuth `error` of a contract code.
pub fn oauth_error(code: Code) -> &'static str {
    match code {
        Code::InvalidClient => "invalid_client",
        Code::ServiceUnavailable => "temporarily_unavailable",
        _ => "invalid_request",
    }
}

/// The error codes a route can answer.
pub trait ErrorSet: Send + Sync + 'static {
    const CODES: &'static [Code];
    /// Whether the route answers errors with OAuth's body (`OauthErrorBody`).
    const OAUTH: bool = false;
}

/// Declares an error set: `error_set!(Name: Code, Code, ...)`; `error_set!(oauth Name: ...)`
/// for a route of OAuth's own, whose errors have OAuth's body.
macro_rules! error_set {
    ($name:ident: $($code:ident),+ $(,)?) => {
        pub struct $name;
        impl $crate::api::errors::ErrorSet for $name {
            const CODES: &'static [$crate::error::Code] = &[$($crate::error::Code::$code),+];
        }
    };
    (oauth $name:ident: $($code:ident),+ $(,)?) => {
        pub struct $name;
        impl $crate::api::errors::ErrorSet for $name {
            const CODES: &'static [$crate::error::Code] = &[$($crate::error::Code::$code),+];
            const OAUTH: bool = true;
        }
    };
}
pub(crate) use error_set;

/// An error answer of a route whose codes are `S`.
pub struct Failure<S>(pub Error, PhantomData<S>);

/// What a route returns.
pub type Reply<T, S> = Result<T, Failure<S>>;

impl<S> From<crate::domain::InvalidInput> for Failure<S> {
    fn from(e: crate::domain::InvalidInput) -> Self {
        Failure(e.into(), PhantomData)
    }
}

impl<S> From<Error> for Failure<S> {
    fn from(e: Error) -> Self {
        Failure(e, PhantomData)
    }
}

impl<S> From<Failure<S>> for poem::Error {
    fn from(f: Failure<S>) -> poem::Error {
        super::into_poem(f.0)
    }
}

/// Descriptions are built once per set and kept: the registry wants `&'static str`.
static TEXTS: LazyLock<Mutex<HashMap<String, &'static str>>> = LazyLock::new(Default::default);

fn intern(text: String) -> &'static str {
    let mut texts = TEXTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = texts.get(&text) {
        return t;
    }
    let leaked: &'static str = Box::leak(text.clone().into_boxed_str());
    texts.insert(text, leaked);
    leaked
}

impl<S: ErrorSet> ApiResponse for Failure<S> {
    fn meta() -> MetaResponses {
        let mut by_status: BTreeMap<u16, Vec<Code>> = BTreeMap::new();
        for code in S::CODES {
            by_status.entry(code.status()).or_default().push(*code);
        }
        let responses = by_status
            .into_iter()
            .map(|(status, codes)| {
                let description = codes
                    .iter()
                    .map(|c| format!("`{}`: {}", c.as_str(), c.when()))
                    .collect::<Vec<_>>()
                    .join(". ");
                let first = codes[0];
                if S::OAUTH {
                    let example = serde_json::json!({
                        "error": oauth_error(first),
                        "error_description": first.when(),
                    });
                    return response(status, description, OauthErrorBody::schema_ref(), example);
                }
                let mut example = serde_json::json!({
                    "code": first.as_str(),
                    "message": first.example_message(),
                    "requestId": "4f1c2b7e9a0d4c6b8e2f1a3b5c7d9e0f",
                });
                if matches!(first, Code::WechatCodeInvalid) {
                    example["wechat"] = serde_json::json!({
                        "errcode": 40163,
                        "errmsg": "code been used, rid: 664ef1ea-61270f43-2b492c40",
                    });
                }
                response(status, description, ErrorBody::schema_ref(), example)
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
        OauthErrorBody::register(registry);
    }
}

/// An error answer of the document: a status, its codes, the body's schema and an example.
fn response(
    status: u16,
    description: String,
    body: MetaSchemaRef,
    example: serde_json::Value,
) -> MetaResponse {
    let mut schema = MetaSchema::new("object");
    schema.all_of = vec![body];
    schema.example = Some(example);
    MetaResponse {
        description: intern(description),
        status: Some(status),
        status_range: None,
        content: vec![MetaMediaType {
            content_type: "application/json; charset=utf-8",
            schema: MetaSchemaRef::Inline(Box::new(schema)),
        }],
        headers: vec![],
    }
}
