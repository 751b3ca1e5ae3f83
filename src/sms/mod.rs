//! Sending SMS codes: one small trait, `SendSms`, and its providers: Tencent Cloud (`tencent`,
//! and `emulator`, the emulator's side that speaks Tencent's protocol) and `log` (a line in the
//! log, for a developer's machine). A provider's failure is an `SmsError`, which `accounts`
//! answers 502 `sms_unavailable` (or 429 where the provider says a limit was hit).

pub mod tencent;

use std::time::Duration;

use crate::config::{Sms, SmsProviderKind};
use crate::domain::PhoneNumber;

/// Attempts per code for transport errors, timeouts and a provider's internal errors.
pub(crate) const ATTEMPTS: u32 = 2;
pub(crate) const BACKOFF: Duration = Duration::from_millis(200);

/// Why a code was not sent. The text is the provider's code and message, for the log; no
/// secret is in it.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// Not reached, timed out, or failed inside (after the bounded retries).
    #[error("the SMS provider is unavailable: {0}")]
    Unavailable(String),
    /// It refused the request or the number.
    #[error("the SMS provider refused: {0}")]
    Refused(String),
    /// It says a limit was hit (the number's, or the account's).
    #[error("the SMS provider's limit: {0}")]
    Limited(String),
}

/// Sends one code to one phone.
pub trait SendSms {
    fn send(
        &self,
        phone: &PhoneNumber,
        code: &str,
    ) -> impl std::future::Future<Output = Result<(), SmsError>> + Send;
}

/// The configured provider.
#[derive(Clone)]
pub enum Provider {
    Tencent(Box<tencent::Tencent>),
    Log,
}

impl Provider {
    /// The provider of the settings, with its own HTTP client (`timeout` per call).
    pub fn new(sms: &Sms, timeout: Duration) -> Result<Provider, reqwest::Error> {
        match (sms.kind, &sms.tencent) {
            (SmsProviderKind::Log, _) | (_, None) => Ok(Provider::Log),
            (SmsProviderKind::Tencent | SmsProviderKind::Emulator, Some(settings)) => {
                let http = reqwest::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .build()?;
                Ok(Provider::Tencent(Box::new(tencent::Tencent::new(
                    http,
                    settings.clone(),
                ))))
            }
        }
    }
}

impl SendSms for Provider {
    async fn send(&self, phone: &PhoneNumber, code: &str) -> Result<(), SmsError> {
        match self {
            Provider::Tencent(t) => t.send(phone, code).await,
            Provider::Log => {
                // Development only (refused where the public URL is https): the code is what a
                // developer needs to sign in.
                tracing::warn!(phone = %phone, code, "SMS code (WXLOGIN_SMS_PROVIDER=log)");
                Ok(())
            }
        }
    }
}
