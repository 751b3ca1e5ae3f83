//! Phone numbers verified by SMS: sending a code, signing in with one, binding a phone to the
//! signed-in user. A code is 6 digits from the OS's RNG, works 5 minutes, once, for 5 wrong
//! tries at most, and is kept only as a keyed hash (`store::sms_codes`). The answer to "send a
//! code" is the same whether the phone is known or not.

use rand::{rngs::OsRng, Rng};

use super::phone::phone_changed;
use super::presence::Proof;
use super::sessions::Authenticated;
use super::{Accounts, SignedIn};
use crate::config::LoginPolicy;
use crate::domain::{Credentials, Phone, PhoneNumber, Session, Shaped, SmsCode, Token};
use crate::error::{Code, Error, Result};
use crate::sms::{Provider, SendSms, SmsError};
use crate::store::sms_codes::{self, Check};
use crate::store::tickets::PendingSmsBinding;
use crate::store::StoreError;

/// What a code is for: signing in, or binding the phone to a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsPurpose {
    Login,
    Bind,
}

impl SmsPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsPurpose::Login => "login",
            SmsPurpose::Bind => "bind",
        }
    }
}

/// Seconds before another code may be sent to a phone (the contract's `resendAfter`).
pub const RESEND_AFTER: u64 = sms_codes::RESEND_AFTER as u64;

fn rate_limited(message: &str, retry_after: u64) -> Error {
    let mut e = Error::new(Code::RateLimited, message);
    e.retry_after = Some(retry_after);
    e
}

impl Accounts {
    fn sms_provider(&self) -> Result<&Provider> {
        self.inner.sms.as_ref().ok_or_else(|| {
            Error::new(
                Code::NotFound,
                "This server sends no SMS codes (WXLOGIN_SMS_PROVIDER is not set).",
            )
        })
    }

    /// `sms/code`: sends a new code to a phone; the seconds before another may be sent.
    pub async fn send_sms_code(&self, phone: &PhoneNumber, purpose: SmsPurpose) -> Result<u64> {
        let provider = self.sms_provider()?;
        let codes = &self.inner.stores.sms_codes;
        if let Err(wait) = codes.reserve_send(phone.as_str()).await? {
            return Err(rate_limited(
                "A code was sent to this phone a moment ago, or too many today: wait, then ask \
                 again.",
                wait,
            ));
        }
        let code = format!("{:06}", OsRng.gen_range(0..1_000_000u32));
        codes.put(phone.as_str(), purpose.as_str(), &code).await?;
        if let Err(e) = provider.send(phone, &code).await {
            tracing::warn!(error = %e, "the SMS provider did not send a code");
            codes.forget(phone.as_str(), purpose.as_str()).await?;
            codes.release_send(phone.as_str()).await?;
            return Err(match e {
                SmsError::Limited(_) => rate_limited(
                    "The SMS provider will send no more codes to this phone for now: try again \
                     later.",
                    RESEND_AFTER,
                ),
                SmsError::Unavailable(_) | SmsError::Refused(_) => Error::new(
                    Code::SmsUnavailable,
                    "The SMS provider failed or refused: no code was sent. Try again in a \
                     moment.",
                ),
            });
        }
        tracing::info!(
            event = "sms_code_sent",
            purpose = purpose.as_str(),
            "SMS code sent"
        );
        Ok(RESEND_AFTER)
    }

    /// Checks a code sent to a phone for a purpose, using it up where it is right.
    pub(super) async fn check_sms_code(
        &self,
        phone: &PhoneNumber,
        purpose: SmsPurpose,
        code: &SmsCode,
    ) -> Result<()> {
        self.sms_provider()?;
        let codes = &self.inner.stores.sms_codes;
        match codes
            .check(phone.as_str(), purpose.as_str(), code.expose())
            .await?
        {
            Check::Right => Ok(()),
            Check::Wrong => Err(Error::new(
                Code::SmsCodeInvalid,
                "This SMS code is wrong, used or expired: check it, or ask for a new one.",
            )),
            Check::TooMany => Err(rate_limited(
                "Too many wrong tries of this SMS code: ask for a new one.",
                RESEND_AFTER,
            )),
        }
    }

