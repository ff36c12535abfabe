//! The Lua scripts that make each state change one atomic step in Redis. Each touches the
//! keys of one hash slot only (one queue, or the agents), so they also run on Redis Cluster.
//!
//! Each script lives in its own file under `lua/`, opening with what it does, its KEYS and
//! ARGV and its replies; the helpers several of them share are preludes (`lua/prelude/`),
//! put in front of a script's body when it is loaded.

use redis::Script;

use super::records::{EVENT_KINDS, LUA_ENTRY_TIMERS};

/// The source of `lua/<name>.lua`.
macro_rules! lua {
    ($name:literal) => {
        include_str!(concat!("lua/", $name, ".lua"))
    };
}

/// Comma-separated lists and hold-offs.
const SPLIT: &str = lua!("prelude/split");
/// An agent's booking: whether they are free, booking and releasing them.
const BOOKING: &str = lua!("prelude/booking");
/// The key layout and helpers of the callback scripts.
const CALLBACK: &str = lua!("prelude/callback");

/// The names the scripts share with Rust, which defines them, as a Lua prelude: `TIMER`,
/// the start of each entry timer's member, and `OPENS_TICKET`, the events that carry
/// `ticket = 1` ([`super::EventKind::opens_ticket`]).
fn names() -> String {
    let timers: Vec<String> = LUA_ENTRY_TIMERS
        .iter()
        .map(|(name, kind)| format!("{name} = '{kind}:'"))
        .collect();
    let tickets: Vec<String> = EVENT_KINDS
        .into_iter()
        .filter(|k| k.opens_ticket())
        .map(|k| format!("{} = true", k.as_str()))
        .collect();
    format!(
        "local TIMER = {{{}}}\nlocal OPENS_TICKET = {{{}}}\n",
        timers.join(", "),
        tickets.join(", ")
    )
}

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
        let with_booking = |body: &str| Script::new(&format!("{BOOKING}{body}"));
        let names = names();
        let callback = |body: &str| Script::new(&format!("{SPLIT}{names}{CALLBACK}{body}"));
        Self {
            enqueue: Script::new(lua!("enqueue")),
            book_agents: with_booking(lua!("book_agents")),
            release_agents: with_booking(lua!("release_agents")),
            claim_entry: with_split(lua!("claim_entry")),
            withdraw_offer: Script::new(lua!("withdraw_offer")),
            offer_failed: with_split(lua!("offer_failed")),
            agent_missed: with_booking(lua!("agent_missed")),
            connect: with_split(lua!("connect")),
            bridge_failed: Script::new(lua!("bridge_failed")),
            agent_answered: with_booking(lua!("agent_answered")),
            close: with_split(lua!("close")),
            set_agent_state: Script::new(lua!("set_agent_state")),
            entries_in: Script::new(lua!("entries_in")),
            free_agents: with_booking(lua!("free_agents")),
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
            agent_released: with_booking(lua!("agent_released")),
            callback_offer_answered: callback(lua!("callback_offer_answered")),
            extend_booking: with_booking(lua!("extend_booking")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::queue::CloseReason;
    use crate::store::records::TIMER_KINDS;

    /// Every script and prelude, by file name.
    fn sources() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/lua");
        let mut out = Vec::new();
        for dir in [root.clone(), root.join("prelude")] {
            for file in std::fs::read_dir(&dir).unwrap() {
                let path = file.unwrap().path();
                if path.extension().is_some_and(|e| e == "lua") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path.display().to_string(), text));
                }
            }
        }
        assert!(out.len() > 30, "found only {} scripts", out.len());
        out
    }

    /// The code of a script, without its comments.
    fn code(text: &str) -> String {
        text.lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Each `'<word>'` that follows `marker` in the code.
    fn quoted_after(code: &str, marker: &str) -> Vec<String> {
        code.match_indices(marker)
            .filter_map(|(i, _)| {
                let rest = code[i + marker.len()..].strip_prefix('\'')?;
                let end = rest.find('\'')?;
                Some(rest[..end].to_owned())
            })
            .collect()
    }

    #[test]
    fn the_scripts_name_timers_only_through_the_names_rust_gives_them() {
        let given: BTreeSet<&str> = LUA_ENTRY_TIMERS.iter().map(|(name, _)| *name).collect();
        let mut used = BTreeSet::new();
        for (file, text) in sources() {
            let code = code(&text);
            for kind in TIMER_KINDS {
                assert!(
                    !code.contains(&format!("'{kind}:")),
                    "{file} spells out timer kind {kind}"
                );
            }
            for (i, _) in code.match_indices("TIMER.") {
                let name: String = code[i + 6..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(given.contains(name.as_str()), "{file}: TIMER.{name}");
                used.insert(name);
            }
        }
        let used: BTreeSet<&str> = used.iter().map(String::as_str).collect();
        assert_eq!(used, given, "names given to the scripts and never used");
    }

    #[test]
    fn the_events_the_scripts_write_are_exactly_the_rust_event_kinds() {
        let mut written = BTreeSet::new();
        for (file, text) in sources() {
            let code = code(&text);
            for marker in ["'event', ", "event(", "close("] {
                for name in quoted_after(&code, marker) {
                    assert!(
                        EVENT_KINDS.iter().any(|k| k.as_str() == name),
                        "{file} writes event {name:?}, which Rust does not know"
                    );
                    written.insert(name);
                }
            }
            assert!(!code.contains("'ticket'") || file.ends_with("callback.lua"));
        }
        // The other events are close reasons, which Rust passes to the scripts.
        for kind in EVENT_KINDS {
            let name = kind.as_str();
            assert!(
                written.contains(name) || CloseReason::parse(name).is_some(),
                "no script writes event {name}"
            );
        }
    }

    #[test]
    fn the_names_prelude_is_lua_for_every_ticket_event() {
        let names = names();
        for kind in EVENT_KINDS {
            assert_eq!(
                names.contains(&format!("{} = true", kind.as_str())),
                kind.opens_ticket(),
                "{kind:?}"
            );
        }
        assert!(names.contains("offer_timeout = 'offer:'"), "{names}");
    }
}
