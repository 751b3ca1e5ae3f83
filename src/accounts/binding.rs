//! Binding WeChat users and accounts: the bind ticket of `require_binding` (a login waiting
//! for its account), giving a WeChat-only user a username and password, and unbinding.

use serde_json::json;

use super::audit;
use super::presence::Proof;
use super::sessions::Authenticated;
use super::{Accounts, SignedIn};
use crate::domain::{Credentials, Identity, Provider, Session, Token, Unbound, User, WxCode};
use crate::error::{Code, Error, Result};
use crate::store::tickets::PendingBinding;
use crate::store::StoreError;

pub(super) fn username_taken() -> Error {
    Error::new(Code::Conflict, "This username is taken: choose another.")
}

impl Accounts {
    /// The 403 of `require_binding`, with a ticket that lets the client bind without a second
    /// `wx.login` (single use, ten minutes).
    pub(super) async fn binding_required(
        &self,
        identity: Identity,
        session_key: String,
    ) -> Result<Error> {
        let ticket = Token::new().reveal();
        let pending = PendingBinding {
            appid: identity.appid,
            openid: identity.openid,
            unionid: identity.unionid,
            session_key,
        };
        self.inner
            .stores
            .tickets
            .put_binding(&ticket, &pending)
            .await?;
        let mut e = Error::new(
            Code::BindingRequired,
            "This WeChat user is bound to no account yet. Ask for the username and password and \
             send them with `bindTicket` to /api/v1/auth/bind (within 10 minutes).",
        );
        let mut extra = serde_json::Map::new();
        extra.insert("bindTicket".into(), ticket.into());
        e.extra = Some(extra);
        Ok(e)
    }

    /// `auth/bind`: finishes a login that answered `binding_required`.
    pub async fn bind_with_ticket(
        &self,
        ticket: &str,
        credentials: Credentials,
    ) -> Result<SignedIn> {
        let bad_ticket = || {
            Error::new(
                Code::Unauthenticated,
                "This bindTicket is unknown, used or older than 10 minutes. Call wx.login and \
                 /api/v1/auth/login again.",
            )
        };
        let tickets = &self.inner.stores.tickets;
        if tickets.peek_binding(ticket).await?.is_none() {
            // The ticket of an SMS sign-in binds its verified phone instead.
            if tickets.peek_sms_binding(ticket).await?.is_some() {
                return self
                    .bind_phone_with_ticket(ticket, credentials, bad_ticket)
                    .await;
            }
            return Err(bad_ticket());
        }
        let user_id = self.check_credentials(credentials).await?;
        let pending = tickets.peek_binding(ticket).await?.ok_or_else(bad_ticket)?;
        self.check_unbound_in(&user_id, &pending.appid).await?;
        // Used once: of two concurrent binds with one ticket, one takes it.
        if tickets.take_binding(ticket).await?.is_none() {
            return Err(bad_ticket());
        }
        let identity = Identity::new(
            Provider::MiniProgram,
            &pending.appid,
            &pending.openid,
            pending.unionid,
        );
        self.link_to_account(&user_id, &identity).await?;
        let session = Session::wechat(
            &user_id,
            &pending.appid,
            &pending.openid,
            pending.session_key,
        );
        self.start_session_by_id(&user_id, false, session).await
    }

    /// `me/credentials`: gives a WeChat-only user a username and password, with a fresh
    /// `wx.login` code as proof that the account's owner is there.
    pub async fn set_credentials(
        &self,
        auth: &Authenticated,
        credentials: Credentials,
        code: Option<WxCode>,
    ) -> Result<User> {
        self.check_new_password(&credentials.password)?;
        let Some(code) = code else {
            return Err(Error::new(
                Code::ReauthenticationRequired,
                "Setting a password needs `code`: a fresh wx.login code of this account's mini \
                 program, as proof that you are here.",
            ));
        };
        self.prove_presence(auth, Proof::Code(code)).await?;
        let user_id = auth.user.id.as_str();
        let hash = super::passwords::hash(credentials.password).await?;
        let set = self
            .inner
            .stores
            .users
            .set_credentials(
                user_id,
                &credentials.username,
                &hash,
                &audit::event("credentials_set", Some(user_id), json!({})),
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => username_taken(),
                e => e.into(),
            })?;
        if !set {
            return Err(Error::new(
                Code::Conflict,
                "This account has a username and password already.",
            ));
        }
        tracing::info!(user_id = %user_id, event = "credentials_set", "credentials set");
        self.user(user_id).await
    }

    /// `me/identities/{appid}`: unbinds an identity and ends its sessions, with a proof that
    /// the account's owner is there.
    pub async fn unbind(
        &self,
        auth: &Authenticated,
        appid: &str,
        proof: Option<Proof>,
    ) -> Result<()> {
        let user_id = auth.user.id.as_str();
        if auth.user.identities.iter().all(|i| i.appid != appid) {
            return Err(Error::new(
                Code::NotFound,
                "This account has no identity of this appid.",
            ));
        }
        let Some(proof) = proof else {
            return Err(Error::new(
                Code::ReauthenticationRequired,
                "Unbinding needs a proof that you are here: `code` (a fresh wx.login code) or \
                 `currentPassword`.",
            ));
        };
        self.prove_presence(auth, proof).await?;
        let stores = &self.inner.stores;
        let event = audit::event("identity_unbound", Some(user_id), json!({"appid": appid}));
        match stores.users.unbind(user_id, appid, &event).await? {
            Unbound::Done(openid) => {
                let ended = stores.sessions.end_identity(appid, &openid).await?;
                tracing::info!(
                    user_id = %user_id,
                    appid = %appid,
                    ended,
                    event = "identity_unbound",
                    "identity unbound"
                );
                Ok(())
            }
            Unbound::NotFound => Err(Error::new(
                Code::NotFound,
                "This account has no identity of this appid.",
            )),
            Unbound::LastWay => Err(Error::new(
                Code::Conflict,
                "This is the account's last way to sign in: set a username and password \
                 (PUT /api/v1/me/credentials) or bind another app first.",
            )),
        }
    }
}
