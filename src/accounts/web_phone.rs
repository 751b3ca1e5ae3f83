//! `WXLOGIN_WEB_REQUIRE_PHONE`: a web sign-in of a person with no verified phone waits for
//! one. The ticket's redemption answers 403 `phone_required` with a bind ticket (single use,
//! ten minutes, good only at `auth/bind-phone`) that holds the web identity; nobody is made
//! before the phone is verified by an SMS code. Then the identity joins the user whose verified
//! phone it is (say, from the mini program's phone button), or the user it belonged to already,
//! or a new user made with the identity and the phone in one transaction.

use super::phone::phone_changed;
use super::sms::SmsPurpose;
use super::{Accounts, SignedIn};
use crate::config::LoginPolicy;
use crate::domain::{Identity, PhoneNumber, Session, SmsCode, Token, WebProvider};
use crate::error::{Code, Error, Result};
use crate::store::tickets::PendingPhone;

impl Accounts {
    /// Under `WXLOGIN_WEB_REQUIRE_PHONE`, what a web identity waits with where its person has
    /// no verified phone yet; None where it signs in now (its user has a phone, or the setting
    /// is off, or `require_binding` wants an account first for a stranger).
    pub(super) async fn phone_needed(
        &self,
        provider: WebProvider,
        identity: &Identity,
        profile: Option<(Option<String>, Option<String>)>,
    ) -> Result<Option<PendingPhone>> {
        if !self.inner.login.web_require_phone {
            return Ok(None);
        }
        let users = &self.inner.stores.users;
        let mut user = users
            .find_identity(&identity.appid, &identity.openid)
            .await?;
        if user.is_none() {
            if let Some(unionid) = &identity.unionid {
                if let Some(owner) = users.find_user_by_unionid(unionid).await? {
                    user = users.get(&owner).await?;
                }
            }
        }
        let user_id = match user {
            Some(u) if u.phone_number.is_some() => return Ok(None),
            Some(u) => Some(u.id),
            None if self.policy() == LoginPolicy::RequireBinding => return Ok(None),
            None => None,
        };
        let (nickname, avatar_url) = profile.unwrap_or_default();
        Ok(Some(PendingPhone {
            provider,
            appid: identity.appid.clone(),
            openid: identity.openid.clone(),
            unionid: identity.unionid.clone(),
            user_id,
            nickname,
            avatar_url,
        }))
    }

    /// The 403 of a sign-in waiting for its phone, with its bind ticket.
    pub(super) async fn phone_required(&self, pending: &PendingPhone) -> Result<Error> {
        let ticket = Token::new().reveal();
        let tickets = &self.inner.stores.tickets;
        tickets.put_phone_binding(&ticket, pending).await?;
        let mut e = Error::new(
            Code::PhoneRequired,
            "Signing in here needs a verified phone: send a code with /api/v1/sms/code (purpose \
             `bind`), then the phone, the code and `bindTicket` to /api/v1/auth/bind-phone \
             (within 10 minutes).",
        );
        let mut extra = serde_json::Map::new();
        extra.insert("bindTicket".into(), ticket.into());
        e.extra = Some(extra);
        Ok(e)
    }

    /// `auth/bind-phone`: finishes a web sign-in that answered `phone_required`, with a phone
    /// verified by a code sent with `purpose: bind`.
    pub async fn bind_phone(
        &self,
        ticket: &str,
        phone: &PhoneNumber,
        code: &SmsCode,
    ) -> Result<SignedIn> {
        let bad_ticket = || {
            Error::new(
                Code::Unauthenticated,
                "This bindTicket is unknown, used or older than 10 minutes: start the sign-in \
                 again.",
            )
        };
        let tickets = &self.inner.stores.tickets;
        if ticket.is_empty() || ticket.len() > 64 {
            return Err(bad_ticket());
        }
        if tickets.peek_phone_binding(ticket).await?.is_none() {
            return Err(bad_ticket());
        }
        self.check_sms_code(phone, SmsPurpose::Bind, code).await?;
        // Used once: of two concurrent binds with one ticket, one takes it.
        let p = tickets
            .take_phone_binding(ticket)
            .await?
            .ok_or_else(bad_ticket)?;
        let identity = Identity::new(p.provider.identity(), &p.appid, &p.openid, p.unionid);
        let users = &self.inner.stores.users;
        let verified = phone.to_phone();
        let (user_id, is_new_user) = match p.user_id {
            Some(user_id) => {
                users
                    .set_phone(&user_id, &verified, &phone_changed(&user_id))
                    .await?;
                if users.find_identity(&p.appid, &p.openid).await?.is_none() {
                    self.link_to_account(&user_id, &identity).await?;
                }
                (user_id, false)
            }
            None => match users.user_of_phone(phone.as_str()).await? {
                Some(owner) => {
                    self.link_to_account(&owner, &identity).await?;
                    (owner, false)
                }
                None => {
                    let made = users
                        .create_with_identity_and_phone(&identity, Some(&verified))
                        .await?;
                    if !made.created {
                        // A concurrent sign-in of the identity made its user first.
                        let event = phone_changed(&made.user_id);
                        users.set_phone(&made.user_id, &verified, &event).await?;
                    }
                    (made.user_id, made.created)
                }
            },
        };
        if p.nickname.is_some() || p.avatar_url.is_some() {
            users
                .fill_profile(&user_id, p.nickname.as_deref(), p.avatar_url.as_deref())
                .await?;
        }
        tracing::info!(
            user_id = %user_id,
            provider = p.provider.as_str(),
            is_new_user,
            event = "phone_bound",
            "web sign-in bound a verified phone"
        );
        let session = Session::web(&user_id, &p.appid, &p.openid);
        self.start_session_by_id(&user_id, is_new_user, session)
            .await
    }
}
