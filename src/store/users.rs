//! Users and their WeChat identities in SQL, one set of queries for SQLite and PostgreSQL
//! (through sqlx's `Any` driver; `$n` placeholders work on both). Writes that touch several rows
//! run in one transaction, and uniqueness lives in the schema, so concurrent first logins of one
//! openid make exactly one user.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::{migrate::Migrator, Row};

use super::audit::AuditEvent;
use super::cache::{Cache, Fill, Lease, Lookup};
use super::lookups::Lookups;
use super::signups::Signups;
use super::{keys, StoreError};
use crate::domain::{now, Identity, Phone, ProfileChange, Provider, User};

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

type Result<T> = std::result::Result<T, StoreError>;

/// What a sign-in's lookup of its identity found.
pub struct IdentityLookup {
    /// The user that has the identity.
    pub user: Option<User>,
    /// Where nobody has it: the lease on its cache entry, where one was kept.
    pub lease: Option<Lease>,
    /// Where the database was read: the user that first carried the unionid, if any.
    pub union_owner: Option<Option<String>>,
}

/// The SQL store, read through the shared user cache where one is set.
#[derive(Clone)]
pub struct Users {
    pub(super) pool: AnyPool,
    /// First sign-ins' new users, written in groups.
    pub(super) signups: Signups,
    /// On PostgreSQL, sign-ins' reads of who has an openid, in batches.
    pub(super) lookups: Option<Lookups>,
    postgres: bool,
    pub(super) cache: Option<Cache>,
}

