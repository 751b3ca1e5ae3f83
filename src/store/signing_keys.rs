//! The keys that sign access tokens, in SQL so that every node signs with the same ones. The
//! private key is sealed (`seal`, under `signing_key:` and its kid) where sealing keys are set.

use base64::{engine::general_purpose::STANDARD, Engine};
use sqlx::{AnyPool, Row};

use super::seal::Sealer;
use super::users::Users;
use super::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// A signing key as stored.
pub struct StoredKey {
    pub kid: String,
    /// PKCS#8 DER of the private key; None where it does not open (sealed by a key this node
    /// does not have): such a key is still published, never used to sign.
    pub private_key: Option<Vec<u8>>,
    /// The public JWK, as the JWKS publishes it.
    pub public_jwk: String,
    pub created_at: i64,
    pub signs_from: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("signs_from", &self.signs_from)
            .finish_non_exhaustive()
    }
}

/// The signing keys in SQL.
#[derive(Clone)]
pub struct SigningKeys {
    pool: AnyPool,
    sealer: Sealer,
}

fn aad(kid: &str) -> String {
    format!("signing_key:{kid}")
}

impl SigningKeys {
    pub fn new(users: &Users, sealer: Sealer) -> SigningKeys {
        SigningKeys {
            pool: users.pool.clone(),
            sealer,
        }
    }

    /// Every key, oldest signer first.
    pub async fn all(&self) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT kid, private_key, public_jwk, created_at, signs_from FROM signing_keys \
             ORDER BY signs_from, created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let kid: String = r.get(0);
                let sealed: String = r.get(1);
                let private_key = STANDARD
                    .decode(sealed)
                    .ok()
                    .and_then(|b| self.sealer.open(&aad(&kid), &b));
                StoredKey {
                    private_key,
                    public_jwk: r.get(2),
                    created_at: r.get(3),
                    signs_from: r.get(4),
                    kid,
                }
            })
            .collect())
    }

    /// Stores a new key, its private half sealed.
    pub async fn insert(&self, key: &StoredKey, private_key: &[u8]) -> Result<()> {
        let sealed = STANDARD.encode(self.sealer.seal(&aad(&key.kid), private_key));
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_key, public_jwk, created_at, signs_from) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.kid)
        .bind(sealed)
        .bind(&key.public_jwk)
        .bind(key.created_at)
        .bind(key.signs_from)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
