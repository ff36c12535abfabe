//! A queue entry: a live caller or a callback request, holding one position (the arrival
//! time) for its whole life, so a caller who asks for a callback keeps their place.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::{AgentId, Clock, EntryId, LineName, QueueName, Timestamp};
use crate::values::{CallId, PhoneNumber, VarValue};

/// A customer to be called back when their turn comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRequest {
    pub number: PhoneNumber,
    pub requested_at: Timestamp,
    /// Customer-leg attempts made so far.
    pub attempts: u32,
}

/// Who waits behind an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A parked caller on this channel.
    LiveCaller {
        channel: CallId,
    },
    Callback(CallbackRequest),
}

/// Why an entry left the queue without being connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The caller hung up while waiting (or their channel vanished across a restart).
    Abandoned,
    /// The queue's max wait ran out and its exit action was taken.
    MaxWaitExit,
    /// The caller asked for a callback while one for the same number was pending.
    DuplicateIgnored,
    /// A callback was not dialed within its window.
    Expired,
    /// Every eligible agent declined the callback.
    DeclinedByAll,
    /// The customer leg failed and the retry policy allows no further attempt.
    AttemptFailed,
    /// An operator withdrew the callback.
    Canceled,
    /// A caller calling again kept the callback their number had pending: their new call
    /// leaves the queue and the callback keeps its place.
    CallbackKept,
    /// A caller calling again canceled their pending callback to wait on the line.
    CallbackCanceledByCaller,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Abandoned => "abandoned",
            Self::MaxWaitExit => "max_wait_exit",
            Self::DuplicateIgnored => "duplicate_ignored",
            Self::Expired => "expired",
            Self::DeclinedByAll => "declined_by_all",
            Self::AttemptFailed => "attempt_failed",
            Self::Canceled => "canceled",
            Self::CallbackKept => "callback_kept",
            Self::CallbackCanceledByCaller => "callback_canceled_by_caller",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Abandoned,
            Self::MaxWaitExit,
            Self::DuplicateIgnored,
            Self::Expired,
            Self::DeclinedByAll,
            Self::AttemptFailed,
            Self::Canceled,
            Self::CallbackKept,
            Self::CallbackCanceledByCaller,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an entry is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryStatus {
    Waiting,
    /// Ringing these agents (one, or several for ring-all).
    Offered {
        agents: Vec<AgentId>,
        since: Timestamp,
    },
    /// A callback an agent accepted: their customer leg is being set up, so it is offered
    /// to nobody else and no longer expires.
    Dialing {
        agent: AgentId,
        since: Timestamp,
    },
    /// A callback not offered before `due`, then waiting again at its position: its
    /// customer leg failed and it waits for the retry, or it was asked for a later time.
    RetryWait {
        due: Timestamp,
    },
    Connected {
        agent: AgentId,
        at: Timestamp,
    },
    Closed {
        reason: CloseReason,
        at: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    pub queue: QueueName,
    pub line: LineName,
    /// Arrival time, and so the place in the queue: older is served first.
    pub position: Timestamp,
    /// Shown to the agent's phone while it rings: the caller's number, when usable.
    pub caller_id: Option<VarValue>,
    pub kind: EntryKind,
    pub status: EntryStatus,
    /// Agents this entry was offered to who did not take it (missed, busy, rejected or
    /// declined), with when they may be offered it again: mod_callcenter's
    /// `no-answer-delay-time` and its kin, but for this entry only, so the agent takes
    /// others meanwhile. After that time they are as any other agent again.
    pub held_off: BTreeMap<AgentId, Timestamp>,
}

impl Entry {
    /// A caller just parked on `channel`; their position is now.
    pub fn live_caller(
        queue: QueueName,
        line: LineName,
        channel: CallId,
        caller_id: Option<VarValue>,
        clock: &dyn Clock,
    ) -> Self {
        Self {
            id: EntryId::random(),
            queue,
            line,
            position: clock.now(),
            caller_id,
            kind: EntryKind::LiveCaller { channel },
            status: EntryStatus::Waiting,
            held_off: BTreeMap::new(),
        }
    }

    /// A callback asked for at `requested_at` with no call in the queue (an operator's
    /// tool): a new entry whose place is `from`, that time or the later one it is not
    /// offered before, so it joins the queue behind everyone there by then, as a caller
    /// arriving then would. The agent's phone shows the number it is for.
    pub fn callback(
        queue: QueueName,
        line: LineName,
        number: PhoneNumber,
        requested_at: Timestamp,
        from: Timestamp,
    ) -> Self {
        Self {
            id: EntryId::random(),
            queue,
            line,
            position: from,
            caller_id: VarValue::new(number.as_str()).ok(),
            kind: EntryKind::Callback(CallbackRequest {
                number,
                requested_at,
                attempts: 0,
            }),
            status: EntryStatus::Waiting,
            held_off: BTreeMap::new(),
        }
    }

    /// The waiting caller becomes a callback request with the same id and position.
    pub fn into_callback(mut self, number: PhoneNumber, clock: &dyn Clock) -> Self {
        self.kind = EntryKind::Callback(CallbackRequest {
            number,
            requested_at: clock.now(),
            attempts: 0,
        });
        self
    }

    /// Time since arrival.
    pub fn waited(&self, now: Timestamp) -> Duration {
        now.since(self.position)
    }

    /// Max wait cuts live callers only: a callback promised is kept.
    pub fn max_wait_applies(&self) -> bool {
        matches!(self.kind, EntryKind::LiveCaller { .. })
    }

    /// Whether `agent` may not be offered this entry yet at `now`.
    pub fn holds_off(&self, agent: &AgentId, now: Timestamp) -> bool {
        self.held_off.get(agent).is_some_and(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Clock, ManualClock};
    use super::*;

    fn caller(clock: &ManualClock) -> Entry {
        Entry::live_caller(
            QueueName::new("support").unwrap(),
            LineName::new("main").unwrap(),
            CallId::new("6b3cb03e-8dfd-433b-a2a4-a5be4ece97a7").unwrap(),
            VarValue::new("+4930111").ok(),
            clock,
        )
    }

    #[test]
    fn callback_keeps_id_and_position() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let entry = caller(&clock);
        clock.advance(Duration::from_secs(90));
        let (id, position) = (entry.id.clone(), entry.position);
        let cb = entry.into_callback(PhoneNumber::new("+4930222").unwrap(), &clock);
        assert_eq!(cb.id, id);
        assert_eq!(cb.position, position);
        let EntryKind::Callback(req) = &cb.kind else {
            panic!("not a callback")
        };
        assert_eq!(req.requested_at, Timestamp::from_millis(91_000));
        assert_eq!(cb.waited(clock.now()), Duration::from_secs(90));
        assert!(!cb.max_wait_applies());
    }
}
