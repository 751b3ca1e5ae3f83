//! `/api/v1/me*`: the signed-in user, their profile and phone number.

use poem::web::Data;
use poem_openapi::{param::Path, payload::Json, types::MaybeUndefined, ApiResponse, OpenApi};

use super::errors::{error_set, Reply};
use super::model::{CredentialsRequest, PhoneBody, PhoneRequest, ProfilePatch, UserBody};
use super::{session, BearerAuth, Tag};
use crate::accounts::Accounts;
use crate::error::Error;
use crate::store::users::ProfileChange;

error_set!(MeErrors: Unauthenticated, ServiceUnavailable);
error_set!(CredentialsErrors: InvalidRequest, Unauthenticated, Conflict, ServiceUnavailable);
error_set!(UnbindErrors: Unauthenticated, NotFound, Conflict, ServiceUnavailable);
error_set!(PatchErrors: InvalidRequest, Unauthenticated, ServiceUnavailable);
error_set!(PhoneErrors: InvalidRequest, DecryptFailed, WatermarkMismatch, WechatCodeInvalid, Unauthenticated, Conflict, WechatRateLimited, WechatUnavailable, WechatError, ServiceUnavailable);

#[derive(ApiResponse)]
pub enum UserOk {
    /// The user, with their identities.
    #[oai(status = 200)]
    Ok(Json<UserBody>),
}

#[derive(ApiResponse)]
pub enum Unbound {
    /// Unbound; that identity's sessions are ended.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
pub enum PhoneOk {
    /// The number, now stored on the user.
    #[oai(status = 200)]
    Ok(Json<PhoneBody>),
}

fn text_change(
    field: &str,
    value: MaybeUndefined<String>,
    check: impl Fn(&str) -> bool,
) -> Result<Option<Option<String>>, Error> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) if check(&v) => Ok(Some(Some(v))),
        MaybeUndefined::Value(_) => Err(Error::invalid(format!(
            "`{field}` is malformed: see the limits in /docs."
        ))),
    }
}

pub struct MeApi;

#[OpenApi(prefix_path = "/api/v1/me", tag = "Tag::Me")]
impl MeApi {
    /// The signed-in user
    #[oai(path = "/", method = "get", operation_id = "getMe")]
    async fn get(&self, accounts: Data<&Accounts>, auth: BearerAuth) -> Reply<UserOk, MeErrors> {
        let (_, _, user) = session(&accounts, &auth).await?;
        Ok(UserOk::Ok(Json(user.into())))
    }

    /// Change nickname or avatar
    ///
    /// Fields left out stay as they are; `null` clears one.
    #[oai(path = "/", method = "patch", operation_id = "patchMe")]
    async fn patch(
        &self,
        accounts: Data<&Accounts>,
        auth: BearerAuth,
        body: Json<ProfilePatch>,
    ) -> Reply<UserOk, PatchErrors> {
        let (_, session, _) = session(&accounts, &auth).await?;
        let change = ProfileChange {
            nickname: text_change("nickname", body.0.nickname, |v| {
                !v.trim().is_empty() && v.chars().count() <= 64
            })?,
            avatar_url: text_change(
                "avatarUrl",
                body.0.avatar_url.map_value(String::from),
                |v| {
                    v.len() <= 1024
                        && url::Url::parse(v).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                },
            )?,
        };
        Ok(UserOk::Ok(Json(
            accounts
                .update_profile(&session.user_id, change)
                .await?
                .into(),
        )))
    }

    /// Read and store the user's phone number
    ///
    /// With `code` (the current `getPhoneNumber` button) the server asks WeChat's
    /// `getuserphonenumber`; with `encryptedData` and `iv` (the older button) it decrypts them
    /// with the session's session_key and checks the watermark. A number that another user owns
    /// is a 409.
    #[oai(path = "/phone", method = "post", operation_id = "setPhone")]
    async fn phone(
        &self,
        accounts: Data<&Accounts>,
        auth: BearerAuth,
        body: Json<PhoneRequest>,
    ) -> Reply<PhoneOk, PhoneErrors> {
        let (_, session, _) = session(&accounts, &auth).await?;
        let phone = match body.0 {
            PhoneRequest { code: Some(code), encrypted_data: None, iv: None } => accounts.phone_by_code(&session, &code).await?,
            PhoneRequest { code: None, encrypted_data: Some(data), iv: Some(iv) } => {
                accounts.phone_by_data(&session, &data, &iv).await?
            }
            _ => {
                return Err(Error::invalid(
                    "Send either `code` (getPhoneNumber's code) or both `encryptedData` and `iv`, not a mix.",
                )
                .into())
            }
        };
        Ok(PhoneOk::Ok(Json(phone.into())))
    }

    /// Give a WeChat-only account a username and password
    ///
    /// For an account that has none yet; a username taken is a 409.
    #[oai(path = "/credentials", method = "put", operation_id = "setCredentials")]
    async fn credentials(
        &self,
        accounts: Data<&Accounts>,
        auth: BearerAuth,
        body: Json<CredentialsRequest>,
    ) -> Reply<UserOk, CredentialsErrors> {
        let (_, session, _) = session(&accounts, &auth).await?;
        let Json(req) = body;
        let user = accounts
            .set_credentials(&session.user_id, &req.username, req.password.into())
            .await?;
        Ok(UserOk::Ok(Json(user.into())))
    }

    /// Unbind the WeChat identity of an app
    ///
    /// Ends that identity's sessions. Refused with 409 where it is the account's last way to
    /// sign in (no other identity, no password).
    #[oai(
        path = "/identities/:appid",
        method = "delete",
        operation_id = "unbindIdentity"
    )]
    async fn unbind(
        &self,
        accounts: Data<&Accounts>,
        auth: BearerAuth,
        appid: Path<String>,
    ) -> Reply<Unbound, UnbindErrors> {
        let (_, session, _) = session(&accounts, &auth).await?;
        accounts.unbind(&session.user_id, &appid.0).await?;
        Ok(Unbound::Done)
    }
}
