//! The queue as plain domain code: entries (live callers or callbacks), agent states and
//! routing, with an injected clock so every rule is testable without sockets or Redis.

mod ids;

pub use ids::{AgentId, EntryId, LineName, QueueName};

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
