//! Access tokens for the business's own services: JWTs (RFC 9068 profile, ES256) that say who a
//! session's user is, signed with keys every node shares (`store::signing_keys`) and published
//! as a JWK Set. Each node holds the keys in memory and reads them again every
//! `RELOAD` (and at once when a token names a key it does not know), so a rotation is seen by
//! every node within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Tokens;
use crate::domain::{now, Session, SessionId, User};
use crate::error::{Error, Result};
use crate::jose::{self, KeyPair, PublicKey};
use crate::store::signing_keys::{SigningKeys, StoredKey};

/// How often a node reads the keys again.
const RELOAD: Duration = Duration::from_secs(15);
/// How soon after a reload a token of an unknown key may cause another.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);
/// How many verified access tokens a node remembers (a few hundred bytes each), so that a token
/// a service sends again and again is checked by its signature once.
const VERIFIED: usize = 20_000;
/// The JWT type of access tokens (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";

/// The claims of an access token (RFC 9068 §2.2, with WeChat's ids where there are any).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub sid: String,
    #[serde(flatten)]
    pub wechat: WechatIds,
}

/// The WeChat ids of a session made by a WeChat identity; each left out where unknown.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct WechatIds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
}

impl WechatIds {
    /// The ids of the identity a session of `user` signs in.
    pub fn of(session: &Session, user: &User) -> WechatIds {
        let identity = match (&session.appid, &session.openid) {
            (Some(a), Some(o)) => user.identity(a, o),
            _ => None,
        };
        WechatIds {
            openid: identity.map(|i| i.openid.clone()),
            appid: identity.map(|i| i.appid.clone()),
            unionid: identity.and_then(|i| i.unionid.clone()),
        }
    }
}

/// A new access token and the seconds it lives.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
}

/// The keys as a node holds them.
struct Ring {
    signer: Option<KeyPair>,
    published: Vec<PublicKey>,
    loaded: Instant,
}

/// Issues and verifies access tokens.
pub struct AccessTokens {
    store: SigningKeys,
    settings: Tokens,
    ring: RwLock<Option<Arc<Ring>>>,
    reloading: tokio::sync::Mutex<()>,
    /// Claims of tokens whose signature verified, by the token's SHA-256. Emptied when full.
    verified: Mutex<HashMap<[u8; 32], AccessClaims>>,
}

/// The claim `client_id` of a session: the app it was made with, or `wxlogin`.
pub fn client_id(session: &Session) -> String {
    session.appid.clone().unwrap_or_else(|| "wxlogin".into())
}

/// The keys published at `now` and the one that signs, from every stored key (oldest signer
/// first): a key signs from its `signs_from` until a newer key signs, and stays published until
/// the last token it signed has expired (`ttl` later).
fn arrange(keys: &[StoredKey], now: i64, ttl: i64) -> (Option<usize>, Vec<usize>) {
    let signing: Vec<usize> = (0..keys.len())
        .filter(|&i| keys[i].signs_from <= now)
        .collect();
    let signer = signing
        .iter()
        .rev()
        .find(|&&i| keys[i].private_key.is_some())
        .copied();
    let published = (0..keys.len())
        .filter(|&i| {
            // Superseded at the next key that signs now.
            let next = signing
                .iter()
                .find(|&&j| j > i)
                .map(|&j| keys[j].signs_from);
            next.is_none_or(|at| at + ttl > now)
        })
        .collect();
    (signer, published)
}

