//! The HTTP client for WeChat's server APIs (reqwest with rustls).
//!
//! Every call has a timeout. `-1` (system busy) and transport errors are retried a bounded number
//! of times with backoff; any other errcode is returned at once. WeChat often serves JSON as
//! `text/plain`, so bodies are parsed whatever their content type. URLs carry the AppSecret, so
//! reqwest errors are stripped of them before they go anywhere.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{de::DeserializeOwned, Deserialize};
use url::Url;

use super::errcode::{WechatError, CODE_BEEN_USED, SYSTEM_BUSY};
use crate::error::WechatAnswer;
use crate::telemetry;

/// Attempts per call for `-1` and transport errors (the first one included).
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(100);

/// What `jscode2session` answers.
#[derive(Deserialize)]
pub struct Code2Session {
    pub openid: String,
    pub session_key: String,
    pub unionid: Option<String>,
}

impl std::fmt::Debug for Code2Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code2Session")
            .field("openid", &self.openid)
            .field("session_key", &"<hidden>")
            .field("unionid", &self.unionid)
            .finish()
    }
}

/// An `access_token` and its lifetime in seconds.
#[derive(Deserialize)]
pub struct AccessToken {
    pub access_token: String,
    pub expires_in: u64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("access_token", &"<hidden>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// What `sns/oauth2/access_token` answers for web sign-in.
#[derive(Deserialize)]
pub struct OauthToken {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
    pub openid: String,
    pub scope: String,
    pub unionid: Option<String>,
}

impl std::fmt::Debug for OauthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthToken")
            .field("openid", &self.openid)
            .field("scope", &self.scope)
            .field("unionid", &self.unionid)
            .finish_non_exhaustive()
    }
}

/// What `sns/userinfo` answers.
#[derive(Debug, Deserialize)]
pub struct WebUserInfo {
    pub openid: String,
    #[serde(default)]
    pub nickname: String,
    #[serde(default)]
    pub headimgurl: String,
    pub unionid: Option<String>,
}

/// The `phone_info` of `getuserphonenumber`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneInfo {
    pub phone_number: String,
    pub pure_phone_number: String,
    /// Documented as a string, shown as a number in the same page: both are accepted.
    #[serde(deserialize_with = "string_or_number")]
    pub country_code: String,
}

#[derive(Deserialize)]
struct PhoneReply {
    phone_info: PhoneInfo,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("countryCode is {other}"))),
    }
}

