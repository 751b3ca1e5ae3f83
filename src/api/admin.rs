//! `/admin/v1`: the operators' API. Admin clients (`WXLOGIN_ADMIN_CLIENTS`) call it with HTTP
//! Basic; admin users (`WXLOGIN_ADMIN_USERS`) with their own session's bearer token. Anyone
//! else: 401 without credentials, 403 `forbidden` with another user's token.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use poem::Request;
use poem_openapi::auth::{Basic, Bearer};
use poem_openapi::types::Example;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    ApiResponse, Object, OpenApi, SecurityScheme,
};
use serde_json::Value;

use super::errors::{error_set, Reply};
use super::model::UserBody;
use super::{into_poem, Tag};
use crate::accounts::{detail_of, Accounts};
use crate::domain::{AuditEvent, AuditQuery, User};
use crate::error::Error;

error_set!(AdminErrors: InvalidRequest, Unauthenticated, Forbidden, ServiceUnavailable);
error_set!(AdminUserErrors:
    InvalidRequest, Unauthenticated, Forbidden, NotFound, ServiceUnavailable
);

/// An admin client: HTTP Basic with its id and secret.
#[derive(SecurityScheme)]
#[oai(ty = "basic", checker = "admin_client")]
pub struct AdminClient(String);

async fn admin_client(req: &Request, basic: Basic) -> poem::Result<String> {
    let accounts = req.data::<Accounts>().ok_or_else(unavailable)?;
    accounts
        .check_admin_client(&basic.username, &basic.password)
        .map_err(into_poem)
}

/// An operator's own session: `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "admin_user")]
pub struct AdminUser(String);

async fn admin_user(req: &Request, bearer: Bearer) -> poem::Result<String> {
    let accounts = req.data::<Accounts>().ok_or_else(unavailable)?;
    let auth = accounts
        .authenticate(&bearer.token)
        .await
        .map_err(into_poem)?;
    accounts.check_admin_user(&auth).map_err(into_poem)
}

fn unavailable() -> poem::Error {
    poem::Error::from_status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
}

/// Either way in; the caller as the audit log names them.
#[derive(SecurityScheme)]
pub enum AdminAuth {
    Client(AdminClient),
    User(AdminUser),
}

impl AdminAuth {
    fn actor(&self) -> &str {
        match self {
            AdminAuth::Client(c) => &c.0,
            AdminAuth::User(u) => &u.0,
        }
    }
}

/// A user as operators see it.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct AdminUserBody {
    #[oai(flatten)]
    pub user: UserBody,
    /// An operator disabled the user.
    pub disabled: bool,
}

impl Example for AdminUserBody {
    fn example() -> Self {
        AdminUserBody {
            user: UserBody::example(),
            disabled: false,
        }
    }
}

impl From<User> for AdminUserBody {
    fn from(u: User) -> Self {
        let disabled = u.disabled;
        AdminUserBody {
            user: u.into(),
            disabled,
        }
    }
}

/// A page of users.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UsersPage {
    pub users: Vec<AdminUserBody>,
    /// Send as `cursor` for the next page; null on the last.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// One event of the audit log.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AuditEventBody {
    /// Unix milliseconds.
    pub at: i64,
    #[oai(rename = "type")]
    pub kind: String,
    #[oai(nullable)]
    pub user_id: Option<String>,
    #[oai(nullable)]
    pub client_ip: Option<String>,
    #[oai(nullable)]
    pub request_id: Option<String>,
    /// Who, for an operator's action (`client:<id>`, `user:<id>`).
    #[oai(nullable)]
    pub actor: Option<String>,
    /// Which way, which app, why.
    pub detail: Value,
}

