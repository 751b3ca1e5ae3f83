//! SMS codes, shared by every node: each phone's current code for a purpose, kept only as a
//! keyed hash (`keys::sms_code_digest`) beside the time it was made, with its tries; and the
//! limits on sending (one code per phone per minute, ten a day, Beijing's day). Times are the
//! `Clock`'s, kept in the values; the keys' TTLs only clean up. The policy (what answer) is
//! `accounts`'.

use subtle::ConstantTimeEq;

use super::{keys, kv::Kv, StoreError};
use crate::domain::Clock;

type Result<T> = std::result::Result<T, StoreError>;

/// Wrong tries a code survives.
pub const MAX_TRIES: i64 = 5;
/// Codes a phone may be sent in a day.
pub const MAX_PER_DAY: i64 = 10;
/// Seconds a code works.
pub const CODE_LIFETIME: i64 = 300;
/// Seconds between two codes to one phone.
pub const RESEND_AFTER: i64 = 60;
/// Beijing time's offset from UTC, in seconds: its days are the ones that count.
const BEIJING: i64 = 8 * 3600;

/// What a code typed against a phone's current one gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// It is the code; it is used up now.
    Right,
    /// Wrong, expired, used, or never sent.
    Wrong,
    /// Too many tries: the code is dead.
    TooMany,
}

/// The codes, on the shared key-value store.
#[derive(Clone)]
pub struct SmsCodes {
    kv: Kv,
    name_key: [u8; 32],
    clock: Clock,
}

fn time_of(value: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

impl SmsCodes {
    pub fn new(kv: Kv, name_key: [u8; 32], clock: Clock) -> SmsCodes {
        SmsCodes {
            kv,
            name_key,
            clock,
        }
    }

    /// Takes the right to send a code to `phone` now: Err with the seconds to wait where a code
    /// went to it less than a minute ago, or ten went today.
    pub async fn reserve_send(&self, phone: &str) -> Result<std::result::Result<(), u64>> {
        let now = self.clock.now();
        let stamp = now.to_be_bytes();
        let resend = keys::sms_resend(phone, &self.name_key);
        if !self.kv.set_nx(&resend, &stamp, keys::SMS_RESEND).await? {
            let held = self.kv.get(&resend).await?;
            let taken = match held.as_deref().and_then(time_of) {
                Some(at) if now - at < RESEND_AFTER => {
                    return Ok(Err((RESEND_AFTER - (now - at)).max(1) as u64))
                }
                // Older than a minute by the clock: replaced, unless another send was first.
                Some(at) => {
                    let expected = at.to_be_bytes();
                    self.kv
                        .compare_and_set(&resend, &expected, Some(&stamp), keys::SMS_RESEND)
                        .await?
                }
                None => self.kv.set_nx(&resend, &stamp, keys::SMS_RESEND).await?,
            };
            if !taken {
                return Ok(Err(RESEND_AFTER as u64));
            }
        }
        let day = (now + BEIJING).div_euclid(86_400);
        let count = keys::sms_day(phone, day, &self.name_key);
        if self.kv.incr(&count, keys::SMS_DAY).await? > MAX_PER_DAY {
            let tomorrow = (day + 1) * 86_400 - BEIJING;
            return Ok(Err((tomorrow - now).max(1) as u64));
        }
        Ok(Ok(()))
    }

    /// Gives the right to send back, where the provider did not send: the person may ask again
    /// at once (the day's count keeps the attempt).
    pub async fn release_send(&self, phone: &str) -> Result<()> {
        self.kv
            .del(&keys::sms_resend(phone, &self.name_key))
            .await
            .map(drop)
    }

    /// Makes `code` the phone's code for `purpose` (the one before it stops working), with no
    /// tries yet.
    pub async fn put(&self, phone: &str, purpose: &str, code: &str) -> Result<()> {
        let digest = keys::sms_code_digest(phone, purpose, code, &self.name_key);
        let mut value = self.clock.now().to_be_bytes().to_vec();
        value.extend_from_slice(&digest);
        let key = keys::sms_code(phone, purpose, &self.name_key);
        self.kv.set(&key, &value, keys::SMS_CODE).await?;
        self.kv
            .del(&keys::sms_tries(phone, purpose, &self.name_key))
            .await
            .map(drop)
    }

    /// Forgets the phone's code for `purpose`.
    pub async fn forget(&self, phone: &str, purpose: &str) -> Result<()> {
        let key = keys::sms_code(phone, purpose, &self.name_key);
        self.kv.del(&key).await.map(drop)
    }

    /// Checks a typed code. The try is counted before the comparison, so that concurrent tries
    /// cannot pass the limit; a right code is used up by the one try whose delete removes it.
    pub async fn check(&self, phone: &str, purpose: &str, code: &str) -> Result<Check> {
        let key = keys::sms_code(phone, purpose, &self.name_key);
        let tries = keys::sms_tries(phone, purpose, &self.name_key);
        if self.kv.incr(&tries, keys::SMS_CODE).await? > MAX_TRIES {
            self.kv.del(&key).await?;
            return Ok(Check::TooMany);
        }
        let Some(stored) = self.kv.get(&key).await? else {
            return Ok(Check::Wrong);
        };
        let fresh = time_of(&stored).is_some_and(|at| self.clock.now() - at <= CODE_LIFETIME);
        let typed = keys::sms_code_digest(phone, purpose, code, &self.name_key);
        let same = bool::from(stored.get(8..).unwrap_or_default().ct_eq(&typed));
        if !(fresh && same) {
            return Ok(Check::Wrong);
        }
        if !self.kv.del(&key).await? {
            return Ok(Check::Wrong);
        }
        self.kv.del(&tries).await?;
        Ok(Check::Right)
    }
}
