//! callbackd: a queue-callback ("virtual hold") daemon for FreeSWITCH.
//!
//! `esl` speaks the event socket; `switch` turns it into the typed PBX operations the daemon uses.

pub mod cli;
pub mod esl;
pub mod sim;
pub mod switch;
