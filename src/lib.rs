//! wxlogin: sign people in with WeChat.
//!
//! Rooms, from the edge inwards: `api` (HTTP, poem-openapi) → `accounts` (what login means) →
//! `store` (Redis and SQL) and `wechat` (WeChat's APIs); all of them speak `domain` (users,
//! sessions, input parsed once). `emulator` plays WeChat for tests and demos and shares no code
//! with `wechat`, so a client bug cannot hide behind the same bug in the fake. `cli` holds the
//! subcommands, `app` builds and runs a server (`slow_clients` bounds its connections'
//! patience), `config` reads its settings.

// Errors are the cold path and carry what the answer needs (message, WeChat's answer); boxing
// them would cost every caller a pointer chase for no measurable gain.
#![allow(clippy::result_large_err)]

pub mod accounts;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod emulator;
pub mod error;
pub mod jose;
pub mod readiness;
pub mod slow_clients;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod wechat;
