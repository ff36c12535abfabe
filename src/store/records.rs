//! How entries, agents, timers and events are laid out as Redis hash fields and stream
//! entries, and read back into domain values; a record that does not parse is an error.
//!
//! An entry's hold-offs are `held_off = "alice:1700000030000,bob:…"` (agent, then the ms
//! from which they may be offered it again), and the agents who declined a callback are
//! `declined = "alice,…"`, which only the scripts read. Entries written before hold-offs
//! existed name the agents who did not take them in `tried`, for good and without a time:
//! that field is ignored, so those agents may be offered the entry again at once (a missed
//! ring is no longer a reason to leave a caller waiting, and a decline among them is not
//! known for one).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use crate::queue::{
    Agent, AgentId, AgentState, CallbackRequest, CloseReason, Entry, EntryId, EntryKind,
    EntryStatus, LineName, QueueName, ServedQueue, Timestamp,
};
use crate::switch::{CallId, PhoneNumber, VarValue};

use super::StoreError;

/// The hash fields of a new entry.
pub(crate) fn entry_fields(entry: &Entry) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", entry.id.to_string()),
        ("queue", entry.queue.to_string()),
        ("line", entry.line.to_string()),
        ("position", entry.position.to_string()),
        (
            "caller_id",
            entry
                .caller_id
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
        ),
        ("status", "waiting".to_owned()),
        (
            "held_off",
            entry
                .held_off
                .iter()
                .map(|(agent, until)| format!("{agent}:{until}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("offered_to", String::new()),
    ];
    match &entry.kind {
        EntryKind::LiveCaller { channel } => {
            fields.push(("kind", "live".to_owned()));
            fields.push(("channel", channel.to_string()));
        }
        EntryKind::Callback(req) => {
            fields.push(("kind", "callback".to_owned()));
            fields.push(("number", req.number.to_string()));
            fields.push(("requested_at", req.requested_at.to_string()));
            fields.push(("attempts", req.attempts.to_string()));
        }
    }
    fields
}

struct Record<'a> {
    key: &'a str,
    fields: &'a HashMap<String, String>,
}

impl Record<'_> {
    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            key: self.key.to_owned(),
            reason: reason.into(),
        }
    }

    fn get(&self, field: &str) -> Result<&str, StoreError> {
        self.fields
            .get(field)
            .map(String::as_str)
            .ok_or_else(|| self.corrupt(format!("missing field {field}")))
    }

    fn opt(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn parse<T: FromStr>(&self, field: &str) -> Result<T, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.get(field)?;
        raw.parse()
            .map_err(|e| self.corrupt(format!("field {field} = {raw:?}: {e}")))
    }

    fn time(&self, field: &str) -> Result<Timestamp, StoreError> {
        self.parse::<u64>(field).map(Timestamp::from_millis)
    }

    /// `agent:until_ms,…`
    fn held_off(&self, field: &str) -> Result<BTreeMap<AgentId, Timestamp>, StoreError> {
        self.opt(field)
            .unwrap_or_default()
            .split(',')
            .filter(|item| !item.is_empty())
            .map(|item| {
                let bad = || self.corrupt(format!("{field} item {item:?}"));
                let (agent, until) = item.split_once(':').ok_or_else(bad)?;
                let agent = AgentId::new(agent).map_err(|_| bad())?;
                let until = until.parse::<u64>().map_err(|_| bad())?;
                Ok((agent, Timestamp::from_millis(until)))
            })
            .collect()
    }

    fn agents(&self, field: &str) -> Result<Vec<AgentId>, StoreError> {
        self.opt(field)
            .unwrap_or_default()
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| AgentId::new(a).map_err(|e| self.corrupt(e.to_string())))
            .collect()
    }
}

macro_rules! validated {
    ($rec:expr, $ty:ty, $field:expr) => {
        <$ty>::new($rec.get($field)?).map_err(|e| $rec.corrupt(e.to_string()))
    };
}

