//! The Lua scripts that make each state change one atomic step in Redis. Each touches the
//! keys of one hash slot only (one queue, or the agents), so they also run on Redis Cluster.
//!
//! Each script lives in its own file under `lua/`, opening with what it does, its KEYS and
//! ARGV and its replies; the helpers several of them share are preludes (`lua/prelude/`),
//! put in front of a script's body when it is loaded.

use redis::{FromRedisValue, Script, ScriptInvocation, ToRedisArgs};

use super::records::{EVENT_KINDS, LUA_ENTRY_TIMERS};
use super::replies::{self, Reply};
use super::Result;

/// The source of `lua/<name>.lua`.
macro_rules! lua {
    ($name:literal) => {
        include_str!(concat!("lua/", $name, ".lua"))
    };
}

/// A script, named as its file is (`lua/<name>.lua`), so errors about its replies name it.
pub(crate) struct Lua {
    name: &'static str,
    script: Script,
}

impl Lua {
    fn new(name: &'static str, source: &str) -> Self {
        Self {
            name,
            script: Script::new(source),
        }
    }

    pub(crate) fn prepare_invoke(&self) -> Invocation<'_> {
        Invocation {
            name: self.name,
            inner: self.script.prepare_invoke(),
        }
    }

    pub(crate) fn key<T: ToRedisArgs>(&self, key: T) -> Invocation<'_> {
        let mut invocation = self.prepare_invoke();
        invocation.key(key);
        invocation
    }
}

/// One call of a [`Lua`] script being put together: its KEYS, then its ARGV.
pub(crate) struct Invocation<'a> {
    name: &'static str,
    inner: ScriptInvocation<'a>,
}

impl Invocation<'_> {
    pub(crate) fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.inner.key(key);
        self
    }

    pub(crate) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.inner.arg(arg);
        self
    }

    /// Run a transition and read its reply as the script's [`Reply`] type.
    pub(crate) async fn reply<R: Reply>(&self, conn: &mut super::Connection) -> Result<R> {
        let value: redis::Value = self.inner.invoke_async(conn).await?;
        replies::read(self.name, value)
    }

    /// Run a script that reads data (entries, agents, timers) rather than answering how a
    /// transition went.
    pub(crate) async fn data<T: FromRedisValue>(&self, conn: &mut super::Connection) -> Result<T> {
        Ok(self.inner.invoke_async(conn).await?)
    }
}

