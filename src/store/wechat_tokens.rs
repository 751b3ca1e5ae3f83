//! Each app's `access_token` as every node shares it, sealed, with a short lock so that one
//! node fetches it at a time. When to fetch is `accounts::wechat_tokens`' business.

use std::time::Duration;

use super::{keys, kv::Kv, seal::Sealer, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// The access_tokens, on the shared key-value store.
#[derive(Clone)]
pub struct WechatTokenCache {
    kv: Kv,
    sealer: Sealer,
}

impl WechatTokenCache {
    pub fn new(kv: Kv, sealer: Sealer) -> WechatTokenCache {
        WechatTokenCache { kv, sealer }
    }

    /// The app's token, where a node has one.
    pub async fn get(&self, appid: &str) -> Result<Option<String>> {
        let key = keys::wechat_token(appid);
        Ok(self
            .kv
            .get(&key)
            .await?
            .and_then(|b| self.sealer.open(&key, &b))
            .and_then(|b| String::from_utf8(b).ok()))
    }

    /// Keeps the app's token for `ttl`.
    pub async fn put(&self, appid: &str, token: &str, ttl: Duration) -> Result<()> {
        let key = keys::wechat_token(appid);
        let sealed = self.sealer.seal(&key, token.as_bytes());
        self.kv.set(&key, &sealed, ttl).await
    }

    /// Drops the app's token (WeChat refused it).
    pub async fn forget(&self, appid: &str) -> Result<()> {
        self.kv.del(&keys::wechat_token(appid)).await.map(drop)
    }

    /// Takes the right to fetch the app's token; false where another node holds it.
    pub async fn lock(&self, appid: &str) -> Result<bool> {
        let key = keys::wechat_token_lock(appid);
        self.kv.set_nx(&key, b"1", keys::WECHAT_TOKEN_LOCK).await
    }

    /// Gives the right back.
    pub async fn unlock(&self, appid: &str) -> Result<()> {
        self.kv.del(&keys::wechat_token_lock(appid)).await.map(drop)
    }
}