/// Records from a script's HGETALL replies, each one flat list of fields and values, of
/// keys named `prefix` + the record's `id` field (the key only names a record in errors).
/// A record that does not parse goes to `skip` instead: one bad record never hides the rest.
pub(crate) fn from_hashes<T>(
    replies: impl IntoIterator<Item = Vec<String>>,
    prefix: &str,
    parse: impl Fn(&str, &HashMap<String, String>) -> Result<T, StoreError>,
    skip: impl Fn(&StoreError),
) -> Vec<T> {
    replies
        .into_iter()
        .filter_map(|flat| {
            let mut items = flat.into_iter();
            let mut fields = HashMap::new();
            while let (Some(field), Some(value)) = (items.next(), items.next()) {
                fields.insert(field, value);
            }
            let key = format!("{prefix}{}", fields.get("id").map_or("", String::as_str));
            parse(&key, &fields).inspect_err(&skip).ok()
        })
        .collect()
}

pub(crate) fn entry_from(key: &str, fields: &HashMap<String, String>) -> Result<Entry, StoreError> {
    let r = Record { key, fields };
    let kind = match r.get("kind")? {
        "live" => EntryKind::LiveCaller {
            channel: validated!(r, CallId, "channel")?,
        },
        "callback" => EntryKind::Callback(CallbackRequest {
            number: validated!(r, PhoneNumber, "number")?,
            requested_at: r.time("requested_at")?,
            attempts: r.parse("attempts")?,
        }),
        other => return Err(r.corrupt(format!("unknown kind {other:?}"))),
    };
    let status = match r.get("status")? {
        "waiting" => EntryStatus::Waiting,
        "offered" => EntryStatus::Offered {
            agents: r.agents("offered_to")?,
            since: r.time("offered_at")?,
        },
        "dialing" => EntryStatus::Dialing {
            agent: validated!(r, AgentId, "dialing_agent")?,
            since: r.time("dialing_since")?,
        },
        "retry_wait" => EntryStatus::RetryWait {
            due: r.time("retry_at")?,
        },
        "connected" => EntryStatus::Connected {
            agent: validated!(r, AgentId, "connected_agent")?,
            at: r.time("connected_at")?,
        },
        "closed" => EntryStatus::Closed {
            reason: {
                let raw = r.get("closed_reason")?;
                CloseReason::parse(raw)
                    .ok_or_else(|| r.corrupt(format!("unknown close reason {raw:?}")))?
            },
            at: r.time("closed_at")?,
        },
        other => return Err(r.corrupt(format!("unknown status {other:?}"))),
    };
    Ok(Entry {
        id: validated!(r, EntryId, "id")?,
        queue: validated!(r, QueueName, "queue")?,
        line: validated!(r, LineName, "line")?,
        position: r.time("position")?,
        caller_id: r
            .opt("caller_id")
            .map(VarValue::new)
            .transpose()
            .map_err(|e| r.corrupt(e.to_string()))?,
        kind,
        status,
        held_off: r.held_off("held_off")?,
    })
}

/// `support:1,sales:2`
pub(crate) fn encode_serves(serves: &[ServedQueue]) -> String {
    serves
        .iter()
        .map(|s| format!("{}:{}", s.queue, s.priority))
        .collect::<Vec<_>>()
        .join(",")
}

