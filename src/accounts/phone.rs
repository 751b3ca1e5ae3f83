//! Phone numbers (the `getPhoneNumber` button, current and older) and open data: what WeChat
//! encrypted with the session's session_key.

use serde_json::json;

use super::presence::Proof;
use super::sessions::{wechat_part, Authenticated};
use super::Accounts;
use crate::domain::{now, Phone, PhoneNumber, WxCode};
use crate::error::{Code, Error, Result, DECRYPT_FAILED};
use crate::wechat::{crypto, errcode, WechatError};

/// Open data after decryption, the watermark apart.
pub struct OpenData {
    pub data: serde_json::Map<String, serde_json::Value>,
    pub watermark: serde_json::Value,
}

/// A number from WeChat's phone button, as it is stored and answered: `phoneNumber` in E.164
/// (WeChat's own `phoneNumber` where its parts are not digits), WeChat's two parts beside.
fn wechat_phone(phone_number: String, pure_phone_number: String, country_code: String) -> Phone {
    let e164 = PhoneNumber::of_wechat(&country_code, &pure_phone_number);
    Phone {
        phone_number: e164.map_or(phone_number, |p| p.as_str().to_string()),
        pure_phone_number,
        country_code,
    }
}

/// The audit event of a user's phone set or replaced (the number itself is never in the log).
pub(super) fn phone_changed(user_id: &str) -> crate::store::audit::AuditEvent {
    super::audit::event("phone_changed", Some(user_id), json!({}))
}

impl Accounts {
    /// Reads the phone number with a `getPhoneNumber` code and stores it on the user.
    pub async fn phone_by_code(
        &self,
        auth: &Authenticated,
        code: &WxCode,
        proof: Option<Proof>,
    ) -> Result<Phone> {
        let session = &auth.session;
        let (appid, openid) = wechat_part(session)?;
        let app = self.miniprogram(Some(appid))?;
        let tokens = &self.inner.wechat_tokens;
        let mut access_token = tokens.get(app).await?;
        let mut refreshed = false;
        let info = loop {
            match self
                .inner
                .wechat
                .phone_number(&access_token, code, Some(openid))
                .await
            {
                Err(WechatError::Api(a))
                    if !refreshed
                        && matches!(
                            a.errcode,
                            errcode::INVALID_CREDENTIAL | errcode::ACCESS_TOKEN_EXPIRED
                        ) =>
                {
                    tracing::warn!(
                        appid = %app.appid,
                        errcode = a.errcode,
                        "access_token refused; fetching a new one"
                    );
                    access_token = tokens.replace(app, &access_token).await?;
                    refreshed = true;
                }
                other => break other?,
            }
        };
        let phone = wechat_phone(info.phone_number, info.pure_phone_number, info.country_code);
        self.store_phone(auth, phone, proof).await
    }

    /// Reads the phone number from the older button's encryptedData and stores it on the user.
    pub async fn phone_by_data(
        &self,
        auth: &Authenticated,
        encrypted_data: &str,
        iv: &str,
        proof: Option<Proof>,
    ) -> Result<Phone> {
        let open = self.decrypt(auth, encrypted_data, iv, None).await?;
        let field = |name: &str| match open.data.get(name) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (Some(phone_number), Some(pure_phone_number), Some(country_code)) = (
            field("phoneNumber"),
            field("purePhoneNumber"),
            field("countryCode"),
        ) else {
            return Err(Error::invalid(
                "This encryptedData holds no phone number: send what the getPhoneNumber button \
                 gave.",
            ));
        };
        let phone = wechat_phone(phone_number, pure_phone_number, country_code);
        self.store_phone(auth, phone, proof).await
    }

    /// Stores a phone on the user. Replacing another phone needs a proof of presence (a
    /// stolen token must not move the account to the thief's number); the same number again
    /// changes nothing and needs none.
    pub(super) async fn store_phone(
        &self,
        auth: &Authenticated,
        phone: Phone,
        proof: Option<Proof>,
    ) -> Result<Phone> {
        let session = &auth.session;
        let user = &auth.user;
        // The number the user has already (the phone button pressed again): nothing to write.
        if user.phone_number.as_deref() == Some(&phone.phone_number)
            && user.pure_phone_number.as_deref() == Some(&phone.pure_phone_number)
            && user.country_code.as_deref() == Some(&phone.country_code)
        {
            return Ok(phone);
        }
        let old = user.phone_number.as_deref();
        if old.is_some_and(|old| old != phone.phone_number) {
            let proof = proof.ok_or_else(|| {
                Error::new(
                    Code::ReauthenticationRequired,
                    "This account has another phone already: replacing it needs a proof that \
                     you are here, `proofCode` (a fresh wx.login code) or `currentPassword`.",
                )
            })?;
            self.prove_presence(auth, proof).await?;
        }
        self.inner
            .stores
            .users
            .set_phone(&session.user_id, &phone, &phone_changed(&session.user_id))
            .await?;
        Ok(phone)
    }

