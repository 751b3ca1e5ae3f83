//! `/api/v1/me*`: the signed-in user, their profile and phone number.

use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{param::Path, payload::Json, ApiResponse, Object, OpenApi};

use super::admin::SessionInfo;
use super::errors::{error_set, Reply};
use super::model::{change, Field, ProfilePatch, UserBody};
use super::phone_model::{PhoneBody, PhoneRequest};
use super::{BearerAuth, Tag};
use crate::accounts::{Accounts, Proof};
use crate::domain::{Credentials, Password, ProfileChange, Username, WxCode};
use crate::error::{Code, Error};

error_set!(MeErrors: Unauthenticated, ServiceUnavailable);
error_set!(CredentialsErrors:
    InvalidRequest, Unauthenticated, ReauthenticationRequired, Conflict, AccountLocked,
    WechatRateLimited, WechatUnavailable, WechatError, ServiceUnavailable
);
error_set!(UnbindErrors:
    InvalidRequest, Unauthenticated, ReauthenticationRequired, NotFound, Conflict, AccountLocked,
    WechatRateLimited, RateLimited, WechatUnavailable, WechatError, ServiceUnavailable
);

/// `PUT /api/v1/me/credentials`: the new username and password, and a fresh `wx.login` code as
/// proof that the account's owner is there.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct SetCredentialsRequest {
    /// 3 to 32 characters: letters, digits, `_`, `.`, `-`; unique without regard to case.
    pub username: Field<Username>,
    /// 12 to 128 characters (`WXLOGIN_PASSWORD_MIN_LENGTH`); stored only as an argon2id hash.
    #[oai(write_only)]
    pub password: Field<Password>,
    /// A fresh `wx.login` code of one of the account's mini program identities. Missing or
    /// wrong: 403 `reauthentication_required`.
    pub code: Option<Field<WxCode>>,
}

impl Example for SetCredentialsRequest {
    fn example() -> Self {
        SetCredentialsRequest {
            username: Field::of("band"),
            password: Field::of("correct horse battery 9"),
            code: Some(Field::of("0a3Xk2000Nfpu03mVb300rUVzN3Xk20K")),
        }
    }
}

/// A proof that the account's owner is there, for a lasting change: one of the fields.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct ProofRequest {
    /// A fresh `wx.login` code of one of the account's mini program identities.
    pub code: Option<Field<WxCode>>,
    /// The account's password (where it has one). Wrong ones count towards the lockout.
    #[oai(write_only)]
    pub current_password: Option<Field<Password>>,
    /// A code sent by SMS to the account's verified phone (`purpose: bind`), for an account
    /// with neither a mini program identity nor a password.
    #[oai(validator(max_length = 16))]
    pub sms_code: Option<String>,
}

impl Example for ProofRequest {
    fn example() -> Self {
        ProofRequest {
            code: Some(Field::of("0a3Xk2000Nfpu03mVb300rUVzN3Xk20K")),
            current_password: None,
            sms_code: None,
        }
    }
}

impl ProofRequest {
    /// The one proof sent; two at once is malformed.
    fn proof(self) -> Result<Option<Proof>, Error> {
        let proofs = [
            self.code.map(|c| Proof::Code(c.0)),
            self.current_password.map(|p| Proof::CurrentPassword(p.0)),
            self.sms_code.map(Proof::SmsCode),
        ];
        let mut sent = proofs.into_iter().flatten();
        let first = sent.next();
        if sent.next().is_some() {
            return Err(Error::invalid(
                "Send one proof: `code`, `currentPassword` or `smsCode`.",
            ));
        }
        Ok(first)
    }
}
error_set!(DeleteMeErrors:
    InvalidRequest, Unauthenticated, ReauthenticationRequired, AccountLocked, WechatRateLimited,
    RateLimited, WechatUnavailable, WechatError, ServiceUnavailable
);
error_set!(PatchErrors: InvalidRequest, Unauthenticated, ServiceUnavailable);
error_set!(PhoneErrors:
    InvalidRequest, DecryptFailed, WatermarkMismatch, WechatCodeInvalid, Unauthenticated,
    ReauthenticationRequired, SmsCodeInvalid, NotFound, Conflict, AccountLocked,
    WechatRateLimited, RateLimited, WechatUnavailable, WechatError, ServiceUnavailable
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
pub enum Deleted {
    /// The account is erased; every session and access token of it fails from now on.
    #[oai(status = 204)]
    Done,
}

/// Everything stored about the user: no secret, no token.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ExportBody {
    /// The profile, identities and phone.
    pub user: UserBody,
    /// The session of this request: when it began, through which app.
    pub current_session: SessionInfo,
    /// Every live session: when it began, through which app (never a token).
    pub sessions: Vec<SessionInfo>,
    /// The audit log's events about the user, newest first.
    pub audit_events: Vec<super::admin::AuditEventBody>,
    /// RFC 3339.
    pub exported_at: String,
}

