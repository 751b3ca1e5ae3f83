//! The keyspace: every key wxlogin keeps in Redis (or the in-process store), with its time to
//! live. Nothing else builds a key. Every key is under `WXLOGIN_REDIS_PREFIX` (added by `Kv`).
//!
//! | key | holds | lives |
//! |---|---|---|
//! | `sess:` token digest | a session (sealed) | `WXLOGIN_SESSION_TTL`, sliding |
//! | `usess:` hash of user id | the `sess:` keys of the user's sessions | the sessions' lifetime |
//! | `isess:` appid `:` openid | sessions of an identity (before 0.2) | until unbinding |
//! | `uc:u:` hash of user id | a cached user (sealed), or a lease | `USER_CACHE(_LEASE)` |
//! | `uc:i:` hash of appid, openid | the same, by identity | as above |
//! | `login:` hash of appid, code | a code's answer, for retries (sealed) | `LOGIN_REPLAY` |
//! | `bind:` hash of ticket | a login waiting for its account (sealed) | `BIND_TICKET` |
//! | `pbind:` hash of ticket | a web sign-in waiting for its phone (sealed) | `BIND_TICKET` |
//! | `oauth:` hash of state | a web sign-in at WeChat (sealed) | `WEB_STATE` |
//! | `ticket:` hash of ticket | a web sign-in's ticket (sealed) | `WEB_TICKET` |
//! | `webtok:` hash of appid, openid | WeChat's web tokens (sealed) | `WEB_TOKENS` |
//! | `wxtoken:` appid | an app's access_token (sealed) | WeChat's expiry less a minute |
//! | `wxtoken-lock:` appid | one node is fetching it | `WECHAT_TOKEN_LOCK` |
//! | `rl:` keyed hash of an IP (IPv6: its /64) | sign-in requests this minute | `RATE_WINDOW` |
//! | `pwf:` keyed hash of a username | wrong passwords | `LOCKOUT` |
//! | `pwl:` keyed hash of a username | the username is locked | `LOCKOUT` |
//! | `smsc:` keyed hash of a phone, purpose | the keyed hash of its SMS code | `SMS_CODE` |
//! | `smst:` keyed hash of a phone, purpose | tries of that code | `SMS_CODE` |
//! | `smsr:` keyed hash of a phone | a code was sent lately | `SMS_RESEND` |
//! | `smsd:` keyed hash of a phone, day | codes sent that day (Beijing time) | `SMS_DAY` |
//!
//! Secrets and personal ids are hashed (one helper, `sha256`), so a copy of Redis names no one
//! and holds nothing to sign in with. Two encodings of that hash are kept as the keys have
//! always been written, so that keys outlive an upgrade and nodes of two versions share them.
//! Client IPs and usernames, which a dictionary would recover from a plain hash, are named by
//! an HMAC under a key derived from the sealing key (`Sealer::name_key`); their counters live
//! minutes, so a new sealing key only starts them again.

use std::net::IpAddr;
use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::domain::SessionId;

/// How long a cached user lives.
pub const USER_CACHE: Duration = Duration::from_secs(300);
/// How long a reader may take between its lease and its store.
pub const USER_CACHE_LEASE: Duration = Duration::from_secs(2);
/// How long a login code's first answer is replayed to a retry of the same code.
pub const LOGIN_REPLAY: Duration = Duration::from_secs(60);
/// How long a bind ticket lives.
pub const BIND_TICKET: Duration = Duration::from_secs(600);
/// How long a web sign-in may stay at WeChat.
pub const WEB_STATE: Duration = Duration::from_secs(600);
/// How long a web sign-in's ticket lives.
pub const WEB_TICKET: Duration = Duration::from_secs(60);
/// WeChat's refresh_token lives 30 days; the web tokens are kept as long.
pub const WEB_TOKENS: Duration = Duration::from_secs(30 * 86_400);
/// How long one node may hold the right to fetch an access_token.
pub const WECHAT_TOKEN_LOCK: Duration = Duration::from_secs(10);
/// The window of the per-IP limit.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// The window in which wrong passwords count, and how long a lock lasts.
pub const LOCKOUT: Duration = Duration::from_secs(900);

