//! Users' rights and operators' actions: deleting an account (by its owner, with proof of
//! presence, or by an operator), exporting what is stored about a user, disabling and enabling.
//!
//! A deletion writes, in this order: (1) one SQL transaction deletes the identities and the
//! user row, strips the client IPs from the user's audit events and records `user_deleted`
//! (id and time only); the user cache entries are dropped before and after it (`store::users`
//! `write`); (2) every session listed under the user (`usess:`) is deleted from Redis, and the
//! list; (3) WeChat's web tokens of the identities are deleted. The SQL commit is the point of
//! no return: from then on every session and access token of the user fails, on every node,
//! because its user is gone. If the process dies before the commit, nothing changed and the
//! deletion can be asked again; after it, what may be left in Redis (sessions, web tokens)
//! names a user that no longer exists, opens nothing, and expires with its TTL.

use serde_json::{json, Value};

use super::presence::Proof;
use super::sessions::Authenticated;
use super::{audit, Accounts};
use crate::domain::{now, Session, User};
use crate::error::{Code, Error, Result};
use crate::store::audit::{AuditEvent, AuditQuery};

/// What is stored about a user: the user, live sessions (no token), audit events.
pub struct UserRecord {
    pub user: User,
    /// With when each was last used (Unix ms).
    pub sessions: Vec<(Session, i64)>,
    pub events: Vec<AuditEvent>,
}

fn no_such_user() -> Error {
    Error::new(Code::NotFound, "There is no user with this id.")
}

impl Accounts {
    /// `DELETE /me`: the owner, proven present, erases their account.
    pub async fn delete_me(&self, auth: &Authenticated, proof: Proof) -> Result<()> {
        self.prove_presence(auth, proof).await?;
        self.erase_user(&auth.user, None).await
    }

    /// Erases a user (see the module's comment for the order of the writes); `actor` is the
    /// operator who asked, or None for the owner (whose IP the event then does not keep).
    pub(super) async fn erase_user(&self, user: &User, actor: Option<String>) -> Result<()> {
        let mut event = audit::event("user_deleted", Some(&user.id), json!({}));
        if actor.is_none() {
            event.client_ip = None;
        }
        event.actor = actor;
        // The user's events still queued here are written first, so that the deletion strips
        // their client IPs too.
        self.inner.auditor.flush().await;
        let stores = &self.inner.stores;
        if !stores.users.delete_user(&user.id, &event).await? {
            return Err(no_such_user());
        }
        stores.sessions.delete_all_of(&user.id).await?;
        for i in &user.identities {
            stores
                .tickets
                .forget_web_tokens(&i.appid, &i.openid)
                .await?;
        }
        tracing::info!(user_id = %user.id, event = "user_deleted", "user deleted");
        Ok(())
    }

    /// `GET /me/export`: everything stored about the user, no secret and no token: the profile
    /// with identities and phone, the live sessions, and the audit events of the user.
    pub async fn export(&self, auth: &Authenticated) -> Result<UserRecord> {
        self.record_of(auth.user.clone(), 10_000).await
    }

    /// A user with their live sessions and latest `events` audit events.
    async fn record_of(&self, user: User, events: u32) -> Result<UserRecord> {
        self.inner.auditor.flush().await;
        let q = AuditQuery {
            user_id: Some(user.id.clone()),
            limit: events,
            ..Default::default()
        };
        let stores = &self.inner.stores;
        let events = stores.users.audit_events(&q).await?;
        let sessions = stores.sessions.of_user(&user.id).await?;
        Ok(UserRecord {
            user,
            sessions,
            events,
        })
    }

    /// An operator disables (`true`) or enables a user; a disabled user's sessions end at once
    /// on every node (the user, read fresh, says so).
    pub async fn set_disabled(&self, user_id: &str, disabled: bool, actor: &str) -> Result<()> {
        let kind = if disabled {
            "user_disabled"
        } else {
            "user_enabled"
        };
        let event = audit::by_operator(actor, kind, user_id);
        let at = disabled.then(now);
        let users = &self.inner.stores.users;
        if !users.set_disabled(user_id, at, &event).await? {
            return Err(no_such_user());
        }
        if disabled {
            // Ended for good: enabling the user later does not bring these sessions back.
            self.end_all_sessions(user_id).await?;
        }
        Ok(())
    }