/// An agent as stored; a booking whose lease ended before `now` is no booking.
pub(crate) fn agent_from(
    key: &str,
    fields: &HashMap<String, String>,
    now: Timestamp,
) -> Result<Agent, StoreError> {
    let r = Record { key, fields };
    let state = r.parse::<AgentState>("state")?;
    let serves = r
        .opt("serves")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (queue, priority) = s
                .split_once(':')
                .ok_or_else(|| r.corrupt(format!("serves item {s:?}")))?;
            Ok(ServedQueue {
                queue: QueueName::new(queue).map_err(|e| r.corrupt(e.to_string()))?,
                priority: priority
                    .parse()
                    .map_err(|_| r.corrupt(format!("serves item {s:?}")))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let booked_until = r.opt("booked_until").unwrap_or("0");
    let booked_until = booked_until
        .parse::<u64>()
        .map_err(|_| r.corrupt(format!("booked_until {booked_until:?}")))?;
    let booked = match r.opt("booked") {
        Some(entry) if booked_until >= now.as_millis() => {
            Some(EntryId::new(entry).map_err(|e| r.corrupt(e.to_string()))?)
        }
        _ => None,
    };
    Ok(Agent {
        id: validated!(r, AgentId, "id")?,
        state,
        idle_since: r.time("idle_since")?,
        // Agents registered before it was kept: their idle time is the best there is.
        state_since: match r.opt("state_since") {
            Some(_) => r.time("state_since")?,
            None => r.time("idle_since")?,
        },
        serves,
        booked,
        missed_in_a_row: r.opt("missed").unwrap_or("0").parse().unwrap_or(0),
    })
}

/// What an event in a stream records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Entered,
    Offered,
    OfferWithdrawn,
    AgentNoAnswer,
    Connected,
    Abandoned,
    MaxWaitExit,
    AgentState,
    Requested,
    DuplicateIgnored,
    Declined,
    Accepted,
    DialingCustomer,
    CustomerAnswered,
    AttemptFailed,
    Completed,
    Expired,
    DeclinedByAll,
    Canceled,
    CallbackKept,
    CallbackCanceledByCaller,
}

pub(crate) const EVENT_KINDS: [EventKind; 21] = [
    EventKind::Entered,
    EventKind::Offered,
    EventKind::OfferWithdrawn,
    EventKind::AgentNoAnswer,
    EventKind::Connected,
    EventKind::Abandoned,
    EventKind::MaxWaitExit,
    EventKind::AgentState,
    EventKind::Requested,
    EventKind::DuplicateIgnored,
    EventKind::Declined,
    EventKind::Accepted,
    EventKind::DialingCustomer,
    EventKind::CustomerAnswered,
    EventKind::AttemptFailed,
    EventKind::Completed,
    EventKind::Expired,
    EventKind::DeclinedByAll,
    EventKind::Canceled,
    EventKind::CallbackKept,
    EventKind::CallbackCanceledByCaller,
];

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Entered => "entered",
            Self::Offered => "offered",
            Self::OfferWithdrawn => "offer_withdrawn",
            Self::AgentNoAnswer => "agent_no_answer",
            Self::Connected => "connected",
            Self::Abandoned => "abandoned",
            Self::MaxWaitExit => "max_wait_exit",
            Self::AgentState => "agent_state",
            Self::Requested => "requested",
            Self::DuplicateIgnored => "duplicate_ignored",
            Self::Declined => "declined",
            Self::Accepted => "accepted",
            Self::DialingCustomer => "dialing_customer",
            Self::CustomerAnswered => "customer_answered",
            Self::AttemptFailed => "attempt_failed",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::DeclinedByAll => "declined_by_all",
            Self::Canceled => "canceled",
            Self::CallbackKept => "callback_kept",
            Self::CallbackCanceledByCaller => "callback_canceled_by_caller",
        }
    }

    /// The kind named `s` (as [`Self::as_str`] writes it).
    pub fn named(s: &str) -> Option<Self> {
        EVENT_KINDS.into_iter().find(|k| k.as_str() == s)
    }

    /// A moment a hosted contact-center suite opens a ticket; such events carry `ticket = 1`.
    /// The request is closed by acceptance at `accepted`, not `customer_answered`: from then
    /// on it is one agent's, and whether the customer answers is a separate outcome with its
    /// own record (`attempt_failed` is a ticket of its own).
    pub fn opens_ticket(self) -> bool {
        matches!(
            self,
            Self::Accepted | Self::DeclinedByAll | Self::Expired | Self::AttemptFailed
        )
    }
}

/// One event read back from a stream: its stream id, kind and fields (queue, line, entry,
/// agent, `at`, `waited_ms`, `rang_ms`, … as the event has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub kind: EventKind,
    pub fields: HashMap<String, String>,
}

