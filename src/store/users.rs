//! Users and their WeChat identities in SQL, one set of queries for SQLite and PostgreSQL
//! (through sqlx's `Any` driver; `$n` placeholders work on both). Writes that touch several rows
//! run in one transaction, and uniqueness lives in the schema, so concurrent first logins of one
//! openid make exactly one user.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::{migrate::Migrator, Row};

use super::cache::{identity_key, user_key, Cache};
use super::StoreError;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

type Result<T> = std::result::Result<T, StoreError>;

/// Which WeChat product an identity signs in through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Provider {
    MiniProgram,
    Website,
    OfficialAccount,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::MiniProgram => "miniprogram",
            Provider::Website => "website",
            Provider::OfficialAccount => "official_account",
        }
    }

    fn parse(s: &str) -> Provider {
        match s {
            "website" => Provider::Website,
            "official_account" => Provider::OfficialAccount,
            _ => Provider::MiniProgram,
        }
    }
}

/// One WeChat openid of a user.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub provider: Provider,
    pub appid: String,
    pub openid: String,
    pub unionid: Option<String>,
    /// The random number of this binding of the openid to its user, as read from the store
    /// (None in a new one, whose insert draws its own; None too for rows bound before 0.2).
    pub binding: Option<i64>,
}

/// A user with the identities that sign in to it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: String,
    pub username: Option<String>,
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub phone_number: Option<String>,
    pub pure_phone_number: Option<String>,
    pub country_code: Option<String>,
    pub created_at: i64,
    pub identities: Vec<Identity>,
}

impl User {
    /// The user's identity of an openid of an app.
    pub fn identity(&self, appid: &str, openid: &str) -> Option<&Identity> {
        self.identities
            .iter()
            .find(|i| i.appid == appid && i.openid == openid)
    }
}

/// A phone number as WeChat gives it.
#[derive(Clone, Debug)]
pub struct Phone {
    pub phone_number: String,
    pub pure_phone_number: String,
    pub country_code: String,
}

/// A change of profile: `None` leaves a field, `Some(None)` clears it.
#[derive(Default)]
pub struct ProfileChange {
    pub nickname: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
}

/// The SQL store, read through the shared user cache where one is set.
#[derive(Clone)]
pub struct Users {
    pool: AnyPool,
    postgres: bool,
    cache: Option<Cache>,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Users {
    /// Connects (the SQLite file is created where missing), as one of `pools` pools of the
    /// process (one per serving thread), which share 16 connections to PostgreSQL or 4 to
    /// SQLite, at least 2 each. Connections that are not handed out within two seconds make a
    /// 503, not a queue without end.
    pub async fn connect(url: &str, pools: usize) -> Result<Users> {
        sqlx::any::install_default_drivers();
        let postgres = url.starts_with("postgres");
        let total: usize = if postgres { 16 } else { 4 };
        let pool = AnyPoolOptions::new()
            .max_connections((total / pools.max(1)).max(2) as u32)
            .acquire_timeout(Duration::from_secs(2))
            .connect(url)
            .await?;
        if !postgres {
            // WAL lets readers go on while one writer writes; it is kept in the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Users {
            pool,
            postgres,
            cache: None,
        })
    }

    /// Reads users through `cache` from now on; every write below keeps it true.
    pub fn with_cache(mut self, cache: Cache) -> Users {
        self.cache = Some(cache);
        self
    }

    /// Runs a write to a user between two drops of the cache entries that hold the user: its own
    /// and one for each of its identities (see `store::cache`), before the write and after it.
    /// `extra` names an identity the write adds.
    async fn write<T>(
        &self,
        user_id: &str,
        extra: Option<(&str, &str)>,
        write: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(cache) = &self.cache else {
            return write.await;
        };
        let mut keys = self.entries_of(user_id).await?;
        keys.extend(extra.map(|(appid, openid)| identity_key(appid, openid)));
        cache.forget(&keys).await?;
        let out = write.await?;
        // Identities the write added are dropped too (what it removed is in `keys`).
        if let Ok(now) = self.entries_of(user_id).await {
            keys.extend(
                now.into_iter()
                    .filter(|k| !keys.contains(k))
                    .collect::<Vec<_>>(),
            );
        }
        cache.after(&keys).await;
        Ok(out)
    }

    /// The cache entries that hold a user.
    async fn entries_of(&self, user_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT appid, openid FROM identities WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        let mut keys = vec![user_key(user_id)];
        keys.extend(
            rows.iter()
                .map(|r| identity_key(&r.get::<String, _>(0), &r.get::<String, _>(1))),
        );
        Ok(keys)
    }

