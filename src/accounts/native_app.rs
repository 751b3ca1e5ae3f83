//! Native (iOS/Android) apps signing in with WeChat through the Open SDK: the app's `SendAuth`
//! (scope `snsapi_userinfo`) gives it a code, which the server swaps at
//! `sns/oauth2/access_token` with the mobile app's appid and secret (never in the app), then
//! reads `sns/userinfo`. The identity (provider `app`) links by UnionID to the same person's
//! mini program and web identities.

use super::identity::Resolution;
use super::{Accounts, SignedIn};
use crate::config::AppCredentials;
use crate::domain::{Identity, Provider, Session, WxCode};
use crate::error::{Code, Error, Result};

impl Accounts {
    /// The native app a request names, or the only one configured.
    fn mobile_app(&self, appid: Option<&str>) -> Result<&AppCredentials> {
        let apps = &self.inner.apps.mobile_apps;
        match appid {
            Some(id) => apps.iter().find(|a| a.appid == id).ok_or_else(|| {
                Error::invalid(format!(
                    "appid `{id}` is not a native app this server serves."
                ))
            }),
            None if apps.len() == 1 => Ok(&apps[0]),
            None if apps.is_empty() => Err(Error::invalid(
                "This server has no native app configured (WXLOGIN_APP_APPID).",
            )),
            None => Err(Error::invalid(
                "Several native apps are configured: send `appid` with the code.",
            )),
        }
    }

    /// `auth/app`: signs in with a code of the WeChat Open SDK.
    pub async fn app_login(&self, code: &WxCode, appid: Option<&str>) -> Result<SignedIn> {
        let app = self.mobile_app(appid)?.clone();
        let wechat = &self.inner.wechat;
        let token = wechat
            .oauth_access_token(&app.appid, &app.secret, code)
            .await?;
        let info = wechat.userinfo(&token.access_token, &token.openid).await?;
        let unionid = token.unionid.clone().or(info.unionid.clone());
        let identity = Identity::new(Provider::App, &app.appid, &token.openid, unionid);
        let resolved =
            match self.resolve_identity(&identity, None).await? {
                Resolution::User(resolved) => resolved,
                Resolution::NeedsBinding => return Err(Error::new(
                    Code::BindingRequired,
                    "This WeChat user is bound to no account yet, and this server makes none by \
                     itself: sign in another way first (the mini program, a password), then in \
                     the app.",
                )),
            };
        let nickname = Some(info.nickname.as_str()).filter(|n| !n.is_empty());
        let avatar = Some(info.headimgurl.as_str()).filter(|a| a.starts_with("http"));
        let users = &self.inner.stores.users;
        // The profile's write drops the user's cache entries (and a new user's lease with
        // them): its fill is not written, since it would only be dropped.
        let _unwritten = resolved.fill;
        users
            .fill_profile(&resolved.user_id, nickname, avatar)
            .await?;
        tracing::info!(
            user_id = %resolved.user_id,
            appid = %app.appid,
            is_new_user = resolved.is_new_user,
            event = "app_sign_in",
            "native app sign-in"
        );
        let session = Session::web(&resolved.user_id, &app.appid, &token.openid);
        self.start_session_by_id(&resolved.user_id, resolved.is_new_user, session)
            .await
    }
}