/// How long an SMS code works.
pub const SMS_CODE: Duration = Duration::from_secs(300);
/// How long before another code may be sent to a phone.
pub const SMS_RESEND: Duration = Duration::from_secs(60);
/// How long a day's count of codes sent to a phone is kept (two days: the day is Beijing's).
pub const SMS_DAY: Duration = Duration::from_secs(2 * 86_400);

/// SHA-256 of the parts, one after the other: the one hash of the keyspace.
fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// `prefix` and the hash in hex (tickets, states, codes, usernames).
fn hex_key(prefix: &str, parts: &[&[u8]]) -> String {
    format!("{prefix}:{}", hex::encode(sha256(parts)))
}

/// `prefix` and 128 bits of the hash in base64url, where a million keys each carry it.
fn short_key(prefix: &str, bytes: &[u8]) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A session, by its id (its token's digest).
pub fn session(id: &SessionId) -> String {
    short_key("sess:", id.as_bytes())
}

/// That a session has decrypted data naming another openId than its own (to warn of it once).
pub fn session_foreign_data(id: &SessionId) -> String {
    short_key("sfd:", id.as_bytes())
}

/// The index of an identity's sessions that wxlogin before 0.2 kept.
pub fn legacy_identity_sessions(appid: &str, openid: &str) -> String {
    format!("isess:{appid}:{openid}")
}

/// The sessions of a user (their keys), so that deleting the user deletes them.
pub fn user_sessions(user_id: &str) -> String {
    let h = sha256(&[b"sessions\0", user_id.as_bytes()]);
    short_key("usess:", &h[..16])
}

/// The cached user of an id.
pub fn cached_user(user_id: &str) -> String {
    let h = sha256(&[user_id.as_bytes(), b"\0"]);
    short_key("uc:u:", &h[..16])
}

/// The cached user of an identity.
pub fn cached_identity(appid: &str, openid: &str) -> String {
    let h = sha256(&[appid.as_bytes(), b"\0", openid.as_bytes(), b"\0"]);
    short_key("uc:i:", &h[..16])
}

/// The answer of a login code, for its retries.
pub fn login_replay(appid: &str, code: &str) -> String {
    hex_key("login", &[appid.as_bytes(), b"\0", code.as_bytes()])
}

/// What a login replay keeps of its caller's `Idempotency-Key`: a hash, not the key.
pub fn caller_digest(idempotency_key: &str) -> String {
    hex::encode(sha256(&[b"idempotency\0", idempotency_key.as_bytes()]))
}

/// A bind ticket.
pub fn bind_ticket(ticket: &str) -> String {
    hex_key("bind", &[ticket.as_bytes()])
}

/// A web sign-in waiting for its phone.
pub fn phone_ticket(ticket: &str) -> String {
    hex_key("pbind", &[ticket.as_bytes()])
}

/// A web sign-in's `state`.
pub fn web_state(state: &str) -> String {
    hex_key("oauth", &[state.as_bytes()])
}

/// A web sign-in's ticket.
pub fn web_ticket(ticket: &str) -> String {
    hex_key("ticket", &[ticket.as_bytes()])
}

/// WeChat's web tokens of an identity.
pub fn web_tokens(appid: &str, openid: &str) -> String {
    hex_key("webtok", &[appid.as_bytes(), b"\0", openid.as_bytes()])
}

/// An app's access_token.
pub fn wechat_token(appid: &str) -> String {
    format!("wxtoken:{appid}")
}

/// The right to fetch an app's access_token.
pub fn wechat_token_lock(appid: &str) -> String {
    format!("wxtoken-lock:{appid}")
}

/// `prefix` and 128 bits of HMAC-SHA256 under `name_key`, in base64url.
fn keyed(prefix: &str, name_key: &[u8; 32], bytes: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(name_key).expect("HMAC takes any key");
    mac.update(bytes);
    short_key(prefix, &mac.finalize().into_bytes()[..16])
}

/// Sign-in requests of an IP in this window: an IPv4 address, or the /64 of an IPv6 one (a
/// client is given a /64 and can rotate within it).
pub fn rate(ip: IpAddr, name_key: &[u8; 32]) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => keyed("rl:4:", name_key, &v4.octets()),
        IpAddr::V6(v6) => keyed("rl:6:", name_key, &v6.octets()[..8]),
    }
}