impl From<AuditEvent> for AuditEventBody {
    fn from(e: AuditEvent) -> Self {
        AuditEventBody {
            detail: detail_of(&e),
            at: e.at,
            kind: e.kind,
            user_id: e.user_id,
            client_ip: e.client_ip,
            request_id: e.request_id,
            actor: e.actor,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EventsPage {
    pub events: Vec<AuditEventBody>,
    /// Send as `cursor` for the next page; null on the last.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A live session: when it began, through which app (never its token).
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SessionInfo {
    /// Unix milliseconds.
    pub created_at: i64,
    /// Null for a session signed in with a password or an SMS code.
    #[oai(nullable)]
    pub appid: Option<String>,
    /// When it was last used (Unix milliseconds), as its sliding lifetime tells.
    #[oai(nullable)]
    pub last_used: Option<i64>,
}

impl From<&crate::domain::Session> for SessionInfo {
    fn from(s: &crate::domain::Session) -> Self {
        SessionInfo {
            created_at: s.created_at,
            appid: s.appid.clone(),
            last_used: None,
        }
    }
}

impl From<&(crate::domain::Session, i64)> for SessionInfo {
    fn from((s, last_used): &(crate::domain::Session, i64)) -> Self {
        SessionInfo {
            last_used: Some(*last_used),
            ..SessionInfo::from(s)
        }
    }
}

/// A user with their live sessions and the latest events of the audit log about them.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AdminUserDetail {
    #[oai(flatten)]
    pub user: AdminUserBody,
    pub sessions: Vec<SessionInfo>,
    pub recent_events: Vec<AuditEventBody>,
}

#[derive(ApiResponse)]
pub enum UsersOk {
    #[oai(status = 200)]
    Ok(Json<UsersPage>),
}

#[derive(ApiResponse)]
pub enum UserOk {
    #[oai(status = 200)]
    Ok(Json<AdminUserDetail>),
}

#[derive(ApiResponse)]
pub enum EventsOk {
    #[oai(status = 200)]
    Ok(Json<EventsPage>),
}

#[derive(ApiResponse)]
pub enum Done {
    /// Done.
    #[oai(status = 204)]
    Done,
}

fn page_size(limit: Option<u32>) -> Result<u32, Error> {
    match limit.unwrap_or(50) {
        n @ 1..=100 => Ok(n),
        _ => Err(Error::invalid("`limit` is 1 to 100.")),
    }
}

fn bad_cursor() -> Error {
    Error::invalid("This `cursor` is not one this API gave.")
}

fn encode_cursor(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: Option<String>) -> Result<Option<String>, Error> {
    cursor
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(bad_cursor)
        })
        .transpose()
}

pub struct AdminApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "Tag::Admin")]
impl AdminApi {
    /// Find users
    ///
    /// By id, username, phone (in any form), openid or unionid; `q` left out lists everyone.
    /// Paged: send `nextCursor` back as `cursor`.
    #[oai(path = "/users", method = "get", operation_id = "adminSearchUsers")]
    async fn search(
        &self,
        accounts: poem::web::Data<&Accounts>,
        q: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u32>>,
        _auth: AdminAuth,
    ) -> Reply<UsersOk, AdminErrors> {
        let limit = page_size(limit.0)?;
        let after = decode_cursor(cursor.0)?;
        let (users, next) = accounts
            .search_users(q.0.as_deref(), after.as_deref(), limit)
            .await?;
        Ok(UsersOk::Ok(Json(UsersPage {
            users: users.into_iter().map(Into::into).collect(),
            next_cursor: next.as_deref().map(encode_cursor),
        })))
    }

    /// A user, with their live sessions and the latest audit events about them
    #[oai(path = "/users/:id", method = "get", operation_id = "adminGetUser")]
    async fn user(
        &self,
        accounts: poem::web::Data<&Accounts>,
        id: Path<String>,
        _auth: AdminAuth,
    ) -> Reply<UserOk, AdminUserErrors> {
        let record = accounts.user_for_admin(&id.0).await?;
        Ok(UserOk::Ok(Json(AdminUserDetail {
            sessions: record.sessions.iter().map(Into::into).collect(),
            user: record.user.into(),
            recent_events: record.events.into_iter().map(Into::into).collect(),
        })))
    }

