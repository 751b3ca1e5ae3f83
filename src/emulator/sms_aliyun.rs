//! The emulator's Alibaba Cloud SMS side: `dysmsapi`'s `SendSms` (version `2017-05-25`), RPC
//! style at `POST /`, its parameters in the query or a form body, checked as Alibaba Cloud
//! does: the HMAC-SHA1 signature (SignatureVersion 1.0) with code of its own, a Timestamp
//! within 15 minutes, a SignatureNonce used once. Sent codes go to the same inbox as Tencent's.
//! A fault on path `/sms/aliyun` answers its `errmsg` as the `Code`.

use std::collections::BTreeMap;

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use poem::http::StatusCode;
use poem::{Request, Response};
use serde_json::{json, Value};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::sms::{days_in_year, month_lengths, SentSms};
use super::Emulator;
use crate::config::{
    EMULATOR_ACCESS_KEY_ID, EMULATOR_ACCESS_KEY_SECRET, EMULATOR_SIGN_NAME, EMULATOR_TEMPLATE_CODE,
};

/// Whether a request is for the Alibaba Cloud side: `POST /` with RPC parameters.
pub fn is_aliyun(req: &Request) -> bool {
    let form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let query = req.uri().query().unwrap_or_default();
    req.method() == poem::http::Method::POST
        && req.uri().path() == "/"
        && (form || query.contains("Signature="))
}

fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string().to_uppercase();
    let mut body = json!({"RequestId": request_id, "Code": code, "Message": message});
    if code == "OK" {
        body["BizId"] = Value::String(format!("{}^0", rand::random::<u64>()));
    } else if status != StatusCode::OK {
        body["HostId"] = Value::String("dysmsapi.aliyuncs.com".into());
        body["Recommend"] = Value::String("https://api.aliyun.com/troubleshoot".into());
    }
    Response::builder()
        .status(status)
        .content_type("application/json;charset=utf-8")
        .body(body.to_string())
}

/// RFC 3986 encoding, as Alibaba Cloud's signature takes it: only `A-Z a-z 0-9 - _ . ~` stay.
fn rfc3986(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The string Alibaba Cloud signs of these parameters, and the HMAC-SHA1 signature it expects.
fn expected(secret: &str, params: &BTreeMap<String, String>) -> (String, String) {
    let canonical: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| format!("{}={}", rfc3986(k), rfc3986(v)))
        .collect();
    let to_sign = format!("POST&%2F&{}", rfc3986(&canonical.join("&")));
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("any key");
    mac.update(to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    (to_sign, signature)
}

/// Unix seconds of `YYYY-MM-DDThh:mm:ssZ`.
fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, min, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from 1970-01-01 to the date (a plain count of years and months).
    let mut days = (1970..y).map(days_in_year).sum::<i64>();
    let lengths = month_lengths(y);
    days += lengths
        .iter()
        .take((m - 1).clamp(0, 12) as usize)
        .sum::<i64>()
        + d
        - 1;
    Some(days * 86_400 + h * 3600 + min * 60 + s)
}

/// `POST /` with `Action=SendSms`: Alibaba Cloud's answer.
pub async fn send_sms(emu: &Emulator, req: &Request, body: &[u8]) -> Response {
    match super::sms::injected(emu, "/sms/aliyun").await {
        Some(Ok(code)) => return answer(StatusCode::OK, &code, "injected by the emulator"),
        Some(Err(dropped)) => return dropped,
        None => {}
    }
    let query = req.uri().query().unwrap_or_default().as_bytes();
    let params: BTreeMap<String, String> = url::form_urlencoded::parse(query)
        .chain(url::form_urlencoded::parse(body))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| params.get(name).map(String::as_str);
    let bad = StatusCode::BAD_REQUEST;
    if get("Action") != Some("SendSms") {
        return answer(bad, "InvalidAction.NotFound", "Specified api is not found.");
    }
    if get("Version") != Some("2017-05-25") {
        return answer(
            bad,
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        );
    }
    if get("SignatureMethod") != Some("HMAC-SHA1") || get("SignatureVersion") != Some("1.0") {
        return answer(
            bad,
            "InvalidParameter",
            "SignatureMethod or SignatureVersion.",
        );
    }
    let now = emu.lock().now();
    match get("Timestamp").and_then(parse_timestamp) {
        None => return answer(bad, "MissingTimestamp", "Timestamp is mandatory."),
        Some(t) if (now - t).abs() > 900 => {
            return answer(
                bad,
                "InvalidTimeStamp.Expired",
                "Specified time stamp is expired.",
            )
        }
        Some(_) => {}
    }
    if get("AccessKeyId") != Some(EMULATOR_ACCESS_KEY_ID) {
        let status = StatusCode::NOT_FOUND;
        return answer(
            status,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        );
    }
    let (to_sign, right) = expected(EMULATOR_ACCESS_KEY_SECRET, &params);
    let given = get("Signature").unwrap_or_default();
    if !bool::from(right.as_bytes().ct_eq(given.as_bytes())) {
        // Alibaba Cloud says which string it signed; its SDKs compare it with their own.
        let message = format!(
            "Specified signature is not matched with our calculation. server string to sign \
             is:{to_sign}"
        );
        return answer(bad, "SignatureDoesNotMatch", &message);
    }
    let nonce = get("SignatureNonce").unwrap_or_default().to_string();
    if nonce.is_empty() || !emu.lock().aliyun_nonces.insert(nonce) {
        return answer(
            bad,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        );
    }
    if get("SignName") != Some(EMULATOR_SIGN_NAME) {
        return answer(
            StatusCode::OK,
            "isv.SMS_SIGNATURE_ILLEGAL",
            "The SignName is not approved.",
        );
    }
    if get("TemplateCode") != Some(EMULATOR_TEMPLATE_CODE) {
        return answer(
            StatusCode::OK,
            "isv.SMS_TEMPLATE_ILLEGAL",
            "The template is not approved.",
        );
    }
    let code = get("TemplateParam")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|p| p.get("code").and_then(Value::as_str).map(String::from));
    let Some(code) = code else {
        return answer(
            StatusCode::OK,
            "isv.TEMPLATE_MISSING_PARAMETERS",
            "`code` is missing.",
        );
    };
    let number = get("PhoneNumbers").unwrap_or_default();
    let mainland =
        number.len() == 11 && number.starts_with('1') && number.bytes().all(|b| b.is_ascii_digit());
    if !mainland {
        return answer(
            StatusCode::OK,
            "isv.MOBILE_NUMBER_ILLEGAL",
            "Illegal phone number.",
        );
    }
    let mut state = emu.lock();
    let sent_at = state.now();
    state.sms.push(SentSms {
        phone: format!("+86{number}"),
        params: vec![code],
        provider: "aliyun".into(),
        sent_at,
    });
    answer(StatusCode::OK, "OK", "OK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_read() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2026-12-02T01:02:03Z"),
            Some(1_796_169_600 + 3723)
        );
        assert_eq!(parse_timestamp("2000-02-29T23:59:59Z"), Some(951_868_799));
        assert_eq!(parse_timestamp("2026-12-02 01:02:03"), None);
    }

    #[test]
    fn encoding_is_rfc3986() {
        assert_eq!(rfc3986("a b*~-_.~/"), "a%20b%2A~-_.~%2F");
        assert_eq!(rfc3986("微"), "%E5%BE%AE");
    }
}
