//! Usernames and password hashes in SQL (`users.username_key` is the case-folded username, unique).

use sqlx::Row;

use super::audit::{insert_audit, AuditEvent};
use super::users::{unique_violation, Users};
use super::StoreError;
use crate::domain::{now, Username};

type Result<T> = std::result::Result<T, StoreError>;

/// What a password sign-in needs of a user.
pub struct StoredPassword {
    pub user_id: String,
    pub password_hash: String,
}

impl std::fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPassword")
            .field("user_id", &self.user_id)
            .field("password_hash", &"<hidden>")
            .finish()
    }
}

impl Users {
    /// Creates an account with a username and an argon2id hash; a username taken (without
    /// regard to case) is a conflict.
    pub async fn create_account(&self, username: &Username, password_hash: &str) -> Result<String> {
        let id = super::new_id();
        let now = now();
        sqlx::query(
            "INSERT INTO users (id, username, username_key, password_hash, created_at, \
                updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(username.as_str())
        .bind(username.folded())
        .bind(password_hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "this username"))?;
        Ok(id)
    }

    /// The user and hash of a username (without regard to case).
    pub async fn password_of(&self, username: &Username) -> Result<Option<StoredPassword>> {
        let row = sqlx::query(
            "SELECT id, password_hash FROM users WHERE username_key = $1 AND \
            password_hash IS NOT NULL",
        )
        .bind(username.folded())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| StoredPassword {
            user_id: r.get(0),
            password_hash: r.get(1),
        }))
    }

    /// Gives a user without credentials a username and password hash, with its audit event in
    /// the same transaction. False where the user has credentials already; a username taken is
    /// a conflict.
    pub async fn set_credentials(
        &self,
        user_id: &str,
        username: &Username,
        password_hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let write = self.set_credentials_sql(user_id, username, password_hash, audit);
        self.write(user_id, None, write).await
    }

    async fn set_credentials_sql(
        &self,
        user_id: &str,
        username: &Username,
        password_hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET username = $1, username_key = $2, password_hash = $3, \
             updated_at = $4 WHERE id = $5 AND password_hash IS NULL",
        )
        .bind(username.as_str())
        .bind(username.folded())
        .bind(password_hash)
        .bind(now())
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "this username"))?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}