    /// Disable a user
    ///
    /// Every session of the user ends at once, on every node; every sign-in way answers 403
    /// `account_disabled` until the user is enabled again.
    #[oai(
        path = "/users/:id/disable",
        method = "post",
        operation_id = "adminDisableUser"
    )]
    async fn disable(
        &self,
        accounts: poem::web::Data<&Accounts>,
        id: Path<String>,
        auth: AdminAuth,
    ) -> Reply<Done, AdminUserErrors> {
        accounts.set_disabled(&id.0, true, auth.actor()).await?;
        Ok(Done::Done)
    }

    /// Enable a disabled user
    #[oai(
        path = "/users/:id/enable",
        method = "post",
        operation_id = "adminEnableUser"
    )]
    async fn enable(
        &self,
        accounts: poem::web::Data<&Accounts>,
        id: Path<String>,
        auth: AdminAuth,
    ) -> Reply<Done, AdminUserErrors> {
        accounts.set_disabled(&id.0, false, auth.actor()).await?;
        Ok(Done::Done)
    }

    /// End every session of a user
    #[oai(
        path = "/users/:id/sessions/end",
        method = "post",
        operation_id = "adminEndSessions"
    )]
    async fn end_sessions(
        &self,
        accounts: poem::web::Data<&Accounts>,
        id: Path<String>,
        auth: AdminAuth,
    ) -> Reply<Done, AdminUserErrors> {
        accounts.end_sessions_of(&id.0, auth.actor()).await?;
        Ok(Done::Done)
    }

    /// Delete a user
    ///
    /// As `DELETE /api/v1/me`: the user, identities, phone and credentials are erased, and
    /// every session and access token of the user fails from now on.
    #[oai(
        path = "/users/:id",
        method = "delete",
        operation_id = "adminDeleteUser"
    )]
    async fn delete(
        &self,
        accounts: poem::web::Data<&Accounts>,
        id: Path<String>,
        auth: AdminAuth,
    ) -> Reply<Done, AdminUserErrors> {
        accounts.delete_user(&id.0, auth.actor()).await?;
        Ok(Done::Done)
    }

    /// The audit log, newest first
    ///
    /// Filtered by `user` (an id), `type` and `before` (a time); paged with `cursor`. No
    /// token, code, password, phone number or openid is in any event.
    #[oai(path = "/audit", method = "get", operation_id = "adminAudit")]
    #[allow(clippy::too_many_arguments)] // poem-openapi takes each query parameter apart
    async fn audit(
        &self,
        accounts: poem::web::Data<&Accounts>,
        user: Query<Option<String>>,
        #[oai(name = "type")] kind: Query<Option<String>>,
        /// Only events before this time (Unix milliseconds).
        before: Query<Option<i64>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u32>>,
        _auth: AdminAuth,
    ) -> Reply<EventsOk, AdminErrors> {
        let limit = page_size(limit.0)?;
        let before = match decode_cursor(cursor.0)? {
            Some(c) => {
                let (at, id) = c.split_once(':').ok_or_else(bad_cursor)?;
                Some((at.parse::<i64>().map_err(|_| bad_cursor())?, id.to_string()))
            }
            // Before a time: every event of an earlier millisecond.
            None => before.0.map(|at| (at, String::new())),
        };
        let q = AuditQuery {
            user_id: user.0,
            kind: kind.0,
            before,
            limit: limit + 1,
        };
        let mut events = accounts.audit_log(&q).await?;
        let more = events.len() > limit as usize;
        events.truncate(limit as usize);
        let next = events
            .last()
            .filter(|_| more)
            .map(|last| encode_cursor(&format!("{}:{}", last.at, last.id)));
        Ok(EventsOk::Ok(Json(EventsPage {
            events: events.into_iter().map(Into::into).collect(),
            next_cursor: next,
        })))
    }
}