    /// Applies the migrations this backend has not seen yet.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = if self.postgres { &POSTGRES } else { &SQLITE };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration: {e}")))
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The user an openid of an app belongs to, with its identities (that one among them).
    pub async fn find_identity(&self, appid: &str, openid: &str) -> Result<Option<User>> {
        let Some(cache) = &self.cache else {
            return match self.identity_owner(appid, openid).await? {
                Some(id) => self.get(&id).await,
                None => Ok(None),
            };
        };
        // The entry of an identity holds its whole user: a returning sign-in is one read.
        let key = identity_key(appid, openid);
        let load = || async {
            match self.identity_owner(appid, openid).await? {
                Some(id) => self.get_sql(&id).await,
                None => Ok(None),
            }
        };
        let user = cache.get_or_load(&key, load).await?;
        Ok(user.filter(|u| u.identity(appid, openid).is_some()))
    }

    async fn identity_owner(&self, appid: &str, openid: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT user_id FROM identities WHERE appid = $1 AND openid = $2")
            .bind(appid)
            .bind(openid)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// The user that first carried this unionid. Where two users carry it (linked before WeChat
    /// told us they are one person), the oldest identity wins, so the answer is stable.
    pub async fn find_user_by_unionid(&self, unionid: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT user_id FROM identities WHERE unionid = $1 ORDER BY created_at, user_id LIMIT 1",
        )
        .bind(unionid)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Creates a user signed in by `identity`, in one transaction. Where a concurrent call made
    /// the identity first, nothing is written and that user is returned: `(user_id, created)`.
    pub async fn create_with_identity(&self, identity: &Identity) -> Result<(String, bool)> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO users (id, created_at, updated_at) VALUES ($1, $2, $2)")
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let inserted = insert_identity(&mut tx, &id, identity, now).await?;
        if !inserted {
            tx.rollback().await?;
            return self.existing(identity).await;
        }
        tx.commit().await?;
        Ok((id, true))
    }

    /// Adds `identity` to an existing user. Where the openid is taken already, returns its owner:
    /// `(user_id, added)`.
    pub async fn link_identity(
        &self,
        user_id: &str,
        identity: &Identity,
    ) -> Result<(String, bool)> {
        let new = Some((identity.appid.as_str(), identity.openid.as_str()));
        self.write(user_id, new, self.link_identity_sql(user_id, identity))
            .await
    }

    async fn link_identity_sql(
        &self,
        user_id: &str,
        identity: &Identity,
    ) -> Result<(String, bool)> {
        let mut tx = self.pool.begin().await?;
        let inserted = insert_identity(&mut tx, user_id, identity, now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("an identity of this app"),
                e => e,
            })?;
        tx.commit().await?;
        if inserted {
            Ok((user_id.to_string(), true))
        } else {
            self.existing(identity).await
        }
    }

    async fn existing(&self, identity: &Identity) -> Result<(String, bool)> {
        let owner = self
            .identity_owner(&identity.appid, &identity.openid)
            .await?
            .ok_or_else(|| StoreError::Unavailable("identity vanished during login".into()))?;
        Ok((owner, false))
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

    /// A user from its cache entry as read along with a session (`store::sessions`); None
    /// where there is none, or it is not this user's.
    pub fn from_entry(&self, id: &str, entry: &[u8]) -> Option<User> {
        let user: User = self.cache.as_ref()?.open(&user_key(id), entry)?;
        (user.id == id).then_some(user)
    }

    /// A user with its identities.
    pub async fn get(&self, id: &str) -> Result<Option<User>> {
        match &self.cache {
            Some(cache) => cache.get_or_load(&user_key(id), || self.get_sql(id)).await,
            None => self.get_sql(id).await,
        }
    }

    /// A user with its identities, in one query.
    async fn get_sql(&self, id: &str) -> Result<Option<User>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.phone_number, u.pure_phone_number, u.country_code, \
                    u.created_at, i.provider, i.appid, i.openid, i.unionid, i.binding \
             FROM users u LEFT JOIN identities i ON i.user_id = u.id \
             WHERE u.id = $1 ORDER BY i.created_at, i.appid",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let identities = rows
            .iter()
            .filter_map(|i| {
                let provider: Option<String> = i.get(8);
                Some(Identity {
                    provider: Provider::parse(&provider?),
                    appid: i.get(9),
                    openid: i.get(10),
                    unionid: i.get(11),
                    binding: i.get(12),
                })
            })
            .collect();
        Ok(Some(User {
            id: r.get(0),
            username: r.get(1),
            nickname: r.get(2),
            avatar_url: r.get(3),
            phone_number: r.get(4),
            pure_phone_number: r.get(5),
            country_code: r.get(6),
            created_at: r.get(7),
            identities,
        }))
    }

    /// Changes nickname and avatar; fields left `None` stay as they are.
    pub async fn update_profile(&self, id: &str, change: &ProfileChange) -> Result<()> {
        self.write(id, None, self.update_profile_sql(id, change))
            .await
    }

    async fn update_profile_sql(&self, id: &str, change: &ProfileChange) -> Result<()> {
        sqlx::query(
            "UPDATE users SET \
               nickname = CASE WHEN $1 = 1 THEN $2 ELSE nickname END, \
               avatar_url = CASE WHEN $3 = 1 THEN $4 ELSE avatar_url END, \
               updated_at = $5 WHERE id = $6",
        )
        .bind(change.nickname.is_some() as i32)
        .bind(change.nickname.clone().flatten())
        .bind(change.avatar_url.is_some() as i32)
        .bind(change.avatar_url.clone().flatten())
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets nickname and avatar where the user has none (from a web sign-in's profile).
    pub async fn fill_profile(
        &self,
        id: &str,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> Result<()> {
        self.write(id, None, self.fill_profile_sql(id, nickname, avatar_url))
            .await
    }

    async fn fill_profile_sql(
        &self,
        id: &str,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET nickname = COALESCE(nickname, $1), avatar_url = COALESCE(avatar_url, $2), updated_at = $3 WHERE id = $4",
        )
        .bind(nickname)
        .bind(avatar_url)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a phone number on a user; a number owned by another user is a conflict.
    pub async fn set_phone(&self, id: &str, phone: &Phone) -> Result<()> {
        self.write(id, None, self.set_phone_sql(id, phone)).await
    }

    async fn set_phone_sql(&self, id: &str, phone: &Phone) -> Result<()> {
        sqlx::query(
            "UPDATE users SET phone_number = $1, pure_phone_number = $2, country_code = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&phone.phone_number)
        .bind(&phone.pure_phone_number)
        .bind(&phone.country_code)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "this phone number"))?;
        Ok(())
    }
}

/// What a password sign-in needs of a user.
pub struct Credentials {
    pub user_id: String,
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .field("password_hash", &"<hidden>")
            .finish()
    }
}

