//! The login replay cache: what the first call of a `wx.login` code answered, kept a minute
//! for its retries (a network retry, a double tap), so that a retry is answered without a
//! second call to WeChat, which would say 40163. Sealed: an answer names a session.

use serde::{Deserialize, Serialize};

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

/// The record of one login code of one app.
#[derive(Clone, Debug)]
pub struct ReplayKey(String);

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

    /// The record of a code of an app.
    pub fn key(appid: &str, code: &str) -> ReplayKey {
        ReplayKey(keys::login_replay(appid, code))
    }

    /// The sealed bytes of a record, as stored.
    pub(super) fn sealed(&self, key: &ReplayKey, replay: &Replay) -> (String, Vec<u8>) {
        let bytes = serde_json::to_vec(replay).expect("a replay always serializes");
        (key.0.clone(), self.sealer.seal(&key.0, &bytes))
    }

    /// Marks the code as in use: true for the first caller, who then answers it.
    pub async fn claim(&self, key: &ReplayKey) -> Result<bool> {
        let (key, pending) = self.sealed(key, &Replay::Pending);
        self.kv.set_nx(&key, &pending, keys::LOGIN_REPLAY).await
    }

    /// What the first call answered (or `Pending`); None where nothing is kept.
    pub async fn read(&self, key: &ReplayKey) -> Result<Option<Replay>> {
        let bytes = self.kv.get(&key.0).await?;
        let plain = bytes.and_then(|b| self.sealer.open(&key.0, &b));
        Ok(plain.and_then(|p| serde_json::from_slice(&p).ok()))
    }

    /// Keeps what the first call answered for the rest of the window.
    pub async fn record(&self, key: &ReplayKey, replay: &Replay) -> Result<()> {
        let (key, sealed) = self.sealed(key, replay);
        self.kv.set(&key, &sealed, keys::LOGIN_REPLAY).await
    }

    /// Lets a retry try the code again (the first call got no answer).
    pub async fn release(&self, key: &ReplayKey) -> Result<()> {
        self.kv.del(&key.0).await.map(drop)
    }
}
