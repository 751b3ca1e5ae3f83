//! Who an identity signs in as, the same for every sign-in way: a known openid is its user (and
//! records a unionid learned since); else, with a username and password, the account they name;
//! else the user another identity with the same unionid belongs to; else the login policy.

use serde_json::json;

use super::{audit, Accounts};
use crate::config::LoginPolicy;
use crate::domain::{Credentials, Identity, User};
use crate::error::{Code, Error, Result};
use crate::store::{cache::Fill, StoreError};

/// Who an identity signs in as.
// Made once per sign-in and matched at once: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Resolution {
    /// This user.
    User(Resolved),
    /// Nobody yet, and the policy `require_binding` wants an account first.
    NeedsBinding,
}

/// The user an identity signs in as.
pub(super) struct Resolved {
    pub user_id: String,
    /// The user as read, where it was read whole and nothing changed it since.
    pub user: Option<User>,
    pub is_new_user: bool,
    /// The identity's unionid is on record.
    pub unionid_known: bool,
    /// A new user's cache entries, to be written with its session (`start_session`).
    pub fill: Option<Fill>,
}

/// The audit event of an identity bound to a user (`by`: `unionid` or `account`).
fn bound_event(user_id: &str, identity: &Identity, by: &str) -> crate::store::audit::AuditEvent {
    let detail = json!({"appid": identity.appid, "provider": identity.provider.as_str(), "by": by});
    audit::event("identity_bound", Some(user_id), detail)
}

fn already_bound() -> Error {
    Error::new(
        Code::Conflict,
        "This account is bound to another WeChat user of this app already.",
    )
}

impl Accounts {
    /// Who `identity` (as WeChat just named it, its unionid where WeChat gave one) signs in
    /// as; `credentials` bind a new identity to their account (mini program login only).
    pub(super) async fn resolve_identity(
        &self,
        identity: &Identity,
        credentials: Option<Credentials>,
    ) -> Result<Resolution> {
        let users = &self.inner.stores.users;
        let (appid, openid) = (identity.appid.as_str(), identity.openid.as_str());
        let given = identity.unionid.is_some();
        // A bound openid signs in with its code alone. Where none is, the lease on its cache
        // entry lets a new user made below be cached for its next sign-in.
        let may_create = credentials.is_none() && self.policy() == LoginPolicy::AutoRegister;
        // (The ways taken rarely are boxed, so that this future, moved along the server's
        // layers with every login, is no larger than the common ways need.)
        let looked = users
            .find_identity_or_lease(appid, openid, identity.unionid.as_deref(), may_create)
            .await?;
        let lease = looked.lease;
        if let Some(user) = looked.user {
            let known = user
                .identity(appid, openid)
                .and_then(|i| i.unionid.as_deref());
            let resolved = match (known, &identity.unionid) {
                (None, Some(u)) => {
                    Box::pin(users.record_unionid(&user.id, appid, openid, u)).await?;
                    Resolved {
                        user_id: user.id,
                        user: None,
                        is_new_user: false,
                        unionid_known: true,
                        fill: None,
                    }
                }
                (known, _) => Resolved {
                    unionid_known: given || known.is_some(),
                    user_id: user.id.clone(),
                    user: Some(user),
                    is_new_user: false,
                    fill: None,
                },
            };
            return Ok(Resolution::User(resolved));
        }
        let found = |user_id: String, is_new_user: bool| {
            Resolution::User(Resolved {
                user_id,
                user: None,
                is_new_user,
                unionid_known: given,
                fill: None,
            })
        };
        if let Some(credentials) = credentials {
            let user_id = Box::pin(self.check_credentials(credentials)).await?;
            Box::pin(self.link_to_account(&user_id, identity)).await?;
            return Ok(found(user_id, false));
        }
        // Read with the identity where the lookup went to the database.
        let linked = match (&identity.unionid, looked.union_owner) {
            (None, _) => None,
            (Some(_), Some(owner)) => owner,
            (Some(u), None) => Box::pin(users.find_user_by_unionid(u)).await?,
        };
        Ok(match (linked, self.policy()) {
            (Some(owner), _) => {
                let event = bound_event(&owner, identity, "unionid");
                let linked = Box::pin(users.link_identity(&owner, identity, &event)).await?;
                found(linked.owner, false)
            }
            (None, LoginPolicy::AutoRegister) => {
                let (made, fill) = users.create_with_identity(identity, lease).await?;
                Resolution::User(Resolved {
                    user_id: made.user_id,
                    // A new user is known whole: no read after the write.
                    user: made.user,
                    is_new_user: made.created,
                    unionid_known: given,
                    fill,
                })
            }
            (None, LoginPolicy::RequireBinding) => Resolution::NeedsBinding,
        })
    }

    /// Refuses where the account has an identity of this app already.
    pub(super) async fn check_unbound_in(&self, user_id: &str, appid: &str) -> Result<()> {
        if self
            .inner
            .stores
            .users
            .has_identity_of(user_id, appid)
            .await?
        {
            return Err(already_bound());
        }
        Ok(())
    }

    /// Binds a WeChat identity to an account that has none of its app, and checks that the
    /// openid is not another account's.
    pub(super) async fn link_to_account(&self, user_id: &str, identity: &Identity) -> Result<()> {
        self.check_unbound_in(user_id, &identity.appid).await?;
        let linked = self
            .inner
            .stores
            .users
            .link_identity(
                user_id,
                identity,
                &bound_event(user_id, identity, "account"),
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => already_bound(),
                e => e.into(),
            })?;
        if !linked.added && linked.owner != user_id {
            return Err(Error::new(
                Code::Conflict,
                "This WeChat user is bound to another account already.",
            ));
        }
        tracing::info!(
            user_id = %user_id,
            appid = %identity.appid,
            event = "identity_bound",
            "identity bound to an account"
        );
        Ok(())
    }
}
