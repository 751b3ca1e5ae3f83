//! Web sign-in: website QR login (`snsapi_login`) and Official Account pages (`snsapi_base`,
//! `snsapi_userinfo`). A single-use `state` ties WeChat's callback to the page that started it;
//! the browser gets back only a single-use, 60-second ticket in the URL fragment, which the page
//! swaps for a session. WeChat's web tokens stay on the server.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::{Accounts, SignedIn};
use crate::config::LoginPolicy;
use crate::error::{Code, Error, Result};
use crate::store::sessions::{Session, Token};
use crate::store::users::{Identity, Provider};

const STATE_TTL: Duration = Duration::from_secs(600);
const TICKET_TTL: Duration = Duration::from_secs(60);
/// WeChat's refresh_token lives 30 days; the web tokens are kept as long.
const WEB_TOKENS_TTL: Duration = Duration::from_secs(30 * 86_400);

/// The two web products.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebProvider {
    Website,
    OfficialAccount,
}

impl WebProvider {
    fn identity(self) -> Provider {
        match self {
            WebProvider::Website => Provider::Website,
            WebProvider::OfficialAccount => Provider::OfficialAccount,
        }
    }

    fn path(self) -> &'static str {
        match self {
            WebProvider::Website => "website",
            WebProvider::OfficialAccount => "official_account",
        }
    }
}

/// What a `state` stands for while the browser is at WeChat.
#[derive(Serialize, Deserialize)]
struct PendingWeb {
    provider: WebProvider,
    redirect_uri: String,
    scope: String,
}

/// What a ticket stands for, for 60 seconds.
#[derive(Serialize, Deserialize)]
struct WebTicket {
    user_id: String,
    appid: String,
    openid: String,
    is_new_user: bool,
}

/// WeChat's web tokens of an identity, kept server-side.
#[derive(Serialize, Deserialize)]
struct WebTokens {
    access_token: String,
    refresh_token: String,
}

fn hashed(prefix: &str, secret: &str) -> String {
    format!(
        "{prefix}:{}",
        hex::encode(Sha256::digest(secret.as_bytes()))
    )
}

/// `redirect` with `fragment` in place of any fragment it had.
fn with_fragment(redirect: &str, fragment: &str) -> Result<Url> {
    let mut url =
        Url::parse(redirect).map_err(|_| Error::invalid("The stored redirectUri is malformed."))?;
    url.set_fragment(Some(fragment));
    Ok(url)
}

impl Accounts {
    fn web_app(&self, provider: WebProvider) -> Result<&crate::config::AppCredentials> {
        let web = &self.inner.web;
        match provider {
            WebProvider::Website => web.website.as_ref(),
            WebProvider::OfficialAccount => web.official_account.as_ref(),
        }
        .ok_or_else(|| {
            Error::invalid(format!(
                "This server has no {} app configured.",
                provider.path()
            ))
        })
    }

    /// Whether browsers may be sent back to `redirect_uri`: its origin must be on the allow-list.
    fn allowed_redirect(&self, redirect_uri: &str) -> Result<Url> {
        let refuse = || {
            Error::invalid(
                "redirectUri is not on this server's allow-list (WXLOGIN_REDIRECT_ALLOWLIST).",
            )
        };
        let url = Url::parse(redirect_uri).map_err(|_| refuse())?;
        let plain = matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && url.password().is_none();
        if plain
            && self
                .inner
                .web
                .allowlist
                .iter()
                .any(|a| a.origin() == url.origin())
        {
            Ok(url)
        } else {
            Err(refuse())
        }
    }

    /// Where to send the browser to sign in: WeChat's QR page or consent page, with a new state.
    pub async fn web_authorize(
        &self,
        provider: WebProvider,
        redirect_uri: &str,
        scope: Option<&str>,
    ) -> Result<Url> {
        let app = self.web_app(provider)?;
        let scope = match (provider, scope) {
            (WebProvider::Website, None | Some("snsapi_login")) => "snsapi_login",
            (WebProvider::OfficialAccount, None | Some("snsapi_userinfo")) => "snsapi_userinfo",
            (WebProvider::OfficialAccount, Some("snsapi_base")) => "snsapi_base",
            _ => return Err(Error::invalid("scope is snsapi_login (website), snsapi_userinfo or snsapi_base (official_account).")),
        };
        let redirect = self.allowed_redirect(redirect_uri)?;
        let state = uuid::Uuid::new_v4().simple().to_string();
        let pending = PendingWeb {
            provider,
            redirect_uri: redirect.to_string(),
            scope: scope.into(),
        };
        let bytes = serde_json::to_vec(&pending).expect("serializable");
        self.inner
            .kv
            .set(&hashed("oauth", &state), &bytes, STATE_TTL)
            .await?;

        let web = &self.inner.web;
        let callback = web
            .public_url
            .join(&format!("api/v1/oauth/{}/callback", provider.path()))
            .map_err(|_| Error::invalid("WXLOGIN_PUBLIC_URL cannot take a path"))?;
        let path = match provider {
            WebProvider::Website => "connect/qrconnect",
            WebProvider::OfficialAccount => "connect/oauth2/authorize",
        };
        let mut url = web
            .open_base
            .join(path)
            .map_err(|_| Error::invalid("WXLOGIN_WECHAT_OPEN_BASE cannot take a path"))?;
        url.query_pairs_mut()
            .append_pair("appid", &app.appid)
            .append_pair("redirect_uri", callback.as_str())
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", &state);
        url.set_fragment(Some("wechat_redirect"));
        Ok(url)
    }

