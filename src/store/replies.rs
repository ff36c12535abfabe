//! The replies of the Lua scripts as Rust types, each parsed in one place from the words
//! the script's header lists, so no caller matches a script's strings by hand.
//!
//! A reply is read as its words: a string reply is one word, a list reply one word per item.
//! A reply a script never gives (a script and the daemon out of step) is
//! [`StoreError::UnexpectedReply`] naming the script, never a panic.

use crate::queue::{AgentId, AgentState, EntryId};

use super::{Result, StoreError};

/// A script's reply as a typed value.
pub(crate) trait Reply: Sized {
    /// The reply these words make, or `None` when `script` never answers them.
    fn parse(script: &'static str, words: &[String]) -> Option<Self>;
}

/// Read `value`, the reply of `script`, as `R`.
pub(crate) fn read<R: Reply>(script: &'static str, value: redis::Value) -> Result<R> {
    let unexpected = |reply: String| StoreError::UnexpectedReply { script, reply };
    let words: Vec<String> =
        match value {
            redis::Value::Array(items) => items
                .iter()
                .map(redis::from_redis_value_ref)
                .collect::<Result<_, _>>()
                .map_err(|_| unexpected(format!("{items:?}")))?,
            other => vec![redis::from_redis_value_ref(&other)
                .map_err(|_| unexpected(format!("{other:?}")))?],
        };
    R::parse(script, &words).ok_or_else(|| unexpected(words.join(" ")))
}

/// Agent ids, each a word; `None` when one is not a valid id.
fn agents(words: &[String]) -> Option<Vec<AgentId>> {
    words.iter().map(|a| AgentId::new(a).ok()).collect()
}

/// `<prefix><agent>`, as `busy:alice`.
fn agent_after(word: &str, prefix: &str) -> Option<AgentId> {
    AgentId::new(word.strip_prefix(prefix)?).ok()
}

/// Why a script refused an entry's transition: what the entry is not (or is) now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `unknown`: no such entry.
    UnknownEntry,
    /// `not_callback`: the entry is a live caller.
    NotCallback,
    /// `not_live`: the entry is a callback.
    NotLive,
    /// `not_open`: neither waiting nor ringing (nor, for a callback, waiting for a retry).
    NotOpen,
    /// `not_offered`: not ringing anyone.
    NotOffered,
    /// `not_offered_to`: not ringing, dialed for or connected to this agent.
    NotOfferedTo,
    /// `not_dialing`: no agent's customer leg is being dialed for it.
    NotDialing,
    /// `not_connected`: not connected to this agent.
    NotConnected,
    /// `no_callback`: the caller's number has no open callback.
    NoCallback,
    /// `callback`: a callback, which a hangup or max wait does not close.
    IsCallback,
    /// `not_console`: not a callback of a console line.
    NotConsole,
    /// `not_waiting`: not waiting (an agent took it, or it is waiting for a retry).
    NotWaiting,
}

impl Refusal {
    const ALL: [Self; 12] = [
        Self::UnknownEntry,
        Self::NotCallback,
        Self::NotLive,
        Self::NotOpen,
        Self::NotOffered,
        Self::NotOfferedTo,
        Self::NotDialing,
        Self::NotConnected,
        Self::NoCallback,
        Self::IsCallback,
        Self::NotConsole,
        Self::NotWaiting,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::UnknownEntry => "unknown",
            Self::NotCallback => "not_callback",
            Self::NotLive => "not_live",
            Self::NotOpen => "not_open",
            Self::NotOffered => "not_offered",
            Self::NotOfferedTo => "not_offered_to",
            Self::NotDialing => "not_dialing",
            Self::NotConnected => "not_connected",
            Self::NoCallback => "no_callback",
            Self::IsCallback => "callback",
            Self::NotConsole => "not_console",
            Self::NotWaiting => "not_waiting",
        }
    }

    fn parse(script: &'static str, word: &str) -> Option<Refused> {
        let refusal = Self::ALL.into_iter().find(|r| r.as_str() == word)?;
        Some(Refused { script, refusal })
    }
}

