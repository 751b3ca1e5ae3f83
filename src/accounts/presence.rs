//! Proof of presence: a lasting change (a password set, an identity unbound) needs more than a
//! bearer token, which may have been stolen. The person proves they hold the account now: a
//! fresh `wx.login` code of one of its mini program identities, its current password, or a code
//! sent by SMS to its verified phone.
//! Without a valid proof, 403 `reauthentication_required` and nothing changes.

use serde_json::json;

use super::sessions::Authenticated;
use super::sms::SmsPurpose;
use super::Accounts;
use crate::domain::{
    Credentials, Password, PhoneNumber, Provider, Shaped, SmsCode, Username, WxCode,
};
use crate::error::{Code, Error, Result};

/// What a person sends to show they are there.
pub enum Proof {
    /// A fresh `wx.login` code of one of the account's mini program identities.
    Code(WxCode),
    /// The account's current password.
    CurrentPassword(Password),
    /// A code sent by SMS to the account's verified phone (`purpose: bind`).
    SmsCode(String),
}

/// The 403 of a missing or wrong proof.
fn refused(why: &str) -> Error {
    Error::new(Code::ReauthenticationRequired, why)
}

impl Accounts {
    /// Checks a proof of presence for the user of `auth`. A code is swapped at WeChat like any
    /// other; where it is of the session's own identity, its session_key becomes the session's
    /// (a `wx.login` may have rotated it).
    pub(super) async fn prove_presence(&self, auth: &Authenticated, proof: Proof) -> Result<()> {
        let user = &auth.user;
        let proved = match proof {
            Proof::Code(code) => self.prove_by_code(auth, &code).await?,
            Proof::CurrentPassword(password) => {
                let Some(username) = user.username.clone().and_then(|u| Username::parse(u).ok())
                else {
                    return Err(refused(
                        "This account has no password: prove it is you with a fresh wx.login \
                         `code`.",
                    ));
                };
                let credentials = Credentials { username, password };
                match self.check_credentials(credentials).await {
                    Ok(id) => id == user.id,
                    Err(e) if e.code == Code::InvalidCredentials => false,
                    Err(e) => return Err(e),
                }
            }
            Proof::SmsCode(code) => self.prove_by_sms(auth, &code).await?,
        };
        if proved {
            Ok(())
        } else {
            tracing::warn!(
                user_id = %user.id,
                event = "reauthentication_failed",
                "a proof of presence was refused"
            );
            self.audit("reauthentication_failed", Some(&user.id), json!({}));
            Err(refused(
                "The proof is wrong: send a fresh wx.login `code` of this account's mini \
                 program, or its `currentPassword`. Nothing changed.",
            ))
        }
    }

    /// Whether an SMS code (sent with `purpose: bind`) is the one sent to the user's verified
    /// phone.
    async fn prove_by_sms(&self, auth: &Authenticated, code: &str) -> Result<bool> {
        if self.inner.sms.is_none() {
            return Err(refused(
                "This server sends no SMS codes: prove it is you with a fresh wx.login `code` or \
                 `currentPassword`.",
            ));
        }
        let phone = auth.user.phone_number.clone().map(PhoneNumber::parse);
        let Some(Ok(phone)) = phone else {
            return Err(refused(
                "This account has no verified phone: prove it is you with a fresh wx.login \
                 `code` or `currentPassword`.",
            ));
        };
        let Ok(code) = SmsCode::parse(code.to_string()) else {
            return Ok(false);
        };
        match self.check_sms_code(&phone, SmsPurpose::Bind, &code).await {
            Ok(()) => Ok(true),
            Err(e) if e.code == Code::SmsCodeInvalid => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether a code is of one of the user's mini program identities: the session's own app
    /// where the session is a mini program's, else the first configured app the user has.
    async fn prove_by_code(&self, auth: &Authenticated, code: &WxCode) -> Result<bool> {
        let user = &auth.user;
        let apps = &self.inner.apps.miniprograms;
        let app = match auth.session.wechat_identity() {
            Some((appid, _)) => apps.iter().find(|a| a.appid == appid),
            None => apps.iter().find(|a| {
                user.identities
                    .iter()
                    .any(|i| i.provider == Provider::MiniProgram && i.appid == a.appid)
            }),
        };
        let Some(app) = app else {
            return Err(refused(
                "This account has no mini program identity to prove it with: send \
                 `currentPassword`.",
            ));
        };
        let wx = match self
            .inner
            .wechat
            .code2session(&app.appid, &app.secret, code)
            .await
        {
            Ok(wx) => wx,
            Err(e) => {
                let e = Error::from(e);
                return match e.code {
                    Code::WechatCodeInvalid => Ok(false),
                    _ => Err(e),
                };
            }
        };
        if user.identity(&app.appid, &wx.openid).is_none() {
            return Ok(false);
        }
        if auth.session.wechat_identity() == Some((app.appid.as_str(), wx.openid.as_str())) {
            self.renew_session_key(&auth.session_id, &auth.session, wx.session_key)
                .await?;
        }
        Ok(true)
    }
}
