//! The tags callbackd reads on queue calls and puts on the calls it places: which queue and
//! line a caller is in, and whose entry, agent and daemon a leg belongs to.
//!
//! A switch carries them with the call (FreeSWITCH as channel variables, echoed on every
//! event), which is how a restarted daemon finds its calls again.

use super::{VarName, VarValue};

/// The dialplan sets it on a queue call: the queue the caller waits in.
pub const QUEUE: &str = "callbackd_queue";
/// The dialplan sets it on a queue call: the line the caller dialed.
pub const LINE: &str = "callbackd_line";
/// On the legs callbackd places: `agent` or `customer`.
pub const ROLE: &str = "callbackd_role";
/// The queue of the entry a leg was placed for.
pub const ENTRY_QUEUE: &str = "callbackd_entry_queue";
/// The entry a leg was placed for.
pub const ENTRY: &str = "callbackd_entry";
/// The agent of a leg.
pub const AGENT: &str = "callbackd_agent";
/// The daemon that placed a leg, so that only it (or its next life, after a restart) picks
/// the leg up again.
pub const DAEMON: &str = "callbackd_daemon";

/// The tag `name` (one of this module's constants) as a switch variable name.
pub fn name(name: &'static str) -> VarName {
    VarName::new(name).expect("tag names are valid variable names")
}

/// A tag for an originate, from one of this module's names and a validated id.
pub fn tag(tag: &'static str, value: &str) -> (VarName, VarValue) {
    (
        name(tag),
        VarValue::new(value).expect("ids are valid variable values"),
    )
}