/// WeChat's server APIs, reached through one base URL (WeChat's, or the emulator's).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// Calls in flight; a slow WeChat makes callers fail fast rather than queue without end.
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Client {
    /// A client whose calls in flight are capped by `in_flight` (shared where several runtimes
    /// of one process each have a client).
    pub fn new(
        base: Url,
        timeout: Duration,
        in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    ) -> Result<Client, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("wxlogin/", env!("CARGO_PKG_VERSION")))
            // WeChat's APIs answer, they do not redirect; and they speak HTTP/1.1.
            .redirect(reqwest::redirect::Policy::none())
            .http1_only()
            .build()?;
        Ok(Client {
            http,
            base,
            in_flight,
        })
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url
    }

    /// `GET /sns/jscode2session`: swaps a `wx.login` code for the openid and session_key.
    pub async fn code2session(
        &self,
        appid: &str,
        secret: &SecretString,
        code: &str,
    ) -> Result<Code2Session, WechatError> {
        let url = self.url("/sns/jscode2session");
        let query = [
            ("appid", appid),
            ("secret", secret.expose_secret()),
            ("js_code", code),
            ("grant_type", "authorization_code"),
        ];
        self.swap_code("jscode2session", &url, &query).await
    }

    /// Swaps a one-use code. The first attempt may have reached WeChat and used the code before
    /// the answer was lost: on a retry, "already used" then means "no answer", not the client's
    /// mistake.
    async fn swap_code<T: DeserializeOwned>(
        &self,
        api: &'static str,
        url: &Url,
        query: &[(&str, &str)],
    ) -> Result<T, WechatError> {
        let (result, retried_after_transport) = self
            .call(api, || self.http.get(url.clone()).query(query))
            .await;
        match result {
            Err(WechatError::Api(a)) if a.errcode == CODE_BEEN_USED && retried_after_transport => {
                Err(WechatError::Unavailable(
                    "no answer, and the retry found the code used".into(),
                ))
            }
            other => other,
        }
    }

    /// `POST /cgi-bin/stable_token`: the access_token shared by every caller of the app.
    pub async fn stable_token(
        &self,
        appid: &str,
        secret: &SecretString,
        force_refresh: bool,
    ) -> Result<AccessToken, WechatError> {
        let url = self.url("/cgi-bin/stable_token");
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret.expose_secret(),
            "force_refresh": force_refresh,
        });
        self.call("stable_token", || self.http.post(url.clone()).json(&body))
            .await
            .0
    }

    /// `POST /wxa/business/getuserphonenumber`: swaps a phone code for the number.
    pub async fn phone_number(
        &self,
        access_token: &str,
        code: &str,
        openid: Option<&str>,
    ) -> Result<PhoneInfo, WechatError> {
        let url = self.url("/wxa/business/getuserphonenumber");
        let mut body = serde_json::json!({ "code": code });
        if let Some(openid) = openid {
            body["openid"] = openid.into();
        }
        let reply: PhoneReply = self
            .call("getuserphonenumber", || {
                self.http
                    .post(url.clone())
                    .query(&[("access_token", access_token)])
                    .json(&body)
            })
            .await
            .0?;
        Ok(reply.phone_info)
    }

    /// `GET /sns/oauth2/access_token`: swaps a web sign-in code.
    pub async fn oauth_access_token(
        &self,
        appid: &str,
        secret: &SecretString,
        code: &str,
    ) -> Result<OauthToken, WechatError> {
        let url = self.url("/sns/oauth2/access_token");
        let query = [
            ("appid", appid),
            ("secret", secret.expose_secret()),
            ("code", code),
            ("grant_type", "authorization_code"),
        ];
        self.swap_code("oauth2_access_token", &url, &query).await
    }

    /// `GET /sns/userinfo`: the profile behind a web access_token.
    pub async fn userinfo(
        &self,
        access_token: &str,
        openid: &str,
    ) -> Result<WebUserInfo, WechatError> {
        let url = self.url("/sns/userinfo");
        let query = [
            ("access_token", access_token),
            ("openid", openid),
            ("lang", "zh_CN"),
        ];
        self.call("userinfo", || self.http.get(url.clone()).query(&query))
            .await
            .0
    }

    /// One call with bounded retries. Returns the result and whether a transport error was
    /// retried (the request may then have reached WeChat once already).
    async fn call<T: DeserializeOwned>(
        &self,
        api: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> (Result<T, WechatError>, bool) {
        let Ok(_permit) = self.in_flight.clone().try_acquire_owned() else {
            telemetry::record_wechat_call(api, "saturated", Duration::ZERO);
            return (
                Err(WechatError::Unavailable(
                    "too many calls to WeChat in flight".into(),
                )),
                false,
            );
        };
        let mut retried_after_transport = false;
        let mut attempt = 1;
        loop {
            let started = std::time::Instant::now();
            let outcome = self.once(request()).await;
            let label = match &outcome {
                Ok(_) => "ok".to_string(),
                Err(WechatError::Api(a)) => a.errcode.to_string(),
                Err(WechatError::Unavailable(_)) => "unavailable".to_string(),
            };
            telemetry::record_wechat_call(api, &label, started.elapsed());
            let retry = match &outcome {
                Err(WechatError::Api(a)) => a.errcode == SYSTEM_BUSY,
                Err(WechatError::Unavailable(_)) => true,
                Ok(_) => false,
            };
            if !retry || attempt >= ATTEMPTS {
                return (outcome, retried_after_transport);
            }
            if let Err(e @ WechatError::Unavailable(_)) = &outcome {
                retried_after_transport = true;
                tracing::warn!(api, attempt, error = %e, "retrying WeChat call");
            } else {
                tracing::warn!(api, attempt, "WeChat busy (-1), retrying");
            }
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
            attempt += 1;
        }
    }

    async fn once<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, WechatError> {
        let unavailable = |e: reqwest::Error| WechatError::Unavailable(e.without_url().to_string());
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unavailable)?;
        if !status.is_success() {
            return Err(WechatError::Unavailable(format!("HTTP {status}")));
        }
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| WechatError::Unavailable("the answer is not JSON".into()))?;
        if let Some(errcode) = value.get("errcode").and_then(|c| c.as_i64()) {
            if errcode != 0 {
                let errmsg = value
                    .get("errmsg")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_string();
                return Err(WechatError::Api(WechatAnswer { errcode, errmsg }));
            }
        }
        serde_json::from_value(value)
            .map_err(|e| WechatError::Unavailable(format!("unexpected answer: {e}")))
    }
}
