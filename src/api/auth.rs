//! `/api/v1/auth/*`: mini program login, refresh and logout, binding, password sign-in, and
//! native apps' sign-in.

use poem::web::Data;
use poem_openapi::{
    param::{Header, Query},
    payload::Json,
    ApiResponse, OpenApi,
};

use super::errors::{error_set, Reply};
use super::model::{
    AccessTokenBody, AppLoginRequest, BindRequest, CodeRequest, CredentialsRequest, LoginRequest,
    RefreshBody, SessionBody,
};
use super::{BearerAuth, Tag};
use crate::accounts::{Accounts, LoginInput};
use crate::domain::{Credentials, IdempotencyKey, Shaped};

error_set!(LoginErrors:
    InvalidRequest, WechatCodeInvalid, InvalidCredentials, WechatUserBlocked, BindingRequired,
    Conflict, WechatRateLimited, AccountLocked, WechatUnavailable, WechatError, ServiceUnavailable,
    RateLimited
);
error_set!(RefreshErrors:
    InvalidRequest, WechatCodeInvalid, Unauthenticated, WechatUserBlocked, Conflict,
    WechatRateLimited, WechatUnavailable, WechatError, ServiceUnavailable, RateLimited
);
error_set!(LogoutErrors: InvalidRequest, Unauthenticated, ServiceUnavailable, RateLimited);
error_set!(TokenErrors: Unauthenticated, ServiceUnavailable, RateLimited);
error_set!(BindErrors:
    InvalidRequest, InvalidCredentials, Unauthenticated, Conflict, AccountLocked,
    ServiceUnavailable, RateLimited
);
error_set!(AppLoginErrors:
    InvalidRequest, WechatCodeInvalid, WechatUserBlocked, BindingRequired, Conflict,
    WechatRateLimited, WechatUnavailable, WechatError, ServiceUnavailable, RateLimited
);
error_set!(PasswordErrors:
    InvalidRequest, InvalidCredentials, AccountLocked, ServiceUnavailable, RateLimited
);

#[derive(ApiResponse)]
pub enum LoginOk {
    /// Signed in: the token to send as `Authorization: Bearer`, and the user.
    #[oai(status = 200)]
    Ok(Json<SessionBody>),
}

#[derive(ApiResponse)]
pub enum RefreshOk {
    /// The session now holds the new session_key; the token is unchanged.
    #[oai(status = 200)]
    Ok(Json<RefreshBody>),
}

#[derive(ApiResponse)]
pub enum TokenOk {
    /// A fresh access token of the session.
    #[oai(status = 200)]
    Ok(Json<AccessTokenBody>),
}

#[derive(ApiResponse)]
pub enum LogoutOk {
    /// The token no longer works, here or on any other node.
    #[oai(status = 204)]
    Done,
}

pub struct AuthApi;

