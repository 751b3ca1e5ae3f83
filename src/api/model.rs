//! The contract's objects (API.md "Objects"), camelCase on the wire, with examples for /docs.

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    Example, MaybeUndefined, ParseError, ParseFromJSON, ParseResult, ToJSON, Type,
};
use poem_openapi::Object;
use serde_json::Value;

use crate::accounts::SignedIn;
use crate::domain::{
    AppId, Credentials, HttpUrl, Identity, Nickname, Password, Shaped, User, Username, WxCode,
};
use crate::wechat::crypto::{SAMPLE_DATA, SAMPLE_IV};

/// A JSON string field parsed into a domain type `T` (`domain::Shaped`): the schema shows `T`'s
/// length and alphabet, and a value that breaks them is a 400 before the handler runs, so the
/// handler gets a `T`. Only a JSON string is one: `false` or `12` is not.
#[derive(Debug, Clone)]
pub struct Field<T>(pub T);

impl<T: Shaped> Field<T> {
    /// A field of a constant known to fit (examples).
    pub(super) fn of(text: &str) -> Self {
        Field(T::parse(text.to_string()).expect("an example fits its shape"))
    }
}

impl<T: Shaped + Send + Sync> Type for Field<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            min_length: (T::MIN > 0).then_some(T::MIN),
            max_length: Some(T::MAX),
            pattern: T::PATTERN.map(str::to_string),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<T: Shaped + Send + Sync> ParseFromJSON for Field<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(v) => T::parse(v).map(Field).map_err(|e| ParseError::custom(e.0)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<T: Shaped + Send + Sync> ToJSON for Field<T> {
    fn to_json(&self) -> Option<Value> {
        self.0.shown().map(|s| Value::String(s.to_string()))
    }
}

/// What a `PATCH` field asks: `None` leaves it, `Some(None)` clears it.
pub fn change<T>(field: MaybeUndefined<Field<T>>) -> Option<Option<T>> {
    match field {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(Field(v)) => Some(Some(v)),
    }
}

/// A WeChat identity that signs in to a user.
#[derive(Object)]
#[oai(rename = "Identity", rename_all = "camelCase")]
pub struct IdentityBody {
    /// `miniprogram`, `website`, `official_account` or `app` (a native app).
    pub provider: String,
    /// The app the openid belongs to.
    pub appid: String,
    /// The user's id in that app.
    pub openid: String,
    /// The user's id across the apps of one Open Platform account, where known.
    #[oai(nullable)]
    pub unionid: Option<String>,
}

/// A business account.
#[derive(Object)]
#[oai(rename = "User", rename_all = "camelCase", example)]
pub struct UserBody {
    pub id: String,
    #[oai(nullable)]
    pub username: Option<String>,
    #[oai(nullable)]
    pub nickname: Option<String>,
    #[oai(nullable)]
    pub avatar_url: Option<String>,
    /// The verified phone in E.164 (`+8613580006666`), from the phone button or an SMS code.
    #[oai(nullable)]
    pub phone_number: Option<String>,
    #[oai(nullable)]
    pub country_code: Option<String>,
    pub identities: Vec<IdentityBody>,
    /// RFC 3339.
    pub created_at: String,
}

impl Example for UserBody {
    fn example() -> Self {
        UserBody {
            id: "8d7f2c1e-3b4a-4c5d-9e6f-7a8b9c0d1e2f".into(),
            username: None,
            nickname: Some("Band".into()),
            avatar_url: None,
            phone_number: Some("+8613580006666".into()),
            country_code: Some("86".into()),
            identities: vec![IdentityBody {
                provider: "miniprogram".into(),
                appid: "wx4f4bc4dec97d474b".into(),
                openid: "oGZUI0egBJY1zhBYw2KhdUfwVJJE".into(),
                unionid: Some("ocMvos6NjeKLIBqg5Mr9QjxrP1FA".into()),
            }],
            created_at: "2026-11-25T03:04:05Z".into(),
        }
    }
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        let created =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(u.created_at.max(0) as u64);
        UserBody {
            id: u.id,
            username: u.username,
            nickname: u.nickname,
            avatar_url: u.avatar_url,
            phone_number: u.phone_number,
            country_code: u.country_code,
            identities: u.identities.into_iter().map(IdentityBody::from).collect(),
            created_at: humantime::format_rfc3339_seconds(created).to_string(),
        }
    }
}

