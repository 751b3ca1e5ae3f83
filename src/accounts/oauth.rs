//! What the business's services ask of a token (RFC 7662 introspection), how they end one (RFC
//! 7009 revocation), and the client authentication both need. A session token and every access
//! token of its session stand or fall together: ending the session ends them all, on every
//! node, for introspection and forward auth.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use serde_json::json;

use super::access_tokens::{client_id, WechatIds};
use super::{Accounts, Credential};
use crate::domain::{SessionId, Token};
use crate::error::{Code, Error, Result};

/// The credentials a client presented: HTTP Basic, or `client_id` and `client_secret` in the
/// form.
pub struct ClientAuth {
    pub id: String,
    pub secret: SecretString,
}

/// What introspection tells of an active token.
#[derive(Debug)]
pub struct Introspection {
    pub sub: String,
    pub client_id: String,
    pub aud: String,
    pub iss: String,
    pub exp: i64,
    /// When an access token was issued; sessions do not record it.
    pub iat: Option<i64>,
    pub sid: String,
    pub token_type: &'static str,
    pub wechat: WechatIds,
}

impl Accounts {
    /// Checks a client's credentials against the configured clients, in constant time; the
    /// same answer for an unknown client and a wrong secret.
    pub fn check_client(&self, auth: Option<&ClientAuth>) -> Result<()> {
        let refuse = || {
            let mut e = Error::new(
                Code::InvalidClient,
                "Client authentication failed: send a configured client's id and secret \
                 (WXLOGIN_CLIENTS) with HTTP Basic or as client_id and client_secret.",
            );
            e.challenge = Some("Basic realm=\"wxlogin\"");
            e
        };
        let auth = auth.ok_or_else(refuse)?;
        if self.client_matches(&auth.id, auth.secret.expose_secret(), false) {
            Ok(())
        } else {
            Err(refuse())
        }
    }

    /// Whether `id` and `secret` are a configured client's (an admin client's, with
    /// `admin_only`), compared in constant time over every client: the same work for an
    /// unknown id and a wrong secret.
    pub(super) fn client_matches(&self, id: &str, secret: &str, admin_only: bool) -> bool {
        let mut ok = false;
        for client in &self.inner.access_tokens.settings().clients {
            let same_id = client.id.as_bytes().ct_eq(id.as_bytes());
            let same_secret = client
                .secret
                .expose_secret()
                .as_bytes()
                .ct_eq(secret.as_bytes());
            ok |= (client.admin || !admin_only) && bool::from(same_id & same_secret);
        }
        ok
    }

    /// The session of a bearer token where it is live; None where it is not; an error where
    /// the store does not answer.
    pub async fn live(&self, bearer: &str) -> Result<Option<super::Authenticated>> {
        match self.authenticate(bearer).await {
            Ok(auth) => Ok(Some(auth)),
            Err(e) if e.code == Code::Unauthenticated => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What a token stands for, where it is a live session's token or a live session's access
    /// token that has not expired; None for anything else.
    pub async fn introspect(&self, token: &str) -> Result<Option<Introspection>> {
        let Some(auth) = self.live(token).await? else {
            return Ok(None);
        };
        let claims = match auth.credential {
            Credential::AccessToken { claims, .. } => *claims,
            Credential::SessionToken(_) => {
                let settings = self.inner.access_tokens.settings();
                let sessions = &self.inner.stores.sessions;
                let ttl = sessions.ttl_of(auth.session.created_at).unwrap_or_default();
                return Ok(Some(Introspection {
                    sub: auth.user.id.clone(),
                    client_id: client_id(&auth.session),
                    aud: settings.audience.clone(),
                    iss: settings.issuer.clone(),
                    exp: crate::domain::now() + ttl.as_secs() as i64,
                    iat: Some(auth.session.created_at / 1000),
                    sid: auth.session_id.to_text(),
                    token_type: "Bearer",
                    wechat: WechatIds::of(&auth.session, &auth.user),
                }));
            }
        };
        Ok(Some(Introspection {
            sub: claims.sub,
            client_id: claims.client_id,
            aud: claims.aud,
            iss: claims.iss,
            exp: claims.exp,
            iat: Some(claims.iat),
            sid: claims.sid,
            token_type: "Bearer",
            wechat: claims.wechat,
        }))
    }

    /// Ends the session of a session token or of one of its access tokens (an expired one
    /// included); anything else is ignored, as RFC 7009 §2.2 asks.
    pub async fn revoke(&self, token: &str) -> Result<()> {
        let id = match Token::parse(token) {
            Some(t) => Some(t.id()),
            None => self
                .inner
                .access_tokens
                .verify(token, true)
                .await?
                .and_then(|c| SessionId::parse(&c.sid)),
        };
        if let Some(id) = id {
            if self.inner.stores.sessions.delete(&id).await? {
                tracing::info!(session = %id.to_text(), event = "token_revoked", "session revoked");
                self.audit("token_revoked", None, json!({}));
            }
        }
        Ok(())
    }
}
