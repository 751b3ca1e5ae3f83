//! Users by verified phone number (E.164 in `users.phone_number`, unique).

use sqlx::Row;

use super::users::{unique_violation, Users};
use super::StoreError;
use crate::domain::{now, Phone};

type Result<T> = std::result::Result<T, StoreError>;

impl Users {
    /// The user whose verified phone this is (E.164).
    pub async fn user_of_phone(&self, phone_number: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT id FROM users WHERE phone_number = $1")
            .bind(phone_number)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// A new user with a verified phone and nothing else; a phone that another user has
    /// meanwhile is a conflict.
    pub async fn create_with_phone(&self, phone: &Phone) -> Result<String> {
        let id = super::new_id();
        sqlx::query(
            "INSERT INTO users (id, phone_number, pure_phone_number, country_code, created_at, \
                updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(&phone.phone_number)
        .bind(&phone.pure_phone_number)
        .bind(&phone.country_code)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "this phone number"))?;
        Ok(id)
    }
}
