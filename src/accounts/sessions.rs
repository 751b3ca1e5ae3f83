//! Sessions: starting one for a signed-in user, reading the one behind a bearer token,
//! refreshing its session_key, ending it; and the profile of its user.

use serde_json::json;

use super::access_tokens::AccessClaims;
use super::{Accounts, Issued, SignedIn};
use crate::domain::{now, now_ms, ProfileChange, Session, SessionId, Token, User, WxCode};
use crate::error::{Code, Error, Result};
use crate::store::{cache::Fill, replays::DoneAnswer};

/// How long the session_key before a refresh is still tried for decryption, in seconds.
const PREVIOUS_KEY_GRACE: i64 = 300;

/// What a bearer presented.
#[derive(Debug)]
pub enum Credential {
    /// The session token that sign-in answered.
    SessionToken(Token),
    /// An access token of the session, and its verified claims.
    AccessToken {
        text: String,
        claims: Box<AccessClaims>,
    },
}

/// The session behind a bearer token, and its user.
#[derive(Debug)]
pub struct Authenticated {
    pub session_id: SessionId,
    pub credential: Credential,
    pub session: Session,
    pub user: User,
}

impl Authenticated {
    /// The session token, for `auth/token`, which renews an access token from the session's
    /// own credential (an access token, which the business's services hold too, must not
    /// lead to more of them).
    pub fn session_token(&self) -> Result<Token> {
        match &self.credential {
            Credential::SessionToken(token) => Ok(*token),
            Credential::AccessToken { .. } => Err(Error::new(
                Code::Unauthenticated,
                "This route takes the session token that sign-in answered (`token`), not an \
                 access token.",
            )),
        }
    }
}

/// A refreshed session: the credential the caller presented, unchanged, and the seconds it
/// lives; a new session_key on the server.
#[derive(Debug)]
pub struct Refreshed {
    pub token: String,
    pub expires_in: u64,
}

/// The mini program part of a session: appid and openid; sessions made otherwise have none.
pub(super) fn wechat_part(session: &Session) -> Result<(&str, &str)> {
    session.wechat_identity().ok_or_else(|| {
        Error::invalid(
            "This session was made with a username and password: WeChat data needs a session \
             from wx.login (/api/v1/auth/login).",
        )
    })
}

impl Accounts {
    /// Stores the session of a user read already and answers it; with `answer`, the login's
    /// answer for a retry of its code too, in the same round trip.
    pub(super) async fn start_session(
        &self,
        user: User,
        is_new_user: bool,
        mut session: Session,
        answer: Option<DoneAnswer>,
        fill: Option<Fill>,
    ) -> Result<SignedIn> {
        if user.disabled {
            tracing::info!(
                user_id = %user.id,
                event = "sign_in_refused",
                reason = "account_disabled",
                "sign-in refused"
            );
            let detail = json!({"reason": "account_disabled"});
            self.audit("sign_in_refused", Some(&user.id), detail);
            return Err(Error::new(
                Code::AccountDisabled,
                "This account is disabled. Contact the service's support.",
            ));
        }
        // The session keeps the binding it signs in through (see `authenticate`).
        if let (Some(appid), Some(openid)) = (&session.appid, &session.openid) {
            session.binding = user.identity(appid, openid).and_then(|i| i.binding);
        }
        let stores = &self.inner.stores;
        let answer = answer.map(|a| (&stores.replays, a));
        let token = stores.sessions.create(&session, answer, fill).await?;
        let access_token = self
            .issue_access_token(&token.id(), &session, &user)
            .await?;
        tracing::info!(
            user_id = %user.id,
            appid = session.appid.as_deref().unwrap_or("-"),
            is_new_user,
            event = "signed_in",
            "signed in"
        );
        let provider = match (&session.appid, &session.openid) {
            (Some(a), Some(o)) => user.identity(a, o).map(|i| i.provider.as_str()),
            _ => None,
        };
        let detail = json!({"appid": session.appid, "provider": provider, "newUser": is_new_user});
        self.audit("signed_in", Some(&user.id), detail);
        Ok(SignedIn {
            token,
            expires_in: stores.sessions.expires_in(&session),
            is_new_user,
            user,
            access_token,
        })
    }

    /// An access token of a session.
    pub(super) async fn issue_access_token(
        &self,
        id: &SessionId,
        session: &Session,
        user: &User,
    ) -> Result<Issued> {
        self.inner.access_tokens.issue(id, session, user).await
    }

    /// `auth/token`: a fresh access token for the session of a session token.
    pub async fn renew_access_token(&self, auth: &Authenticated) -> Result<Issued> {
        auth.session_token()?;
        self.issue_access_token(&auth.session_id, &auth.session, &auth.user)
            .await
    }

    /// `start_session` for a user known by id.
    pub(super) async fn start_session_by_id(
        &self,
        user_id: &str,
        is_new_user: bool,
        session: Session,
    ) -> Result<SignedIn> {
        let user = self.user(user_id).await?;
        self.start_session(user, is_new_user, session, None, None)
            .await
    }

