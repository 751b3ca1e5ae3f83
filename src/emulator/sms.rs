//! The emulator's SMS side: Tencent Cloud SMS's `SendSms` (API 3.0) as SMS.md describes it, at
//! `POST /` with the `X-TC-Action` header, checking the TC3-HMAC-SHA256 signature with code of
//! its own (it imports nothing from `sms`), and an inbox of what was sent
//! (`GET /__emulator/sms?phone=`).
//!
//! Faults: a fault on path `/sms/tencent` fails the whole call with the Tencent error code in
//! its `errmsg` (or a delay, or a dropped connection); on `/sms/tencent/number`, only the
//! number's entry fails (`user` may name the number).

use hmac::{Hmac, Mac};
use poem::http::HeaderMap;
use poem::web::Data;
use poem::{Request, Response};
use poem_openapi::{param::Query, payload::Json, Object, OpenApi};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Emulator;
use crate::config::{
    EMULATOR_SDK_APP_ID, EMULATOR_SECRET_ID, EMULATOR_SECRET_KEY, EMULATOR_SIGN_NAME,
    EMULATOR_TEMPLATE_ID,
};

/// A message the emulator "sent".
#[derive(Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct SentSms {
    /// E.164.
    pub phone: String,
    /// The template's parameters: here, the code.
    pub params: Vec<String>,
    /// `tencent` or `aliyun`.
    pub provider: String,
    /// The emulator's clock, Unix seconds.
    pub sent_at: i64,
}

/// Whether a request is meant for the SMS side (Tencent's API at `/`).
pub fn is_sms(req: &Request) -> bool {
    req.method() == poem::http::Method::POST
        && req.uri().path() == "/"
        && req.headers().contains_key("x-tc-action")
}

fn answer(response: Value) -> Response {
    Response::builder()
        .content_type("application/json")
        .body(json!({ "Response": response }).to_string())
}