impl StoredEvent {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

pub(crate) fn event_from(
    key: &str,
    id: String,
    fields: HashMap<String, String>,
) -> Result<StoredEvent, StoreError> {
    let kind = fields
        .get("event")
        .and_then(|k| EventKind::named(k))
        .ok_or_else(|| StoreError::Corrupt {
            key: key.to_owned(),
            reason: format!("event {id} has no known kind"),
        })?;
    Ok(StoredEvent { id, kind, fields })
}

/// A durable timer: due at a time, claimable by any daemon.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Timer {
    /// A live caller's max wait ends.
    MaxWait { queue: QueueName, entry: EntryId },
    /// An offer rang past its ring time without an outcome (its daemon may have died).
    OfferTimeout { queue: QueueName, entry: EntryId },
    /// An agent's wrap-up ends.
    WrapUpEnd { agent: AgentId },
    /// A callback's window from its request ends.
    CallbackExpiry { queue: QueueName, entry: EntryId },
    /// A callback whose customer leg failed may wait for an agent again.
    CallbackRetry { queue: QueueName, entry: EntryId },
    /// An agent's hold-off from an entry ends: routing looks again, so an entry whose only
    /// agents were held off is offered without anyone polling for it.
    HoldOffEnd {
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
    },
}

/// Which timer set a timer lives in: each queue's slot, or the agents'.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TimerScope {
    Queue(QueueName),
    Agents,
}

impl Timer {
    pub fn scope(&self) -> TimerScope {
        match self {
            Self::MaxWait { queue, .. }
            | Self::OfferTimeout { queue, .. }
            | Self::CallbackExpiry { queue, .. }
            | Self::CallbackRetry { queue, .. }
            | Self::HoldOffEnd { queue, .. } => TimerScope::Queue(queue.clone()),
            Self::WrapUpEnd { .. } => TimerScope::Agents,
        }
    }

    /// The member in the timers sorted set: `<kind>:<ids>`.
    pub(crate) fn member(&self) -> String {
        match self {
            Self::MaxWait { entry, .. } => format!("{MAX_WAIT}:{entry}"),
            Self::OfferTimeout { entry, .. } => format!("{OFFER_TIMEOUT}:{entry}"),
            Self::WrapUpEnd { agent } => format!("{WRAP_UP_END}:{agent}"),
            Self::CallbackExpiry { entry, .. } => format!("{CALLBACK_EXPIRY}:{entry}"),
            Self::CallbackRetry { entry, .. } => format!("{CALLBACK_RETRY}:{entry}"),
            // Ids never hold `:`, so the entry and the agent split apart again.
            Self::HoldOffEnd { entry, agent, .. } => format!("{HOLD_OFF_END}:{entry}:{agent}"),
        }
    }

    /// What every max-wait timer's member starts with.
    pub(crate) fn max_wait_start() -> String {
        format!("{MAX_WAIT}:")
    }

    pub(crate) fn from_member(scope: &TimerScope, member: &str) -> Option<Self> {
        let (kind, id) = member.split_once(':')?;
        match (scope, kind) {
            (TimerScope::Queue(queue), MAX_WAIT) => Some(Self::MaxWait {
                queue: queue.clone(),
                entry: EntryId::new(id).ok()?,
            }),
            (TimerScope::Queue(queue), OFFER_TIMEOUT) => Some(Self::OfferTimeout {
                queue: queue.clone(),
                entry: EntryId::new(id).ok()?,
            }),
            (TimerScope::Queue(queue), CALLBACK_EXPIRY) => Some(Self::CallbackExpiry {
                queue: queue.clone(),
                entry: EntryId::new(id).ok()?,
            }),
            (TimerScope::Queue(queue), CALLBACK_RETRY) => Some(Self::CallbackRetry {
                queue: queue.clone(),
                entry: EntryId::new(id).ok()?,
            }),
            (TimerScope::Queue(queue), HOLD_OFF_END) => {
                let (entry, agent) = id.split_once(':')?;
                Some(Self::HoldOffEnd {
                    queue: queue.clone(),
                    entry: EntryId::new(entry).ok()?,
                    agent: AgentId::new(agent).ok()?,
                })
            }
            (TimerScope::Agents, WRAP_UP_END) => Some(Self::WrapUpEnd {
                agent: AgentId::new(id).ok()?,
            }),
            _ => None,
        }
    }
}

