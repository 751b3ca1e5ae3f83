//! The audit log in SQL (`audit_events`): written in batches, read newest first by user, type
//! and time, kept `WXLOGIN_AUDIT_RETENTION_DAYS`. No token, code, password, phone number or
//! openid is ever in a row (the callers' `detail` holds ways, apps and reasons).

use sqlx::Row;

use super::users::Users;
use super::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

pub use crate::domain::{AuditEvent, AuditQuery};

const INSERT: &str = "INSERT INTO audit_events (id, at, type, user_id, client_ip, request_id, \
    actor, detail)";

impl Users {
    /// Writes events, all or none.
    pub async fn record_audit(&self, events: &[AuditEvent]) -> Result<()> {
        if !self.is_postgres() {
            // Through the file's one writer, with its sign-ups.
            return self.signups.audit(events.to_vec()).await;
        }
        let mut tx = self.pool.begin().await?;
        insert_audit_rows(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events, newest first.
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let (before_at, before_id) = q.before.clone().unwrap_or((i64::MAX, String::new()));
        // One statement for every filter: a filter left out matches everything.
        let rows = sqlx::query(
            "SELECT id, at, type, user_id, client_ip, request_id, actor, detail FROM audit_events \
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR type = $2) \
               AND (at < $3 OR (at = $3 AND id < $4)) \
             ORDER BY at DESC, id DESC LIMIT $5",
        )
        .bind(q.user_id.clone())
        .bind(q.kind.clone())
        .bind(before_at)
        .bind(before_id)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEvent {
                id: r.get(0),
                at: r.get(1),
                kind: r.get(2),
                user_id: r.get(3),
                client_ip: r.get(4),
                request_id: r.get(5),
                actor: r.get(6),
                detail: r.get(7),
            })
            .collect())
    }

    /// Deletes events older than `before` (Unix ms); several nodes may run it at once.
    pub async fn forget_audit_before(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Writes one event inside a transaction.
pub(super) async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    e: &AuditEvent,
) -> Result<()> {
    insert_audit_rows(tx, std::slice::from_ref(e)).await
}

/// Writes events inside a transaction: one statement per hundred (a statement per event cost
/// a sign-in more CPU than the sign-in itself).
async fn insert_audit_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    events: &[AuditEvent],
) -> Result<()> {
    for chunk in events.chunks(100) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let params: Vec<String> = (1..=8).map(|k| format!("${}", i * 8 + k)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let sql = format!("{INSERT} VALUES {}", rows.join(", "));
        let mut query = sqlx::query(&sql);
        for e in chunk {
            query = query
                .bind(e.id.clone())
                .bind(e.at)
                .bind(e.kind.clone())
                .bind(e.user_id.clone())
                .bind(e.client_ip.clone())
                .bind(e.request_id.clone())
                .bind(e.actor.clone())
                .bind(e.detail.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Users {
    /// Erases a user: identities, phone, credentials and the row, in one transaction with its
    /// audit event (`event`), which keeps the id and the time only; the user's earlier events
    /// lose their client IP. The cache entries are dropped before and after. False where there
    /// was no such user.
    pub async fn delete_user(&self, id: &str, event: &AuditEvent) -> Result<bool> {
        let write = async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM identities WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let gone = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("UPDATE audit_events SET client_ip = NULL WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_audit(&mut tx, event).await?;
            tx.commit().await?;
            Ok(true)
        };
        self.write(id, None, write).await
    }

    /// Disables (`Some(time)`) or enables (`None`) a user, with its audit event, in one
    /// transaction. False where there is no such user.
    pub async fn set_disabled(
        &self,
        id: &str,
        at: Option<i64>,
        event: &AuditEvent,
    ) -> Result<bool> {
        let write = async {
            let mut tx = self.pool.begin().await?;
            let done =
                sqlx::query("UPDATE users SET disabled_at = $1, updated_at = $2 WHERE id = $3")
                    .bind(at)
                    .bind(crate::domain::now())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_audit(&mut tx, event).await?;
            tx.commit().await?;
            Ok(true)
        };
        self.write(id, None, write).await
    }
}