#[OpenApi(prefix_path = "/api/v1/auth", tag = "Tag::Auth")]
impl AuthApi {
    /// Sign in with a wx.login code
    ///
    /// The server swaps the code at WeChat's `jscode2session`, finds or creates the user, keeps
    /// the session_key and returns a token. The same code sent again within 60 seconds with the
    /// same `Idempotency-Key` (a retry) answers what the first call answered, without a second
    /// call to WeChat; the same code from anyone else is 401 `wechat_code_invalid` (40163).
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        accounts: Data<&Accounts>,
        body: Json<LoginRequest>,
        /// A random string of 16 to 64 characters, one per login attempt and the same on its
        /// retries: only the caller who sent it gets the code's answer again.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> Reply<LoginOk, LoginErrors> {
        let Json(req) = body;
        let idempotency_key = idempotency_key.0.map(IdempotencyKey::parse).transpose()?;
        let credentials = Credentials::pair(req.username.map(|u| u.0), req.password.map(|p| p.0))?;
        let input = LoginInput {
            code: req.code.0,
            appid: req.appid.map(|a| a.0),
            credentials,
            idempotency_key,
        };
        Ok(LoginOk::Ok(Json(accounts.login(input).await?.into())))
    }

    /// Give the session a new session_key
    ///
    /// After `wx.checkSession` failed, call `wx.login` and send the new code with the token. The
    /// token stays; the previous session_key still decrypts for five minutes. A code of another
    /// WeChat user is a 409 and changes nothing.
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        accounts: Data<&Accounts>,
        body: Json<CodeRequest>,
        auth: BearerAuth,
    ) -> Reply<RefreshOk, RefreshErrors> {
        let refreshed = accounts.refresh(auth.0, &body.0.code.0).await?;
        Ok(RefreshOk::Ok(Json(RefreshBody {
            token: refreshed.token,
            expires_in: refreshed.expires_in,
        })))
    }

    /// Sign out
    ///
    /// Ends the session of the token, and every access token of it. With `?all=true`, ends
    /// every session of the user ("sign out everywhere"), on every node at once.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        accounts: Data<&Accounts>,
        /// `true`: every session of the user, not only this one.
        all: Query<Option<bool>>,
        auth: BearerAuth,
    ) -> Reply<LogoutOk, LogoutErrors> {
        if all.0 == Some(true) {
            accounts.logout_everywhere(&auth.0).await?;
        } else {
            accounts.logout(&auth.0.session_id, &auth.0.user.id).await?;
        }
        Ok(LogoutOk::Done)
    }

    /// A fresh access token for the business's own services
    ///
    /// Takes the session token (`token` of sign-in), not an access token; answers a new access
    /// token of the same session while the session lives.
    #[oai(path = "/token", method = "post", operation_id = "accessToken")]
    async fn token(
        &self,
        accounts: Data<&Accounts>,
        auth: BearerAuth,
    ) -> Reply<TokenOk, TokenErrors> {
        let issued = accounts.renew_access_token(&auth.0).await?;
        Ok(TokenOk::Ok(Json(issued.into())))
    }

    /// Bind a WeChat user to an account, after `binding_required`
    ///
    /// Sends the `bindTicket` of the 403 with the account's username and password; the WeChat
    /// user is bound to that account and signed in, without a second `wx.login`. A ticket works
    /// once, for ten minutes.
    #[oai(path = "/bind", method = "post", operation_id = "bind")]
    async fn bind(
        &self,
        accounts: Data<&Accounts>,
        body: Json<BindRequest>,
    ) -> Reply<LoginOk, BindErrors> {
        let Json(req) = body;
        let credentials = Credentials {
            username: req.username.0,
            password: req.password.0,
        };
        let signed_in = accounts
            .bind_with_ticket(&req.bind_ticket, credentials)
            .await?;
        Ok(LoginOk::Ok(Json(signed_in.into())))
    }

    /// Sign in with a username and password
    ///
    /// An unknown username and a wrong password get the same answer, in the same time. Five wrong
    /// passwords for one username within 15 minutes lock it for 15 minutes.
    #[oai(path = "/password", method = "post", operation_id = "passwordLogin")]
    async fn password(
        &self,
        accounts: Data<&Accounts>,
        body: Json<CredentialsRequest>,
    ) -> Reply<LoginOk, PasswordErrors> {
        let signed_in = accounts.password_login(body.0.into()).await?;
        Ok(LoginOk::Ok(Json(signed_in.into())))
    }

    /// Sign in from a native app
    ///
    /// The iOS/Android app gets a code from the WeChat Open SDK (`SendAuth`, scope
    /// `snsapi_userinfo`) and sends it here; the server swaps it at WeChat with the mobile
    /// app's AppSecret (which never ships in the app), reads the profile, and signs in the
    /// person: the same user as their mini program and web sign-ins where WeChat gives the
    /// same UnionID.
    #[oai(path = "/app", method = "post", operation_id = "appLogin")]
    async fn app(
        &self,
        accounts: Data<&Accounts>,
        body: Json<AppLoginRequest>,
    ) -> Reply<LoginOk, AppLoginErrors> {
        let Json(req) = body;
        let appid = req.appid.map(|a| a.0);
        let signed_in = accounts.app_login(&req.code.0, appid.as_deref()).await?;
        Ok(LoginOk::Ok(Json(signed_in.into())))
    }
}
