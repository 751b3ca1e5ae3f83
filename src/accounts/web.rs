//! Web sign-in: website QR login (`snsapi_login`) and Official Account pages (`snsapi_base`,
//! `snsapi_userinfo`). A single-use `state` ties WeChat's callback to the page that started it;
//! the browser gets back only a single-use, 60-second ticket in the URL fragment, which the page
//! swaps for a session. WeChat's web tokens stay on the server.

use url::Url;

use super::identity::Resolution;
use super::{Accounts, SignedIn};
use crate::config::AppCredentials;
use crate::domain::{
    CodeChallenge, CodeVerifier, Identity, Session, Shaped, Token, WebProvider, WxCode,
};
use crate::error::{Code, Error, Result};
use crate::store::tickets::{PendingWeb, WebTicket, WebTokens};

/// The longest `redirectUri` taken, in bytes.
const MAX_REDIRECT_URI: usize = 2048;

/// Whether `url` is the allow-list's `entry`: the same scheme, host, port and path; the query
/// of either is ignored.
fn same_redirect(entry: &Url, url: &Url) -> bool {
    entry.scheme() == url.scheme()
        && entry.host() == url.host()
        && entry.port_or_known_default() == url.port_or_known_default()
        && entry.path() == url.path()
}

/// `redirect` with `fragment` in place of any fragment it had.
fn with_fragment(redirect: &str, fragment: &str) -> Result<Url> {
    let mut url =
        Url::parse(redirect).map_err(|_| Error::invalid("The stored redirectUri is malformed."))?;
    url.set_fragment(Some(fragment));
    Ok(url)
}

impl Accounts {
    fn web_app(&self, provider: WebProvider) -> Result<&AppCredentials> {
        let apps = &self.inner.apps;
        match provider {
            WebProvider::Website => apps.website.as_ref(),
            WebProvider::OfficialAccount => apps.official_account.as_ref(),
        }
        .ok_or_else(|| {
            Error::invalid(format!(
                "This server has no {} app configured.",
                provider.as_str()
            ))
        })
    }

    /// Whether browsers may be sent back to `redirect_uri`: it must be one of the allow-list's
    /// redirect URIs, scheme, host, port and path alike; only its query may differ.
    fn allowed_redirect(&self, redirect_uri: &str) -> Result<Url> {
        let refuse = || {
            Error::invalid(
                "redirectUri is not one of this server's redirect URIs \
                 (WXLOGIN_REDIRECT_ALLOWLIST): scheme, host, port and path must match exactly.",
            )
        };
        if redirect_uri.len() > MAX_REDIRECT_URI {
            return Err(Error::invalid(format!(
                "redirectUri is longer than {MAX_REDIRECT_URI} bytes."
            )));
        }
        let url = Url::parse(redirect_uri).map_err(|_| refuse())?;
        let plain = matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && url.password().is_none()
            && url.fragment().is_none();
        let listed = self
            .inner
            .login
            .redirect_allowlist
            .iter()
            .any(|entry| same_redirect(entry, &url));
        if plain && listed {
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
        code_challenge: Option<&str>,
    ) -> Result<Url> {
        let app = self.web_app(provider)?;
        let code_challenge = code_challenge
            .map(|c| CodeChallenge::parse(c.to_string()))
            .ok_or_else(|| {
                Error::invalid(
                    "codeChallenge is required: base64url(SHA-256(codeVerifier)) of a random \
                     codeVerifier that the page keeps for auth/ticket (PKCE S256).",
                )
            })??;
        let scope = match (provider, scope) {
            (WebProvider::Website, None | Some("snsapi_login")) => "snsapi_login",
            (WebProvider::OfficialAccount, None | Some("snsapi_userinfo")) => "snsapi_userinfo",
            (WebProvider::OfficialAccount, Some("snsapi_base")) => "snsapi_base",
            _ => {
                return Err(Error::invalid(
                    "scope is snsapi_login (website), snsapi_userinfo or snsapi_base \
                     (official_account).",
                ))
            }
        };
        let redirect = self.allowed_redirect(redirect_uri)?;
        let state = uuid::Uuid::new_v4().simple().to_string();
        let pending = PendingWeb {
            provider,
            redirect_uri: redirect.to_string(),
            scope: scope.into(),
            code_challenge: code_challenge.into(),
        };
        self.inner
            .stores
            .tickets
            .put_web_state(&state, &pending)
            .await?;

        let web = &self.inner.web;
        let callback = web
            .public_url
            .join(&format!("api/v1/oauth/{}/callback", provider.as_str()))
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
            Error::invalid(
                "This sign-in's state is unknown, used or older than 10 minutes: start the \
                 sign-in again.",
            )
        };
        let state = state
            .filter(|s| !s.is_empty() && s.len() <= 128)
            .ok_or_else(bad_state)?;
        let tickets = &self.inner.stores.tickets;
        let pending = tickets
            .take_web_state(state)
            .await?
            .filter(|p| p.provider == provider)
            .ok_or_else(bad_state)?;
        let Some(code) = code.filter(|c| !c.is_empty()) else {
            return with_fragment(&pending.redirect_uri, "error=access_denied");
        };
        let code = WxCode::parse(code.to_string())?;
        let app = self.web_app(provider)?.clone();
        let wechat = &self.inner.wechat;
        let token = wechat
            .oauth_access_token(&app.appid, &app.secret, &code)
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
        let identity = Identity::new(provider.identity(), &app.appid, &token.openid, unionid);
        let profile = info.as_ref().map(|i| {
            let nickname = Some(i.nickname.clone()).filter(|n| !n.is_empty());
            let avatar = Some(i.headimgurl.clone()).filter(|a| a.starts_with("http"));
            (nickname, avatar)
        });
        let web_tokens = WebTokens {
            access_token: token.access_token.clone(),
            refresh_token: token.refresh_token.clone(),
        };
        if let Some(needed) = self
            .phone_needed(provider, &identity, profile.clone())
            .await?
        {
            // Nobody signs in (and nobody is made) before a phone is verified.
            tickets
                .put_web_tokens(&app.appid, &token.openid, &web_tokens)
                .await?;
            let ticket = Token::new().reveal();
            let record = WebTicket {
                user_id: String::new(),
                appid: app.appid,
                openid: token.openid,
                is_new_user: false,
                code_challenge: pending.code_challenge.clone(),
                phone_needed: Some(needed),
            };
            tickets.put_web_ticket(&ticket, &record).await?;
            return with_fragment(&pending.redirect_uri, &format!("ticket={ticket}"));
        }
        let resolved = match self.resolve_identity(&identity, None).await? {
            Resolution::User(resolved) => resolved,
            Resolution::NeedsBinding => {
                return with_fragment(&pending.redirect_uri, "error=binding_required");
            }
        };
        let (user_id, is_new_user) = (resolved.user_id, resolved.is_new_user);
        let users = &self.inner.stores.users;
        match &profile {
            // The profile's write drops the user's cache entries: a new user's fill would be
            // written only to be dropped (its lease goes with them).
            Some((nickname, avatar)) => {
                let _unwritten = resolved.fill;
                users
                    .fill_profile(&user_id, nickname.as_deref(), avatar.as_deref())
                    .await?;
            }
            None => users.write_fill(resolved.fill).await,
        }
        tickets
            .put_web_tokens(&app.appid, &token.openid, &web_tokens)
            .await?;

        let ticket = Token::new().reveal();
        let record = WebTicket {
            user_id: user_id.clone(),
            appid: app.appid,
            openid: token.openid,
            is_new_user,
            code_challenge: pending.code_challenge.clone(),
            phone_needed: None,
        };
        tickets.put_web_ticket(&ticket, &record).await?;
        tracing::info!(
            user_id = %user_id,
            provider = provider.as_str(),
            is_new_user,
            event = "web_sign_in",
            "web sign-in"
        );
        with_fragment(&pending.redirect_uri, &format!("ticket={ticket}"))
    }