/// A refusal, with the script that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) script: &'static str,
    pub(crate) refusal: Refusal,
}

impl Refused {
    /// The error for a refusal that the rules of its caller leave no meaning for.
    pub(crate) fn unexpected(self) -> StoreError {
        StoreError::UnexpectedReply {
            script: self.script,
            reply: self.refusal.as_str().to_owned(),
        }
    }
}

/// A reply of one fixed word.
fn one(words: &[String]) -> Option<&str> {
    match words {
        [word] => Some(word),
        _ => None,
    }
}

/// `enqueue`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Enqueue {
    Added,
    Exists,
}

impl Reply for Enqueue {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "ok" => Some(Self::Added),
            "exists" => Some(Self::Exists),
            _ => None,
        }
    }
}

/// `book_agents`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BookAgents {
    Booked,
    /// This agent was not free; nobody was booked.
    Busy(AgentId),
    /// An agent is not registered; nobody was booked.
    UnknownAgent,
}

impl Reply for BookAgents {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "ok" => Some(Self::Booked),
            "unknown" => Some(Self::UnknownAgent),
            word => agent_after(word, "busy:").map(Self::Busy),
        }
    }
}

/// `release_agents` and others that only ever answer `ok`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Done;

impl Reply for Done {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        (one(words)? == "ok").then_some(Self)
    }
}

/// `claim_entry`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClaimEntry {
    Claimed,
    NotWaiting,
    /// An entry the plan did not know of is ahead.
    NotFirst,
    HeldOff(AgentId),
}

impl Reply for ClaimEntry {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "ok" => Some(Self::Claimed),
            "not_waiting" => Some(Self::NotWaiting),
            "not_first" => Some(Self::NotFirst),
            word => agent_after(word, "held_off:").map(Self::HeldOff),
        }
    }
}

/// `withdraw_offer`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WithdrawOffer {
    Withdrawn,
    /// The entry moved on (closed, offered again): left alone.
    MovedOn,
}

impl Reply for WithdrawOffer {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "ok" => Some(Self::Withdrawn),
            "moved_on" => Some(Self::MovedOn),
            _ => None,
        }
    }
}

/// `offer_failed`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OfferFailed {
    /// The entry waits again.
    Waiting,
    /// Other agents of a ring-all offer still ring.
    Ringing,
    Refused(Refused),
}

impl Reply for OfferFailed {
    fn parse(script: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "waiting" => Some(Self::Waiting),
            "ringing" => Some(Self::Ringing),
            word => Refusal::parse(script, word).map(Self::Refused),
        }
    }
}

/// `agent_missed`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AgentMissed {
    Released,
    /// The miss reached the queue's limit: the agent is `away`.
    Away,
    /// The booking lapsed (and may belong to another offer now): left alone.
    NotBooked,
    UnknownAgent,
}

impl Reply for AgentMissed {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "released" => Some(Self::Released),
            "away" => Some(Self::Away),
            "not_booked" => Some(Self::NotBooked),
            "unknown" => Some(Self::UnknownAgent),
            _ => None,
        }
    }
}

/// `{'ok', agents…}` or `{refusal}`: `connect` (the other agents of a ring-all offer),
/// `callback_accept` (likewise), and the scripts that close an entry, `close`,
/// `callback_close` and `callback_kept` (the agents that were ringing for it).
pub(crate) type WithAgents = std::result::Result<Vec<AgentId>, Refused>;

impl Reply for WithAgents {
    fn parse(script: &'static str, words: &[String]) -> Option<Self> {
        match words.split_first()? {
            (ok, rest) if ok == "ok" => agents(rest).map(Ok),
            (word, []) => Refusal::parse(script, word).map(Err),
            _ => None,
        }
    }
}

/// `bridge_failed`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BridgeFailed {
    /// The entry waits again.
    Waiting,
    NotConnected,
}

