//! WeChat identities in SQL: linking, unionids, unbinding. Uniqueness of (appid, openid) lives
//! in the schema, so concurrent first logins of one openid make exactly one user.

use sqlx::Row;

use super::audit::{insert_audit, AuditEvent};
use super::cache::{Fill, Lease};
use super::users::{unique_violation, Users};
use super::{keys, StoreError};
use crate::domain::{now, Created, Identity, Linked, Phone, Unbound};

type Result<T> = std::result::Result<T, StoreError>;

impl Users {
    /// The user that first carried this unionid. Where two users carry it (linked before WeChat
    /// told us they are one person), the oldest identity wins, so the answer is stable.
    pub async fn find_user_by_unionid(&self, unionid: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT user_id FROM identities WHERE unionid = $1 ORDER BY created_at, user_id LIMIT \
                1",
        )
        .bind(unionid)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Creates a user signed in by `identity` (written in a group with concurrent sign-ups).
    /// Where a concurrent call made the identity first, nothing is written and that user is
    /// returned.
    /// With the `lease` of the identity's cache entry (from `find_identity_or_lease`), also the
    /// fill that caches the new user under its identity and its id, for its `/me` and its next
    /// sign-in: written with the session (`Sessions::create`), unless a write came between.
    pub async fn create_with_identity(
        &self,
        identity: &Identity,
        lease: Option<Lease>,
    ) -> Result<(Created, Option<Fill>)> {
        let Some(user) = self.signups.create(super::new_id(), identity).await? else {
            let created = Created {
                user_id: self.existing(identity).await?.owner,
                created: false,
                user: None,
            };
            return Ok((created, None));
        };
        // The identity's lease guards the user's own entry too: no write can reach the user
        // before it exists, and every write to a user after drops the entries of all its
        // identities with its own (`Users::write`), this lease with them.
        let fill = match (&self.cache, lease) {
            (Some(cache), Some(lease)) => {
                Some(cache.fill(lease, &[keys::cached_user(&user.id)], &user))
            }
            _ => None,
        };
        let created = Created {
            user_id: user.id.clone(),
            created: true,
            user: Some(user),
        };
        Ok((created, fill))
    }

    /// `create_with_identity`, the user with a verified phone too, in the same transaction; a
    /// phone that another user has is a conflict, and then nothing is written.
    pub async fn create_with_identity_and_phone(
        &self,
        identity: &Identity,
        phone: Option<&Phone>,
    ) -> Result<Created> {
        let id = super::new_id();
        let now = now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, phone_number, pure_phone_number, country_code, created_at, \
                updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(phone.map(|p| p.phone_number.clone()))
        .bind(phone.map(|p| p.pure_phone_number.clone()))
        .bind(phone.map(|p| p.country_code.clone()))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "this phone number"))?;
        let inserted = insert_identity(&mut tx, &id, identity, now).await?;
        if !inserted {
            tx.rollback().await?;
            let Linked { owner, .. } = self.existing(identity).await?;
            return Ok(Created {
                user_id: owner,
                created: false,
                user: None,
            });
        }
        tx.commit().await?;
        Ok(Created {
            user_id: id,
            created: true,
            user: None,
        })
    }

    /// Adds `identity` to an existing user, with its audit event in the same transaction.
    /// Where the openid is taken already, returns its owner.
    pub async fn link_identity(
        &self,
        user_id: &str,
        identity: &Identity,
        audit: &AuditEvent,
    ) -> Result<Linked> {
        let new = Some((identity.appid.as_str(), identity.openid.as_str()));
        self.write(
            user_id,
            new,
            self.link_identity_sql(user_id, identity, audit),
        )
        .await
    }

    async fn link_identity_sql(
        &self,
        user_id: &str,
        identity: &Identity,
        audit: &AuditEvent,
    ) -> Result<Linked> {
        let mut tx = self.pool.begin().await?;
        let inserted = insert_identity(&mut tx, user_id, identity, now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("an identity of this app"),
                e => e,
            })?;
        if inserted {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        if inserted {
            Ok(Linked {
                owner: user_id.to_string(),
                added: true,
            })
        } else {
            self.existing(identity).await
        }
    }

    async fn existing(&self, identity: &Identity) -> Result<Linked> {
        let owner = self
            .identity_owner(&identity.appid, &identity.openid)
            .await?
            .ok_or_else(|| StoreError::Unavailable("identity vanished during login".into()))?;
        Ok(Linked {
            owner,
            added: false,
        })
    }

    /// Records a unionid learned later (from decrypted data) where the user's identity had none.
    pub async fn record_unionid(
        &self,
        user_id: &str,
        appid: &str,
        openid: &str,
        unionid: &str,
    ) -> Result<bool> {
        let update = async {
            let done = sqlx::query(
                "UPDATE identities SET unionid = $1 \
                 WHERE appid = $2 AND openid = $3 AND user_id = $4 AND unionid IS NULL",
            )
            .bind(unionid)
            .bind(appid)
            .bind(openid)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() > 0)
        };
        self.write(user_id, None, update).await
    }

    /// Whether a user has an identity of this app.
    pub async fn has_identity_of(&self, user_id: &str, appid: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM identities WHERE user_id = $1 AND appid = $2")
            .bind(user_id)
            .bind(appid)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Removes a user's identity of an app, unless it is the user's last way to sign in (no
    /// other identity and no password). Checked and done in one transaction; the row lock on
    /// the user keeps two concurrent unbindings from removing both last ways.
    pub async fn unbind(&self, user_id: &str, appid: &str, audit: &AuditEvent) -> Result<Unbound> {
        // The identity it removes is among the user's entries, dropped before and after.
        self.write(user_id, None, self.unbind_sql(user_id, appid, audit))
            .await
    }

    async fn unbind_sql(&self, user_id: &str, appid: &str, audit: &AuditEvent) -> Result<Unbound> {
        let mut tx = self.pool.begin().await?;
        // A write first: it takes the user's row lock (PostgreSQL) or the write lock (SQLite).
        sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2")
            .bind(now())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let Some(openid) =
            sqlx::query("SELECT openid FROM identities WHERE user_id = $1 AND appid = $2")
                .bind(user_id)
                .bind(appid)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.get::<String, _>(0))
        else {
            return Ok(Unbound::NotFound);
        };
        let others: i64 =
            sqlx::query("SELECT COUNT(*) FROM identities WHERE user_id = $1 AND appid <> $2")
                .bind(user_id)
                .bind(appid)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
        let has_password: i64 =
            sqlx::query("SELECT COUNT(*) FROM users WHERE id = $1 AND password_hash IS NOT NULL")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
        if others == 0 && has_password == 0 {
            return Ok(Unbound::LastWay);
        }
        sqlx::query("DELETE FROM identities WHERE user_id = $1 AND appid = $2")
            .bind(user_id)
            .bind(appid)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Unbound::Done(openid))
    }
}

async fn insert_identity(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    identity: &Identity,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO identities (provider, appid, openid, unionid, user_id, created_at, binding) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (appid, openid) DO NOTHING",
    )
    .bind(identity.provider.as_str())
    .bind(&identity.appid)
    .bind(&identity.openid)
    .bind(&identity.unionid)
    .bind(user_id)
    .bind(now)
    .bind(new_binding())
    .execute(&mut **tx)
    .await
    .map_err(|e| unique_violation(e, "this identity"))?;
    Ok(done.rows_affected() > 0)
}

/// The random number of a new binding of an openid to its user: below 2^31, so that any
/// backend's integer holds it.
pub(super) fn new_binding() -> i64 {
    i64::from(rand::random::<u32>() >> 1)
}