    /// WeChat's callback: burns the state, swaps the code, links by unionid, and answers where
    /// to send the browser (the stored redirectUri with `#ticket=` or `#error=`).
    pub async fn web_callback(
        &self,
        provider: WebProvider,
        code: Option<&str>,
        state: Option<&str>,
    ) -> Result<Url> {
        let bad_state = || {
            Error::invalid("This sign-in's state is unknown, used or older than 10 minutes: start the sign-in again.")
        };
        let state = state
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or_else(bad_state)?;
        let bytes = self
            .inner
            .kv
            .take(&hashed("oauth", state))
            .await?
            .ok_or_else(bad_state)?;
        let pending: PendingWeb = serde_json::from_slice(&bytes).map_err(|_| bad_state())?;
        if pending.provider != provider {
            return Err(bad_state());
        }
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            return with_fragment(&pending.redirect_uri, "error=access_denied");
        };
        super::check_code("code", code)?;
        let app = self.web_app(provider)?.clone();
        let wechat = &self.inner.wechat;
        let token = wechat
            .oauth_access_token(&app.appid, &app.secret, code)
            .await?;
        let info = if pending.scope == "snsapi_base" {
            None
        } else {
            Some(wechat.userinfo(&token.access_token, &token.openid).await?)
        };
        let unionid = token
            .unionid
            .clone()
            .or_else(|| info.as_ref().and_then(|i| i.unionid.clone()));
        let identity = Identity {
            provider: provider.identity(),
            appid: app.appid.clone(),
            openid: token.openid.clone(),
            unionid: unionid.clone(),
            binding: None,
        };
        let users = &self.inner.users;
        let (user_id, is_new_user) = match users.find_identity(&app.appid, &token.openid).await? {
            Some(user) => {
                let known = user
                    .identity(&app.appid, &token.openid)
                    .and_then(|i| i.unionid.as_ref());
                if let (None, Some(u)) = (known, &unionid) {
                    users
                        .record_unionid(&user.id, &app.appid, &token.openid, u)
                        .await?;
                }
                (user.id, false)
            }
            None => {
                let linked = match &unionid {
                    Some(u) => users.find_user_by_unionid(u).await?,
                    None => None,
                };
                match (linked, self.inner.login_policy) {
                    (Some(owner), _) => (users.link_identity(&owner, &identity).await?.0, false),
                    (None, LoginPolicy::AutoRegister) => {
                        users.create_with_identity(&identity).await?
                    }
                    (None, LoginPolicy::RequireBinding) => {
                        return with_fragment(&pending.redirect_uri, "error=binding_required");
                    }
                }
            }
        };
        if let Some(info) = &info {
            let nickname = Some(info.nickname.as_str()).filter(|n| !n.is_empty());
            let avatar = Some(info.headimgurl.as_str()).filter(|a| a.starts_with("http"));
            users.fill_profile(&user_id, nickname, avatar).await?;
        }
        let tokens = WebTokens {
            access_token: token.access_token,
            refresh_token: token.refresh_token,
        };
        let bytes = serde_json::to_vec(&tokens).expect("serializable");
        self.put_sealed(
            &hashed("webtok", &format!("{}\0{}", app.appid, token.openid)),
            &bytes,
            WEB_TOKENS_TTL,
        )
        .await?;

        let ticket = Token::new().reveal();
        let record = WebTicket {
            user_id: user_id.clone(),
            appid: app.appid,
            openid: token.openid,
            is_new_user,
        };
        let bytes = serde_json::to_vec(&record).expect("serializable");
        self.inner
            .kv
            .set(&hashed("ticket", &ticket), &bytes, TICKET_TTL)
            .await?;
        tracing::info!(user_id = %user_id, provider = provider.path(), is_new_user, "web sign-in");
        with_fragment(&pending.redirect_uri, &format!("ticket={ticket}"))
    }

    /// `auth/ticket`: a web sign-in's ticket becomes a session, once, within 60 seconds.
    pub async fn redeem_ticket(&self, ticket: &str) -> Result<SignedIn> {
        let bad = || {
            Error::new(
                Code::Unauthenticated,
                "This ticket is unknown, used or older than 60 seconds: start the sign-in again.",
            )
        };
        if ticket.is_empty() || ticket.len() > 64 {
            return Err(bad());
        }
        let bytes = self
            .inner
            .kv
            .take(&hashed("ticket", ticket))
            .await?
            .ok_or_else(bad)?;
        let t: WebTicket = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        self.sign_in(
            &t.user_id,
            t.is_new_user,
            Session::web(&t.user_id, &t.appid, &t.openid),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_is_replaced_not_appended() {
        let u = with_fragment("https://example.com/a?b=1#old", "ticket=x").unwrap();
        assert_eq!(u.as_str(), "https://example.com/a?b=1#ticket=x");
    }
}
