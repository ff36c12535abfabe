//! callbackd: a queue-callback ("virtual hold") daemon for FreeSWITCH.
//!
//! `esl` speaks the event socket; `switch` turns it into the typed PBX operations the daemon uses;
//! `config` reads the operator's file, `queue` holds the domain rules
//! and `store` keeps their state in Redis; `values` holds the checked values all of them share.

pub mod callback;
pub mod cli;
pub mod config;
pub mod engine;
pub mod esl;
pub mod prompts;
pub mod queue;
pub mod sim;
pub mod store;
pub mod switch;
pub mod values;