impl From<Identity> for IdentityBody {
    fn from(i: Identity) -> Self {
        IdentityBody {
            provider: i.provider.as_str().into(),
            appid: i.appid,
            openid: i.openid,
            unionid: i.unionid,
        }
    }
}

/// A signed-in session. The token is the only secret the client ever holds.
#[derive(Object)]
#[oai(rename = "Session", rename_all = "camelCase", example)]
pub struct SessionBody {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Seconds the token lives without use; each use restarts it.
    pub expires_in: u64,
    /// True when this login created the user.
    pub is_new_user: bool,
    pub user: UserBody,
    /// A JWT (ES256, RFC 9068) for the business's own services: they verify it with the keys
    /// at `/.well-known/jwks.json`. Renew it with `POST /api/v1/auth/token`.
    pub access_token: String,
    /// Seconds the access token lives.
    pub access_token_expires_in: u64,
}

/// An example access token (its signature is not a real one).
const ACCESS_TOKEN_EXAMPLE: &str =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IjIwMjYtMTItMDIt\
    YTFiMmMzZDQifQ.eyJpc3MiOiJodHRwczovL2xvZ2luLmV4YW1wbGUuY29tIiwic3ViIjoiOGQ3ZjJjMWUtM2I0YS00Yz\
    VkLTllNmYtN2E4YjljMGQxZTJmIn0.c2lnbmF0dXJl";

/// A fresh access token of the session.
#[derive(Object)]
#[oai(rename = "AccessToken", rename_all = "camelCase", example)]
pub struct AccessTokenBody {
    /// A JWT (ES256, RFC 9068) for the business's own services.
    pub access_token: String,
    /// Seconds it lives.
    pub access_token_expires_in: u64,
}

impl Example for AccessTokenBody {
    fn example() -> Self {
        AccessTokenBody {
            access_token: ACCESS_TOKEN_EXAMPLE.into(),
            access_token_expires_in: 900,
        }
    }
}

impl From<crate::accounts::Issued> for AccessTokenBody {
    fn from(i: crate::accounts::Issued) -> Self {
        AccessTokenBody {
            access_token: i.token,
            access_token_expires_in: i.expires_in,
        }
    }
}

impl Example for SessionBody {
    fn example() -> Self {
        SessionBody {
            token: "2b1f8a3e-6c4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
            expires_in: 604_800,
            is_new_user: true,
            user: UserBody::example(),
            access_token: ACCESS_TOKEN_EXAMPLE.into(),
            access_token_expires_in: 900,
        }
    }
}

impl From<SignedIn> for SessionBody {
    fn from(s: SignedIn) -> Self {
        SessionBody {
            token: s.token.reveal(),
            expires_in: s.expires_in,
            is_new_user: s.is_new_user,
            user: s.user.into(),
            access_token: s.access_token.token,
            access_token_expires_in: s.access_token.expires_in,
        }
    }
}

/// `POST /api/v1/auth/login`.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct LoginRequest {
    /// The code `wx.login` gave (one use, five minutes).
    pub code: Field<WxCode>,
    /// The mini program; may be left out where one is configured.
    pub appid: Option<Field<AppId>>,
    /// With `password`: bind this WeChat user to that account on first login.
    pub username: Option<Field<Username>>,
    /// With `username`.
    #[oai(write_only)]
    pub password: Option<Field<Password>>,
}

impl Example for LoginRequest {
    fn example() -> Self {
        LoginRequest {
            code: Field::of("0a3Xk2000Nfpu03mVb300rUVzN3Xk20K"),
            appid: None,
            username: None,
            password: None,
        }
    }
}

/// A fresh `wx.login` code.
#[derive(Object)]
#[oai(example)]
pub struct CodeRequest {
    /// The code `wx.login` gave.
    pub code: Field<WxCode>,
}

impl Example for CodeRequest {
    fn example() -> Self {
        CodeRequest {
            code: Field::of("0a3Xk2000Nfpu03mVb300rUVzN3Xk20K"),
        }
    }
}

