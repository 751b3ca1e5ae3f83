//! Alibaba Cloud SMS (`dysmsapi`, action `SendSms`, version `2017-05-25`), RPC style, signed
//! with its documented HMAC-SHA1 signature (SignatureVersion 1.0): the parameters sorted and
//! percent-encoded (RFC 3986), `POST&%2F&` and that string encoded again, HMAC-SHA1 under the
//! AccessKeySecret and `&`, in base64. Tests compare `signature` with Alibaba Cloud's Python
//! SDK (`aliyun-python-sdk-core`); the emulator checks it with code of its own.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha1::Sha1;

use super::{utc_timestamp, with_retries, SmsError};
use crate::config::AliyunSettings;
use crate::domain::PhoneNumber;

pub const VERSION: &str = "2017-05-25";
pub const REGION: &str = "cn-hangzhou";

/// RFC 3986's unreserved characters stay; everything else is encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, RFC3986).to_string()
}

/// The signature (base64) of a request's parameters (all but `Signature`), for `method`.
pub fn signature(secret: &str, method: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<_> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = format!("{method}&{}&{}", encode("/"), encode(&canonical));
    let mut mac =
        Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("HMAC takes any key");
    mac.update(to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// A client of Alibaba Cloud SMS (or of the emulator's side of it).
#[derive(Clone)]
pub struct Aliyun {
    http: reqwest::Client,
    settings: AliyunSettings,
}

impl Aliyun {
    pub fn new(http: reqwest::Client, settings: AliyunSettings) -> Aliyun {
        Aliyun { http, settings }
    }

    /// Sends `code` to `phone`; transport errors, timeouts and the provider's internal errors
    /// are tried again (bounded), anything else is final.
    pub async fn send(&self, phone: &PhoneNumber, code: &str) -> Result<(), SmsError> {
        with_retries(|| self.attempt(phone, code)).await
    }

    async fn attempt(&self, phone: &PhoneNumber, code: &str) -> Result<(), SmsError> {
        let s = &self.settings;
        // Mainland numbers without +86; others as their digits with the country code.
        let number = phone
            .mainland()
            .unwrap_or_else(|| phone.as_str().trim_start_matches('+'));
        let mut params: Vec<(String, String)> = [
            ("AccessKeyId", s.access_key_id.as_str()),
            ("Action", "SendSms"),
            ("Format", "JSON"),
            ("PhoneNumbers", number),
            ("RegionId", REGION),
            ("SignName", s.sign_name.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", s.template_code.as_str()),
            ("Version", VERSION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        params.push(("SignatureNonce".into(), uuid::Uuid::new_v4().to_string()));
        params.push((
            "TemplateParam".into(),
            serde_json::json!({ "code": code }).to_string(),
        ));
        params.push(("Timestamp".into(), utc_timestamp(crate::domain::now())));
        let sig = signature(s.access_key_secret.expose_secret(), "POST", &params);
        params.push(("Signature".into(), sig));
        let answer = self
            .http
            .post(s.endpoint.clone())
            .form(&params)
            .send()
            .await
            .map_err(|e| SmsError::Unavailable(e.without_url().to_string()))?;
        let status = answer.status();
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| SmsError::Unavailable(e.without_url().to_string()))?;
        let Ok(answer) = serde_json::from_slice::<Answer>(&bytes) else {
            return Err(SmsError::Unavailable(format!(
                "Alibaba Cloud answered HTTP {status} with no JSON"
            )));
        };
        match answer.code.as_str() {
            "OK" => Ok(()),
            code => Err(classify(code, &answer.message)),
        }
    }
}

/// What a provider's error code means for us.
fn classify(code: &str, message: &str) -> SmsError {
    let text = format!("{code}: {message}");
    let limited = [
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.DAY_LIMIT_CONTROL",
        "Throttling",
    ];
    let internal = ["InternalError", "ServiceUnavailable", "isp.SYSTEM_ERROR"];
    if internal.iter().any(|c| code.starts_with(c)) {
        SmsError::Unavailable(text)
    } else if limited.iter().any(|c| code.starts_with(c)) {
        SmsError::Limited(text)
    } else {
        SmsError::Refused(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Alibaba Cloud's own SDK (PyPI `aliyun-python-sdk-core`,
    /// `rpc_signature_composer`) computes for these parameters; tests/thirdparty also checks
    /// live requests against it.
    #[test]
    fn signatures_are_what_alibaba_clouds_sdk_computes() {
        let params: Vec<(String, String)> = [
            ("AccessKeyId", "LTAItest"),
            ("Action", "SendSms"),
            ("Format", "JSON"),
            ("PhoneNumbers", "13800138000"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "微信登录"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3f1c5e8a-7b2d-4c9e-8f10-2a6b4d9e0c11"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_100001"),
            ("TemplateParam", r#"{"code":"204816"}"#),
            ("Timestamp", "2026-12-02T01:02:03Z"),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .rev()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature("wxlogin-test-aliyun-secret", "POST", &params),
            "iqDXNSJ1crKpmJCjrV0kc8QNv0U="
        );
    }

    #[test]
    fn provider_codes_are_classified() {
        assert!(matches!(
            classify("isp.SYSTEM_ERROR", ""),
            SmsError::Unavailable(_)
        ));
        assert!(matches!(
            classify("isv.BUSINESS_LIMIT_CONTROL", ""),
            SmsError::Limited(_)
        ));
        assert!(matches!(
            classify("isv.MOBILE_NUMBER_ILLEGAL", ""),
            SmsError::Refused(_)
        ));
        assert!(matches!(
            classify("SignatureDoesNotMatch", ""),
            SmsError::Refused(_)
        ));
        assert!(matches!(
            classify("isp.RAM_PERMISSION_DENY", ""),
            SmsError::Refused(_)
        ));
    }
}
