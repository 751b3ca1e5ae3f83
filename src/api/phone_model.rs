//! The phone routes' wire objects: `POST /api/v1/me/phone`'s request and the `Phone` answer.

use poem_openapi::types::Example;
use poem_openapi::Object;

use super::model::Field;
use crate::domain::{Password, Phone, PhoneNumber, SmsCode, WxCode};

/// `POST /api/v1/me/phone`: `{code}` from the current `getPhoneNumber` button,
/// `{encryptedData, iv}` from the older one, or `{phoneNumber, smsCode}` (a code sent with
/// `purpose: bind`).
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct PhoneRequest {
    /// From the current `getPhoneNumber` button.
    pub code: Option<Field<WxCode>>,
    /// From the older button, with `iv` (base64).
    #[oai(validator(min_length = 1))]
    pub encrypted_data: Option<String>,
    /// Base64 of 16 bytes.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub iv: Option<String>,
    /// A phone to verify by SMS (E.164, or 11 mainland digits), with `smsCode`.
    pub phone_number: Option<Field<PhoneNumber>>,
    /// The code sent to `phoneNumber` by `POST /api/v1/sms/code` with `purpose: bind`.
    #[oai(write_only)]
    pub sms_code: Option<Field<SmsCode>>,
    /// Where the user has another phone already: a fresh `wx.login` code as proof that the
    /// owner is there (or `currentPassword`); without one, 403 `reauthentication_required`.
    pub proof_code: Option<Field<WxCode>>,
    /// The account's password, as the other proof for replacing a phone.
    #[oai(write_only)]
    pub current_password: Option<Field<Password>>,
}

impl Example for PhoneRequest {
    fn example() -> Self {
        PhoneRequest {
            code: Some(Field::of(
                "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144",
            )),
            encrypted_data: None,
            iv: None,
            phone_number: None,
            sms_code: None,
            proof_code: None,
            current_password: None,
        }
    }
}

/// A phone number: `phoneNumber` in E.164, and WeChat's two parts.
#[derive(Object)]
#[oai(rename = "Phone", rename_all = "camelCase", example)]
pub struct PhoneBody {
    /// E.164 (`+8613580006666`), the form every way of verifying a phone stores.
    pub phone_number: String,
    /// Without the country code.
    pub pure_phone_number: String,
    /// A string, as WeChat documents it (`"86"`).
    pub country_code: String,
}

impl Example for PhoneBody {
    fn example() -> Self {
        PhoneBody {
            phone_number: "+8613580006666".into(),
            pure_phone_number: "13580006666".into(),
            country_code: "86".into(),
        }
    }
}

impl From<Phone> for PhoneBody {
    fn from(p: Phone) -> Self {
        PhoneBody {
            phone_number: p.phone_number,
            pure_phone_number: p.pure_phone_number,
            country_code: p.country_code,
        }
    }
}
