//! The emulator's control API under `/__emulator`: what a test or a demo does on the phone's
//! side (wx.login, the phone button, open data) and the faults it wants WeChat to have.

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use base64::{engine::general_purpose::STANDARD, Engine};
use poem::web::Data;
use poem_openapi::{param::Path, param::Query, payload::Json, ApiResponse, Object, OpenApi};
use sha1::{Digest, Sha1};

use super::state::{self, openid, unionid, App, Fault};
use super::Emulator;

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AppRequest {
    pub appid: String,
    pub secret: String,
    /// Bound to an Open Platform account (answers carry the unionid). Default true.
    pub unionid: Option<bool>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UserRequest {
    /// Any name: `alice`.
    pub id: String,
    pub pure_phone_number: Option<String>,
    pub country_code: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UserInfo {
    pub id: String,
    /// The openid in `appid`, where asked.
    pub openid: Option<String>,
    pub unionid: String,
    /// The current session_key in `appid`, where asked (the emulator may tell; WeChat never).
    pub session_key: Option<String>,
    pub pure_phone_number: String,
    pub country_code: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct LoginRequest {
    pub appid: String,
    pub user: String,
    /// Make this the user's new session_key (to reproduce a published sample).
    pub session_key: Option<String>,
    /// Whether this wx.login gives a new session_key. Default true.
    pub rotate: Option<bool>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CodeReply {
    pub code: String,
    pub openid: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct BatchRequest {
    pub appid: String,
    /// `login` (wx.login codes) or `phone` (getPhoneNumber codes).
    pub kind: String,
    /// Test users are `{userPrefix}{i % userCount}`.
    pub user_prefix: String,
    pub user_count: u32,
    /// How many codes, at most 1,000,000.
    pub count: u32,
}

#[derive(Object)]
pub struct BatchReply {
    pub codes: Vec<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct PhoneCodeRequest {
    pub appid: String,
    pub user: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct OauthCodeRequest {
    pub appid: String,
    pub user: String,
    /// `snsapi_login` (website), `snsapi_userinfo` or `snsapi_base` (Official Account).
    pub scope: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EncryptRequest {
    pub appid: String,
    pub user: String,
    /// The open data; the emulator adds `watermark: {appid, timestamp}`.
    pub data: serde_json::Value,
    /// Encrypt with this key instead of the user's current one (data made before a wx.login).
    pub session_key: Option<String>,
    /// Put this appid in the watermark instead.
    pub watermark_appid: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EncryptReply {
    pub encrypted_data: String,
    pub iv: String,
    /// The data without watermark, as JSON text.
    pub raw_data: String,
    /// sha1(rawData + session_key), hex.
    pub signature: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct FaultRequest {
    /// A WeChat path: `/sns/jscode2session`.
    pub path: String,
    /// Only calls about this test user.
    pub user: Option<String>,
    /// Answer this errcode instead.
    pub errcode: Option<i64>,
    pub errmsg: Option<String>,
    /// Wait this long first.
    pub delay_ms: Option<u64>,
    /// Drop the connection instead of answering.
    pub drop: Option<bool>,
    /// For the next N calls. Default 1.
    pub times: Option<u32>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ClockRequest {
    pub advance_seconds: i64,
}

#[derive(ApiResponse)]
pub enum Done {
    /// Done.
    #[oai(status = 204)]
    Done,
}

pub struct ControlApi;

#[OpenApi(prefix_path = "/__emulator")]
impl ControlApi {
    /// Register an app (AppID and AppSecret) that WeChat will know
    #[oai(path = "/apps", method = "post")]
    async fn app(&self, emu: Data<&Emulator>, body: Json<AppRequest>) -> Done {
        let r = body.0;
        emu.lock().apps.insert(
            r.appid,
            App {
                secret: r.secret,
                unionid: r.unionid.unwrap_or(true),
            },
        );
        Done::Done
    }

    /// Make or change a test user
    #[oai(path = "/users", method = "post")]
    async fn user(&self, emu: Data<&Emulator>, body: Json<UserRequest>) -> Json<UserInfo> {
        let r = body.0;
        let mut s = emu.lock();
        let u = s.user(&r.id);
        if let Some(p) = r.pure_phone_number {
            u.pure_phone = p;
        }
        if let Some(c) = r.country_code {
            u.country_code = c;
        }
        Json(UserInfo {
            id: r.id.clone(),
            openid: None,
            unionid: unionid(&r.id),
            session_key: None,
            pure_phone_number: u.pure_phone.clone(),
            country_code: u.country_code.clone(),
        })
    }

    /// A test user, with openid and session_key in an app
    #[oai(path = "/users/:id", method = "get")]
    async fn get_user(
        &self,
        emu: Data<&Emulator>,
        id: Path<String>,
        appid: Query<Option<String>>,
    ) -> Json<UserInfo> {
        let mut s = emu.lock();
        let key = appid
            .0
            .as_deref()
            .and_then(|a| s.user(&id.0).keys.get(a).cloned());
        let u = s.user(&id.0);
        Json(UserInfo {
            id: id.0.clone(),
            openid: appid.0.as_deref().map(|a| openid(a, &id.0)),
            unionid: unionid(&id.0),
            session_key: key,
            pure_phone_number: u.pure_phone.clone(),
            country_code: u.country_code.clone(),
        })
    }

    /// wx.login: a new code for a user (and, as a rule, a new session_key)
    #[oai(path = "/login", method = "post")]
    async fn login(&self, emu: Data<&Emulator>, body: Json<LoginRequest>) -> Json<CodeReply> {
        let r = body.0;
        let code =
            emu.lock()
                .mint_login_code(&r.appid, &r.user, r.session_key, r.rotate.unwrap_or(true));
        Json(CodeReply {
            code,
            openid: openid(&r.appid, &r.user),
        })
    }

    /// Many codes at once, for load tests (one fresh code per request)
    #[oai(path = "/codes", method = "post")]
    async fn codes(&self, emu: Data<&Emulator>, body: Json<BatchRequest>) -> Json<BatchReply> {
        let r = body.0;
        let (count, users) = (r.count.min(1_000_000), r.user_count.max(1));
        let mut s = emu.lock();
        let codes = (0..count)
            .map(|i| {
                let user = format!("{}{}", r.user_prefix, i % users);
                if r.kind == "phone" {
                    s.mint_phone_code(&r.appid, &user)
                } else {
                    // The key stays: codes of one user minted together come from one wx.login.
                    s.mint_login_code(&r.appid, &user, None, false)
                }
            })
            .collect();
        Json(BatchReply { codes })
    }

    /// The getPhoneNumber button: a phone code for a user
    #[oai(path = "/phone-code", method = "post")]
    async fn phone_code(
        &self,
        emu: Data<&Emulator>,
        body: Json<PhoneCodeRequest>,
    ) -> Json<CodeReply> {
        let r = body.0;
        let code = emu.lock().mint_phone_code(&r.appid, &r.user);
        Json(CodeReply {
            code,
            openid: openid(&r.appid, &r.user),
        })
    }

    /// A web sign-in code, as if the person confirmed on WeChat's page
    #[oai(path = "/oauth-code", method = "post")]
    async fn oauth_code(
        &self,
        emu: Data<&Emulator>,
        body: Json<OauthCodeRequest>,
    ) -> Json<CodeReply> {
        let r = body.0;
        let code = emu.lock().mint_oauth_code(&r.appid, &r.user, &r.scope);
        Json(CodeReply {
            code,
            openid: openid(&r.appid, &r.user),
        })
    }

    /// A native app's code, as the WeChat Open SDK's `SendAuth` (scope `snsapi_userinfo`)
    /// gives it to the app: single use, ten minutes; swapped at `/sns/oauth2/access_token`
    #[oai(path = "/app-code", method = "post")]
    async fn app_code(
        &self,
        emu: Data<&Emulator>,
        body: Json<PhoneCodeRequest>,
    ) -> Json<CodeReply> {
        let r = body.0;
        let code = emu.lock().mint_oauth_code_for(
            &r.appid,
            &r.user,
            "snsapi_userinfo",
            state::APP_CODE_TTL,
        );
        Json(CodeReply {
            code,
            openid: openid(&r.appid, &r.user),
        })
    }

    /// Open data as a mini program API gives it, encrypted with the user's session_key
    #[oai(path = "/encrypt", method = "post")]
    async fn encrypt(
        &self,
        emu: Data<&Emulator>,
        body: Json<EncryptRequest>,
    ) -> Json<EncryptReply> {
        let r = body.0;
        let (key, now) = {
            let mut s = emu.lock();
            let key = r
                .session_key
                .clone()
                .unwrap_or_else(|| s.session_key(&r.appid, &r.user));
            (key, s.now())
        };
        let raw_data = r.data.to_string();
        let mut full = match r.data {
            serde_json::Value::Object(m) => m,
            other => {
                let mut m = serde_json::Map::new();
                m.insert("data".into(), other);
                m
            }
        };
        full.insert(
            "watermark".into(),
            serde_json::json!({ "timestamp": now, "appid": r.watermark_appid.unwrap_or(r.appid) }),
        );
        let plain = serde_json::Value::Object(full).to_string();
        let key_bytes: [u8; 16] = STANDARD
            .decode(&key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .unwrap_or([0; 16]);
        let iv_text = state::random_b64(16);
        let iv: [u8; 16] = STANDARD
            .decode(&iv_text)
            .expect("own base64")
            .try_into()
            .expect("16 bytes");
        let cipher = cbc::Encryptor::<aes::Aes128>::new(&key_bytes.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plain.as_bytes());
        let mut h = Sha1::new();
        h.update(raw_data.as_bytes());
        h.update(key.as_bytes());
        Json(EncryptReply {
            encrypted_data: STANDARD.encode(cipher),
            iv: iv_text,
            signature: hex::encode(h.finalize()),
            raw_data,
        })
    }

    /// Inject a fault for the next N calls of a WeChat path
    #[oai(path = "/faults", method = "post")]
    async fn fault(&self, emu: Data<&Emulator>, body: Json<FaultRequest>) -> Done {
        let r = body.0;
        emu.lock().faults.push(Fault {
            path: r.path,
            user: r.user,
            errcode: r.errcode,
            errmsg: r.errmsg,
            delay_ms: r.delay_ms.unwrap_or(0),
            drop: r.drop.unwrap_or(false),
            remaining: r.times.unwrap_or(1),
        });
        Done::Done
    }

    /// Remove every injected fault
    #[oai(path = "/faults", method = "delete")]
    async fn clear_faults(&self, emu: Data<&Emulator>) -> Done {
        emu.lock().faults.clear();
        Done::Done
    }

    /// Move the emulator's clock forward (codes and tokens expire by it)
    #[oai(path = "/clock", method = "post")]
    async fn clock(&self, emu: Data<&Emulator>, body: Json<ClockRequest>) -> Done {
        emu.lock().clock_offset += body.0.advance_seconds;
        Done::Done
    }

    /// How many times each WeChat path was called
    #[oai(path = "/calls", method = "get")]
    async fn calls(&self, emu: Data<&Emulator>) -> Json<std::collections::HashMap<String, u64>> {
        Json(emu.lock().calls.clone())
    }
}
