//! `/api/v1/sms/code`, `/api/v1/auth/sms` and `/api/v1/auth/bind-phone`: phone numbers
//! verified by SMS codes.

use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{payload::Json, ApiResponse, Enum, Object, OpenApi};

use super::auth::LoginOk;
use super::errors::{error_set, Reply};
use super::model::Field;
use super::Tag;
use crate::accounts::{Accounts, SmsPurpose};
use crate::domain::{PhoneNumber, SmsCode};

error_set!(SendCodeErrors:
    InvalidRequest, NotFound, RateLimited, SmsUnavailable, ServiceUnavailable
);
error_set!(BindPhoneErrors:
    InvalidRequest, Unauthenticated, SmsCodeInvalid, NotFound, Conflict, RateLimited,
    ServiceUnavailable
);
error_set!(SmsLoginErrors:
    InvalidRequest, SmsCodeInvalid, BindingRequired, NotFound, Conflict, RateLimited,
    ServiceUnavailable
);

/// What a code is for.
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "lowercase")]
pub enum Purpose {
    /// `POST /api/v1/auth/sms`.
    Login,
    /// `POST /api/v1/me/phone` and proofs of presence.
    Bind,
}

/// `POST /api/v1/sms/code`.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct SendCodeRequest {
    /// E.164 (`+8613800138000`), or 11 mainland digits.
    pub phone_number: Field<PhoneNumber>,
    pub purpose: Purpose,
}

impl Example for SendCodeRequest {
    fn example() -> Self {
        SendCodeRequest {
            phone_number: Field::of("+8613800138000"),
            purpose: Purpose::Login,
        }
    }
}

/// A code is on its way.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct SentBody {
    /// Seconds until another code may be sent to this phone.
    pub resend_after: u64,
}

impl Example for SentBody {
    fn example() -> Self {
        SentBody { resend_after: 60 }
    }
}

/// `POST /api/v1/auth/sms`.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct SmsLoginRequest {
    /// The phone the code was sent to.
    pub phone_number: Field<PhoneNumber>,
    /// The 6 digits sent with `purpose: login`.
    #[oai(write_only)]
    pub code: Field<SmsCode>,
}

impl Example for SmsLoginRequest {
    fn example() -> Self {
        SmsLoginRequest {
            phone_number: Field::of("+8613800138000"),
            code: Field::of("204816"),
        }
    }
}

#[derive(ApiResponse)]
pub enum SentOk {
    /// A code was handed to the SMS provider (the same answer for every phone, known or not).
    #[oai(status = 202)]
    Accepted(Json<SentBody>),
}

/// `POST /api/v1/auth/bind-phone`.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct BindPhoneRequest {
    /// From the `phone_required` answer of `POST /api/v1/auth/ticket`.
    #[oai(validator(max_length = 64))]
    pub bind_ticket: String,
    /// The phone the code was sent to.
    pub phone_number: Field<PhoneNumber>,
    /// The 6 digits sent with `purpose: bind`.
    #[oai(write_only)]
    pub code: Field<SmsCode>,
}

impl Example for BindPhoneRequest {
    fn example() -> Self {
        BindPhoneRequest {
            bind_ticket: "5b1f6a86-8c1a-4bd7-9f3e-2f5a1c0e7d42".into(),
            phone_number: Field::of("+8613800138000"),
            code: Field::of("204816"),
        }
    }
}

pub struct SmsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "Tag::Auth")]
impl SmsApi {
    /// Send an SMS code to a phone
    ///
    /// A 6-digit code that works 5 minutes, once, for 5 wrong tries at most. One code per phone
    /// per 60 s and 10 a day (and the per-IP limit); beyond, 429 with `Retry-After`. The answer
    /// is the same whether the phone is known here or not. Without an SMS provider configured,
    /// 404.
    #[oai(path = "/sms/code", method = "post", operation_id = "sendSmsCode")]
    async fn send_code(
        &self,
        accounts: Data<&Accounts>,
        body: Json<SendCodeRequest>,
    ) -> Reply<SentOk, SendCodeErrors> {
        let purpose = match body.0.purpose {
            Purpose::Login => SmsPurpose::Login,
            Purpose::Bind => SmsPurpose::Bind,
        };
        let resend_after = accounts
            .send_sms_code(&body.0.phone_number.0, purpose)
            .await?;
        Ok(SentOk::Accepted(Json(SentBody { resend_after })))
    }

    /// Sign in with a phone and an SMS code
    ///
    /// Signs in the user whose verified phone this is (from the phone button or an earlier
    /// code), or creates one under `auto_register`. A wrong, used or expired code is 401
    /// `sms_code_invalid`; too many tries, 429.
    #[oai(path = "/auth/sms", method = "post", operation_id = "smsLogin")]
    async fn sms_login(
        &self,
        accounts: Data<&Accounts>,
        body: Json<SmsLoginRequest>,
    ) -> Reply<LoginOk, SmsLoginErrors> {
        let Json(req) = body;
        let signed_in = accounts.sms_login(&req.phone_number.0, &req.code.0).await?;
        Ok(LoginOk::Ok(Json(signed_in.into())))
    }

    /// Finish a web sign-in with a verified phone
    ///
    /// Where `WXLOGIN_WEB_REQUIRE_PHONE` is set, `POST /api/v1/auth/ticket` answers 403
    /// `phone_required` with a `bindTicket` for a person with no verified phone. Send a code
    /// with `purpose: bind`, then it, the phone and the ticket here (once, within 10 minutes):
    /// the web identity joins the user who has this verified phone already (from the mini
    /// program's phone button, say), or a new user is made with both.
    #[oai(path = "/auth/bind-phone", method = "post", operation_id = "bindPhone")]
    async fn bind_phone(
        &self,
        accounts: Data<&Accounts>,
        body: Json<BindPhoneRequest>,
    ) -> Reply<LoginOk, BindPhoneErrors> {
        let Json(req) = body;
        let signed_in = accounts
            .bind_phone(&req.bind_ticket, &req.phone_number.0, &req.code.0)
            .await?;
        Ok(LoginOk::Ok(Json(signed_in.into())))
    }
}
