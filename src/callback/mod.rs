//! Callback rules that need no socket and no store: number validation, the caller's menu,
//! and the question put to a caller whose number already has a callback pending.
//!
//! The engine drives these with what FreeSWITCH reports and persists what they decide.

pub mod menu;
pub mod number;
pub mod repeat;

pub use menu::{
    CallbackMenu, Input, KeysWanted, MenuOutcome, MenuSettings, NumberSource, Prompt,
    RequestResult, Step, CHOICE,
};
pub use number::{DialingPolicy, NumberRejected, NumberRules};
pub use repeat::{RepeatChoice, RepeatMenu, RepeatStep};
