//! The words every room speaks: users, identities, sessions, tokens, and input parsed once at
//! the edge. No I/O and nothing else of ours here; `api` maps these to the wire, `store` keeps
//! them, `accounts` decides with them.

mod audit;
mod input;
mod phone;
mod session;
mod user;

pub use audit::{AuditEvent, AuditQuery};
pub use input::{
    AppId, CodeChallenge, CodeVerifier, Credentials, HttpUrl, IdempotencyKey, InvalidInput,
    Nickname, Password, Shaped, Username, WxCode,
};
pub use phone::{PhoneNumber, SmsCode};
pub use session::{Session, SessionId, Token};
pub use user::{
    now, now_ms, Clock, Created, Identity, Linked, Phone, ProfileChange, Provider, Unbound, User,
    WebProvider,
};
