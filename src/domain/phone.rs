//! Phone numbers, parsed once into E.164 (`+8613800138000`), the one form they are stored,
//! compared and answered in, whichever way they came: typed by a person (E.164, or an 11-digit
//! mainland number), or from WeChat's phone button (`countryCode` and `purePhoneNumber`).
//! Also the SMS code a person types.

use std::fmt;

use super::input::Shaped;
use super::user::Phone;

/// A phone number in E.164: `+`, a country code, the number; 8 to 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl Shaped for PhoneNumber {
    const MIN: usize = 8;
    const MAX: usize = 16;
    const PATTERN: Option<&'static str> = Some(r"^(\+[1-9][0-9]{7,14}|1[0-9]{10})$");
    const WHAT: &'static str = "phoneNumber (E.164, as +8613800138000, or 11 mainland digits)";

    fn fits(text: &str) -> bool {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        match text.strip_prefix('+') {
            Some(rest) => (8..=15).contains(&rest.len()) && !rest.starts_with('0') && digits(rest),
            None => text.len() == 11 && text.starts_with('1') && digits(text),
        }
    }

    /// A mainland number without its `+86` gets it.
    fn from_checked(text: String) -> Self {
        match text.starts_with('+') {
            true => PhoneNumber(text),
            false => PhoneNumber(format!("+86{text}")),
        }
    }

    fn shown(&self) -> Option<&str> {
        Some(&self.0)
    }
}

/// Country codes whose numbers WeChat's phone button splits off (`countryCode`); a number of
/// another country keeps its first digit as its country code, which only the answer's
/// `countryCode` and `purePhoneNumber` show.
const COUNTRY_CODES: [&str; 12] = [
    "86", "852", "853", "886", "1", "44", "81", "82", "65", "60", "61", "49",
];

impl PhoneNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number WeChat's phone button gave, in E.164; None where its parts are not digits.
    pub fn of_wechat(country_code: &str, pure_phone_number: &str) -> Option<PhoneNumber> {
        let country = country_code.trim_start_matches('+');
        PhoneNumber::parse(format!("+{country}{pure_phone_number}")).ok()
    }

    /// The number as the contract answers it: E.164, with WeChat's two parts beside.
    pub fn to_phone(&self) -> Phone {
        let digits = &self.0[1..];
        let country = COUNTRY_CODES
            .iter()
            .filter(|c| digits.starts_with(*c))
            .max_by_key(|c| c.len())
            .copied()
            .unwrap_or(&digits[..1]);
        Phone {
            phone_number: self.0.clone(),
            pure_phone_number: digits[country.len()..].to_string(),
            country_code: country.to_string(),
        }
    }

    /// A mainland number's 11 digits (what Alibaba Cloud's SMS takes); None for others.
    pub fn mainland(&self) -> Option<&str> {
        self.0.strip_prefix("+86").filter(|n| n.len() == 11)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An SMS code as typed: six digits.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsCode(String);

impl Shaped for SmsCode {
    const MIN: usize = 6;
    const MAX: usize = 6;
    const PATTERN: Option<&'static str> = Some("^[0-9]{6}$");
    const WHAT: &'static str = "An SMS code";

    fn fits(text: &str) -> bool {
        text.bytes().all(|b| b.is_ascii_digit())
    }

    fn from_checked(text: String) -> Self {
        SmsCode(text)
    }

    /// A code is a secret while it lives.
    fn shown(&self) -> Option<&str> {
        None
    }
}

impl SmsCode {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmsCode(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_parsed_into_e164() {
        let p = |s: &str| PhoneNumber::parse(s.to_string()).map(|p| p.0);
        assert_eq!(p("13800138000").unwrap(), "+8613800138000");
        assert_eq!(p("+8613800138000").unwrap(), "+8613800138000");
        assert_eq!(p("+85291234567").unwrap(), "+85291234567");
        for bad in [
            "23800138000",
            "1380013800",
            "+0861380013",
            "+86 13800138000",
            "138-0013-8000",
            "+1234567",
            "+1234567890123456",
            "",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wechat_numbers_and_their_parts() {
        let n = PhoneNumber::of_wechat("86", "13580006666").unwrap();
        assert_eq!(n.as_str(), "+8613580006666");
        let phone = n.to_phone();
        assert_eq!(phone.pure_phone_number, "13580006666");
        assert_eq!(phone.country_code, "86");
        assert_eq!(n.mainland(), Some("13580006666"));
        let hk = PhoneNumber::of_wechat("852", "91234567")
            .unwrap()
            .to_phone();
        assert_eq!(
            (hk.country_code.as_str(), hk.pure_phone_number.as_str()),
            ("852", "91234567")
        );
        assert!(PhoneNumber::of_wechat("86", "1358000666x").is_none());
    }

    #[test]
    fn sms_codes_are_six_digits_and_not_shown() {
        assert!(SmsCode::parse("012345".into()).is_ok());
        for bad in ["12345", "1234567", "12345a", "１２３４５６"] {
            assert!(SmsCode::parse(bad.into()).is_err(), "{bad}");
        }
        let code = SmsCode::parse("123456".into()).unwrap();
        assert_eq!(code.shown(), None);
        assert_eq!(format!("{code:?}"), "SmsCode(***)");
    }
}
