//! JSON Web Tokens signed with ES256 (ECDSA on P-256 with SHA-256, RFC 7518 §3.4), and the
//! public keys as a JWK Set. The ECDSA is `ring`'s (already here for TLS, and several times
//! faster than a portable implementation); this module only frames it as JWS compact
//! serialization (RFC 7515): `base64url(header).base64url(claims).base64url(r||s)`. No I/O and
//! nothing else of ours: `accounts` decides what to sign and keeps the keys.

use std::fmt;

use std::sync::Arc;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

/// Why a token was refused; the cause is for logs only (a client learns only "invalid").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("the header is not ES256 with a kid")]
    Header,
    #[error("no such key")]
    UnknownKey,
    #[error("the signature does not verify")]
    Signature,
    #[error("the claims do not parse")]
    Claims,
    #[error("a key does not parse")]
    Key,
}

/// A signing key: its id and the P-256 key pair.
#[derive(Clone)]
pub struct KeyPair {
    pub kid: String,
    pkcs8: Arc<Vec<u8>>,
    pair: Arc<EcdsaKeyPair>,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The header every token carries.
#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

impl KeyPair {
    /// A new key pair from the OS's random numbers.
    pub fn generate(kid: String) -> Result<KeyPair, JoseError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| JoseError::Key)?;
        KeyPair::from_pkcs8(kid, doc.as_ref())
    }

    /// A key pair from its PKCS#8 DER.
    pub fn from_pkcs8(kid: String, der: &[u8]) -> Result<KeyPair, JoseError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map_err(|_| JoseError::Key)?;
        Ok(KeyPair {
            kid,
            pkcs8: Arc::new(der.to_vec()),
            pair: Arc::new(pair),
        })
    }

    /// The private key as PKCS#8 DER (to be sealed before it is stored).
    pub fn to_pkcs8(&self) -> Vec<u8> {
        self.pkcs8.to_vec()
    }

    /// The public half, for verifying and for the JWK Set.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            kid: self.kid.clone(),
            point: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// `claims` signed as a JWT of type `typ` (`at+jwt` for access tokens).
    pub fn sign<C: Serialize>(&self, typ: &str, claims: &C) -> String {
        let header = Header {
            alg: "ES256".into(),
            typ: typ.into(),
            kid: self.kid.clone(),
        };
        let mut token = part(&header);
        token.push('.');
        token.push_str(&part(claims));
        let signature = self
            .pair
            .sign(&SystemRandom::new(), token.as_bytes())
            .expect("P-256 signing fails only without randomness");
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        token
    }
}

fn part<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("claims always serialize"))
}

/// A public key that verifies tokens: an uncompressed P-256 point (`04 || x || y`).
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub kid: String,
    point: Vec<u8>,
}

impl PublicKey {
    /// The key as a JWK (RFC 7517), with its `kid`, `use` and `alg`.
    pub fn jwk(&self) -> Value {
        let (x, y) = self.point[1..].split_at(32);
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }

    /// A public key from the JWK `jwk` makes.
    pub fn from_jwk(jwk: &Value) -> Result<PublicKey, JoseError> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str).ok_or(JoseError::Key);
        if text("kty")? != "EC" || text("crv")? != "P-256" {
            return Err(JoseError::Key);
        }
        let coordinate = |name: &str| {
            let bytes = URL_SAFE_NO_PAD
                .decode(text(name)?)
                .map_err(|_| JoseError::Key)?;
            (bytes.len() == 32).then_some(bytes).ok_or(JoseError::Key)
        };
        let mut point = vec![4u8];
        point.extend(coordinate("x")?);
        point.extend(coordinate("y")?);
        Ok(PublicKey {
            kid: text("kid")?.to_string(),
            point,
        })
    }

    fn verifies(&self, signed: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.point)
            .verify(signed, signature)
            .is_ok()
    }
}

/// The `kid` of a token's header, where it is an ES256 token of type `typ`.
pub fn kid_of(token: &str, typ: &str) -> Result<String, JoseError> {
    let header = token.split('.').next().ok_or(JoseError::Malformed)?;
    let header: Header = decode_part(header).map_err(|_| JoseError::Header)?;
    if header.alg != "ES256" || !header.typ.eq_ignore_ascii_case(typ) {
        return Err(JoseError::Header);
    }
    Ok(header.kid)
}

fn decode_part<T: DeserializeOwned>(text: &str) -> Result<T, JoseError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JoseError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JoseError::Claims)
}

/// The claims of a token of type `typ` whose signature one of `keys` verifies. Expiry and
/// audience are the caller's to check: this only says who signed what.
pub fn verify<C: DeserializeOwned>(
    token: &str,
    typ: &str,
    keys: &[PublicKey],
) -> Result<C, JoseError> {
    let kid = kid_of(token, typ)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(JoseError::UnknownKey)?;
    let (signed, signature) = token.rsplit_once('.').ok_or(JoseError::Malformed)?;
    let (_, claims) = signed.split_once('.').ok_or(JoseError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JoseError::Signature)?;
    if !key.verifies(signed.as_bytes(), &signature) {
        return Err(JoseError::Signature);
    }
    decode_part(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let pair = KeyPair::generate("k1".into()).unwrap();
        let token = pair.sign("at+jwt", &serde_json::json!({"sub": "u1"}));
        let keys = [pair.public()];
        let claims: Value = verify(&token, "at+jwt", &keys).unwrap();
        assert_eq!(claims["sub"], "u1");

        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = format!("{head}.{}.{sig}", part(&serde_json::json!({"sub": "u2"})));
        assert_eq!(
            verify::<Value>(&forged, "at+jwt", &keys).unwrap_err(),
            JoseError::Signature
        );
        let none = format!(
            "{}.{}.",
            part(&serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": "k1"})),
            part(&serde_json::json!({"sub": "u1"}))
        );
        assert_eq!(
            verify::<Value>(&none, "at+jwt", &keys).unwrap_err(),
            JoseError::Header
        );
        let other = KeyPair::generate("k1".into()).unwrap();
        assert_eq!(
            verify::<Value>(&token, "at+jwt", &[other.public()]).unwrap_err(),
            JoseError::Signature
        );
        assert_eq!(
            verify::<Value>(&token, "JWT", &keys).unwrap_err(),
            JoseError::Header
        );
    }

    #[test]
    fn keys_survive_their_stored_forms() {
        let pair = KeyPair::generate("k2".into()).unwrap();
        let again = KeyPair::from_pkcs8("k2".into(), &pair.to_pkcs8()).unwrap();
        let token = again.sign("at+jwt", &serde_json::json!({"sub": "u"}));
        let public = PublicKey::from_jwk(&pair.public().jwk()).unwrap();
        assert!(verify::<Value>(&token, "at+jwt", &[public]).is_ok());
        let jwk = pair.public().jwk();
        assert!(jwk.get("d").is_none(), "public keys only");
        assert!(!format!("{pair:?}").contains(&URL_SAFE_NO_PAD.encode(pair.to_pkcs8())));
    }
}