/// How an unbinding ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Unbound {
    /// Gone; this was its openid.
    Done(String),
    /// The user has no identity of this app.
    NotFound,
    /// It is the user's last way to sign in: kept.
    LastWay,
}

impl Users {
    /// Creates an account with a username and an argon2id hash; a username taken (without
    /// regard to case) is a conflict.
    pub async fn create_account(&self, username: &str, password_hash: &str) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now();
        sqlx::query(
            "INSERT INTO users (id, username, username_key, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(username)
        .bind(username.to_lowercase())
        .bind(password_hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "this username"))?;
        Ok(id)
    }

    /// The user and hash of a username (without regard to case).
    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let row = sqlx::query("SELECT id, password_hash FROM users WHERE username_key = $1 AND password_hash IS NOT NULL")
            .bind(username.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| Credentials {
            user_id: r.get(0),
            password_hash: r.get(1),
        }))
    }

    /// Gives a user without credentials a username and password hash. False where the user has
    /// credentials already; a username taken is a conflict.
    pub async fn set_credentials(
        &self,
        user_id: &str,
        username: &str,
        password_hash: &str,
    ) -> Result<bool> {
        let write = self.set_credentials_sql(user_id, username, password_hash);
        self.write(user_id, None, write).await
    }

    async fn set_credentials_sql(
        &self,
        user_id: &str,
        username: &str,
        password_hash: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET username = $1, username_key = $2, password_hash = $3, updated_at = $4 \
             WHERE id = $5 AND password_hash IS NULL",
        )
        .bind(username)
        .bind(username.to_lowercase())
        .bind(password_hash)
        .bind(now())
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_violation(e, "this username"))?;
        Ok(done.rows_affected() > 0)
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
    pub async fn unbind(&self, user_id: &str, appid: &str) -> Result<Unbound> {
        // The identity it removes is among the user's entries, dropped before and after.
        self.write(user_id, None, self.unbind_sql(user_id, appid))
            .await
    }

    async fn unbind_sql(&self, user_id: &str, appid: &str) -> Result<Unbound> {
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
    // Below 2^31, so that any backend's integer holds it.
    .bind(i64::from(rand::random::<u32>() >> 1))
    .execute(&mut **tx)
    .await
    .map_err(|e| unique_violation(e, "this identity"))?;
    Ok(done.rows_affected() > 0)
}

/// A unique violation is the caller's conflict; anything else is the database being unwell.
fn unique_violation(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::from(e),
    }
}