    /// Decrypts open data with the session's session_key (the previous one too, within five
    /// minutes of a refresh), checks the watermark and, where given, the signature, and records a
    /// unionId the identity had not, once: after that, decryption is computation alone.
    pub async fn decrypt(
        &self,
        auth: &Authenticated,
        encrypted_data: &str,
        iv: &str,
        signed: Option<(&str, &str)>,
    ) -> Result<OpenData> {
        let bad = |e: crypto::DecryptError| {
            Error::invalid(format!(
                "{e}: send encryptedData and iv exactly as WeChat gave them (base64; iv is 16 \
                 bytes)."
            ))
        };
        let session = &auth.session;
        let (appid, _) = wechat_part(session)?;
        let iv = crypto::decode_block("iv", iv).map_err(bad)?;
        let data = crypto::decode_b64("encryptedData", encrypted_data).map_err(bad)?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(bad(crypto::DecryptError::Length("encryptedData")));
        }
        let mut found = None;
        for key_text in session.decryption_keys(now()) {
            let Ok(key) = crypto::decode_block("session_key", key_text) else {
                continue;
            };
            if let Ok(plain) = crypto::decrypt_raw(&key, &iv, data.clone()) {
                found = Some((key_text, plain));
                break;
            }
        }
        let Some((key_used, mut data)) = found else {
            return Err(Error::new(Code::DecryptFailed, DECRYPT_FAILED));
        };
        let watermark = data.remove("watermark").unwrap_or(serde_json::Value::Null);
        if watermark.get("appid").and_then(|a| a.as_str()) != Some(appid) {
            return Err(Error::new(
                Code::WatermarkMismatch,
                "The data's watermark names another mini program: it was not made for this \
                 session. Ask for the data again in this mini program.",
            ));
        }
        if let Some((raw_data, signature)) = signed {
            if !crypto::signature_matches(raw_data, key_used, signature) {
                return Err(Error::new(
                    Code::SignatureMismatch,
                    "signature is not sha1(rawData + session_key): send rawData and signature \
                     unchanged, from the same call as encryptedData.",
                ));
            }
        }
        // A session marked as knowing its identity's unionid has nothing to learn (nor to check):
        // its decryptions are computation alone.
        if let (false, Some(serde_json::Value::String(unionid))) =
            (session.unionid_known, data.get("unionId"))
        {
            // (Boxed: taken once per session, and large.)
            Box::pin(self.learn_unionid(auth, unionid, data.get("openId"))).await?;
        }
        Ok(OpenData { data, watermark })
    }

    /// Records a unionId that decrypted data carries, where the identity has none yet and the
    /// data is the session's own user's (its `openId`, where present, is the session's). The
    /// session is not written: its user's identity now has the unionid, which the next
    /// decryptions see in the user they read with the session, and so write nothing (nor does a
    /// write of the whole session race a refresh of its session_key). Data that names another
    /// openId is warned of, once per session.
    async fn learn_unionid(
        &self,
        auth: &Authenticated,
        unionid: &str,
        data_openid: Option<&serde_json::Value>,
    ) -> Result<()> {
        let session = &auth.session;
        let Some((appid, openid)) = session.wechat_identity() else {
            return Ok(());
        };
        let stores = &self.inner.stores;
        if data_openid.is_some_and(|o| o.as_str() != Some(openid)) {
            if stores.sessions.first_foreign_data(&auth.session_id).await? {
                tracing::warn!(
                    user_id = %session.user_id,
                    "decrypted data names another openId than the session's: its unionId is \
                     ignored"
                );
            }
            return Ok(());
        }
        let known = auth
            .user
            .identity(appid, openid)
            .is_some_and(|i| i.unionid.is_some());
        if !known {
            stores
                .users
                .record_unionid(&session.user_id, appid, openid, unionid)
                .await?;
        }
        Ok(())
    }
}
