//! Agents as routing sees them: a state with the transitions allowed between states,
//! when they became idle, and which queues they serve in which order.

use std::fmt;

use super::{AgentId, EntryId, QueueName, Timestamp};

/// What an agent is doing, as far as offers are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Logged in and free: receives offers.
    Available,
    /// Logged in, not taking offers now (break, missed offers).
    Away,
    /// Bridged to a caller. Set by the daemon only.
    OnCall,
    /// After a call, before the next offer. Set by the daemon only.
    WrapUp,
    /// Logged out.
    Offline,
    /// Logged in but takes only calls transferred to them, never queue offers.
    TransfersOnly,
}

impl AgentState {
    pub const ALL: [AgentState; 6] = [
        Self::Available,
        Self::Away,
        Self::OnCall,
        Self::WrapUp,
        Self::Offline,
        Self::TransfersOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Away => "away",
            Self::OnCall => "on_call",
            Self::WrapUp => "wrap_up",
            Self::Offline => "offline",
            Self::TransfersOnly => "transfers_only",
        }
    }

    /// Whether `self → to` is a legal change. Staying in the same state is always legal.
    /// `on_call` is entered only from `available` (the agent answered an offer) and left
    /// only through `wrap_up` or straight to `available` when wrap-up is zero, so a call
    /// in progress cannot be lost by a state change from a phone or the CLI.
    pub fn can_change_to(self, to: AgentState) -> bool {
        use AgentState::*;
        if self == to {
            return true;
        }
        match (self, to) {
            (OnCall, WrapUp | Available) => true,
            (OnCall, _) => false,
            (_, OnCall) => self == Available,
            (_, WrapUp) => false,
            (WrapUp, _) => true,
            (Available | Away | Offline | TransfersOnly, _) => true,
        }
    }

    /// Every state from which `to` may be entered: what the store checks atomically.
    pub fn allowed_from(to: AgentState) -> Vec<AgentState> {
        Self::ALL
            .into_iter()
            .filter(|from| from.can_change_to(to))
            .collect()
    }

    /// States an agent or operator may choose; `on_call` and `wrap_up` belong to the daemon.
    pub fn is_chosen_by_people(self) -> bool {
        !matches!(self, Self::OnCall | Self::WrapUp)
    }

    /// Logged in for queue calls: free now, or once their call, wrap-up or break ends.
    /// While one such agent serves a queue, its callers are offered callbacks (someone will
    /// be there to call them back) and its no-agent policy waits; offline and
    /// transfers-only agents never take one.
    pub fn takes_queue_calls(self) -> bool {
        matches!(
            self,
            Self::Available | Self::OnCall | Self::WrapUp | Self::Away
        )
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown agent state name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown agent state {0:?}: expected available, away, on_call, wrap_up, offline or transfers_only")]
pub struct UnknownAgentState(pub String);

impl std::str::FromStr for AgentState {
    type Err = UnknownAgentState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s.replace('-', "_"))
            .ok_or_else(|| UnknownAgentState(s.to_owned()))
    }
}

/// One queue an agent takes calls from; priority 1 is served before 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedQueue {
    pub queue: QueueName,
    pub priority: u8,
}

/// A connected call that ended, told by whichever of its legs hung up first. It frees its
/// agent only while they are still on that call: a daemon that learns late of a call's end
/// must not free an agent another daemon has put on the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedCall {
    pub queue: QueueName,
    pub agent: AgentId,
    /// The entry the agent talked to.
    pub entry: EntryId,
}

/// An agent as routing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub state: AgentState,
    /// When the agent last became `available`: the longest-idle order.
    pub idle_since: Timestamp,
    /// When the agent entered the state they are in.
    pub state_since: Timestamp,
    pub serves: Vec<ServedQueue>,
    /// The entry whose offer is ringing this agent now.
    pub booked: Option<EntryId>,
    /// Offers in a row that went unanswered.
    pub missed_in_a_row: u32,
}

impl Agent {
    /// An agent serving `serves` as the store has them right after their call ended with
    /// no wrap-up: available, unbooked, idle from `now`.
    pub fn freed_now(id: AgentId, serves: Vec<ServedQueue>, now: Timestamp) -> Self {
        Self {
            id,
            state: AgentState::Available,
            idle_since: now,
            state_since: now,
            serves,
            booked: None,
            missed_in_a_row: 0,
        }
    }

    /// The priority of `queue` for this agent, or `None` when they do not serve it.
    pub fn priority_for(&self, queue: &QueueName) -> Option<u8> {
        self.serves
            .iter()
            .find(|s| &s.queue == queue)
            .map(|s| s.priority)
    }

    /// Serves `queue` and takes its calls (see [`AgentState::takes_queue_calls`]): someone
    /// its callers can count on, now or once their call, wrap-up or break ends. Only such
    /// agents keep a queue from overflowing, and only they can decline a callback.
    pub fn takes_calls_for(&self, queue: &QueueName) -> bool {
        self.state.takes_queue_calls() && self.priority_for(queue).is_some()
    }

    /// Free to be offered an entry now.
    pub fn is_free(&self) -> bool {
        self.state == AgentState::Available && self.booked.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Clock, ManualClock};
    use super::*;

    /// A logged-out agent, as the store registers a new one.
    fn agent(clock: &ManualClock) -> Agent {
        Agent {
            id: AgentId::new("alice").unwrap(),
            state: AgentState::Offline,
            idle_since: clock.now(),
            state_since: clock.now(),
            serves: vec![ServedQueue {
                queue: QueueName::new("support").unwrap(),
                priority: 1,
            }],
            booked: None,
            missed_in_a_row: 0,
        }
    }

    #[test]
    fn only_agents_serving_a_queue_and_logged_in_for_it_take_its_calls() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let mut a = agent(&clock);
        let support = QueueName::new("support").unwrap();
        let sales = QueueName::new("sales").unwrap();
        for state in AgentState::ALL {
            a.state = state;
            let logged_in = !matches!(state, AgentState::Offline | AgentState::TransfersOnly);
            assert_eq!(a.takes_calls_for(&support), logged_in, "{state}");
            assert!(!a.takes_calls_for(&sales), "{state}");
        }
    }

    #[test]
    fn state_names_round_trip() {
        for s in AgentState::ALL {
            assert_eq!(s.as_str().parse::<AgentState>().unwrap(), s);
        }
        assert_eq!("transfers-only".parse(), Ok(AgentState::TransfersOnly));
        assert!("busy".parse::<AgentState>().is_err());
    }

    #[test]
    fn a_call_in_progress_cannot_be_dropped_by_a_state_change() {
        use AgentState::*;
        for to in [Away, Offline, TransfersOnly] {
            assert!(!OnCall.can_change_to(to), "on_call -> {to}");
        }
        assert!(OnCall.can_change_to(WrapUp));
        assert!(OnCall.can_change_to(Available));
        for from in [Away, Offline, TransfersOnly, WrapUp] {
            assert!(!from.can_change_to(OnCall), "{from} -> on_call");
        }
        assert!(Available.can_change_to(OnCall));
        for from in [Available, Away, Offline, TransfersOnly] {
            assert!(!from.can_change_to(WrapUp), "{from} -> wrap_up");
        }
        assert!(WrapUp.can_change_to(Available));
        assert!(WrapUp.can_change_to(Away));
        assert!(Offline.can_change_to(Available));
        assert_eq!(AgentState::allowed_from(WrapUp), vec![OnCall, WrapUp]);
        assert!(!OnCall.is_chosen_by_people());
        assert!(Away.is_chosen_by_people());
    }
}
