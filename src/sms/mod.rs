//! Sending SMS codes: one small trait, `SendSms`, and its providers: Tencent Cloud (`tencent`,
//! and `emulator`, the emulator's side that speaks Tencent's protocol), Alibaba Cloud
//! (`aliyun`) and `log` (a line in the log, for a developer's machine). A provider's failure is an `SmsError`, which `accounts`
//! answers 502 `sms_unavailable` (or 429 where the provider says a limit was hit).

pub mod aliyun;
pub mod tencent;

use std::time::Duration;

use crate::config::{Sms, SmsProviderKind};
use crate::domain::PhoneNumber;

/// Attempts per code for transport errors, timeouts and a provider's internal errors.
pub(crate) const ATTEMPTS: u32 = 2;
pub(crate) const BACKOFF: Duration = Duration::from_millis(200);

/// The civil UTC date and time of a Unix time: (year, month, day, seconds into the day).
fn civil(timestamp: i64) -> (i64, i64, i64, i64) {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = timestamp.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, timestamp.rem_euclid(86_400))
}

/// `YYYY-MM-DD` (UTC) of a Unix time, as Tencent Cloud's credential scope has it.
pub(crate) fn utc_date(timestamp: i64) -> String {
    let (y, m, d, _) = civil(timestamp);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDThh:mm:ssZ` (UTC) of a Unix time, as Alibaba Cloud's `Timestamp` has it.
pub(crate) fn utc_timestamp(timestamp: i64) -> String {
    let (y, m, d, secs) = civil(timestamp);
    let (h, min, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
}

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

/// Runs `attempt` up to `ATTEMPTS` times while it fails with `Unavailable` (transport errors,
/// timeouts, a provider's internal errors), with a growing pause; any other answer is final.
pub(crate) async fn with_retries<F, Fut>(mut attempt: F) -> Result<(), SmsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), SmsError>>,
{
    let mut last = SmsError::Unavailable("no attempt".into());
    for n in 0..ATTEMPTS {
        if n > 0 {
            tokio::time::sleep(BACKOFF * n).await;
        }
        match attempt().await {
            Err(e @ SmsError::Unavailable(_)) => last = e,
            other => return other,
        }
    }
    Err(last)
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
    Aliyun(Box<aliyun::Aliyun>),
    Log,
}

impl Provider {
    /// The provider of the settings, with its own HTTP client (`timeout` per call).
    pub fn new(sms: &Sms, timeout: Duration) -> Result<Provider, reqwest::Error> {
        let http = || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .build()
        };
        Ok(match (sms.kind, &sms.tencent, &sms.aliyun) {
            (SmsProviderKind::Tencent | SmsProviderKind::Emulator, Some(t), _) => {
                Provider::Tencent(Box::new(tencent::Tencent::new(http()?, t.clone())))
            }
            (SmsProviderKind::Aliyun, _, Some(a)) => {
                Provider::Aliyun(Box::new(aliyun::Aliyun::new(http()?, a.clone())))
            }
            _ => Provider::Log,
        })
    }
}

impl SendSms for Provider {
    async fn send(&self, phone: &PhoneNumber, code: &str) -> Result<(), SmsError> {
        match self {
            Provider::Tencent(t) => t.send(phone, code).await,
            Provider::Aliyun(a) => a.send(phone, code).await,
            Provider::Log => {
                // Development only (refused where the public URL is https): the code is what a
                // developer needs to sign in.
                tracing::warn!(phone = %phone, code, "SMS code (WXLOGIN_SMS_PROVIDER=log)");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_and_times() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_551_113_065), "2019-02-25");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_796_169_600), "2026-12-02");
        assert_eq!(utc_timestamp(1_796_169_600 + 3723), "2026-12-02T01:02:03Z");
        assert_eq!(utc_timestamp(951_868_799), "2000-02-29T23:59:59Z");
    }
}
