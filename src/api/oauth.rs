//! `/api/v1/oauth/*` and `/api/v1/auth/ticket`: web sign-in (website QR login and Official
//! Account pages).

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};

use super::auth::LoginOk;
use super::errors::{error_set, Reply};
use super::Tag;
use crate::accounts::Accounts;
use crate::domain::WebProvider;

error_set!(AuthorizeErrors: InvalidRequest, RateLimited, ServiceUnavailable);
error_set!(CallbackErrors:
    InvalidRequest, WechatCodeInvalid, WechatRateLimited, WechatUnavailable, WechatError, Conflict,
    ServiceUnavailable
);
error_set!(TicketErrors:
    InvalidRequest, Unauthenticated, PhoneRequired, ServiceUnavailable, RateLimited
);

/// The web product of a sign-in.
#[derive(poem_openapi::Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum ProviderParam {
    /// Website QR login (`snsapi_login`).
    Website,
    /// Official Account pages (`snsapi_userinfo`, `snsapi_base`).
    OfficialAccount,
}

impl From<ProviderParam> for WebProvider {
    fn from(p: ProviderParam) -> Self {
        match p {
            ProviderParam::Website => WebProvider::Website,
            ProviderParam::OfficialAccount => WebProvider::OfficialAccount,
        }
    }
}

/// The scope of a web sign-in, spelled as WeChat spells it.
// The names are WeChat's: snsapi_login, snsapi_userinfo, snsapi_base.
#[allow(clippy::enum_variant_names)]
#[derive(poem_openapi::Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum ScopeParam {
    SnsapiLogin,
    SnsapiUserinfo,
    SnsapiBase,
}

impl ScopeParam {
    fn as_str(self) -> &'static str {
        match self {
            ScopeParam::SnsapiLogin => "snsapi_login",
            ScopeParam::SnsapiUserinfo => "snsapi_userinfo",
            ScopeParam::SnsapiBase => "snsapi_base",
        }
    }
}

#[derive(ApiResponse)]
pub enum Redirect {
    /// Off to the `Location`.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

/// `POST /api/v1/auth/ticket`.
#[derive(Object)]
#[oai(example, rename_all = "camelCase")]
pub struct TicketRequest {
    /// The `ticket` of the redirect's `#ticket=` fragment.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub ticket: String,
    /// The PKCE verifier whose S256 challenge the page sent to `authorize` (43 to 128 of
    /// `A-Z a-z 0-9 - . _ ~`). Wrong or missing: 400 `invalid_request`, and the ticket is used
    /// up.
    pub code_verifier: Option<String>,
}

impl poem_openapi::types::Example for TicketRequest {
    fn example() -> Self {
        TicketRequest {
            ticket: "5d0e4a3b-2c1f-4e8d-9b7a-6f5e4d3c2b1a".into(),
            code_verifier: Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into()),
        }
    }
}

pub struct OauthApi;

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Web")]
impl OauthApi {
    /// Start a web sign-in
    ///
    /// Redirects the browser to WeChat: the QR page (`website`, scope `snsapi_login`) or the
    /// Official Account consent page (`official_account`, scope `snsapi_userinfo`, or
    /// `snsapi_base` with `?scope=snsapi_base`). `redirectUri` must be one of the allow-list's
    /// redirect URIs (only its query may differ); it is where the browser comes back, with
    /// `#ticket=...` or `#error=...`. `codeChallenge` binds the sign-in to the page: only the
    /// page that holds its `codeVerifier` can redeem the ticket (PKCE S256). Under the per-IP
    /// limit.
    #[oai(
        path = "/oauth/:provider/authorize",
        method = "get",
        operation_id = "oauthAuthorize"
    )]
    async fn authorize(
        &self,
        accounts: Data<&Accounts>,
        /// `website` or `official_account`.
        provider: Path<ProviderParam>,
        /// Where the browser returns: one of WXLOGIN_REDIRECT_ALLOWLIST's URIs, at most 2,048
        /// bytes.
        #[oai(name = "redirectUri")]
        redirect_uri: Query<String>,
        /// base64url (no padding) of SHA-256 of the page's random `codeVerifier` (43
        /// characters).
        #[oai(name = "codeChallenge")]
        code_challenge: Query<Option<String>>,
        /// `snsapi_base` for a silent Official Account sign-in (openid only).
        scope: Query<Option<ScopeParam>>,
    ) -> Reply<Redirect, AuthorizeErrors> {
        let url = accounts
            .web_authorize(
                provider.0.into(),
                &redirect_uri.0,
                scope.0.map(ScopeParam::as_str),
                code_challenge.0.as_deref(),
            )
            .await?;
        Ok(Redirect::Found(url.into()))
    }

    /// WeChat's callback of a web sign-in
    ///
    /// Checks and burns the `state`, swaps the code with WeChat, links the person by UnionID to
    /// an existing user (a mini program user included) or creates one, then redirects to the
    /// stored `redirectUri` with `#ticket=...`. Without `code` (the person refused) it redirects
    /// with `#error=access_denied`.
    #[oai(
        path = "/oauth/:provider/callback",
        method = "get",
        operation_id = "oauthCallback"
    )]
    async fn callback(
        &self,
        accounts: Data<&Accounts>,
        provider: Path<ProviderParam>,
        code: Query<Option<String>>,
        state: Query<Option<String>>,
    ) -> Reply<Redirect, CallbackErrors> {
        let url = accounts
            .web_callback(provider.0.into(), code.0.as_deref(), state.0.as_deref())
            .await?;
        Ok(Redirect::Found(url.into()))
    }

    /// Swap a web sign-in's ticket for a session
    ///
    /// A ticket works once, within 60 seconds of the redirect, with the `codeVerifier` of the
    /// sign-in's `codeChallenge`. Where `WXLOGIN_WEB_REQUIRE_PHONE` is set and the person has
    /// no verified phone: 403 `phone_required` with a `bindTicket` for
    /// `/api/v1/auth/bind-phone`.
    #[oai(path = "/auth/ticket", method = "post", operation_id = "redeemTicket")]
    async fn ticket(
        &self,
        accounts: Data<&Accounts>,
        body: Json<TicketRequest>,
    ) -> Reply<LoginOk, TicketErrors> {
        let body = body.0;
        let signed_in = accounts
            .redeem_ticket(&body.ticket, body.code_verifier.as_deref())
            .await?;
        Ok(LoginOk::Ok(Json(signed_in.into())))
    }
}
