//! Callback rules that need no socket and no store: number validation and the caller's menu.
//!
//! The engine drives these with what FreeSWITCH reports and persists what they decide.

pub mod menu;
pub mod number;

pub use menu::{
    CallbackMenu, Input, MenuOutcome, MenuSettings, NumberSource, Prompt, RequestResult, Step,
};
pub use number::{DialingPolicy, NumberRejected, NumberRules};
