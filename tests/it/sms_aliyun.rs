//! SMS codes through Alibaba Cloud (`WXLOGIN_SMS_PROVIDER=aliyun`), against the emulator's
//! Alibaba Cloud side, which checks the HMAC-SHA1 signature, the timestamp and the nonce.

use serde_json::json;

use crate::helpers::*;
use crate::sms::new_phone;

async fn aliyun_app(tweak: impl FnOnce(&mut wxlogin::config::AliyunSettings)) -> TestApp {
    spawn_with(Db::Sqlite, Kv::Memory, |c| {
        let mut sms = wxlogin::config::Sms::emulator_aliyun(c.wechat.api_base.clone());
        tweak(sms.aliyun.as_mut().unwrap());
        c.sms = Some(sms);
    })
    .await
}

#[tokio::test]
async fn codes_go_through_alibaba_cloud() {
    let app = aliyun_app(|_| {}).await;
    let phone = new_phone();
    let code = app.sms_code(&phone, "login").await;
    let r = app.sms_login(&phone, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"]["phoneNumber"], phone.as_str());

    // Alibaba Cloud's SendSms here takes mainland numbers: another is refused, 502.
    let r = app.send_code("+85291234567", "login").await;
    assert_error(&r, 502, "sms_unavailable");
}

#[tokio::test]
async fn alibaba_clouds_failures_are_502_or_429_and_internal_errors_are_retried() {
    let app = aliyun_app(|_| {}).await;
    let phone = new_phone();
    let fault =
        |code: &str, times: u32| json!({"path": "/sms/aliyun", "errmsg": code, "times": times});
    app.fault(fault("isp.SYSTEM_ERROR", 2)).await;
    assert_error(
        &app.send_code(&phone, "login").await,
        502,
        "sms_unavailable",
    );
    assert_eq!(app.calls("/sms/aliyun").await, 2, "tried again once");

    app.fault(fault("isv.BUSINESS_LIMIT_CONTROL", 1)).await;
    assert_error(&app.send_code(&phone, "login").await, 429, "rate_limited");
    assert_eq!(app.calls("/sms/aliyun").await, 3, "a limit is final");

    app.fault(fault("isp.SYSTEM_ERROR", 1)).await;
    let code = app.sms_code(&phone, "login").await;
    assert_eq!(app.sms_login(&phone, &code).await.status, 200);
}

#[tokio::test]
async fn a_wrong_access_key_secret_is_refused_by_alibaba_cloud() {
    let app = aliyun_app(|a| a.access_key_secret = "not-the-secret".into()).await;
    let phone = new_phone();
    assert_error(
        &app.send_code(&phone, "login").await,
        502,
        "sms_unavailable",
    );
    assert!(app.inbox(&phone).await.is_empty());
    assert!(!logs().contains("not-the-secret"));
}
