//! Sealing what the key-value store holds: session_keys (inside sessions), bind tickets,
//! replayed login answers, WeChat access_tokens. AES-256-GCM from the `aes-gcm` crate, with the
//! storage key as associated data so a sealed value cannot be moved to another key.
//!
//! A sealed value is `[key id][12-byte nonce][ciphertext + tag]`. The first configured key seals;
//! all of them open, so keys rotate by putting a new key first and keeping the old one until the
//! values it sealed have expired. Without keys, values are stored as `[0][plain]` (the in-process
//! store, or a warned-about Redis).

use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::{engine::general_purpose::STANDARD, Engine};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The keys that seal and open values.
#[derive(Clone, Default)]
pub struct Sealer {
    keys: Arc<Vec<(u8, Aes256Gcm)>>,
    /// The key that names counters (`keys::rate`, `keys::password_*`), derived from the sealing
    /// key, so that a key name holds no IP and no hash of a username that a dictionary reverses.
    /// Zero without sealing keys.
    name_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u8> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("Sealer").field("key_ids", &ids).finish()
    }
}

impl Sealer {
    /// Reads `id:base64-of-32-bytes` entries, comma-separated; the first seals. Ids are 1..=255.
    pub fn parse(spec: &SecretString) -> Result<Sealer, String> {
        let mut keys = Vec::new();
        let mut name_key = [0; 32];
        for entry in spec
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (id, key) = entry.split_once(':').ok_or("each key is `id:base64`")?;
            let id: u8 = id
                .parse()
                .ok()
                .filter(|&i| i > 0)
                .ok_or("a key id is a number from 1 to 255")?;
            let key = STANDARD
                .decode(key)
                .ok()
                .filter(|k| k.len() == 32)
                .ok_or("a key is 32 bytes in base64")?;
            if keys.is_empty() {
                name_key = Sha256::new()
                    .chain_update(b"wxlogin key names\0")
                    .chain_update(&key)
                    .finalize()
                    .into();
            }
            if keys.iter().any(|(other, _)| *other == id) {
                return Err(format!("key id {id} is given twice"));
            }
            keys.push((
                id,
                Aes256Gcm::new_from_slice(&key).map_err(|e| e.to_string())?,
            ));
        }
        Ok(Sealer {
            keys: Arc::new(keys),
            name_key,
        })
    }

    /// The key that names counters (see `keys`).
    pub fn name_key(&self) -> &[u8; 32] {
        &self.name_key
    }

    pub fn is_sealing(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Seals `plain` for storage under `key`.
    pub fn seal(&self, key: &str, plain: &[u8]) -> Vec<u8> {
        let Some((id, cipher)) = self.keys.first() else {
            let mut out = Vec::with_capacity(plain.len() + 1);
            out.push(0);
            out.extend_from_slice(plain);
            return out;
        };
        // A random 96-bit nonce from the thread's CSPRNG (no syscall per seal).
        let nonce = Aes256Gcm::generate_nonce(&mut rand::thread_rng());
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: key.as_bytes(),
                },
            )
            .expect("AES-GCM seals any length we store");
        let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
        out.push(*id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value stored under `key`; None when it was not sealed by one of our keys for that
    /// key (or is plain while sealing is on).
    pub fn open(&self, key: &str, bytes: &[u8]) -> Option<Vec<u8>> {
        let (&id, rest) = bytes.split_first()?;
        if id == 0 {
            return (!self.is_sealing()).then(|| rest.to_vec());
        }
        let (_, cipher) = self.keys.iter().find(|(k, _)| *k == id)?;
        if rest.len() < 12 {
            return None;
        }
        let (nonce, sealed) = rest.split_at(12);
        cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: sealed,
                    aad: key.as_bytes(),
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn sealed_values_open_only_under_their_key_and_with_a_known_key() {
        let s = Sealer::parse(&format!("2:{},1:{}", key(2), key(1)).into()).unwrap();
        let sealed = s.seal("sess:a", b"session_key");
        assert_eq!(sealed[0], 2);
        assert!(!sealed.windows(11).any(|w| w == b"session_key"));
        assert_eq!(s.open("sess:a", &sealed).unwrap(), b"session_key");
        assert!(
            s.open("sess:b", &sealed).is_none(),
            "bound to its storage key"
        );

        // Rotation: the old key still opens what it sealed; a sealer without it does not.
        let old = Sealer::parse(&format!("1:{}", key(1)).into()).unwrap();
        let by_old = old.seal("k", b"v");
        assert_eq!(s.open("k", &by_old).unwrap(), b"v");
        let new_only = Sealer::parse(&format!("2:{}", key(2)).into()).unwrap();
        assert!(new_only.open("k", &by_old).is_none());
        // Plain values are refused once sealing is on.
        assert!(s.open("k", &Sealer::default().seal("k", b"v")).is_none());
        assert_eq!(
            Sealer::default()
                .open("k", &Sealer::default().seal("k", b"v"))
                .unwrap(),
            b"v"
        );
    }

    #[test]
    fn malformed_specs_are_refused() {
        for bad in [
            "x",
            "0:AAAA",
            "1:AAAA",
            &format!("1:{},1:{}", key(1), key(2)),
        ] {
            assert!(Sealer::parse(&bad.to_string().into()).is_err(), "{bad}");
        }
        assert!(!format!(
            "{:?}",
            Sealer::parse(&format!("7:{}", key(7)).into()).unwrap()
        )
        .contains(&key(7)));
    }
}
