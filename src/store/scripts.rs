//! The Lua scripts that make each state change one atomic step in Redis. Each touches the
//! keys of one hash slot only (one queue, or the agents), so they also run on Redis Cluster.
//!
//! Each script lives in its own file under `lua/`, opening with what it does, its KEYS and
//! ARGV and its replies; the helpers several of them share are preludes (`lua/prelude/`),
//! put in front of a script's body when it is loaded.

use redis::Script;

/// The source of `lua/<name>.lua`.
macro_rules! lua {
    ($name:literal) => {
        include_str!(concat!("lua/", $name, ".lua"))
    };
}

/// Comma-separated lists and hold-offs.
const SPLIT: &str = lua!("prelude/split");
/// Whether an agent is free to be offered an entry.
const FREE: &str = lua!("prelude/free");
/// The key layout and helpers of the callback scripts.
const CALLBACK: &str = lua!("prelude/callback");

pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) book_agents: Script,
    pub(crate) release_agents: Script,
    pub(crate) claim_entry: Script,
    pub(crate) withdraw_offer: Script,
    pub(crate) offer_failed: Script,
    pub(crate) agent_missed: Script,
    pub(crate) connect: Script,
    pub(crate) bridge_failed: Script,
    pub(crate) agent_answered: Script,
    pub(crate) close: Script,
    pub(crate) set_agent_state: Script,
    pub(crate) entries_in: Script,
    pub(crate) free_agents: Script,
    pub(crate) claim_timers: Script,
    pub(crate) complete_timer: Script,
    pub(crate) callback_request: Script,
    pub(crate) callback_decline: Script,
    pub(crate) callback_accept: Script,
    pub(crate) callback_dialing: Script,
    pub(crate) callback_answered: Script,
    pub(crate) callback_attempt_failed: Script,
    pub(crate) callback_retry_due: Script,
    pub(crate) callback_close: Script,
    pub(crate) callback_kept: Script,
    pub(crate) callback_canceled_by_caller: Script,
    pub(crate) callback_completed: Script,
    pub(crate) agent_released: Script,
    pub(crate) callback_offer_answered: Script,
    pub(crate) extend_booking: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with_split = |body: &str| Script::new(&format!("{SPLIT}{body}"));
        let with_free = |body: &str| Script::new(&format!("{FREE}{body}"));
        let callback = |body: &str| Script::new(&format!("{SPLIT}{CALLBACK}{body}"));
        Self {
            enqueue: Script::new(lua!("enqueue")),
            book_agents: with_free(lua!("book_agents")),
            release_agents: Script::new(lua!("release_agents")),
            claim_entry: with_split(lua!("claim_entry")),
            withdraw_offer: Script::new(lua!("withdraw_offer")),
            offer_failed: with_split(lua!("offer_failed")),
            agent_missed: Script::new(lua!("agent_missed")),
            connect: with_split(lua!("connect")),
            bridge_failed: Script::new(lua!("bridge_failed")),
            agent_answered: Script::new(lua!("agent_answered")),
            close: with_split(lua!("close")),
            set_agent_state: Script::new(lua!("set_agent_state")),
            entries_in: Script::new(lua!("entries_in")),
            free_agents: with_free(lua!("free_agents")),
            claim_timers: Script::new(lua!("claim_timers")),
            complete_timer: Script::new(lua!("complete_timer")),
            callback_request: callback(lua!("callback_request")),
            callback_decline: callback(lua!("callback_decline")),
            callback_accept: callback(lua!("callback_accept")),
            callback_dialing: callback(lua!("callback_dialing")),
            callback_answered: callback(lua!("callback_answered")),
            callback_attempt_failed: callback(lua!("callback_attempt_failed")),
            callback_retry_due: callback(lua!("callback_retry_due")),
            callback_close: callback(lua!("callback_close")),
            callback_kept: callback(lua!("callback_kept")),
            callback_canceled_by_caller: callback(lua!("callback_canceled_by_caller")),
            callback_completed: callback(lua!("callback_completed")),
            agent_released: Script::new(lua!("agent_released")),
            callback_offer_answered: callback(lua!("callback_offer_answered")),
            extend_booking: Script::new(lua!("extend_booking")),
        }
    }
}
