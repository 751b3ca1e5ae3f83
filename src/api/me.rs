//! `/api/v1/me*`: the signed-in user, their profile and phone number.

use poem::web::Data;
use poem_openapi::{param::Path, payload::Json, ApiResponse, OpenApi};

use super::errors::{error_set, Reply};
use super::model::{change, CredentialsRequest, PhoneBody, PhoneRequest, ProfilePatch, UserBody};
use super::{BearerAuth, Tag};
use crate::accounts::Accounts;
use crate::domain::{Credentials, ProfileChange};
use crate::error::Error;

error_set!(MeErrors: Unauthenticated, ServiceUnavailable);
error_set!(CredentialsErrors: InvalidRequest, Unauthenticated, Conflict, ServiceUnavailable);
error_set!(UnbindErrors: Unauthenticated, NotFound, Conflict, ServiceUnavailable);
error_set!(PatchErrors: InvalidRequest, Unauthenticated, ServiceUnavailable);
error_set!(PhoneErrors:
    InvalidRequest, DecryptFailed, WatermarkMismatch, WechatCodeInvalid, Unauthenticated, Conflict,
    WechatRateLimited, WechatUnavailable, WechatError, ServiceUnavailable
);

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

pub struct MeApi;

#[OpenApi(prefix_path = "/api/v1/me", tag = "Tag::Me")]
impl MeApi {
    /// The signed-in user
    #[oai(path = "/", method = "get", operation_id = "getMe")]
    async fn get(&self, auth: BearerAuth) -> Reply<UserOk, MeErrors> {
        Ok(UserOk::Ok(Json(auth.0.user.into())))
    }

    /// Change nickname or avatar
    ///
    /// Fields left out stay as they are; `null` clears one.
    #[oai(path = "/", method = "patch", operation_id = "patchMe")]
    async fn patch(
        &self,
        accounts: Data<&Accounts>,
        body: Json<ProfilePatch>,
        auth: BearerAuth,
    ) -> Reply<UserOk, PatchErrors> {
        let change = ProfileChange {
            nickname: change(body.0.nickname),
            avatar_url: change(body.0.avatar_url),
        };
        let user = accounts.update_profile(&auth.0.user.id, change).await?;
        Ok(UserOk::Ok(Json(user.into())))
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
        body: Json<PhoneRequest>,
        auth: BearerAuth,
    ) -> Reply<PhoneOk, PhoneErrors> {
        let session = &auth.0.session;
        let phone = match body.0 {
            PhoneRequest {
                code: Some(code),
                encrypted_data: None,
                iv: None,
            } => accounts.phone_by_code(session, &code.0).await?,
            PhoneRequest {
                code: None,
                encrypted_data: Some(data),
                iv: Some(iv),
            } => accounts.phone_by_data(session, &data, &iv).await?,
            _ => {
                return Err(Error::invalid(
                    "Send either `code` (getPhoneNumber's code) or both `encryptedData` and \
                     `iv`, not a mix.",
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
        body: Json<CredentialsRequest>,
        auth: BearerAuth,
    ) -> Reply<UserOk, CredentialsErrors> {
        let credentials = Credentials::from(body.0);
        let user = accounts
            .set_credentials(&auth.0.user.id, credentials)
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
        appid: Path<String>,
        auth: BearerAuth,
    ) -> Reply<Unbound, UnbindErrors> {
        accounts.unbind(&auth.0.user.id, &appid.0).await?;
        Ok(Unbound::Done)
    }
}
