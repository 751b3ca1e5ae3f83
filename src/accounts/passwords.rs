//! Passwords: argon2id, accounts made with a username, password sign-in and the lockout.
//!
//! Hashing runs on the blocking pool, under a semaphore sized to the cores, so a burst of
//! sign-ins queues instead of starving the async workers. An unknown username is checked against
//! a dummy hash, so that it costs the same time as a wrong password and answers the same.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use serde_json::json;

use super::binding::username_taken;
use super::{Accounts, SignedIn};
use crate::domain::{Credentials, Password, Session, User};
use crate::error::{Code, Error, Result};
use crate::store::StoreError;

/// Wrong passwords for one username within the lockout window that lock it for the window.
const LOCK_AFTER: i64 = 5;
/// The lockout window in seconds, for a `Retry-After` where the lock is not readable.
const LOCK_SECONDS: u64 = 900;

/// OWASP's argon2id settings: 19 MiB, two passes, one lane.
fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

/// The cores: hashes that run at once.
static CORES: LazyLock<usize> = LazyLock::new(|| {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
});

static PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(*CORES)));

/// A hash of a password nobody knows, verified in place of an unknown user's.
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(uuid::Uuid::new_v4().as_bytes(), &salt)
        .expect("hashing a random password")
        .to_string()
});

/// Hashes that may wait for a core, beyond the ones running: past them, 503 at once.
const QUEUE: usize = 16;
/// How long a hash may wait for a core before the request answers 503.
const QUEUE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);
/// Hashes running or waiting.
static ADMITTED: AtomicUsize = AtomicUsize::new(0);

/// One hash admitted to the queue, until it is done.
struct Admitted;

impl Drop for Admitted {
    fn drop(&mut self) {
        ADMITTED.fetch_sub(1, Ordering::SeqCst);
    }
}

fn overloaded() -> Error {
    let mut e = Error::new(
        Code::ServiceUnavailable,
        "The server is checking too many passwords at once: try again in a moment.",
    );
    e.retry_after = Some(1);
    e
}

/// Runs argon2 work on the blocking pool, one per core, with a bounded queue: unauthenticated
/// routes cannot pile up hashing work without end.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let capacity = QUEUE + *CORES;
    if ADMITTED.fetch_add(1, Ordering::SeqCst) >= capacity {
        ADMITTED.fetch_sub(1, Ordering::SeqCst);
        return Err(overloaded());
    }
    let _admitted = Admitted;
    let permit = tokio::time::timeout(QUEUE_DEADLINE, PERMITS.clone().acquire_owned())
        .await
        .map_err(|_| overloaded())?
        .map_err(Error::unavailable)?;
    let done = tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::unavailable);
    drop(permit);
    done
}

/// The argon2id PHC string of a password.
pub(super) async fn hash(password: Password) -> Result<String> {
    blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await?
    .map_err(Error::unavailable)
}

/// Whether `password` matches `hash`; `None` (no such user) checks a dummy hash and is false.
async fn verify(password: Password, hash: Option<String>) -> Result<bool> {
    blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY.clone());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        let matches = argon2()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
}

/// The one answer for an unknown username and a wrong password, so that neither the code nor
/// the message tells which usernames exist.
fn invalid_credentials() -> Error {
    Error::new(
        Code::InvalidCredentials,
        "The username or the password is wrong.",
    )
}

impl Accounts {
    /// A password being set must be at least `WXLOGIN_PASSWORD_MIN_LENGTH` characters (sign-in
    /// takes any stored one, so that accounts of an earlier rule still sign in).
    pub(super) fn check_new_password(&self, password: &Password) -> Result<()> {
        let min = self.inner.login.password_min_length;
        if password.expose().chars().count() < min {
            return Err(Error::invalid(format!(
                "A new password must be {min} to 128 characters."
            )));
        }
        Ok(())
    }

    /// `accounts`: a new account with a username and password.
    pub async fn register(&self, credentials: Credentials) -> Result<User> {
        self.check_new_password(&credentials.password)?;
        let users = &self.inner.stores.users;
        if users.password_of(&credentials.username).await?.is_some() {
            return Err(username_taken());
        }
        let hash = hash(credentials.password).await?;
        let id = users
            .create_account(&credentials.username, &hash)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => username_taken(),
                e => e.into(),
            })?;
        tracing::info!(user_id = %id, event = "account_created", "account created");
        self.audit("account_created", Some(&id), json!({}));
        self.user(&id).await
    }

    /// `auth/password`: signs in with a username and password.
    pub async fn password_login(&self, credentials: Credentials) -> Result<SignedIn> {
        let user_id = self.check_credentials(credentials).await?;
        self.start_session_by_id(&user_id, false, Session::password(&user_id))
            .await
    }

    /// Checks a username and password, with the lockout: the user id, or the one answer for
    /// every failure.
    pub(super) async fn check_credentials(&self, credentials: Credentials) -> Result<String> {
        let limits = &self.inner.stores.limits;
        let folded = credentials.username.folded();
        if let Some(left) = limits.locked_for(&folded).await? {
            tracing::info!(
                event = "sign_in_refused",
                reason = "account_locked",
                "sign-in refused"
            );
            self.audit("sign_in_refused", None, json!({"reason": "account_locked"}));
            return Err(account_locked(left));
        }
        // Counted before argon2 runs, so that concurrent guesses cannot outrun the limit: of
        // any number of them, at most LOCK_AFTER are verified.
        let attempt = limits.count_attempt(&folded).await?;
        if attempt > LOCK_AFTER {
            tracing::info!(
                event = "sign_in_refused",
                reason = "account_locked",
                "sign-in refused"
            );
            self.audit("sign_in_refused", None, json!({"reason": "account_locked"}));
            let left = limits.locked_for(&folded).await?;
            return Err(account_locked(left.unwrap_or(LOCK_SECONDS)));
        }
        let found = self
            .inner
            .stores
            .users
            .password_of(&credentials.username)
            .await?;
        let (user_id, hash) = match found {
            Some(c) => (Some(c.user_id), Some(c.password_hash)),
            None => (None, None),
        };
        if verify(credentials.password, hash).await? {
            if let Some(user_id) = user_id {
                limits.clear_attempts(&folded).await?;
                return Ok(user_id);
            }
        }
        let known = user_id.as_deref();
        self.audit(
            "sign_in_failed",
            known,
            json!({"reason": "invalid_credentials"}),
        );
        let user_id = known.unwrap_or("-");
        tracing::info!(
            user_id,
            event = "sign_in_failed",
            reason = "invalid_credentials",
            "wrong username or password"
        );
        if attempt == LOCK_AFTER {
            limits.lock(&folded).await?;
            self.audit("account_locked", known, json!({}));
            tracing::warn!(
                user_id,
                event = "account_locked",
                "an account was locked after {LOCK_AFTER} wrong passwords"
            );
        }
        Err(invalid_credentials())
    }
}

/// The answer while a username is locked, for `left` more seconds.
fn account_locked(left: u64) -> Error {
    let mut e = Error::new(
        Code::AccountLocked,
        format!(
            "Too many wrong passwords: this account is locked for {} more minutes.",
            left.div_ceil(60)
        ),
    );
    e.retry_after = Some(left.max(1));
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Shaped;

    fn password(text: &str) -> Password {
        Password::parse(text.into()).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let h = hash(password("correct horse")).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(password("correct horse"), Some(h.clone()))
            .await
            .unwrap());
        assert!(!verify(password("wrong horse!"), Some(h)).await.unwrap());
        assert!(!verify(password("anything at all"), None).await.unwrap());
    }
}
