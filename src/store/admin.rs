//! What operators search users by: id, username, phone (E.164), openid or unionid.

use sqlx::Row;

use super::users::Users;
use super::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

impl Users {
    /// Ids of users that `q` names (every user where None), in id order, after `after`.
    pub async fn search_user_ids(
        &self,
        q: Option<&str>,
        phone: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>> {
        let folded = q.map(str::to_lowercase);
        let rows = sqlx::query(
            "SELECT DISTINCT u.id FROM users u LEFT JOIN identities i ON i.user_id = u.id \
             WHERE ($1 IS NULL OR u.id = $1 OR u.username_key = $2 OR u.phone_number = $3 \
                    OR i.openid = $1 OR i.unionid = $1) \
               AND ($4 IS NULL OR u.id > $4) \
             ORDER BY u.id LIMIT $5",
        )
        .bind(q.map(str::to_string))
        .bind(folded)
        .bind(phone.map(str::to_string))
        .bind(after.map(str::to_string))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