fn error(code: &str, message: &str) -> Response {
    answer(json!({
        "Error": {"Code": code, "Message": message},
        "RequestId": uuid::Uuid::new_v4().to_string(),
    }))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The parts of `Authorization: TC3-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`.
struct Authorization {
    secret_id: String,
    date: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(text: &str) -> Option<Authorization> {
    let rest = text.strip_prefix("TC3-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let (secret_id, date, service, end) =
        (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
    if end != "tc3_request" || scope.next().is_some() {
        return None;
    }
    Some(Authorization {
        secret_id: secret_id.into(),
        date: date.into(),
        service: service.into(),
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: signature?.into(),
    })
}

/// The signature Tencent Cloud would compute for this request (SMS.md, steps 1 to 3).
fn expected_signature(
    secret_key: &str,
    auth: &Authorization,
    headers: &HeaderMap,
    body: &[u8],
    timestamp: &str,
) -> Option<String> {
    let mut names = auth.signed_headers.clone();
    names.sort();
    let mut canonical_headers = String::new();
    for name in &names {
        let value = header(headers, name)?;
        canonical_headers.push_str(&format!("{name}:{}\n", value.trim().to_lowercase()));
    }
    let canonical_request = [
        "POST",
        "/",
        "",
        &canonical_headers,
        &names.join(";"),
        &hex_sha256(body),
    ]
    .join("\n");
    let scope = format!("{}/{}/tc3_request", auth.date, auth.service);
    let to_sign = [
        "TC3-HMAC-SHA256",
        timestamp,
        &scope,
        &hex_sha256(canonical_request.as_bytes()),
    ]
    .join("\n");
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), auth.date.as_bytes());
    let k_service = hmac_sha256(&k_date, auth.service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    Some(hex::encode(hmac_sha256(&k_signing, to_sign.as_bytes())))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub(super) fn days_in_year(y: i64) -> i64 {
    if is_leap(y) {
        366
    } else {
        365
    }
}

/// The days of each month of a year.
pub(super) fn month_lengths(y: i64) -> [i64; 12] {
    let feb = if is_leap(y) { 29 } else { 28 };
    [31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
}

/// The civil UTC date of a Unix time, `YYYY-MM-DD`.
fn civil_date(t: i64) -> String {
    let days = t.div_euclid(86_400);
    // Walk years, then months: slow and plain, which is what a check should be.
    let (mut year, mut left) = (1970i64, days);
    while left >= days_in_year(year) {
        left -= days_in_year(year);
        year += 1;
    }
    let lengths = month_lengths(year);
    let mut month = 0;
    while left >= lengths[month] {
        left -= lengths[month];
        month += 1;
    }
    format!("{year:04}-{:02}-{:02}", month + 1, left + 1)
}

const KNOWN_FIELDS: [&str; 8] = [
    "PhoneNumberSet",
    "SmsSdkAppId",
    "SignName",
    "TemplateId",
    "TemplateParamSet",
    "ExtendCode",
    "SessionContext",
    "SenderId",
];

/// Counts a call of an SMS side and applies its injected fault, if any: after the fault's
/// delay, `Err` with a dropped connection, or `Ok` with the provider's error code to answer.
pub(super) async fn injected(emu: &Emulator, path: &str) -> Option<Result<String, Response>> {
    let fault = {
        let mut state = emu.lock();
        *state.calls.entry(path.into()).or_default() += 1;
        state.take_fault(path, None)
    }?;
    if fault.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(fault.delay_ms)).await;
    }
    if fault.drop {
        return Some(Err(super::wechat_paths::dropped()));
    }
    fault.errmsg.map(Ok)
}

/// `POST /` with `X-TC-Action: SendSms`: Tencent Cloud's answer, always HTTP 200.
pub async fn tencent(emu: &Emulator, req: Request, body: Vec<u8>) -> Response {
    let headers = req.headers();
    match injected(emu, "/sms/tencent").await {
        Some(Ok(code)) => return error(&code, "injected by the emulator"),
        Some(Err(dropped)) => return dropped,
        None => {}
    }
    if header(headers, "x-tc-action") != Some("SendSms") {
        return error("InvalidAction", "The action is not SendSms.");
    }
    if header(headers, "x-tc-version") != Some("2021-01-11") {
        return error("NoSuchVersion", "The version is not 2021-01-11.");
    }
    if header(headers, "x-tc-region").is_none_or(str::is_empty) {
        return error("MissingParameter", "X-TC-Region is missing.");
    }
    let Some(auth) = header(headers, "authorization").and_then(parse_authorization) else {
        return error(
            "AuthFailure.InvalidAuthorization",
            "Authorization is malformed.",
        );
    };
    let Some(timestamp) = header(headers, "x-tc-timestamp").and_then(|t| t.parse::<i64>().ok())
    else {
        return error("MissingParameter", "X-TC-Timestamp is missing.");
    };
    let now = emu.lock().now();
    if (now - timestamp).abs() > 300 {
        return error("AuthFailure.SignatureExpire", "The signature expired.");
    }
    if auth.secret_id != EMULATOR_SECRET_ID {
        return error("AuthFailure.SecretIdNotFound", "The SecretId is not found.");
    }
    let signed = &auth.signed_headers;
    let expected = if signed.iter().any(|h| h == "content-type")
        && signed.iter().any(|h| h == "host")
        && auth.service == "sms"
        && auth.date == civil_date(timestamp)
    {
        expected_signature(
            EMULATOR_SECRET_KEY,
            &auth,
            headers,
            &body,
            &timestamp.to_string(),
        )
    } else {
        None
    };
    if expected.as_deref() != Some(auth.signature.as_str()) {
        return error("AuthFailure.SignatureFailure", "The signature is wrong.");
    }
    send(emu, &body)
}

/// The body of a signed request: its fields checked, then each number sent or refused.
fn send(emu: &Emulator, body: &[u8]) -> Response {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return error("InvalidParameter", "The body is not a JSON object.");
    };
    if let Some(unknown) = fields.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return error(
            "UnknownParameter",
            &format!("`{unknown}` is not a parameter."),
        );
    }
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    let list = |name: &str| -> Option<Vec<String>> {
        fields
            .get(name)?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect()
    };
    let (Some(phones), Some(app), Some(sign), Some(template)) = (
        list("PhoneNumberSet"),
        text("SmsSdkAppId"),
        text("SignName"),
        text("TemplateId"),
    ) else {
        return error("MissingParameter", "A required parameter is missing.");
    };
    if app != EMULATOR_SDK_APP_ID {
        return error(
            "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
            "SmsSdkAppId is not yours.",
        );
    }
    if sign != EMULATOR_SIGN_NAME {
        return error(
            "FailedOperation.SignatureIncorrectOrUnapproved",
            "SignName is not approved.",
        );
    }
    if template != EMULATOR_TEMPLATE_ID {
        return error(
            "FailedOperation.TemplateIncorrectOrUnapproved",
            "TemplateId is not approved.",
        );
    }
    let params = list("TemplateParamSet").unwrap_or_default();
    if params.len() != 1 {
        return error(
            "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
            "The template takes one parameter.",
        );
    }
    if params[0].len() > 6 || !params[0].bytes().all(|b| b.is_ascii_digit()) {
        return error(
            "InvalidParameterValue.TemplateParameterFormatError",
            "A verification code is 0 to 6 digits.",
        );
    }
    let mut state = emu.lock();
    let now = state.now();
    let mut statuses = Vec::new();
    for phone in phones {
        let e164 = phone
            .strip_prefix('+')
            .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
        let fault = state.take_fault("/sms/tencent/number", Some(&phone));
        let (code, message) = match fault.and_then(|f| f.errmsg) {
            Some(code) => (code, "injected by the emulator".to_string()),
            None if !e164 => (
                "InvalidParameterValue.IncorrectPhoneNumber".into(),
                "The number is not E.164.".into(),
            ),
            None => {
                state.sms.push(SentSms {
                    phone: phone.clone(),
                    params: params.clone(),
                    provider: "tencent".into(),
                    sent_at: now,
                });
                ("Ok".into(), "send success".into())
            }
        };
        statuses.push(json!({
            "SerialNo": uuid::Uuid::new_v4().simple().to_string(),
            "PhoneNumber": phone,
            "Fee": 1,
            "SessionContext": "",
            "Code": code,
            "Message": message,
            "IsoCode": "CN",
        }));
    }
    answer(json!({
        "SendStatusSet": statuses,
        "RequestId": uuid::Uuid::new_v4().to_string(),
    }))
}

/// The inbox.
pub struct SmsControlApi;

#[OpenApi(prefix_path = "/__emulator")]
impl SmsControlApi {
    /// What was sent to a phone (E.164), oldest first
    #[oai(path = "/sms", method = "get")]
    async fn inbox(&self, emu: Data<&Emulator>, phone: Query<String>) -> Json<Vec<SentSms>> {
        let state = emu.lock();
        Json(
            state
                .sms
                .iter()
                .filter(|m| m.phone == phone.0)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(951_782_400), "2000-02-29");
        assert_eq!(civil_date(1_551_113_065), "2019-02-25");
    }

    #[test]
    fn authorization_headers_are_read() {
        let a = parse_authorization(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/sms/tc3_request, \
             SignedHeaders=content-type;host, Signature=abc",
        )
        .unwrap();
        assert_eq!(
            (
                a.secret_id.as_str(),
                a.date.as_str(),
                a.service.as_str(),
                a.signature.as_str()
            ),
            ("AKID", "2019-02-25", "sms", "abc")
        );
        assert_eq!(a.signed_headers, ["content-type", "host"]);
        assert!(parse_authorization("TC3-HMAC-SHA256 Credential=AKID/2019-02-25/sms").is_none());
    }
}
