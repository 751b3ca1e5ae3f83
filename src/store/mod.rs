//! Storage: sessions, tickets and caches in Redis (or an in-process stand-in for one node), and
//! users with their WeChat identities in SQL (SQLite or PostgreSQL). No HTTP here.

pub mod cache;
pub mod kv;
pub mod seal;
pub mod sessions;
pub mod users;

use crate::error::{Code, Error};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis or the database did not answer (or answered with an error): a 503.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint refused the write: which one, by name.
    #[error("conflict on {0}")]
    Conflict(&'static str),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(format!("redis: {e}"))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(format!("database: {e}"))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Conflict(what) => Error::new(
                Code::Conflict,
                format!("{what} belongs to another account already."),
            ),
            StoreError::Unavailable(_) => Error::unavailable(e),
        }
    }
}