/// Wrong passwords of a username (without regard to case).
pub fn password_failures(username_folded: &str, name_key: &[u8; 32]) -> String {
    keyed("pwf:", name_key, username_folded.as_bytes())
}

/// The lock of a username (without regard to case).
pub fn password_lock(username_folded: &str, name_key: &[u8; 32]) -> String {
    keyed("pwl:", name_key, username_folded.as_bytes())
}

/// The SMS code of a phone, for a purpose (`login` or `bind`): its keyed hash.
pub fn sms_code(phone: &str, purpose: &str, name_key: &[u8; 32]) -> String {
    keyed("smsc:", name_key, format!("{phone}\0{purpose}").as_bytes())
}

/// The tries of a phone's SMS code for a purpose.
pub fn sms_tries(phone: &str, purpose: &str, name_key: &[u8; 32]) -> String {
    keyed("smst:", name_key, format!("{phone}\0{purpose}").as_bytes())
}

/// A code was sent to a phone lately.
pub fn sms_resend(phone: &str, name_key: &[u8; 32]) -> String {
    keyed("smsr:", name_key, phone.as_bytes())
}

/// Codes sent to a phone on a day (days since 1970-01-01, Beijing time).
pub fn sms_day(phone: &str, day: i64, name_key: &[u8; 32]) -> String {
    keyed("smsd:", name_key, format!("{phone}\0{day}").as_bytes())
}

/// What is kept of an SMS code: HMAC-SHA256 under `name_key` of the phone, purpose and code.
pub fn sms_code_digest(phone: &str, purpose: &str, code: &str, name_key: &[u8; 32]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(name_key).expect("HMAC takes any key");
    mac.update(format!("sms-code\0{phone}\0{purpose}\0{code}").as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys as wxlogin 0.2 wrote them: a change here strands every session and counter.
    #[test]
    fn keys_are_what_earlier_versions_wrote() {
        assert_eq!(
            login_replay("wx1", "code"),
            format!("login:{}", hex::encode(Sha256::digest(b"wx1\0code")))
        );
        let mut h = Sha256::new();
        h.update(b"u1");
        h.update([0]);
        assert_eq!(
            cached_user("u1"),
            format!("uc:u:{}", URL_SAFE_NO_PAD.encode(&h.finalize()[..16]))
        );
        let t = crate::domain::Token::new();
        let digest = &Sha256::digest(t.reveal().parse::<uuid::Uuid>().unwrap().as_bytes())[..16];
        assert_eq!(
            session(&t.id()),
            format!("sess:{}", URL_SAFE_NO_PAD.encode(digest))
        );
    }

    #[test]
    fn counters_name_no_ip_and_no_username() {
        let (k1, k2) = ([1; 32], [2; 32]);
        let key = rate("203.0.113.9".parse().unwrap(), &k1);
        assert!(
            !key.contains("203.0.113") && key.starts_with("rl:4:"),
            "{key}"
        );
        assert_ne!(key, rate("203.0.113.9".parse().unwrap(), &k2));
        // An IPv4-mapped address is its IPv4 address; an IPv6 client is counted by its /64.
        assert_eq!(key, rate("::ffff:203.0.113.9".parse().unwrap(), &k1));
        let v6 = |s: &str| rate(s.parse().unwrap(), &k1);
        assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        let lock = password_lock("band", &k1);
        assert!(!lock.contains(&hex::encode(Sha256::digest(b"band"))));
        assert_ne!(lock, password_lock("band", &k2));
        assert_ne!(password_failures("band", &k1), password_lock("band", &k1));
    }
}
