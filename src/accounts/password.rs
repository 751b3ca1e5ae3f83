//! Usernames, passwords and argon2id.
//!
//! Hashing runs on the blocking pool, under a semaphore sized to the cores, so a burst of
//! sign-ins queues instead of starving the async workers. An unknown username is checked against
//! a dummy hash, so that it costs the same time as a wrong password and answers the same.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// OWASP's argon2id settings: 19 MiB, two passes, one lane.
fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

static PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    Arc::new(Semaphore::new(cores))
});

/// A hash of a password nobody knows, verified in place of an unknown user's.
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(uuid::Uuid::new_v4().as_bytes(), &salt)
        .expect("hashing a random password")
        .to_string()
});

/// A username: 3 to 32 letters, digits, `_`, `.` and `-`.
pub fn check_username(username: &str) -> Result<()> {
    let ok = (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "`username` must be 3 to 32 characters: letters, digits, `_`, `.` and `-`.",
        ))
    }
}

/// A password: 8 to 128 characters.
pub fn check_password(password: &SecretString) -> Result<()> {
    let n = password.expose_secret().chars().count();
    if (8..=128).contains(&n) {
        Ok(())
    } else {
        Err(Error::invalid("`password` must be 8 to 128 characters."))
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _permit = PERMITS
        .clone()
        .acquire_owned()
        .await
        .map_err(Error::unavailable)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::unavailable)
}

/// The argon2id PHC string of a password.
pub async fn hash(password: SecretString) -> Result<String> {
    blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await?
    .map_err(Error::unavailable)
}

/// Whether `password` matches `hash`; `None` (no such user) checks a dummy hash and is false.
pub async fn verify(password: SecretString, hash: Option<String>) -> Result<bool> {
    blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY.clone());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        let matches = argon2()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong horse!".into(), Some(h)).await.unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }

    #[test]
    fn usernames_and_passwords_follow_the_contract() {
        assert!(check_username("al_ice.b-1").is_ok());
        for bad in ["ab", "a b c", "ünï", &"x".repeat(33)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
        assert!(check_password(&"12345678".into()).is_ok());
        assert!(check_password(&"1234567".into()).is_err());
        assert!(check_password(&"x".repeat(129).into()).is_err());
    }
}