/// The kinds timer members start with. The scripts that build an entry's timer members
/// themselves get the names from [`LUA_ENTRY_TIMERS`]; the others are given whole members.
const MAX_WAIT: &str = "max_wait";
const OFFER_TIMEOUT: &str = "offer";
const WRAP_UP_END: &str = "wrap_up";
const CALLBACK_EXPIRY: &str = "cb_expiry";
const CALLBACK_RETRY: &str = "cb_retry";
const HOLD_OFF_END: &str = "hold_off";

/// The timers of one entry whose members the Lua scripts build from its id: the name a
/// script knows each by (`TIMER.<name>`) and the start of its member (`TIMER.<name> .. id`).
pub(crate) const LUA_ENTRY_TIMERS: [(&str, &str); 4] = [
    ("max_wait", MAX_WAIT),
    ("offer_timeout", OFFER_TIMEOUT),
    ("callback_expiry", CALLBACK_EXPIRY),
    ("callback_retry", CALLBACK_RETRY),
];

/// Every timer kind, for tests that check no script spells one out by itself.
#[cfg(test)]
pub(crate) const TIMER_KINDS: [&str; 6] = [
    MAX_WAIT,
    OFFER_TIMEOUT,
    WRAP_UP_END,
    CALLBACK_EXPIRY,
    CALLBACK_RETRY,
    HOLD_OFF_END,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::ManualClock;

    #[test]
    fn entries_round_trip_through_hash_fields() {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_123));
        let mut entry = Entry::live_caller(
            QueueName::new("support").unwrap(),
            LineName::new("main").unwrap(),
            CallId::random(),
            VarValue::new("+4930111").ok(),
            &clock,
        );
        entry.held_off.insert(
            AgentId::new("alice").unwrap(),
            Timestamp::from_millis(1_700_000_030_123),
        );
        entry.held_off.insert(
            AgentId::new("bob").unwrap(),
            Timestamp::from_millis(1_700_000_060_000),
        );
        let fields: HashMap<String, String> = entry_fields(&entry)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(entry_from("k", &fields).unwrap(), entry);

        let cb = entry.into_callback(PhoneNumber::new("+4930222").unwrap(), &clock);
        let fields: HashMap<String, String> = entry_fields(&cb)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(entry_from("k", &fields).unwrap(), cb);
    }

    #[test]
    fn an_entry_written_before_hold_offs_reads_with_none() {
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_123));
        let entry = Entry::live_caller(
            QueueName::new("support").unwrap(),
            LineName::new("main").unwrap(),
            CallId::random(),
            None,
            &clock,
        );
        let mut fields: HashMap<String, String> = entry_fields(&entry)
            .into_iter()
            .filter(|(k, _)| *k != "held_off")
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        fields.insert("tried".into(), "alice,bob".into());
        assert_eq!(entry_from("k", &fields).unwrap(), entry);
    }

    #[test]
    fn event_kinds_round_trip_through_their_names() {
        for kind in EVENT_KINDS {
            assert_eq!(EventKind::named(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn timers_round_trip_through_members() {
        let q = QueueName::new("support").unwrap();
        for timer in [
            Timer::MaxWait {
                queue: q.clone(),
                entry: EntryId::new("e1").unwrap(),
            },
            Timer::OfferTimeout {
                queue: q.clone(),
                entry: EntryId::new("e1").unwrap(),
            },
            Timer::WrapUpEnd {
                agent: AgentId::new("alice").unwrap(),
            },
            Timer::CallbackExpiry {
                queue: q.clone(),
                entry: EntryId::new("e1").unwrap(),
            },
            Timer::CallbackRetry {
                queue: q.clone(),
                entry: EntryId::new("e1").unwrap(),
            },
            Timer::HoldOffEnd {
                queue: q.clone(),
                entry: EntryId::new("e1").unwrap(),
                agent: AgentId::new("alice").unwrap(),
            },
        ] {
            assert_eq!(
                Timer::from_member(&timer.scope(), &timer.member()),
                Some(timer)
            );
        }
    }
}
