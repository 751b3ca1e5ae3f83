//! The `access_token` of each app, fetched once and shared.
//!
//! It lives in the shared store so that every node uses the same one. One fetch at a time: a
//! per-app lock inside the process, and a short lock in the store across nodes. `stable_token`
//! is used because it hands every caller the same token while it is valid, so two nodes that
//! both fetch do not invalidate each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::AppCredentials;
use crate::error::Error;
use crate::store::wechat_tokens::WechatTokenCache;
use crate::wechat::{self, WechatError};

/// The access_tokens, fetched where no node has one.
pub(super) struct WechatTokens {
    cache: WechatTokenCache,
    wechat: wechat::Client,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl WechatTokens {
    pub(super) fn new(cache: WechatTokenCache, wechat: wechat::Client) -> Self {
        WechatTokens {
            cache,
            wechat,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The current token, fetched where no node has one.
    pub(super) async fn get(&self, app: &AppCredentials) -> Result<String, Error> {
        if let Some(token) = self.cache.get(&app.appid).await? {
            return Ok(token);
        }
        self.fetch(app, None).await
    }

    /// A token other than `stale`, which WeChat just refused (40001, 42001).
    pub(super) async fn replace(&self, app: &AppCredentials, stale: &str) -> Result<String, Error> {
        if self.cache.get(&app.appid).await?.as_deref() == Some(stale) {
            self.cache.forget(&app.appid).await?;
        }
        self.fetch(app, Some(stale)).await
    }

    /// The cached token where it is not `stale`.
    async fn fresh(&self, appid: &str, stale: Option<&str>) -> Result<Option<String>, Error> {
        let token = self.cache.get(appid).await?;
        Ok(token.filter(|t| Some(t.as_str()) != stale))
    }

    async fn fetch(&self, app: &AppCredentials, stale: Option<&str>) -> Result<String, Error> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(app.appid.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        // Another task may have fetched while this one waited.
        if let Some(token) = self.fresh(&app.appid, stale).await? {
            return Ok(token);
        }
        if !self.cache.lock(&app.appid).await? {
            // Another node is fetching: wait for its token a little, then fetch regardless.
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(token) = self.fresh(&app.appid, stale).await? {
                    return Ok(token);
                }
            }
        }
        let result = self.fetch_from_wechat(app, stale).await;
        self.cache.unlock(&app.appid).await?;
        let fresh = result?;
        let ttl = Duration::from_secs(fresh.expires_in.saturating_sub(60).max(1));
        self.cache.put(&app.appid, &fresh.access_token, ttl).await?;
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
            tracing::warn!(
                appid = %app.appid,
                "access_token refused but still current; forcing a refresh"
            );
            return self
                .wechat
                .stable_token(&app.appid, &app.secret, true)
                .await;
        }
        Ok(token)
    }
}