    /// An operator deletes a user.
    pub async fn delete_user(&self, user_id: &str, actor: &str) -> Result<()> {
        let user = self.existing_user(user_id).await?;
        self.erase_user(&user, Some(actor.to_string())).await
    }

    /// A user an operator names; 404 where there is none.
    async fn existing_user(&self, user_id: &str) -> Result<User> {
        let user = self.inner.stores.users.get(user_id).await?;
        user.ok_or_else(no_such_user)
    }

    /// An operator ends every session of a user.
    pub async fn end_sessions_of(&self, user_id: &str, actor: &str) -> Result<()> {
        self.existing_user(user_id).await?;
        self.end_all_sessions(user_id).await?;
        let event = audit::by_operator(actor, "sessions_ended", user_id);
        self.inner.stores.users.record_audit(&[event]).await?;
        Ok(())
    }

    /// A user for an operator, with live sessions and the latest events.
    pub async fn user_for_admin(&self, user_id: &str) -> Result<UserRecord> {
        let user = self.existing_user(user_id).await?;
        self.record_of(user, 20).await
    }

    /// The audit log, newest first (this thread's queued events written first).
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        self.inner.auditor.flush().await;
        Ok(self.inner.stores.users.audit_events(q).await?)
    }
}

/// An event's detail as JSON (null where none).
pub fn detail_of(e: &AuditEvent) -> Value {
    e.detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null)
}

/// Who is calling the admin API, for the audit log: `client:<id>` or `user:<id>`.
pub type Actor = String;

impl Accounts {
    /// An admin client's HTTP Basic credentials, checked in constant time.
    pub fn check_admin_client(&self, id: &str, secret: &str) -> Result<Actor> {
        if self.client_matches(id, secret, true) {
            Ok(format!("client:{id}"))
        } else {
            Err(Error::unauthenticated())
        }
    }

    /// The signed-in operator (`WXLOGIN_ADMIN_USERS` names their username or id); 403 for
    /// anyone else.
    pub fn check_admin_user(&self, auth: &Authenticated) -> Result<Actor> {
        let user = &auth.user;
        let admins = &self.inner.access_tokens.settings().admin_users;
        let named = |name: &str| admins.iter().any(|a| a == &name.to_lowercase());
        if named(&user.id) || user.username.as_deref().is_some_and(named) {
            Ok(format!("user:{}", user.id))
        } else {
            Err(Error::new(
                Code::Forbidden,
                "This user is not an operator (WXLOGIN_ADMIN_USERS).",
            ))
        }
    }

    /// Users that `q` names (every user where None): by id, username, phone in any form,
    /// openid or unionid; a page of `limit` after the cursor `after` (a user id), and the next
    /// cursor.
    pub async fn search_users(
        &self,
        q: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<User>, Option<String>)> {
        use crate::domain::{PhoneNumber, Shaped};
        let q = q.map(str::trim).filter(|q| !q.is_empty());
        let phone = q.and_then(|q| PhoneNumber::parse(q.to_string()).ok());
        let users = &self.inner.stores.users;
        let ids = users
            .search_user_ids(q, phone.as_ref().map(|p| p.as_str()), after, limit + 1)
            .await?;
        let more = ids.len() > limit as usize;
        let mut found = Vec::new();
        for id in ids.iter().take(limit as usize) {
            if let Some(user) = users.get(id).await? {
                found.push(user);
            }
        }
        let next = more.then(|| found.last().map(|u| u.id.clone())).flatten();
        Ok((found, next))
    }
}

impl Accounts {
    /// Deletes the audit log's events older than `age`; any number of nodes may run it at once.
    pub async fn forget_old_audit_events(&self, age: std::time::Duration) -> Result<u64> {
        let before = crate::domain::now_ms() - age.as_millis() as i64;
        Ok(self.inner.stores.users.forget_audit_before(before).await?)
    }
}