    /// `auth/sms`: signs in the user whose verified phone this is, or (under `auto_register`) a
    /// new user with it.
    pub async fn sms_login(&self, phone: &PhoneNumber, code: &SmsCode) -> Result<SignedIn> {
        self.check_sms_code(phone, SmsPurpose::Login, code).await?;
        let users = &self.inner.stores.users;
        if let Some(id) = users.user_of_phone(phone.as_str()).await? {
            return self
                .start_session_by_id(&id, false, Session::password(&id))
                .await;
        }
        if self.inner.login.policy == LoginPolicy::RequireBinding {
            let ticket = Token::new().reveal();
            let pending = PendingSmsBinding {
                phone_number: phone.as_str().to_string(),
            };
            let tickets = &self.inner.stores.tickets;
            tickets.put_sms_binding(&ticket, &pending).await?;
            let mut e = Error::new(
                Code::BindingRequired,
                "No account has this phone yet. Ask for the username and password and send them \
                 with `bindTicket` to /api/v1/auth/bind (within 10 minutes).",
            );
            let mut extra = serde_json::Map::new();
            extra.insert("bindTicket".into(), ticket.into());
            e.extra = Some(extra);
            return Err(e);
        }
        let created = users.create_with_phone(&phone.to_phone()).await;
        let (id, is_new) = match created {
            Ok(id) => (id, true),
            // A concurrent sign-in of the same phone made the user first.
            Err(StoreError::Conflict(_)) => match users.user_of_phone(phone.as_str()).await? {
                Some(id) => (id, false),
                None => return Err(Error::new(Code::Conflict, "Try again.")),
            },
            Err(e) => return Err(e.into()),
        };
        if is_new {
            tracing::info!(user_id = %id, event = "user_created", provider = "sms", "user created");
        }
        self.start_session_by_id(&id, is_new, Session::password(&id))
            .await
    }

    /// `auth/bind` with the ticket of an SMS sign-in: the verified phone joins the account of
    /// the username and password (a 409 where the account has another verified phone).
    pub(super) async fn bind_phone_with_ticket(
        &self,
        ticket: &str,
        credentials: Credentials,
        bad_ticket: impl Fn() -> Error,
    ) -> Result<SignedIn> {
        let user_id = self.check_credentials(credentials).await?;
        let user = self.user(&user_id).await?;
        let tickets = &self.inner.stores.tickets;
        let pending = tickets
            .peek_sms_binding(ticket)
            .await?
            .ok_or_else(&bad_ticket)?;
        let phone = PhoneNumber::parse(pending.phone_number).map_err(|_| bad_ticket())?;
        if user
            .phone_number
            .as_deref()
            .is_some_and(|p| p != phone.as_str())
        {
            return Err(Error::new(
                Code::Conflict,
                "This account has another verified phone already.",
            ));
        }
        // Used once: of two concurrent binds with one ticket, one takes it.
        tickets
            .take_sms_binding(ticket)
            .await?
            .ok_or_else(&bad_ticket)?;
        self.inner
            .stores
            .users
            .set_phone(&user_id, &phone.to_phone(), &phone_changed(&user_id))
            .await?;
        self.start_session_by_id(&user_id, false, Session::password(&user_id))
            .await
    }

    /// `me/phone` with `{phoneNumber, smsCode}`: stores a phone verified by a code sent with
    /// `purpose: bind` on the signed-in user. A phone verified by another user is a 409.
    pub async fn phone_by_sms(
        &self,
        auth: &Authenticated,
        phone: &PhoneNumber,
        code: &SmsCode,
        proof: Option<Proof>,
    ) -> Result<Phone> {
        self.check_sms_code(phone, SmsPurpose::Bind, code).await?;
        self.store_phone(auth, phone.to_phone(), proof).await
    }
}
