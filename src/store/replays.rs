//! The login replay cache: what the first call of a `wx.login` code answered, kept a minute
//! for its retries (a network retry, a double tap), so that a retry is answered without a
//! second call to WeChat, which would say 40163. Sealed: an answer names a session. Each
//! record names its caller (a hash of the `Idempotency-Key` of the first call): only the same
//! caller is answered.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{keys, kv::Kv, seal::Sealer, StoreError};
use crate::error::WechatAnswer;

type Result<T> = std::result::Result<T, StoreError>;

/// What the first call of a login code answered.
#[derive(Serialize, Deserialize)]
pub enum Replay {
    /// The first call is still running.
    Pending,
    Done {
        token: String,
        user_id: String,
        is_new_user: bool,
    },
    Failed {
        code: String,
        message: String,
        wechat: Option<WechatAnswer>,
    },
}

/// The record of one login code of one app, and the caller asking for it.
#[derive(Clone, Debug)]
pub struct ReplayKey {
    key: String,
    /// The hash of the caller's `Idempotency-Key`, where it sent one.
    caller: Option<String>,
}

/// A record as stored: the answer, and whose it is.
#[derive(Serialize, Deserialize)]
struct Record {
    caller: Option<String>,
    answer: Replay,
    /// Who holds a `Pending` claim: a random number of the call that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim: Option<String>,
}

/// What a caller finds under a code.
pub enum Found {
    /// Nothing: the code is not in use, or its window has passed.
    Nothing,
    /// The code was first sent by another caller (another key, or no key on either side).
    Another,
    /// This caller's own first answer.
    Mine(Replay),
}

/// A successful login's answer, written with its session (`Sessions::create`).
pub struct DoneAnswer {
    pub key: ReplayKey,
    pub user_id: String,
    pub is_new_user: bool,
}

/// The replay cache, on the shared key-value store.
#[derive(Clone)]
pub struct Replays {
    kv: Kv,
    sealer: Sealer,
}

impl Replays {
    pub fn new(kv: Kv, sealer: Sealer) -> Replays {
        Replays { kv, sealer }
    }

    /// The record of a code of an app, for the caller of `idempotency_key`.
    pub fn key(appid: &str, code: &str, idempotency_key: Option<&str>) -> ReplayKey {
        ReplayKey {
            key: keys::login_replay(appid, code),
            caller: idempotency_key.map(keys::caller_digest),
        }
    }

    /// The sealed bytes of a record, as stored.
    pub(super) fn sealed(&self, key: &ReplayKey, replay: Replay) -> (String, Vec<u8>) {
        self.sealed_record(key, replay, None)
    }

    fn sealed_record(
        &self,
        key: &ReplayKey,
        replay: Replay,
        claim: Option<String>,
    ) -> (String, Vec<u8>) {
        let record = Record {
            caller: key.caller.clone(),
            answer: replay,
            claim,
        };
        let bytes = serde_json::to_vec(&record).expect("a replay always serializes");
        (key.key.clone(), self.sealer.seal(&key.key, &bytes))
    }

    fn open(&self, key: &ReplayKey, bytes: Option<Vec<u8>>) -> Option<Record> {
        let plain = bytes.and_then(|b| self.sealer.open(&key.key, &b))?;
        serde_json::from_slice(&plain).ok()
    }

    /// Marks the code as in use: true for the first caller, who then answers it. A claim whose
    /// answer was lost with a dropped connection, sent again, finds its own mark and is still
    /// the first.
    pub async fn claim(&self, key: &ReplayKey) -> Result<bool> {
        self.claim_marked(key, hex::encode(rand::random::<[u8; 16]>()))
            .await
    }

    async fn claim_marked(&self, key: &ReplayKey, mark: String) -> Result<bool> {
        let (id, pending) = self.sealed_record(key, Replay::Pending, Some(mark.clone()));
        if self.kv.set_nx(&id, &pending, keys::LOGIN_REPLAY).await? {
            return Ok(true);
        }
        let found = self.open(key, self.kv.get(&id).await?);
        Ok(found.is_some_and(|r| r.claim.as_deref() == Some(mark.as_str())))
    }

    /// What the first call answered (or `Pending`), where this caller made it.
    pub async fn read(&self, key: &ReplayKey) -> Result<Found> {
        let Some(record) = self.open(key, self.kv.get(&key.key).await?) else {
            return Ok(Found::Nothing);
        };
        let same_caller = match (&record.caller, &key.caller) {
            (Some(first), Some(this)) => first.as_bytes().ct_eq(this.as_bytes()).into(),
            _ => false,
        };
        Ok(if same_caller {
            Found::Mine(record.answer)
        } else {
            Found::Another
        })
    }

    /// Keeps what the first call answered for the rest of the window.
    pub async fn record(&self, key: &ReplayKey, replay: Replay) -> Result<()> {
        let (key, sealed) = self.sealed(key, replay);
        self.kv.set(&key, &sealed, keys::LOGIN_REPLAY).await
    }

    /// Lets a retry try the code again (the first call got no answer).
    pub async fn release(&self, key: &ReplayKey) -> Result<()> {
        self.kv.del(&key.key).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_claim_sent_twice_is_still_its_senders_and_no_one_elses() {
        let replays = Replays::new(Kv::memory("t:"), Sealer::default());
        let key = Replays::key("wx1", "code", Some("caller-key-000001"));
        // The same claim twice: a retry after its answer was lost with the connection.
        assert!(replays.claim_marked(&key, "a".into()).await.unwrap());
        assert!(replays.claim_marked(&key, "a".into()).await.unwrap());
        // Another call of the same code is not the first.
        assert!(!replays.claim(&key).await.unwrap());
    }
}