/// `POST /api/v1/auth/app`: a code of the WeChat Open SDK.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct AppLoginRequest {
    /// What the Open SDK's `SendAuth` (scope `snsapi_userinfo`) gave the app.
    pub code: Field<WxCode>,
    /// The native app's AppID; may be left out where one is configured.
    pub appid: Option<Field<AppId>>,
}

impl Example for AppLoginRequest {
    fn example() -> Self {
        AppLoginRequest {
            code: Field::of("061Vx1Ga1nQEnH0V1KFa1aXe1g3Vx1GT"),
            appid: Some(Field::of("wx4000000000000004")),
        }
    }
}

/// The refreshed session: same token, new session_key on the server.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct RefreshBody {
    pub token: String,
    pub expires_in: u64,
}

impl Example for RefreshBody {
    fn example() -> Self {
        RefreshBody {
            token: "2b1f8a3e-6c4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
            expires_in: 604_800,
        }
    }
}

/// `PATCH /api/v1/me`: fields left out stay; `null` clears.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct ProfilePatch {
    /// 1 to 64 characters.
    pub nickname: MaybeUndefined<Field<Nickname>>,
    /// An http(s) URL of at most 1024 characters.
    pub avatar_url: MaybeUndefined<Field<HttpUrl>>,
}

impl Example for ProfilePatch {
    fn example() -> Self {
        ProfilePatch {
            nickname: MaybeUndefined::Value(Field::of("Band")),
            avatar_url: MaybeUndefined::Undefined,
        }
    }
}

/// `POST /api/v1/wechat/decrypt`: what a mini program API gave (`e.detail` forwarded as is).
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct DecryptRequest {
    /// Base64, as the mini program API gave it.
    #[oai(validator(min_length = 1))]
    pub encrypted_data: String,
    /// Base64 of 16 bytes.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub iv: String,
    /// With `signature`: checked as sha1(rawData + session_key).
    pub raw_data: Option<String>,
    pub signature: Option<String>,
}

impl Example for DecryptRequest {
    fn example() -> Self {
        DecryptRequest {
            encrypted_data: SAMPLE_DATA.into(),
            iv: SAMPLE_IV.into(),
            raw_data: None,
            signature: None,
        }
    }
}

/// Decrypted open data.
#[derive(Object)]
#[oai(example)]
pub struct DecryptBody {
    /// The decrypted object without its watermark.
    pub data: serde_json::Value,
    /// `{appid, timestamp}`; appid is this session's.
    pub watermark: serde_json::Value,
}

impl Example for DecryptBody {
    fn example() -> Self {
        DecryptBody {
            data: serde_json::json!({
                "openId": "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
                "nickName": "Band",
                "gender": 1,
                "language": "zh_CN",
                "city": "Guangzhou",
                "province": "Guangdong",
                "country": "CN",
                "unionId": "ocMvos6NjeKLIBqg5Mr9QjxrP1FA",
            }),
            watermark: serde_json::json!({"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}),
        }
    }
}

/// A username and password.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct CredentialsRequest {
    /// 3 to 32 characters: letters, digits, `_`, `.`, `-`; unique without regard to case.
    pub username: Field<Username>,
    /// 8 to 128 characters; stored only as an argon2id hash.
    #[oai(write_only)]
    pub password: Field<Password>,
}

impl Example for CredentialsRequest {
    fn example() -> Self {
        CredentialsRequest {
            username: Field::of("band"),
            password: Field::of("correct horse battery"),
        }
    }
}

impl From<CredentialsRequest> for Credentials {
    fn from(req: CredentialsRequest) -> Credentials {
        Credentials {
            username: req.username.0,
            password: req.password.0,
        }
    }
}

/// `POST /api/v1/auth/bind`: the ticket of a `binding_required` answer, with the account's
/// username and password.
#[derive(Object)]
#[oai(rename_all = "camelCase", example)]
pub struct BindRequest {
    /// From the `binding_required` answer.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub bind_ticket: String,
    pub username: Field<Username>,
    #[oai(write_only)]
    pub password: Field<Password>,
}

impl Example for BindRequest {
    fn example() -> Self {
        BindRequest {
            bind_ticket: "6f9c1d2e-8a7b-4c3d-9e0f-1a2b3c4d5e6f".into(),
            username: Field::of("band"),
            password: Field::of("correct horse battery"),
        }
    }
}
