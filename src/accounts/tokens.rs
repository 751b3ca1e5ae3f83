//! The `access_token` of each app, fetched once and shared.
//!
//! It lives in the key-value store so that every node uses the same one. One fetch at a time:
//! a per-app lock inside the process, and a short lock key across nodes. `stable_token` is used
//! because it hands every caller the same token while it is valid, so two nodes that both fetch
//! do not invalidate each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::AppCredentials;
use crate::error::Error;
use crate::store::kv::Kv;
use crate::store::seal::Sealer;
use crate::wechat::{self, WechatError};

/// The access_token cache.
pub struct AccessTokens {
    kv: Kv,
    sealer: Sealer,
    wechat: wechat::Client,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn key(appid: &str) -> String {
    format!("wxtoken:{appid}")
}

impl AccessTokens {
    pub fn new(kv: Kv, wechat: wechat::Client, sealer: Sealer) -> Self {
        AccessTokens {
            kv,
            sealer,
            wechat,
            locks: Mutex::new(HashMap::new()),
        }
    }

    async fn cached(&self, appid: &str) -> Result<Option<String>, Error> {
        let key = key(appid);
        Ok(self
            .kv
            .get(&key)
            .await?
            .and_then(|b| self.sealer.open(&key, &b))
            .and_then(|b| String::from_utf8(b).ok()))
    }

    /// The current token, fetched where no node has one.
    pub async fn get(&self, app: &AppCredentials) -> Result<String, Error> {
        if let Some(token) = self.cached(&app.appid).await? {
            return Ok(token);
        }
        self.fetch(app, None).await
    }

    /// A token other than `stale`, which WeChat just refused (40001, 42001).
    pub async fn replace(&self, app: &AppCredentials, stale: &str) -> Result<String, Error> {
        if self.cached(&app.appid).await?.as_deref() == Some(stale) {
            self.kv.del(&key(&app.appid)).await?;
        }
        self.fetch(app, Some(stale)).await
    }

    async fn fetch(&self, app: &AppCredentials, stale: Option<&str>) -> Result<String, Error> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(app.appid.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        // Another task may have fetched while this one waited.
        if let Some(token) = self.cached(&app.appid).await? {
            if Some(token.as_str()) != stale {
                return Ok(token);
            }
        }
        let lock_key = format!("wxtoken-lock:{}", app.appid);
        if !self
            .kv
            .set_nx(&lock_key, b"1", Duration::from_secs(10))
            .await?
        {
            // Another node is fetching: wait for its token a little, then fetch regardless.
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(token) = self.cached(&app.appid).await? {
                    if Some(token.as_str()) != stale {
                        return Ok(token);
                    }
                }
            }
        }
        let result = self.fetch_from_wechat(app, stale).await;
        self.kv.del(&lock_key).await?;
        let fresh = result?;
        let ttl = Duration::from_secs(fresh.expires_in.saturating_sub(60).max(1));
        let key = key(&app.appid);
        let sealed = self.sealer.seal(&key, fresh.access_token.as_bytes());
        self.kv.set(&key, &sealed, ttl).await?;
        Ok(fresh.access_token)
    }

    async fn fetch_from_wechat(
        &self,
        app: &AppCredentials,
        stale: Option<&str>,
    ) -> Result<wechat::AccessToken, WechatError> {
        let token = self
            .wechat
            .stable_token(&app.appid, &app.secret, false)
            .await?;
        if stale == Some(token.access_token.as_str()) {
            // WeChat still hands out the token it refused: only a forced refresh replaces it.
            tracing::warn!(appid = %app.appid, "access_token refused but still current; forcing a refresh");
            return self
                .wechat
                .stable_token(&app.appid, &app.secret, true)
                .await;
        }
        Ok(token)
    }
}
