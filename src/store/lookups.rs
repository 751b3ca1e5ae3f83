//! Who has an openid, for sign-ins that miss the user cache, read in batches on PostgreSQL: a
//! reader task of each serving thread takes every lookup queued while it read the last batch and
//! reads them all in one statement, on a connection of its own. Under load, one round trip (one
//! wakeup of a PostgreSQL backend) serves many sign-ins, where a pool's connection would also
//! cost a ping on its way out and on its way in.
//!
//! The connection is made at the first batch and again after any error: a batch that failed
//! on a connection made before it (most likely one that PostgreSQL cut, or lost in a restart,
//! since the last batch, which it tells as an error of the next statement) is read once more on
//! a new connection.

use std::collections::HashMap;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// The most lookups one statement reads.
const BATCH: usize = 256;

/// Who has the openid, and the user that first carried the unionid (of any app).
pub(super) type Owners = (Option<String>, Option<String>);

struct Lookup {
    appid: String,
    openid: String,
    unionid: Option<String>,
    reply: oneshot::Sender<Result<Owners>>,
}

/// The queue to this serving thread's reader.
#[derive(Clone)]
pub(super) struct Lookups {
    queue: mpsc::Sender<Lookup>,
}

impl Lookups {
    /// Starts the reader on the current runtime; it connects at its first batch.
    pub(super) fn start(url: &str) -> Result<Lookups> {
        let options: PgConnectOptions = url.parse()?;
        let (queue, jobs) = mpsc::channel(BATCH * 4);
        tokio::spawn(read_batches(options, jobs));
        Ok(Lookups { queue })
    }

    /// Who has (appid, openid), and who first carried `unionid`.
    pub(super) async fn owners(
        &self,
        appid: &str,
        openid: &str,
        unionid: Option<&str>,
    ) -> Result<Owners> {
        let (reply, answer) = oneshot::channel();
        let lookup = Lookup {
            appid: appid.to_string(),
            openid: openid.to_string(),
            unionid: unionid.map(str::to_string),
            reply,
        };
        let gone = || StoreError::Unavailable("database: the reader stopped".into());
        self.queue.send(lookup).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The reader: every lookup queued, up to a batch, in one statement, until every sender is gone.
async fn read_batches(options: PgConnectOptions, mut jobs: mpsc::Receiver<Lookup>) {
    let mut conn: Option<PgConnection> = None;
    let mut batch = Vec::with_capacity(BATCH);
    while jobs.recv_many(&mut batch, BATCH).await > 0 {
        let old = conn.is_some();
        let mut answer = read(&options, &mut conn, &batch).await;
        if answer.is_err() && old {
            answer = read(&options, &mut conn, &batch).await;
        }
        match answer {
            Ok(mut owners) => {
                for (n, lookup) in batch.drain(..).enumerate() {
                    let _ = lookup.reply.send(Ok(owners.remove(&n).unwrap_or_default()));
                }
            }
            Err(e) => {
                let message = format!("database: {e}");
                for lookup in batch.drain(..) {
                    let _ = lookup
                        .reply
                        .send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// One batch's owners, by its place in the batch; the connection made first where there is
/// none, and dropped on an error.
async fn read(
    options: &PgConnectOptions,
    conn: &mut Option<PgConnection>,
    batch: &[Lookup],
) -> std::result::Result<HashMap<usize, Owners>, sqlx::Error> {
    let c = super::own_connection(options, conn).await?;
    let column = |f: &dyn Fn(&Lookup) -> Option<String>| -> Vec<Option<String>> {
        batch.iter().map(f).collect()
    };
    // The openid's own identity, and every identity with the unionid, for each lookup, in the
    // order `find_user_by_unionid` takes (the oldest identity first).
    // (LATERAL: two index lookups per sign-in, whatever the planner guesses of the input.)
    let rows = sqlx::query(
        "SELECT t.n, o.user_id, o.mine FROM \
           UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(appid, openid, unionid, n) \
         CROSS JOIN LATERAL (\
           SELECT i.user_id, TRUE AS mine, i.created_at FROM identities i \
             WHERE i.appid = t.appid AND i.openid = t.openid \
           UNION ALL \
           SELECT i.user_id, FALSE, i.created_at FROM identities i WHERE i.unionid = t.unionid) o \
         ORDER BY t.n, o.created_at, o.user_id",
    )
    .bind(column(&|l| Some(l.appid.clone())))
    .bind(column(&|l| Some(l.openid.clone())))
    .bind(column(&|l| l.unionid.clone()))
    .fetch_all(&mut *c)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            *conn = None;
            return Err(e);
        }
    };
    let mut owners: HashMap<usize, Owners> = HashMap::new();
    for row in &rows {
        // ORDINALITY counts from 1.
        let n = usize::try_from(row.get::<i64, _>(0) - 1).unwrap_or(usize::MAX);
        let user_id: String = row.get(1);
        let entry = owners.entry(n).or_default();
        if row.get::<bool, _>(2) && entry.0.is_none() {
            entry.0 = Some(user_id.clone());
        }
        if entry.1.is_none() {
            entry.1 = Some(user_id);
        }
    }
    Ok(owners)
}