    /// The session of a bearer token, and its user: one round trip to Redis where this node has
    /// read the token before and the user cache holds the user. A session of a WeChat identity
    /// is good while its user has that identity with the binding the session was made with, so
    /// an unbinding ends every session of it, and binding the openid again does not bring them
    /// back.
    pub async fn authenticate(&self, bearer: &str) -> Result<Authenticated> {
        // (The ways taken less often are boxed: an async fn's future is as large as its
        // largest state, and this one is moved along every layer of every signed-in request.)
        let (session_id, credential) = match Token::parse(bearer) {
            Some(token) => (token.id(), Credential::SessionToken(token)),
            None => Box::pin(self.session_of_access_token(bearer)).await?,
        };
        let stores = &self.inner.stores;
        let read = stores
            .sessions
            .get(&session_id)
            .await?
            .ok_or_else(Error::unauthenticated)?;
        let session = read.session;
        let cached = read
            .user_entry
            .and_then(|e| stores.users.from_entry(&session.user_id, &e));
        let user = match cached {
            Some(user) => user,
            None => Box::pin(self.user(&session.user_id)).await?,
        };
        if let (Some(appid), Some(openid)) = (&session.appid, &session.openid) {
            match user.identity(appid, openid) {
                Some(i) if i.binding == session.binding => {}
                _ => return Err(Error::unauthenticated()),
            }
        }
        // "Sign out everywhere" ended every session that had begun by then; disabling a user
        // ends them all.
        if user.disabled
            || user
                .sessions_not_before
                .is_some_and(|t| session.created_at <= t)
        {
            return Err(Error::unauthenticated());
        }
        Ok(Authenticated {
            session_id,
            credential,
            session,
            user,
        })
    }

    /// The session an access token of ours names (whether it is live is the caller's to see).
    async fn session_of_access_token(&self, bearer: &str) -> Result<(SessionId, Credential)> {
        let bearer = bearer.trim();
        if !bearer.contains('.') || bearer.len() > 4096 {
            return Err(Error::unauthenticated());
        }
        let claims = self.inner.access_tokens.verify(bearer, false).await?;
        let claims = claims.ok_or_else(Error::unauthenticated)?;
        let id = SessionId::parse(&claims.sid).ok_or_else(Error::unauthenticated)?;
        let credential = Credential::AccessToken {
            text: bearer.to_string(),
            claims: Box::new(claims),
        };
        Ok((id, credential))
    }

    /// Gives a session the new session_key of a fresh `wx.login` code; the old key is kept for
    /// decryption for five minutes. A code of another openid changes nothing.
    pub async fn refresh(&self, auth: Authenticated, code: &WxCode) -> Result<Refreshed> {
        let session = auth.session;
        let (appid, openid) = wechat_part(&session)?;
        let app = self.miniprogram(Some(appid))?;
        let wx = self
            .inner
            .wechat
            .code2session(&app.appid, &app.secret, code)
            .await?;
        if wx.openid != openid {
            return Err(Error::new(
                Code::Conflict,
                "This code belongs to another WeChat user than the session's. Sign in with \
                 /api/v1/auth/login instead.",
            ));
        }
        let stores = &self.inner.stores;
        if let Some(u) = &wx.unionid {
            stores
                .users
                .record_unionid(&session.user_id, appid, openid, u)
                .await?;
        }
        self.renew_session_key(&auth.session_id, &session, wx.session_key)
            .await?;
        Ok(match auth.credential {
            Credential::SessionToken(token) => Refreshed {
                token: token.reveal(),
                expires_in: stores.sessions.expires_in(&session),
            },
            Credential::AccessToken { text, claims } => Refreshed {
                token: text,
                expires_in: (claims.exp - now()).max(0) as u64,
            },
        })
    }

    /// Gives a session the session_key of a fresh code; the one before still decrypts for five
    /// minutes.
    pub(super) async fn renew_session_key(
        &self,
        id: &SessionId,
        session: &Session,
        session_key: String,
    ) -> Result<()> {
        let renewed = Session {
            previous_key: session.session_key.clone(),
            previous_until: Some(now() + PREVIOUS_KEY_GRACE),
            session_key: Some(session_key),
            ..session.clone()
        };
        if self.inner.stores.sessions.put(id, &renewed).await? {
            Ok(())
        } else {
            // Logged out (or past its lifetime) meanwhile: it stays ended.
            Err(Error::unauthenticated())
        }
    }

    /// Ends a session, and with it every access token of it (for introspection and forward
    /// auth; offline verifiers accept one until its `exp`).
    pub async fn logout(&self, id: &SessionId, user_id: &str) -> Result<()> {
        self.inner.stores.sessions.delete(id).await?;
        self.audit("signed_out", Some(user_id), json!({}));
        tracing::info!(session = %id.to_text(), event = "signed_out", "signed out");
        Ok(())
    }

    /// Ends every session of a user on every node: all that began by now, through the user's
    /// `sessions_not_before`, and the keys of those listed under the user.
    pub(super) async fn end_all_sessions(&self, user_id: &str) -> Result<()> {
        let stores = &self.inner.stores;
        stores.users.end_sessions(user_id, now_ms()).await?;
        stores.sessions.delete_all_of(user_id).await?;
        Ok(())
    }

    /// `logout?all=true`: ends every session of the user, on every node, and with them their
    /// access tokens (for introspection and forward auth).
    pub async fn logout_everywhere(&self, auth: &Authenticated) -> Result<()> {
        let user_id = &auth.user.id;
        self.end_all_sessions(user_id).await?;
        // A session made before sessions were listed under their user.
        self.inner.stores.sessions.delete(&auth.session_id).await?;
        tracing::info!(user_id = %user_id, event = "signed_out_everywhere", "signed out everywhere");
        self.audit("signed_out_everywhere", Some(user_id), json!({}));
        Ok(())
    }

    /// Changes nickname and avatar.
    pub async fn update_profile(&self, user_id: &str, change: ProfileChange) -> Result<User> {
        self.inner
            .stores
            .users
            .update_profile(user_id, &change)
            .await?;
        self.user(user_id).await
    }
}
