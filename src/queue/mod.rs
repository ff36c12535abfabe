//! The queue as plain domain code: entries (live callers or callbacks), agent states and
//! routing, with an injected clock so every rule is testable without sockets or Redis.

mod agent;
mod clock;
mod entry;
mod estimate;
mod ids;
mod routing;

pub use agent::{Agent, AgentState, EndedCall, ServedQueue, UnknownAgentState};
pub use clock::{Clock, ManualClock, ScaledClock, SystemClock, Timestamp};
pub use entry::{CallbackRequest, CloseReason, Entry, EntryKind, EntryStatus};
pub use estimate::{estimated_wait, offer_callback, spoken_minutes, PACE_SAMPLES};
pub use ids::{AgentId, EntryId, LineName, QueueName, WebhookName};
pub use routing::{Offer, Router};

/// A queue rule was broken: the caller asked for a change the current state forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("agent {agent} cannot go from {from} to {to}")]
    AgentTransition {
        agent: AgentId,
        from: AgentState,
        to: AgentState,
    },
    #[error("entry {entry} is not {expected}")]
    EntryStatus {
        entry: EntryId,
        expected: &'static str,
    },
    #[error("entry {entry} is not being offered to agent {agent}")]
    NotOfferedTo { entry: EntryId, agent: AgentId },
    #[error("entry {0} is a callback: neither max wait nor a hangup cuts it")]
    CallbackNotCut(EntryId),
    /// A caller may ask for a callback while an agent's phone rings for them.
    #[error("entry {0} is a callback now: it connects when its customer answers")]
    NowACallback(EntryId),
    /// A caller calling again was to keep the callback their number had pending, which is
    /// gone meanwhile (served, expired).
    #[error("entry {0}: its caller's number has no callback pending")]
    NoCallbackPending(EntryId),
}

/// How a queue picks among the agents free to take an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// One agent at a time: the one idle the longest.
    #[default]
    LongestIdle,
    /// Every free agent's phone rings at once; the first to answer takes the call.
    RingAll,
}

impl Strategy {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LongestIdle => "longest-idle",
            Self::RingAll => "ring-all",
        }
    }
}