/// Comma-separated lists and hold-offs.
const SPLIT: &str = lua!("prelude/split");
/// An agent's booking: whether they are free, booking and releasing them.
const BOOKING: &str = lua!("prelude/booking");
/// The key layout and helpers of the callback scripts.
const CALLBACK: &str = lua!("prelude/callback");
/// Today's figures of a queue (`count_today`).
const TODAY: &str = lua!("prelude/today");
/// Where an outbox item stands among its callback's.
const OUTBOX: &str = lua!("prelude/outbox");

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
    pub(crate) enqueue: Lua,
    pub(crate) book_agents: Lua,
    pub(crate) release_agents: Lua,
    pub(crate) claim_entry: Lua,
    pub(crate) withdraw_offer: Lua,
    pub(crate) offer_failed: Lua,
    pub(crate) agent_missed: Lua,
    pub(crate) connect: Lua,
    pub(crate) bridge_failed: Lua,
    pub(crate) agent_answered: Lua,
    pub(crate) close: Lua,
    pub(crate) set_agent_state: Lua,
    pub(crate) entries_in: Lua,
    pub(crate) free_agents: Lua,
    pub(crate) claim_timers: Lua,
    pub(crate) complete_timer: Lua,
    pub(crate) release_timers: Lua,
    pub(crate) sweep_leases: Lua,
    pub(crate) media_renew: Lua,
    pub(crate) media_take: Lua,
    pub(crate) media_unowned: Lua,
    pub(crate) caller_name: Lua,
    pub(crate) callback_request: Lua,
    pub(crate) callback_create: Lua,
    pub(crate) callback_decline: Lua,
    pub(crate) console_decline: Lua,
    pub(crate) callback_accept: Lua,
    pub(crate) callback_dialing: Lua,
    pub(crate) callback_answered: Lua,
    pub(crate) callback_attempt_failed: Lua,
    pub(crate) callback_retry_due: Lua,
    pub(crate) callback_close: Lua,
    pub(crate) callback_kept: Lua,
    pub(crate) callback_canceled_by_caller: Lua,
    pub(crate) callback_completed: Lua,
    pub(crate) agent_released: Lua,
    pub(crate) callback_offer_answered: Lua,
    pub(crate) extend_booking: Lua,
    pub(crate) outbox_ingest: Lua,
    pub(crate) outbox_claim: Lua,
    pub(crate) outbox_done: Lua,
    pub(crate) outbox_failed: Lua,
    pub(crate) outbox_replay: Lua,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        // `lua/<name>.lua` after the preludes it needs, named `name`.
        macro_rules! load {
            ($preludes:expr, $name:literal) => {
                Lua::new($name, &format!("{}{}", $preludes, lua!($name)))
            };
        }
        let alone = "";
        let with_split = SPLIT;
        let with_booking = BOOKING;
        let callback = format!("{SPLIT}{}{TODAY}{CALLBACK}", names());
        let closing = format!("{SPLIT}{TODAY}");
        Self {
            enqueue: load!(alone, "enqueue"),
            book_agents: load!(with_booking, "book_agents"),
            release_agents: load!(with_booking, "release_agents"),
            claim_entry: load!(with_split, "claim_entry"),
            withdraw_offer: load!(alone, "withdraw_offer"),
            offer_failed: load!(with_split, "offer_failed"),
            agent_missed: load!(with_booking, "agent_missed"),
            connect: load!(with_split, "connect"),
            bridge_failed: load!(alone, "bridge_failed"),
            agent_answered: load!(with_booking, "agent_answered"),
            close: load!(closing, "close"),
            set_agent_state: load!(with_booking, "set_agent_state"),
            entries_in: load!(alone, "entries_in"),
            free_agents: load!(with_booking, "free_agents"),
            claim_timers: load!(alone, "claim_timers"),
            complete_timer: load!(alone, "complete_timer"),
            release_timers: load!(alone, "release_timers"),
            sweep_leases: load!(alone, "sweep_leases"),
            media_renew: load!(alone, "media_renew"),
            media_take: load!(alone, "media_take"),
            media_unowned: load!(alone, "media_unowned"),
            caller_name: load!(alone, "caller_name"),
            callback_request: load!(callback, "callback_request"),
            callback_create: load!(callback, "callback_create"),
            callback_decline: load!(callback, "callback_decline"),
            console_decline: load!(callback, "console_decline"),
            callback_accept: load!(callback, "callback_accept"),
            callback_dialing: load!(callback, "callback_dialing"),
            callback_answered: load!(callback, "callback_answered"),
            callback_attempt_failed: load!(callback, "callback_attempt_failed"),
            callback_retry_due: load!(callback, "callback_retry_due"),
            callback_close: load!(callback, "callback_close"),
            callback_kept: load!(callback, "callback_kept"),
            callback_canceled_by_caller: load!(callback, "callback_canceled_by_caller"),
            callback_completed: load!(callback, "callback_completed"),
            agent_released: load!(with_booking, "agent_released"),
            callback_offer_answered: load!(callback, "callback_offer_answered"),
            extend_booking: load!(with_booking, "extend_booking"),
            outbox_ingest: load!(OUTBOX, "outbox_ingest"),
            outbox_claim: load!(OUTBOX, "outbox_claim"),
            outbox_done: load!(OUTBOX, "outbox_done"),
            outbox_failed: load!(OUTBOX, "outbox_failed"),
            outbox_replay: load!(OUTBOX, "outbox_replay"),
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

    /// The agent scripts compare and write agent states as literals: each must be a state
    /// Rust knows, or an agent could be stuck in a state no rule leaves.
    #[test]
    fn the_agent_states_the_scripts_name_are_rust_agent_states() {
        let mut named = BTreeSet::new();
        for (file, text) in sources() {
            let name = Path::new(&file).file_name().unwrap().to_string_lossy();
            if !(name.contains("agent") || name.contains("booking")) {
                continue;
            }
            // Field lists (`HMGET … 'state', 'booked'`) name fields, not states.
            let code: String = code(&text)
                .lines()
                .filter(|l| !l.contains("HMGET"))
                .collect::<Vec<_>>()
                .join("\n");
            // Where the agent scripts hold a state: the `state` field read into `a[1]` or
            // `a[2]`, and the state asked for (`ARGV[1]` of `set_agent_state`).
            let markers = ["'state', ", "'from', ", "'to', ", "a[1] == ", "a[2] == "];
            let markers = markers.into_iter().chain(["a[2] ~= ", "ARGV[1] == "]);
            for marker in markers {
                for state in quoted_after(&code, marker)
                    .into_iter()
                    .filter(|s| !s.is_empty())
                {
                    assert!(
                        state.parse::<crate::queue::AgentState>().is_ok(),
                        "{file} names agent state {state:?}, which Rust does not know"
                    );
                    named.insert(state);
                }
            }
        }
        assert!(named.len() >= 3, "found only {named:?}");
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
