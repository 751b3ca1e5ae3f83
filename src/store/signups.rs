//! New users of first sign-ins, written in groups (group commit, as databases write their logs):
//! a writer takes every sign-up queued while it wrote the last group and writes them all in one
//! transaction. A lone sign-up waits for nobody; under load, one commit (one fsync on SQLite,
//! one round trip on PostgreSQL) serves many.
//!
//! The writer has its own connection through sqlx's native driver: PostgreSQL takes the group
//! as arrays in one statement; SQLite (in process) as one JSON array in two. Uniqueness of
//! (appid, openid) still lives in the schema: an identity that another sign-in (here or on
//! another node) made first is not written, and neither is its user.
//!
//! On SQLite the writer also writes the audit log's batches, so that the file has one writer
//! (two meet in SQLite's busy handler, which sleeps) and they share its commits.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use super::audit::AuditEvent;
use super::identities::new_binding;
use super::StoreError;
use crate::domain::{now, Identity, User};

type Result<T> = std::result::Result<T, StoreError>;

/// The most sign-ups one transaction writes.
const GROUP: usize = 256;

/// A queued sign-up: a new user and its first identity (with its binding number drawn).
struct Signup {
    user_id: String,
    identity: Identity,
    reply: oneshot::Sender<Result<(bool, i64)>>,
}

/// What the writer writes: sign-ups, and on SQLite the audit log's batches too (so that the
/// file has one writer, and they share its commits).
enum Job {
    Signup(Signup),
    Audit(Vec<AuditEvent>, oneshot::Sender<Result<()>>),
}

/// Where the writer writes: its connection (`own_connection`), and how to make it.
enum Backend {
    Postgres(PgConnectOptions, Option<PgConnection>),
    Sqlite(SqliteConnectOptions, Option<SqliteConnection>),
}

/// The queue to this pool's writer.
#[derive(Clone)]
pub(super) struct Signups {
    jobs: mpsc::Sender<Job>,
}

impl Signups {
    /// Connects the writer (one connection): for PostgreSQL, a task on the current runtime (each
    /// serving thread has its own); for SQLite, one thread for the process and the file, since
    /// SQLite takes one writer at a time, and two that meet wait in its busy handler.
    pub(super) async fn connect(url: &str) -> Result<Signups> {
        if !url.starts_with("postgres") {
            return sqlite_writer(url);
        }
        let options = PgConnectOptions::from_str(url)?;
        let (jobs, queue) = mpsc::channel(GROUP * 4);
        tokio::spawn(write_groups(Backend::Postgres(options, None), queue));
        Ok(Signups { jobs })
    }

    /// Makes the user `user_id` (new), signed in by `identity`; None where the identity was
    /// made first by another sign-in (nothing is written then).
    pub(super) async fn create(
        &self,
        user_id: String,
        identity: &Identity,
    ) -> Result<Option<User>> {
        let mut identity = identity.clone();
        identity.binding = Some(new_binding());
        let job = |reply| {
            Job::Signup(Signup {
                user_id: user_id.clone(),
                identity: identity.clone(),
                reply,
            })
        };
        let (created, at) = self.ask(job).await?;
        Ok(created.then(|| User {
            id: user_id,
            username: None,
            nickname: None,
            avatar_url: None,
            phone_number: None,
            pure_phone_number: None,
            country_code: None,
            created_at: at,
            identities: vec![identity],
            sessions_not_before: None,
            disabled: false,
        }))
    }

    /// Writes audit events, all or none, with the next group (SQLite's writer only).
    pub(super) async fn audit(&self, events: Vec<AuditEvent>) -> Result<()> {
        self.ask(|reply| Job::Audit(events, reply)).await
    }