impl Users {
    /// Connects (the SQLite file is created where missing), as one of `pools` pools of the
    /// process (one per serving thread), which share 16 connections to PostgreSQL or 4 to
    /// SQLite, at least 2 each; each pool's sign-up writer has one more (on SQLite, one for the
    /// process), and on PostgreSQL its reader of sign-ins' lookups another. Connections that
    /// are not handed out within two seconds make a 503, not a queue without end.
    pub async fn connect(url: &str, pools: usize) -> Result<Users> {
        sqlx::any::install_default_drivers();
        let postgres = url.starts_with("postgres");
        let total: usize = if postgres { 16 } else { 4 };
        let pool = AnyPoolOptions::new()
            .max_connections((total / pools.max(1)).max(2) as u32)
            .acquire_timeout(Duration::from_secs(2))
            // A PostgreSQL connection is pinged when handed out, since the server may have
            // closed it; a SQLite one is a file open in this process, which no ping can tell
            // anything of (it would only cost a round trip to its worker thread).
            .test_before_acquire(postgres)
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
            signups: Signups::connect(url).await?,
            lookups: postgres.then(|| Lookups::start(url)).transpose()?,
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
    pub(super) async fn write<T>(
        &self,
        user_id: &str,
        extra: Option<(&str, &str)>,
        write: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(cache) = &self.cache else {
            return write.await;
        };
        let mut entries = self.entries_of(user_id).await?;
        entries.extend(extra.map(|(appid, openid)| keys::cached_identity(appid, openid)));
        cache.forget(&entries).await?;
        let out = write.await?;
        // (What the write removed is in `entries`; what it adds is `extra`: a write that adds
        // an identity names it.)
        cache.forget_after_write(&entries).await;
        Ok(out)
    }

    /// Writes the cache fill of a user just made (`create_with_identity`) on its own, where no
    /// session is written with it.
    pub async fn write_fill(&self, fill: Option<Fill>) {
        if let (Some(cache), Some(fill)) = (&self.cache, fill) {
            cache.write(fill).await;
        }
    }

    /// The cache entries that hold a user.
    async fn entries_of(&self, user_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT appid, openid FROM identities WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        let mut keys = vec![keys::cached_user(user_id)];
        keys.extend(
            rows.iter()
                .map(|r| keys::cached_identity(&r.get::<String, _>(0), &r.get::<String, _>(1))),
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
        Ok(self
            .find_identity_or_lease(appid, openid, None, false)
            .await?
            .user)
    }

    /// `find_identity` for a sign-in: where nobody has the openid, also the user that first
    /// carried `unionid` (read in the same query), and with `keep` the lease on the identity's
    /// cache entry, with which `create_with_identity` stores the user it makes.
    pub async fn find_identity_or_lease(
        &self,
        appid: &str,
        openid: &str,
        unionid: Option<&str>,
        keep: bool,
    ) -> Result<IdentityLookup> {
        let union_owner = std::sync::Mutex::new(None);
        let load = || async {
            let (owner, by_unionid) = self.owners(appid, openid, unionid).await?;
            *union_owner.lock().unwrap_or_else(|e| e.into_inner()) = Some(by_unionid);
            match owner {
                Some(id) => self.get_sql(&id).await,
                None => Ok(None),
            }
        };
        let Some(cache) = &self.cache else {
            let user = load().await?;
            return Ok(IdentityLookup {
                user,
                lease: None,
                union_owner: union_owner.into_inner().unwrap_or_else(|e| e.into_inner()),
            });
        };
        // The entry of an identity holds its whole user: a returning sign-in is one read.
        let key = keys::cached_identity(appid, openid);
        let (user, lease) = match cache.lookup(&key, load, keep).await? {
            Lookup::Found(user) => {
                let user: User = user;
                (user.identity(appid, openid).is_some().then_some(user), None)
            }
            Lookup::Missing(lease) => (None, lease),
        };
        Ok(IdentityLookup {
            user,
            lease,
            union_owner: union_owner.into_inner().unwrap_or_else(|e| e.into_inner()),
        })
    }

    /// Who has the openid, and (where `unionid`) the user that first carried the unionid (the
    /// oldest identity, as `find_user_by_unionid`): one query (on PostgreSQL, in a batch with
    /// the lookups of concurrent sign-ins: `store::lookups`).
    async fn owners(
        &self,
        appid: &str,
        openid: &str,
        unionid: Option<&str>,
    ) -> Result<(Option<String>, Option<String>)> {
        if let Some(lookups) = &self.lookups {
            return lookups.owners(appid, openid, unionid).await;
        }
        let rows = sqlx::query(
            "SELECT user_id, appid, openid FROM identities \
             WHERE (appid = $1 AND openid = $2) OR unionid = $3 ORDER BY created_at, user_id",
        )
        .bind(appid)
        .bind(openid)
        .bind(unionid)
        .fetch_all(&self.pool)
        .await?;
        let mine = rows
            .iter()
            .find(|r| r.get::<String, _>(1) == appid && r.get::<String, _>(2) == openid);
        Ok((
            mine.map(|r| r.get::<String, _>(0)),
            rows.first().map(|r| r.get::<String, _>(0)),
        ))
    }

    pub(super) async fn identity_owner(&self, appid: &str, openid: &str) -> Result<Option<String>> {
        Ok(self.owners(appid, openid, None).await?.0)
    }

    /// A user from its cache entry as read along with a session (`store::sessions`); None
    /// where there is none, or it is not this user's.
    pub fn from_entry(&self, id: &str, entry: &[u8]) -> Option<User> {
        let user: User = self.cache.as_ref()?.open(&keys::cached_user(id), entry)?;
        (user.id == id).then_some(user)
    }

    /// A user with its identities.
    pub async fn get(&self, id: &str) -> Result<Option<User>> {
        match &self.cache {
            Some(cache) => {
                cache
                    .get_or_load(&keys::cached_user(id), || self.get_sql(id))
                    .await
            }
            None => self.get_sql(id).await,
        }
    }

    /// A user with its identities, in one query.
    async fn get_sql(&self, id: &str) -> Result<Option<User>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.phone_number, \
                    u.pure_phone_number, u.country_code, u.created_at, \
                    i.provider, i.appid, i.openid, i.unionid, i.binding, u.sessions_not_before, \
                    u.disabled_at \
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
                    provider: Provider::from_stored(&provider?),
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
            sessions_not_before: r.get(13),
            disabled: r.get::<Option<i64>, _>(14).is_some(),
        }))
    }

    /// Ends the user's sessions that began by `not_before` (unix ms): "sign out everywhere".
    pub async fn end_sessions(&self, id: &str, not_before: i64) -> Result<()> {
        let write = async {
            sqlx::query("UPDATE users SET sessions_not_before = $1, updated_at = $2 WHERE id = $3")
                .bind(not_before)
                .bind(now())
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        };
        self.write(id, None, write).await
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
        .bind(
            change
                .nickname
                .as_ref()
                .map(|n| n.as_ref().map(|n| n.as_str())),
        )
        .bind(change.avatar_url.is_some() as i32)
        .bind(
            change
                .avatar_url
                .as_ref()
                .map(|a| a.as_ref().map(|a| a.as_str())),
        )
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
            "UPDATE users SET nickname = COALESCE(nickname, $1), avatar_url = \
                COALESCE(avatar_url, $2), updated_at = $3 WHERE id = $4",
        )
        .bind(nickname)
        .bind(avatar_url)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a phone number on a user, with its audit event in the same transaction; a number
    /// owned by another user is a conflict.
    pub async fn set_phone(&self, id: &str, phone: &Phone, audit: &AuditEvent) -> Result<()> {
        self.write(id, None, self.set_phone_sql(id, phone, audit))
            .await
    }

    async fn set_phone_sql(&self, id: &str, phone: &Phone, audit: &AuditEvent) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE users SET phone_number = $1, pure_phone_number = $2, country_code = $3, \
                updated_at = $4 WHERE id = $5",
        )
        .bind(&phone.phone_number)
        .bind(&phone.pure_phone_number)
        .bind(&phone.country_code)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "this phone number"))?;
        super::audit::insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A unique violation is the caller's conflict; anything else is the database being unwell.
pub(super) fn unique_violation(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::from(e),
    }
}
