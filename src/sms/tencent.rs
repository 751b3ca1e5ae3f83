//! Tencent Cloud SMS, API 3.0: action `SendSms`, version `2021-01-11`, signed with
//! TC3-HMAC-SHA256 (SMS.md). The emulator checks the signature with its own code, written from
//! SMS.md apart, and tests compare `sign` with Tencent Cloud's Python SDK.

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{utc_date, with_retries, SmsError};
use crate::config::TencentSettings;
use crate::domain::PhoneNumber;

pub const ACTION: &str = "SendSms";
pub const VERSION: &str = "2021-01-11";
pub const SERVICE: &str = "sms";
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The TC3-HMAC-SHA256 signature (hex) of a `POST /` with a body, signing `content-type` and
/// `host`, each as sent (the Host header with its port where it has one).
pub fn sign(
    secret_key: &str,
    content_type: &str,
    host: &str,
    body: &[u8],
    timestamp: i64,
) -> String {
    let date = utc_date(timestamp);
    let canonical = format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\ncontent-type;host\n{}",
        content_type.trim().to_ascii_lowercase(),
        host.trim().to_ascii_lowercase(),
        sha256_hex(body)
    );
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/{SERVICE}/tc3_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), &date);
    let k_service = hmac(&k_date, SERVICE);
    let k_signing = hmac(&k_service, "tc3_request");
    hex::encode(hmac(&k_signing, &to_sign))
}

/// The `Authorization` header of a request.
pub fn authorization(secret_id: &str, signature: &str, timestamp: i64) -> String {
    let date = utc_date(timestamp);
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{date}/{SERVICE}/tc3_request, \
         SignedHeaders=content-type;host, Signature={signature}"
    )
}

/// The Host header of an endpoint: its host, and its port where one is written.
pub fn host_of(endpoint: &url::Url) -> String {
    let host = endpoint.host_str().unwrap_or_default();
    match endpoint.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Answer,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Error")]
    error: Option<ApiError>,
    #[serde(rename = "SendStatusSet", default)]
    send_status_set: Vec<SendStatus>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

#[derive(Deserialize)]
struct SendStatus {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// A client of Tencent Cloud SMS (or of the emulator's SMS side).
#[derive(Clone)]
pub struct Tencent {
    http: reqwest::Client,
    settings: TencentSettings,
}

impl Tencent {
    pub fn new(http: reqwest::Client, settings: TencentSettings) -> Tencent {
        Tencent { http, settings }
    }

    /// Sends `code` to `phone`; transport errors, timeouts and `InternalError*` are tried
    /// again (bounded), anything else is final.
    pub async fn send(&self, phone: &PhoneNumber, code: &str) -> Result<(), SmsError> {
        let s = &self.settings;
        let body = serde_json::to_vec(&serde_json::json!({
            "PhoneNumberSet": [phone.as_str()],
            "SmsSdkAppId": s.sdk_app_id,
            "SignName": s.sign_name,
            "TemplateId": s.template_id,
            "TemplateParamSet": [code],
        }))
        .expect("JSON of strings");
        with_retries(|| self.attempt(&body)).await
    }

    async fn attempt(&self, body: &[u8]) -> Result<(), SmsError> {
        let s = &self.settings;
        let timestamp = crate::domain::now();
        let host = host_of(&s.endpoint);
        let signature = sign(
            s.secret_key.expose_secret(),
            CONTENT_TYPE,
            &host,
            body,
            timestamp,
        );
        let answer = self
            .http
            .post(s.endpoint.clone())
            .header(reqwest::header::HOST, &host)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header("X-TC-Action", ACTION)
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", timestamp.to_string())
            .header("X-TC-Region", &s.region)
            .header(
                reqwest::header::AUTHORIZATION,
                authorization(&s.secret_id, &signature, timestamp),
            )
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| SmsError::Unavailable(e.without_url().to_string()))?;
        let status = answer.status();
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| SmsError::Unavailable(e.without_url().to_string()))?;
        let Ok(Envelope { response }) = serde_json::from_slice::<Envelope>(&bytes) else {
            return Err(SmsError::Unavailable(format!(
                "Tencent Cloud answered HTTP {status} with no Response"
            )));
        };
        if let Some(e) = response.error {
            return Err(classify(&e.code, &e.message));
        }
        match response.send_status_set.first() {
            Some(one) if one.code == "Ok" => Ok(()),
            Some(one) => Err(classify(&one.code, &one.message)),
            None => Err(SmsError::Refused("SendStatusSet is empty".into())),
        }
    }
}

/// What a provider's error code means for us.
fn classify(code: &str, message: &str) -> SmsError {
    if code.starts_with("InternalError") {
        SmsError::Unavailable(format!("{code}: {message}"))
    } else if code.starts_with("LimitExceeded") || code == "RequestLimitExceeded" {
        SmsError::Limited(format!("{code}: {message}"))
    } else {
        SmsError::Refused(format!("{code}: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signatures that Tencent Cloud's own SDK (PyPI `tencentcloud-sdk-python-common` 3.1.153,
    /// `AbstractClient._get_tc3_signature`) computed for these inputs; tests/thirdparty also
    /// checks live requests against it.
    #[test]
    fn signatures_are_what_tencent_clouds_sdk_computes() {
        let body = br#"{"PhoneNumberSet":["+8613800138000"],"SmsSdkAppId":"1400000001","SignName":"wxlogin","TemplateId":"100001","TemplateParamSet":["204816"]}"#;
        let key = "wxlogin-test-secret-key-0123456789";
        let at = 1_796_169_600 + 3723;
        assert_eq!(
            sign(key, CONTENT_TYPE, "sms.tencentcloudapi.com", body, at),
            "a04ab9a6f958d022433b7507e298d7225ce5d00b86df460db24402720828c5e2"
        );
        assert_eq!(
            sign(key, CONTENT_TYPE, "127.0.0.1:8081", body, at),
            "e1a052d70cdad2e16d6209bf7845efc7c244a805616948deca9144aec536f760"
        );
    }

    #[test]
    fn provider_codes_are_classified() {
        assert!(matches!(
            classify("InternalError.Timeout", ""),
            SmsError::Unavailable(_)
        ));
        assert!(matches!(
            classify("LimitExceeded.PhoneNumberDailyLimit", ""),
            SmsError::Limited(_)
        ));
        assert!(matches!(
            classify("RequestLimitExceeded", ""),
            SmsError::Limited(_)
        ));
        assert!(matches!(
            classify("AuthFailure.SignatureFailure", ""),
            SmsError::Refused(_)
        ));
    }
}
