//! Storage: sessions, tickets, counters and caches in Redis (or an in-process stand-in for one
//! node), and users with their WeChat identities in SQL (SQLite or PostgreSQL). No HTTP here.
//!
//! Every Redis key is named in `keys`; the flows ask the typed stores below (`sessions`,
//! `tickets`, `replays`, `limits`, `wechat_tokens`, `users`) and never the raw `kv`.

pub mod admin;
pub mod audit;
pub mod cache;
mod credentials;
mod identities;
pub mod keys;
pub mod kv;
pub mod limits;
mod lookups;
pub mod phones;
pub mod replays;
pub mod seal;
mod sentinel;
mod session_format;
pub mod sessions;
pub mod signing_keys;
mod signups;
pub mod sms_codes;
pub mod tickets;
pub mod users;
pub mod wechat_tokens;

use std::time::Duration;

use crate::error::{Code, Error};

pub use credentials::StoredPassword;

/// The id of a new row (a user, an audit event): a UUID v7, whose first 48 bits are the time in
/// milliseconds and the other 74 random. Rows made one after another then sort together, so
/// that a new row and its index entries land on the last pages of each index instead of on a
/// random page each, which the database must write whole (SQLite's WAL, PostgreSQL's full-page
/// images after a checkpoint). Not a secret: nobody signs in with an id. (The random bits come
/// from the thread's CSPRNG, not a getrandom syscall each.)
pub fn new_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random())
        .into_uuid()
        .to_string()
}

/// A connection of a task's own (a writer's, a reader's), made where there is none yet; the
/// task drops it after an error, so that its next statement makes a new one. Not from a pool:
/// a pool pings a connection as it hands it out and again as it takes it back, a round trip
/// each, where these tasks send one statement for many requests.
pub(crate) async fn own_connection<'c, C: sqlx::Connection>(
    options: &C::Options,
    conn: &'c mut Option<C>,
) -> Result<&'c mut C, sqlx::Error> {
    if conn.is_none() {
        let made = tokio::time::timeout(Duration::from_secs(2), C::connect_with(options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        *conn = Some(made);
    }
    conn.as_mut().ok_or(sqlx::Error::PoolClosed)
}

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

/// Every typed store of one serving thread, over one key-value store and one SQL pool.
#[derive(Clone)]
pub struct Stores {
    pub users: users::Users,
    pub sessions: sessions::Sessions,
    pub tickets: tickets::Tickets,
    pub replays: replays::Replays,
    pub limits: limits::Limits,
    pub sms_codes: sms_codes::SmsCodes,
    pub signing_keys: signing_keys::SigningKeys,
    pub wechat_tokens: wechat_tokens::WechatTokenCache,
    kv: kv::Kv,
}

impl Stores {
    /// The stores over `kv` (sealing what holds a secret with `sealer`) and `users`, which
    /// from now on reads through the shared user cache; sessions live the sliding TTL and the
    /// absolute lifetime given; SMS codes go by `clock`.
    pub fn new(
        kv: kv::Kv,
        sealer: seal::Sealer,
        users: users::Users,
        (session_ttl, session_max_age): (Duration, Duration),
        clock: crate::domain::Clock,
    ) -> Stores {
        Stores {
            signing_keys: signing_keys::SigningKeys::new(&users, sealer.clone()),
            users: users.with_cache(cache::Cache::new(kv.clone(), sealer.clone())),
            sessions: sessions::Sessions::new(
                kv.clone(),
                session_ttl,
                session_max_age,
                sealer.clone(),
            ),
            tickets: tickets::Tickets::new(kv.clone(), sealer.clone()),
            replays: replays::Replays::new(kv.clone(), sealer.clone()),
            limits: limits::Limits::new(kv.clone(), *sealer.name_key()),
            sms_codes: sms_codes::SmsCodes::new(kv.clone(), *sealer.name_key(), clock),
            wechat_tokens: wechat_tokens::WechatTokenCache::new(kv.clone(), sealer),
            kv,
        }
    }

    /// Whether the key-value store and the database answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.kv.ping().await?;
        self.users.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::new_id;

    #[test]
    fn new_ids_are_v7_and_sort_in_the_order_they_were_made() {
        let first = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_id();
        let parsed = uuid::Uuid::parse_str(&second).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7);
        assert!(first < second, "{first} then {second}");
        assert_ne!(new_id(), new_id());
    }
}
