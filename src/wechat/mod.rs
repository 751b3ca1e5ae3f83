//! WeChat's server APIs as this server calls them: the HTTP client, the open data crypto, and
//! what WeChat's errcodes mean. This room imports no other room of ours; what it returns is
//! plain data and `WechatError`.

pub mod client;
pub mod crypto;
pub mod errcode;

pub use client::{AccessToken, Client, Code2Session, OauthToken, PhoneInfo, WebUserInfo};
pub use errcode::WechatError;