    /// Queues a job and waits for the writer's answer to it.
    async fn ask<T>(&self, job: impl FnOnce(oneshot::Sender<Result<T>>) -> Job) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("database: the writer stopped".into());
        self.jobs.send(job(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The process's writer of a SQLite file, started on its own thread at first use.
fn sqlite_writer(url: &str) -> Result<Signups> {
    static WRITERS: OnceLock<Mutex<HashMap<String, Signups>>> = OnceLock::new();
    let mut writers = WRITERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(writer) = writers.get(url) {
        return Ok(writer.clone());
    }
    let options = SqliteConnectOptions::from_str(url)?;
    let (jobs, queue) = mpsc::channel(GROUP * 4);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Unavailable(format!("sign-up writer: {e}")))?;
    std::thread::Builder::new()
        .name("wxlogin-sqlite-writer".into())
        .spawn(move || runtime.block_on(write_groups(Backend::Sqlite(options, None), queue)))
        .map_err(|e| StoreError::Unavailable(format!("sign-up writer: {e}")))?;
    let writer = Signups { jobs };
    writers.insert(url.to_string(), writer.clone());
    Ok(writer)
}

/// The writer: every job queued, up to a group, in one transaction, until every sender is gone.
async fn write_groups(mut backend: Backend, mut queue: mpsc::Receiver<Job>) {
    let mut group = Vec::with_capacity(GROUP);
    while queue.recv_many(&mut group, GROUP).await > 0 {
        let mut signups = Vec::new();
        let mut audits = Vec::new();
        for job in group.drain(..) {
            match job {
                Job::Signup(s) => signups.push(s),
                Job::Audit(events, reply) => audits.push((events, reply)),
            }
        }
        // The same identity twice in one group: the first is written, the others find it made.
        let mut seen = HashSet::new();
        let (first, again): (Vec<Signup>, Vec<Signup>) = signups
            .into_iter()
            .partition(|j| seen.insert((j.identity.appid.clone(), j.identity.openid.clone())));
        let events: Vec<&AuditEvent> = audits.iter().flat_map(|(e, _)| e).collect();
        let at = now();
        let written = match &mut backend {
            Backend::Postgres(..) if !events.is_empty() => Err(StoreError::Unavailable(
                "database: audit events go to the pool on PostgreSQL".into(),
            )),
            Backend::Postgres(..) if first.is_empty() => Ok(HashSet::new()),
            Backend::Postgres(options, conn) => {
                // A group that failed on a connection made before it (one that PostgreSQL cut,
                // or lost in a restart, since the last group) is written once more on a new
                // one. Writing it twice is harmless: what the first try wrote, the second finds
                // made, and those sign-ups find their user as a concurrent sign-in would.
                let old = conn.is_some();
                let mut written = write_postgres(options, conn, &first, at).await;
                if written.is_err() && old {
                    written = write_postgres(options, conn, &first, at).await;
                }
                written
            }
            Backend::Sqlite(options, conn) => {
                write_sqlite(options, conn, &first, &events, at).await
            }
        };
        let failed = |e: &StoreError| StoreError::Unavailable(e.to_string());
        for job in first {
            let answer = match &written {
                Ok(made) => Ok((made.contains(&job.user_id), at)),
                Err(e) => Err(failed(e)),
            };
            let _ = job.reply.send(answer);
        }
        for job in again {
            let _ = job
                .reply
                .send(written.as_ref().map(|_| (false, at)).map_err(failed));
        }
        for (_, reply) in audits {
            let _ = reply.send(written.as_ref().map(|_| ()).map_err(failed));
        }
    }
}

/// One statement: the identities that are new, and the users of those (the foreign key is
/// checked at the statement's end). Answers the ids of the users made.
async fn write_postgres(
    options: &PgConnectOptions,
    conn: &mut Option<PgConnection>,
    jobs: &[Signup],
    at: i64,
) -> Result<HashSet<String>> {
    let c = super::own_connection(options, conn).await?;
    let column = |f: &dyn Fn(&Signup) -> String| jobs.iter().map(f).collect::<Vec<String>>();
    let rows = sqlx::query(
        "WITH input AS (\
           SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::bigint[]) AS t(id, provider, appid, openid, unionid, binding)), \
         made AS (\
           INSERT INTO identities (provider, appid, openid, unionid, user_id, created_at, \
             binding) \
           SELECT provider, appid, openid, unionid, id, $7, binding FROM input \
           ON CONFLICT (appid, openid) DO NOTHING RETURNING user_id) \
         INSERT INTO users (id, created_at, updated_at) SELECT user_id, $7, $7 FROM made \
         RETURNING id",
    )
    .bind(column(&|j| j.user_id.clone()))
    .bind(column(&|j| j.identity.provider.as_str().to_string()))
    .bind(column(&|j| j.identity.appid.clone()))
    .bind(column(&|j| j.identity.openid.clone()))
    .bind(
        jobs.iter()
            .map(|j| j.identity.unionid.clone())
            .collect::<Vec<Option<String>>>(),
    )
    .bind(
        jobs.iter()
            .map(|j| j.identity.binding.unwrap_or_default())
            .collect::<Vec<i64>>(),
    )
    .bind(at)
    .fetch_all(&mut *c)
    .await
    .inspect_err(|_| *conn = None)?;
    Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
}

/// One transaction over the group as JSON arrays: the users whose identities nobody has, then
/// those identities (nothing else writes meanwhile: SQLite has one writer at a time), then the
/// audit events.
async fn write_sqlite(
    options: &SqliteConnectOptions,
    conn: &mut Option<SqliteConnection>,
    jobs: &[Signup],
    events: &[&AuditEvent],
    at: i64,
) -> Result<HashSet<String>> {
    let c = super::own_connection(options, conn).await?;
    let written = write_sqlite_on(c, jobs, events, at).await;
    if written.is_err() {
        *conn = None;
    }
    written
}

async fn write_sqlite_on(
    c: &mut SqliteConnection,
    jobs: &[Signup],
    events: &[&AuditEvent],
    at: i64,
) -> Result<HashSet<String>> {
    let rows = |jobs: &mut dyn Iterator<Item = &Signup>| {
        serde_json::Value::Array(
            jobs.map(|j| {
                let i = &j.identity;
                serde_json::json!([
                    j.user_id,
                    i.provider.as_str(),
                    i.appid,
                    i.openid,
                    i.unionid,
                    i.binding
                ])
            })
            .collect(),
        )
        .to_string()
    };
    let mut tx = c.begin().await?;
    let mut made = HashSet::new();
    if !jobs.is_empty() {
        made = sqlx::query(
            "INSERT INTO users (id, created_at, updated_at) \
             SELECT value ->> 0, $2, $2 FROM json_each($1) AS j \
             WHERE NOT EXISTS (SELECT 1 FROM identities i \
               WHERE i.appid = j.value ->> 2 AND i.openid = j.value ->> 3) \
             RETURNING id",
        )
        .bind(rows(&mut jobs.iter()))
        .bind(at)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    }
    if !made.is_empty() {
        sqlx::query(
            "INSERT INTO identities (provider, appid, openid, unionid, user_id, created_at, \
               binding) \
             SELECT value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 0, $2, \
               value ->> 5 FROM json_each($1)",
        )
        .bind(rows(&mut jobs.iter().filter(|j| made.contains(&j.user_id))))
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    if !events.is_empty() {
        let rows = serde_json::Value::Array(
            events
                .iter()
                .map(|e| {
                    serde_json::json!([
                        e.id,
                        e.at,
                        e.kind,
                        e.user_id,
                        e.client_ip,
                        e.request_id,
                        e.actor,
                        e.detail
                    ])
                })
                .collect(),
        );
        sqlx::query(
            "INSERT INTO audit_events (id, at, type, user_id, client_ip, request_id, actor, \
               detail) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
               value ->> 5, value ->> 6, value ->> 7 FROM json_each($1)",
        )
        .bind(rows.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(made)
}
