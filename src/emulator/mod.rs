//! A WeChat emulator: WeChat's server paths with WeChat's fields, errcodes and quirks, plus a
//! control API under `/__emulator` (documented at `/__emulator/docs`) for tests and demos.
//!
//! It is written from WECHAT.md alone and imports nothing from `wechat` or `api`, so that a bug
//! in our client cannot hide behind the same bug here.

mod control;
mod sms;
mod sms_aliyun;
mod state;
mod web;
mod wechat_paths;

use std::sync::{Arc, Mutex, MutexGuard};

use poem::{get, post, Endpoint, EndpointExt, IntoResponse, Route};
use poem_openapi::OpenApiService;

/// One emulated WeChat, shared by its handlers.
#[derive(Clone, Default)]
pub struct Emulator {
    state: Arc<Mutex<state::State>>,
}

impl Emulator {
    pub fn new() -> Emulator {
        Emulator::default()
    }

    fn lock(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes an app known, as `POST /__emulator/apps` does.
    pub fn add_app(&self, appid: &str, secret: &str, unionid: bool) {
        self.lock().apps.insert(
            appid.into(),
            state::App {
                secret: secret.into(),
                unionid,
            },
        );
    }

    /// The emulator's routes: WeChat's paths, the control API and its documentation.
    pub fn routes(&self) -> impl poem::Endpoint<Output = poem::Response> {
        let version = env!("CARGO_PKG_VERSION");
        let apis = (control::ControlApi, sms::SmsControlApi);
        let control = OpenApiService::new(apis, "wxlogin WeChat emulator", version).description(
            "Controls the emulated WeChat: test users, wx.login and phone codes, open data, \
                 faults and the clock; and the SMS inbox.",
        );
        let docs = control.swagger_ui();
        let spec = control.spec_endpoint();
        let emu = self.clone();
        Route::new()
            .at("/sns/jscode2session", get(wechat_paths::jscode2session))
            .at("/cgi-bin/token", get(wechat_paths::cgi_token))
            .at("/cgi-bin/stable_token", post(wechat_paths::stable_token))
            .at(
                "/wxa/business/getuserphonenumber",
                post(wechat_paths::getuserphonenumber),
            )
            .at("/wxa/checksession", get(wechat_paths::checksession))
            .at("/sns/oauth2/access_token", get(web::oauth_access_token))
            .at("/sns/oauth2/refresh_token", get(web::oauth_refresh_token))
            .at("/sns/userinfo", get(web::userinfo))
            .at("/sns/auth", get(web::sns_auth))
            .at("/connect/qrconnect", get(web::qrconnect))
            .at("/connect/oauth2/authorize", get(web::oauth2_authorize))
            .at("/connect/confirm", get(web::confirm))
            .nest("/__emulator/docs", docs)
            .at("/__emulator/openapi.json", spec)
            .nest("/", control)
            .data(self.clone())
            .around(move |ep, mut req| {
                let emu = emu.clone();
                async move {
                    // Tencent Cloud's and Alibaba Cloud's SMS APIs are at `/`: the first
                    // told apart by its action header, the second by its RPC parameters.
                    if sms::is_sms(&req) {
                        let body = req.take_body().into_vec().await.unwrap_or_default();
                        return Ok(sms::tencent(&emu, req, body).await);
                    }
                    if sms_aliyun::is_aliyun(&req) {
                        let body = req.take_body().into_vec().await.unwrap_or_default();
                        return Ok(sms_aliyun::send_sms(&emu, &req, &body).await);
                    }
                    ep.call(req).await.map(IntoResponse::into_response)
                }
            })
            .map_to_response()
    }
}