#[derive(ApiResponse)]
pub enum ExportOk {
    #[oai(status = 200)]
    Ok(Json<ExportBody>),
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
    /// with the session's session_key and checks the watermark; with `phoneNumber` and
    /// `smsCode`, a code sent with `purpose: bind` verifies it. A number that another user owns
    /// is a 409. Replacing the user's other phone needs `proofCode` (a fresh `wx.login` code)
    /// or `currentPassword`, else 403 `reauthentication_required`.
    #[oai(path = "/phone", method = "post", operation_id = "setPhone")]
    async fn phone(
        &self,
        accounts: Data<&Accounts>,
        body: Json<PhoneRequest>,
        auth: BearerAuth,
    ) -> Reply<PhoneOk, PhoneErrors> {
        let PhoneRequest {
            code,
            encrypted_data,
            iv,
            phone_number,
            sms_code,
            proof_code,
            current_password,
        } = body.0;
        let proof = match (proof_code, current_password) {
            (None, None) => None,
            (Some(code), None) => Some(Proof::Code(code.0)),
            (None, Some(password)) => Some(Proof::CurrentPassword(password.0)),
            (Some(_), Some(_)) => {
                let e = Error::invalid("Send one proof: `proofCode` or `currentPassword`.");
                return Err(e.into());
            }
        };
        let auth = &auth.0;
        let phone =
            match (code, encrypted_data, iv, phone_number, sms_code) {
                (Some(code), None, None, None, None) => {
                    accounts.phone_by_code(auth, &code.0, proof).await?
                }
                (None, Some(data), Some(iv), None, None) => {
                    accounts.phone_by_data(auth, &data, &iv, proof).await?
                }
                (None, None, None, Some(phone), Some(sms_code)) => {
                    accounts
                        .phone_by_sms(auth, &phone.0, &sms_code.0, proof)
                        .await?
                }
                _ => return Err(Error::invalid(
                    "Send `code` (getPhoneNumber's code), or both `encryptedData` and `iv`, or \
                     both `phoneNumber` and `smsCode`; not a mix.",
                )
                .into()),
            };
        Ok(PhoneOk::Ok(Json(phone.into())))
    }

    /// Give a WeChat-only account a username and password
    ///
    /// For an account that has none yet; a username taken is a 409. A bearer token alone is not
    /// enough (it may have been stolen): `code`, a fresh `wx.login` code of one of the account's
    /// mini program identities, proves the owner is there, else 403
    /// `reauthentication_required` and nothing changes.
    #[oai(path = "/credentials", method = "put", operation_id = "setCredentials")]
    async fn credentials(
        &self,
        accounts: Data<&Accounts>,
        body: Json<SetCredentialsRequest>,
        auth: BearerAuth,
    ) -> Reply<UserOk, CredentialsErrors> {
        let body = body.0;
        let credentials = Credentials {
            username: body.username.0,
            password: body.password.0,
        };
        let code = body.code.map(|c| c.0);
        let user = accounts.set_credentials(&auth.0, credentials, code).await?;
        Ok(UserOk::Ok(Json(user.into())))
    }

    /// Unbind the WeChat identity of an app
    ///
    /// Ends that identity's sessions. Refused with 409 where it is the account's last way to
    /// sign in (no other identity, no password). Needs a proof that the owner is there, in the
    /// body: `{"code"}` (a fresh `wx.login` code) or `{"currentPassword"}`; without a valid one,
    /// 403 `reauthentication_required` and nothing changes.
    #[oai(
        path = "/identities/:appid",
        method = "delete",
        operation_id = "unbindIdentity"
    )]
    async fn unbind(
        &self,
        accounts: Data<&Accounts>,
        appid: Path<String>,
        body: Json<ProofRequest>,
        auth: BearerAuth,
    ) -> Reply<Unbound, UnbindErrors> {
        let proof = body.0.proof()?;
        accounts.unbind(&auth.0, &appid.0, proof).await?;
        Ok(Unbound::Done)
    }

    /// Delete the account
    ///
    /// Erases the user, identities, phone and credentials, and ends every session and access
    /// token of the user on every node; the same WeChat user signing in again is a new user.
    /// Needs a proof that the owner is there, in the body: `{"code"}` (a fresh `wx.login`
    /// code), `{"currentPassword"}` or `{"smsCode"}`; without a valid one, 403
    /// `reauthentication_required` and nothing changes.
    #[oai(path = "/", method = "delete", operation_id = "deleteMe")]
    async fn delete(
        &self,
        accounts: Data<&Accounts>,
        body: Json<ProofRequest>,
        auth: BearerAuth,
    ) -> Reply<Deleted, DeleteMeErrors> {
        let proof = body.0.proof()?.ok_or_else(|| {
            Error::new(
                Code::ReauthenticationRequired,
                "Deleting the account needs a proof that you are here: `code` (a fresh wx.login \
                 code), `currentPassword` or `smsCode`.",
            )
        })?;
        accounts.delete_me(&auth.0, proof).await?;
        Ok(Deleted::Done)
    }

    /// Everything stored about you
    ///
    /// The profile, identities, phone, this session, and the audit log's events about you:
    /// what China's Personal Information Protection Law (art. 45) lets a person ask for. No
    /// secret and no token.
    #[oai(path = "/export", method = "get", operation_id = "exportMe")]
    async fn export(
        &self,
        accounts: Data<&Accounts>,
        auth: BearerAuth,
    ) -> Reply<ExportOk, MeErrors> {
        let current_session = SessionInfo::from(&auth.0.session);
        let record = accounts.export(&auth.0).await?;
        let now = std::time::SystemTime::now();
        Ok(ExportOk::Ok(Json(ExportBody {
            sessions: record.sessions.iter().map(Into::into).collect(),
            user: record.user.into(),
            current_session,
            audit_events: record.events.into_iter().map(Into::into).collect(),
            exported_at: humantime::format_rfc3339_seconds(now).to_string(),
        })))
    }
}