    /// `auth/ticket`: a web sign-in's ticket becomes a session, once, within 60 seconds, for
    /// the page that holds the verifier of the sign-in's challenge. A wrong or missing verifier
    /// burns the ticket too: a ticket sent to someone else signs nobody in.
    pub async fn redeem_ticket(&self, ticket: &str, verifier: Option<&str>) -> Result<SignedIn> {
        let bad = || {
            Error::new(
                Code::Unauthenticated,
                "This ticket is unknown, used or older than 60 seconds: start the sign-in again.",
            )
        };
        if ticket.is_empty() || ticket.len() > 64 {
            return Err(bad());
        }
        let t = self
            .inner
            .stores
            .tickets
            .take_web_ticket(ticket)
            .await?
            .ok_or_else(bad)?;
        let verifier = verifier.map(|v| CodeVerifier::parse(v.to_string()));
        let answers = match (verifier, CodeChallenge::parse(t.code_challenge)) {
            (Some(Ok(verifier)), Ok(challenge)) => verifier.answers(&challenge),
            _ => false,
        };
        if !answers {
            tracing::warn!(
                user_id = %t.user_id,
                event = "ticket_verifier_mismatch",
                "a web sign-in's ticket came without its verifier, and is burnt"
            );
            return Err(Error::invalid(
                "codeVerifier is missing or is not the one of this sign-in's codeChallenge; \
                 the ticket is used up: start the sign-in again.",
            ));
        }
        if let Some(needed) = t.phone_needed {
            return Err(self.phone_required(&needed).await?);
        }
        let session = Session::web(&t.user_id, &t.appid, &t.openid);
        self.start_session_by_id(&t.user_id, t.is_new_user, session)
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

    #[test]
    fn redirects_match_by_path_and_ignore_the_query() {
        let entry = Url::parse("https://shop.example.com/signed-in").unwrap();
        let same = |u: &str| same_redirect(&entry, &Url::parse(u).unwrap());
        assert!(same("https://shop.example.com/signed-in?x=1"));
        assert!(same("https://SHOP.example.com:443/signed-in"));
        assert!(!same("https://shop.example.com/signed-in/"));
        assert!(!same("https://shop.example.com/open-redirect?to=evil"));
        assert!(!same("https://shop.example.com/"));
        assert!(!same("http://shop.example.com/signed-in"));
    }
}