impl Reply for BridgeFailed {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "ok" => Some(Self::Waiting),
            "not_connected" => Some(Self::NotConnected),
            _ => None,
        }
    }
}

/// `agent_answered` and `agent_released`: `ok`, or `unknown` for an agent not registered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AgentChanged {
    Done,
    UnknownAgent,
}

impl Reply for AgentChanged {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "ok" => Some(Self::Done),
            "unknown" => Some(Self::UnknownAgent),
            _ => None,
        }
    }
}

/// `set_agent_state`, each with the state before.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SetAgentState {
    Changed(AgentState),
    /// The agent was in that state already.
    Same(AgentState),
    /// The change is not allowed from this state.
    Refused(AgentState),
    UnknownAgent,
}

impl Reply for SetAgentState {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        let [outcome, previous] = words else {
            return None;
        };
        let previous = || previous.parse::<AgentState>().ok();
        match outcome.as_str() {
            "ok" => previous().map(Self::Changed),
            "same" => previous().map(Self::Same),
            "refused" => previous().map(Self::Refused),
            "unknown" => Some(Self::UnknownAgent),
            _ => None,
        }
    }
}

/// `callback_request`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CallbackRequest {
    Requested,
    /// The number has this callback open: the caller's entry was closed.
    Duplicate(EntryId),
    Refused(Refused),
}

impl Reply for CallbackRequest {
    fn parse(script: &'static str, words: &[String]) -> Option<Self> {
        match words {
            [ok] if ok == "ok" => Some(Self::Requested),
            [dup, existing] if dup == "duplicate" => {
                EntryId::new(existing).ok().map(Self::Duplicate)
            }
            [word] => Refusal::parse(script, word).map(Self::Refused),
            _ => None,
        }
    }
}

/// `callback_create`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CallbackCreate {
    Created,
    /// The number has this callback open in the queue already.
    Duplicate(EntryId),
    /// An entry with the new one's id exists.
    Exists,
}

impl Reply for CallbackCreate {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match words {
            [ok] if ok == "ok" => Some(Self::Created),
            [exists] if exists == "exists" => Some(Self::Exists),
            [dup, existing] if dup == "duplicate" => {
                EntryId::new(existing).ok().map(Self::Duplicate)
            }
            _ => None,
        }
    }
}

/// `callback_decline`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CallbackDecline {
    /// The callback waits again.
    Waiting,
    /// Other agents still ring for it.
    Ringing(Vec<AgentId>),
    /// Every eligible agent declined: it is closed; agents still ringing for it are
    /// stopped through its withdrawal.
    DeclinedByAll,
    Refused(Refused),
}

impl Reply for CallbackDecline {
    fn parse(script: &'static str, words: &[String]) -> Option<Self> {
        match words.split_first()? {
            (w, []) if w == "waiting" => Some(Self::Waiting),
            (w, rest) if w == "ringing" => agents(rest).map(Self::Ringing),
            (w, []) if w == "declined_by_all" => Some(Self::DeclinedByAll),
            (word, []) => Refusal::parse(script, word).map(Self::Refused),
            _ => None,
        }
    }
}

/// `console_decline`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ConsoleDecline {
    /// It waits on in the other agents' consoles.
    Waiting,
    /// Every eligible agent declined: it is closed.
    DeclinedByAll,
    Refused(Refused),
}

impl Reply for ConsoleDecline {
    fn parse(script: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "waiting" => Some(Self::Waiting),
            "declined_by_all" => Some(Self::DeclinedByAll),
            word => Refusal::parse(script, word).map(Self::Refused),
        }
    }
}

/// `ok` or a refusal: `callback_dialing`, `callback_answered`, `callback_completed` and
/// `callback_offer_answered`.
pub(crate) type Step = std::result::Result<(), Refused>;

impl Reply for Step {
    fn parse(script: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "ok" => Some(Ok(())),
            word => Refusal::parse(script, word).map(Err),
        }
    }
}

/// `callback_attempt_failed`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AttemptFailed {
    /// It waits for its retry time.
    Retry,
    /// No retry: it is closed.
    Closed,
    Refused(Refused),
}

