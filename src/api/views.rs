//! What the API answers with: the JSON shapes of queues, entries, agents, callbacks and
//! events, built from the domain types, each with its OpenAPI schema.
//!
//! Times are milliseconds since the epoch; numbers are shown whole to admins and agents,
//! masked (last 3 digits) to the `read` role.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::ApiRole;
use crate::queue::{estimated_wait, Agent, Entry, EntryKind, EntryStatus, Timestamp};
use crate::store::StoredEvent;
use crate::switch::PhoneNumber;

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueSummary {
    pub name: String,
    /// Entries waiting for an agent (callers and callbacks), not counting those ringing.
    pub waiting: u64,
    /// Callbacks open in the queue (waiting, ringing, being dialed, waiting for a retry).
    pub callbacks_in_queue: u64,
    /// Callbacks requested since the queue's figures began.
    pub callbacks_total: u64,
    /// The mean wait from a callback's request to its customer answering, ms; none before
    /// one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_callback_wait_ms: Option<u64>,
    /// What the queue counted today (the UTC day).
    pub today: TodayView,
}

/// A queue's figures for today (the UTC day).
#[derive(Debug, Serialize, ToSchema)]
pub struct TodayView {
    pub callbacks_requested: u64,
    /// Callbacks whose customer answered.
    pub callbacks_connected: u64,
    /// Of today's callbacks that ended, the share that connected (0–100); none before one
    /// ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_percent: Option<u8>,
    /// Live callers who hung up while waiting.
    pub abandoned: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_callback_wait_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    pub name: String,
    /// The first open entries (the view's `limit`), oldest first: the order agents are
    /// offered them.
    pub entries: Vec<EntryView>,
    /// How many entries are open in all (waiting, ringing, being dialed, waiting for a
    /// retry), shown or not.
    pub open_total: u64,
    /// The agents who serve the queue.
    pub agents: Vec<AgentView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub id: String,
    /// `live` (a caller on the line) or `callback`.
    pub kind: String,
    /// `waiting`, `offered`, `dialing`, `retry_wait`, `connected` or `closed`.
    pub state: String,
    /// 1-based place among those waiting; none while ringing or dialing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// How long it has been in the queue, ms.
    pub waited_ms: u64,
    /// How much longer it may wait, ms: its place times the queue's recent pace between
    /// connections (what the caller's announcements say). None while not waiting, or
    /// before the queue has a pace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_ms: Option<u64>,
    /// The caller's number (live) or the number to call back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// The agents it rings, or the agent dialing or connected.
    pub agents: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    /// `available`, `away`, `on_call`, `wrap_up`, `transfers_only` or `offline`.
    pub state: String,
    /// When they last became available, ms.
    pub idle_since: u64,
    /// When they entered the state they are in, ms.
    pub state_since: u64,
    /// How long they have been in it, ms (on the daemon's clock).
    pub in_state_ms: u64,
    /// The entry whose offer rings them now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ringing_for: Option<String>,
    pub queues: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackView {
    pub id: String,
    pub queue: String,
    pub line: String,
    pub number: String,
    /// `waiting`, `offered`, `dialing`, `retry_wait`, `connected` or `closed`.
    pub state: String,
    /// Why it was closed: `completed`, `expired`, `declined_by_all`, `canceled`, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<String>,
    pub requested_at: u64,
    /// Customer-leg attempts so far.
    pub attempts: u32,
    /// The agents it rings, or the agent dialing or connected.
    pub agents: Vec<String>,
    /// Every event of its life, oldest first (only when one callback is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<EventView>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    /// The Redis stream id: a resume point (`Last-Event-ID`).
    pub id: String,
    /// `queue:<name>` or `agents`.
    pub stream: String,
    pub kind: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackPage {
    pub callbacks: Vec<CallbackView>,
    /// Pass as `cursor` for the next (older) page; none at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCallback {
    pub queue: String,
    pub line: String,
    /// E.164 (`+4930…`, `0049…`) or national to the line's country.
    pub number: String,
    /// Not offered before this time, ms since the epoch.
    #[serde(default)]
    pub earliest: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgentState {
    /// `available`, `away`, `transfers_only` or `offline`.
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StateChanged {
    /// The state they were in.
    pub previous: String,
    pub state: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub redis: bool,
    pub freeswitch: bool,
    pub draining: bool,
}

/// How much of a number a role sees.
pub fn shown(number: &PhoneNumber, role: &ApiRole) -> String {
    match role {
        ApiRole::Read => number.masked().to_string(),
        ApiRole::Admin | ApiRole::Agent(_) => number.to_string(),
    }
}

pub fn state_name(status: &EntryStatus) -> &'static str {
    match status {
        EntryStatus::Waiting => "waiting",
        EntryStatus::Offered { .. } => "offered",
        EntryStatus::Dialing { .. } => "dialing",
        EntryStatus::RetryWait { .. } => "retry_wait",
        EntryStatus::Connected { .. } => "connected",
        EntryStatus::Closed { .. } => "closed",
    }
}

/// The agents an entry rings, or the agent dialing or connected.
pub fn agents_of(status: &EntryStatus) -> Vec<String> {
    match status {
        EntryStatus::Offered { agents, .. } => agents.iter().map(ToString::to_string).collect(),
        EntryStatus::Dialing { agent, .. } | EntryStatus::Connected { agent, .. } => {
            vec![agent.to_string()]
        }
        _ => Vec::new(),
    }
}

impl EntryView {
    /// `entry` at `position` among those waiting, in a queue whose recent `pace` is known
    /// or not, as `role` may see it.
    pub fn of(
        entry: &Entry,
        position: Option<u64>,
        pace: Option<Duration>,
        now: Timestamp,
        role: &ApiRole,
    ) -> Self {
        let number = match &entry.kind {
            EntryKind::Callback(request) => Some(shown(&request.number, role)),
            EntryKind::LiveCaller { .. } => entry
                .caller_id
                .as_ref()
                .and_then(|id| PhoneNumber::new(id.as_str()).ok())
                .map(|n| shown(&n, role)),
        };
        Self {
            id: entry.id.to_string(),
            kind: match entry.kind {
                EntryKind::LiveCaller { .. } => "live",
                EntryKind::Callback(_) => "callback",
            }
            .to_owned(),
            state: state_name(&entry.status).to_owned(),
            position,
            waited_ms: now.as_millis().saturating_sub(entry.position.as_millis()),
            estimated_wait_ms: position
                .zip(pace)
                .map(|(place, pace)| estimated_wait(pace, place).as_millis())
                .map(|ms| u64::try_from(ms).unwrap_or(u64::MAX)),
            number,
            agents: agents_of(&entry.status),
        }
    }
}

impl AgentView {
    pub fn of(agent: &Agent, now: Timestamp) -> Self {
        Self {
            id: agent.id.to_string(),
            state: agent.state.as_str().to_owned(),
            idle_since: agent.idle_since.as_millis(),
            state_since: agent.state_since.as_millis(),
            in_state_ms: now
                .as_millis()
                .saturating_sub(agent.state_since.as_millis()),
            ringing_for: agent.booked.as_ref().map(ToString::to_string),
            queues: agent.serves.iter().map(|s| s.queue.to_string()).collect(),
        }
    }
}

impl CallbackView {
    /// `None` for an entry that is not a callback.
    pub fn of(entry: &Entry, role: &ApiRole) -> Option<Self> {
        let EntryKind::Callback(request) = &entry.kind else {
            return None;
        };
        Some(Self {
            id: entry.id.to_string(),
            queue: entry.queue.to_string(),
            line: entry.line.to_string(),
            number: shown(&request.number, role),
            state: state_name(&entry.status).to_owned(),
            closed_reason: match &entry.status {
                EntryStatus::Closed { reason, .. } => Some(reason.as_str().to_owned()),
                _ => None,
            },
            requested_at: request.requested_at.as_millis(),
            attempts: request.attempts,
            agents: agents_of(&entry.status),
            history: None,
        })
    }
}

impl EventView {
    pub fn of(stream: String, event: &StoredEvent, role: &ApiRole) -> Self {
        let mut fields: BTreeMap<String, String> = event
            .fields
            .iter()
            .filter(|(k, _)| k.as_str() != "event")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(number) = fields.get_mut("number") {
            if let Ok(n) = PhoneNumber::new(number) {
                *number = shown(&n, role);
            }
        }
        Self {
            id: event.id.clone(),
            stream,
            kind: event.kind.as_str().to_owned(),
            fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Clock, LineName, ManualClock, QueueName};
    use crate::switch::CallId;

    #[test]
    fn a_waiting_entry_expects_its_place_times_the_pace() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
        let entry = Entry::live_caller(
            QueueName::new("support").unwrap(),
            LineName::new("main").unwrap(),
            CallId::new("caller").unwrap(),
            None,
            &clock,
        );
        clock.advance(Duration::from_secs(30));
        let pace = Some(Duration::from_secs(90));
        let now = clock.now();
        let view = EntryView::of(&entry, Some(2), pace, now, &ApiRole::Read);
        assert_eq!(view.waited_ms, 30_000);
        assert_eq!(view.estimated_wait_ms, Some(180_000));
        // Without a pace, or not waiting (ringing), there is nothing to estimate.
        let view = EntryView::of(&entry, Some(2), None, now, &ApiRole::Read);
        assert_eq!(view.estimated_wait_ms, None);
        let view = EntryView::of(&entry, None, pace, now, &ApiRole::Read);
        assert_eq!(view.estimated_wait_ms, None);
    }
}
