//! The one integration-test binary: the server against real Redis, real PostgreSQL and SQLite,
//! with WeChat played by the emulator.

mod abuse;
mod accounts;
mod admin;
mod app;
mod audit;
mod bursts;
mod cluster;
mod data;
mod emulator;
mod fuzz;
mod helpers;
mod login;
mod nodes;
mod ops;
mod outage;
mod sentinel;
mod sessions;
mod shutdown;
mod sms;
mod sms_aliyun;
mod tokens;
mod web;
mod web_guards;
mod web_phone;