impl Reply for AttemptFailed {
    fn parse(script: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "retry" => Some(Self::Retry),
            "closed" => Some(Self::Closed),
            word => Refusal::parse(script, word).map(Self::Refused),
        }
    }
}

/// `callback_retry_due`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RetryDue {
    /// It waits for an agent again.
    Waiting,
    /// Its window passed meanwhile: it is closed.
    Expired,
    NotRetryWait,
}

impl Reply for RetryDue {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "waiting" => Some(Self::Waiting),
            "expired" => Some(Self::Expired),
            "not_retry_wait" => Some(Self::NotRetryWait),
            _ => None,
        }
    }
}

/// `callback_canceled_by_caller`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CanceledByCaller {
    /// Closed, releasing the agents that were ringing for it.
    Canceled(Vec<AgentId>),
    /// An agent accepted it: it stands.
    Dialing,
    /// The caller's live entry no longer waits.
    CallerGone,
    Refused(Refused),
}

impl Reply for CanceledByCaller {
    fn parse(script: &'static str, words: &[String]) -> Option<Self> {
        match words.split_first()? {
            (ok, rest) if ok == "ok" => agents(rest).map(Self::Canceled),
            (w, []) if w == "dialing" => Some(Self::Dialing),
            (w, []) if w == "caller_gone" => Some(Self::CallerGone),
            (word, []) => Refusal::parse(script, word).map(Self::Refused),
            _ => None,
        }
    }
}

/// `extend_booking`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExtendBooking {
    Extended,
    /// The booking lapsed before.
    NotBooked,
}

impl Reply for ExtendBooking {
    fn parse(_: &'static str, words: &[String]) -> Option<Self> {
        match one(words)? {
            "ok" => Some(Self::Extended),
            "not_booked" => Some(Self::NotBooked),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(words: &[&str]) -> redis::Value {
        redis::Value::Array(
            words
                .iter()
                .map(|w| redis::Value::BulkString(w.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn word(w: &str) -> redis::Value {
        redis::Value::BulkString(w.as_bytes().to_vec())
    }

    #[test]
    fn string_and_list_replies_read_as_their_words() {
        assert_eq!(
            read::<BookAgents>("book_agents", word("busy:alice")).unwrap(),
            BookAgents::Busy(AgentId::new("alice").unwrap())
        );
        assert_eq!(
            read::<WithAgents>("connect", value(&["ok", "bob", "carol"])).unwrap(),
            Ok(vec![
                AgentId::new("bob").unwrap(),
                AgentId::new("carol").unwrap()
            ])
        );
        assert_eq!(
            read::<WithAgents>("close", value(&["callback"])).unwrap(),
            Err(Refused {
                script: "close",
                refusal: Refusal::IsCallback
            })
        );
        assert_eq!(
            read::<SetAgentState>("set_agent_state", value(&["refused", "on_call"])).unwrap(),
            SetAgentState::Refused(AgentState::OnCall)
        );
    }

    #[test]
    fn a_reply_no_script_gives_is_an_error_naming_the_script() {
        for (script, reply) in [
            ("enqueue", word("maybe")),
            ("enqueue", value(&["ok", "ok"])),
            ("enqueue", redis::Value::Nil),
            ("enqueue", redis::Value::Int(1)),
        ] {
            let err = read::<Enqueue>(script, reply).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::UnexpectedReply {
                        script: "enqueue",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let err = read::<WithAgents>("connect", value(&["ok", "not an id"])).unwrap_err();
        assert!(err.to_string().contains("connect"), "{err}");
        let err = read::<SetAgentState>("set_agent_state", value(&["ok", "dancing"]));
        assert!(err.is_err());
    }

    #[test]
    fn refusals_round_trip_through_their_words() {
        for refusal in Refusal::ALL {
            assert_eq!(
                Refusal::parse("s", refusal.as_str()).map(|r| r.refusal),
                Some(refusal)
            );
        }
    }
}