impl AccessTokens {
    pub fn new(store: SigningKeys, settings: Tokens) -> AccessTokens {
        AccessTokens {
            store,
            settings,
            ring: RwLock::new(None),
            reloading: tokio::sync::Mutex::new(()),
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &Tokens {
        &self.settings
    }

    fn current(&self) -> Option<Arc<Ring>> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The keys, read again where they are older than `max_age`.
    async fn ring(&self, max_age: Duration) -> Result<Arc<Ring>> {
        if let Some(ring) = self.current().filter(|r| r.loaded.elapsed() < max_age) {
            return Ok(ring);
        }
        let _one = self.reloading.lock().await;
        if let Some(ring) = self.current().filter(|r| r.loaded.elapsed() < max_age) {
            return Ok(ring);
        }
        let ring = Arc::new(self.load().await?);
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Some(ring.clone());
        Ok(ring)
    }

    async fn load(&self) -> Result<Ring> {
        let ttl = self.settings.access_token_ttl.as_secs() as i64;
        let mut keys = self.store.all().await?;
        if arrange(&keys, now(), ttl).0.is_none() {
            // No key signs yet (a new database): one that signs at once.
            self.add_key(now()).await?;
            keys = self.store.all().await?;
        }
        let (signer, published) = arrange(&keys, now(), ttl);
        let signer = signer.and_then(|i| {
            let key = &keys[i];
            KeyPair::from_pkcs8(key.kid.clone(), key.private_key.as_deref()?).ok()
        });
        let published = published
            .into_iter()
            .filter_map(|i| {
                let jwk: Value = serde_json::from_str(&keys[i].public_jwk).ok()?;
                PublicKey::from_jwk(&jwk).ok()
            })
            .collect();
        Ok(Ring {
            signer,
            published,
            loaded: Instant::now(),
        })
    }

    /// Adds a key that signs from `signs_from` (and after every key there is, so that the
    /// newest key is always the one that signs); its kid.
    pub async fn add_key(&self, signs_from: i64) -> Result<String> {
        let created_at = now();
        let latest = self.store.all().await?.iter().map(|k| k.signs_from).max();
        let signs_from = latest.map_or(signs_from, |l| signs_from.max(l + 1));
        let kid = format!(
            "{}-{}",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .get(..10)
                .unwrap_or("key"),
            hex::encode(rand::random::<[u8; 4]>())
        );
        let pair = KeyPair::generate(kid.clone()).map_err(Error::unavailable)?;
        let private_key = pair.to_pkcs8();
        let stored = StoredKey {
            kid: kid.clone(),
            private_key: None,
            public_jwk: pair.public().jwk().to_string(),
            created_at,
            signs_from,
        };
        self.store.insert(&stored, &private_key).await?;
        tracing::info!(kid = %kid, signs_from, "signing key added");
        Ok(kid)
    }

    /// A new access token for a session of `user`.
    pub async fn issue(&self, id: &SessionId, session: &Session, user: &User) -> Result<Issued> {
        let ring = self.ring(RELOAD).await?;
        let Some(signer) = &ring.signer else {
            return Err(Error::unavailable(
                "no signing key opens with the sealing keys",
            ));
        };
        let iat = now();
        let ttl = self.settings.access_token_ttl.as_secs();
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: user.id.clone(),
            aud: self.settings.audience.clone(),
            exp: iat + ttl as i64,
            iat,
            jti: uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .simple()
                .to_string(),
            client_id: client_id(session),
            sid: id.to_text(),
            wechat: WechatIds::of(session, user),
        };
        Ok(Issued {
            token: signer.sign(TYP, &claims),
            expires_in: ttl,
        })
    }

    /// The claims of one of our access tokens, signed by a published key, for this issuer and
    /// audience; `expired_too` accepts one past its `exp` (revocation). None for anything else.
    pub async fn verify(&self, token: &str, expired_too: bool) -> Result<Option<AccessClaims>> {
        use sha2::{Digest, Sha256};
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered = {
            let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            verified.get(&digest).cloned()
        };
        let claims = match remembered {
            Some(claims) => claims,
            None => {
                let Some(claims) = self.verify_signature(token).await? else {
                    return Ok(None);
                };
                let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                if verified.len() >= VERIFIED {
                    verified.clear();
                }
                verified.insert(digest, claims.clone());
                claims
            }
        };
        let fresh = expired_too || claims.exp > now();
        let ours = claims.iss == self.settings.issuer && claims.aud == self.settings.audience;
        Ok((fresh && ours).then_some(claims))
    }

    /// The claims of a token that one of the published keys signed.
    async fn verify_signature(&self, token: &str) -> Result<Option<AccessClaims>> {
        let ring = self.ring(RELOAD).await?;
        let mut verified = jose::verify::<AccessClaims>(token, TYP, &ring.published);
        if matches!(verified, Err(jose::JoseError::UnknownKey)) {
            // Perhaps a key another node added since this one read them.
            let ring = self.ring(RELOAD_AT_MOST_EVERY).await?;
            verified = jose::verify(token, TYP, &ring.published);
        }
        Ok(verified.ok())
    }

    /// The JWK Set: every published public key.
    pub async fn jwks(&self) -> Result<Value> {
        let ring = self.ring(RELOAD).await?;
        let keys: Vec<Value> = ring.published.iter().map(PublicKey::jwk).collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// Every stored key with its state at `now`, for `wxlogin keys list`.
    pub async fn list(&self) -> Result<Vec<KeyState>> {
        let keys = self.store.all().await?;
        let ttl = self.settings.access_token_ttl.as_secs() as i64;
        let t = now();
        let (signer, published) = arrange(&keys, t, ttl);
        Ok(keys
            .iter()
            .enumerate()
            .map(|(i, k)| KeyState {
                kid: k.kid.clone(),
                state: if Some(i) == signer {
                    "signing"
                } else if k.signs_from > t {
                    "published, signs later"
                } else if published.contains(&i) {
                    "retired, still published"
                } else {
                    "retired"
                },
                created_at: k.created_at,
                signs_from: k.signs_from,
            })
            .collect())
    }
}

/// A key as `wxlogin keys list` shows it: no key material.
#[derive(Debug)]
pub struct KeyState {
    pub kid: String,
    pub state: &'static str,
    pub created_at: i64,
    pub signs_from: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, signs_from: i64, private: bool) -> StoredKey {
        StoredKey {
            kid: kid.into(),
            private_key: private.then(Vec::new),
            public_jwk: String::new(),
            created_at: signs_from,
            signs_from,
        }
    }

    #[test]
    fn the_newest_key_signs_and_a_retired_one_stays_published_for_a_ttl() {
        let keys = [
            key("a", 0, true),
            key("b", 1000, true),
            key("c", 5000, true),
        ];
        // At 1500: b signs; a was superseded at 1000 and its tokens live until 1900.
        assert_eq!(arrange(&keys, 1500, 900), (Some(1), vec![0, 1, 2]));
        // At 2000: a's last token has expired.
        assert_eq!(arrange(&keys, 2000, 900), (Some(1), vec![1, 2]));
        // At 5000: c signs; b stays until 5900.
        assert_eq!(arrange(&keys, 5000, 900), (Some(2), vec![1, 2]));
        // A key this node cannot open does not sign; the one before it does.
        let keys = [key("a", 0, true), key("b", 1000, false)];
        assert_eq!(arrange(&keys, 1500, 900), (Some(0), vec![0, 1]));
    }
}
