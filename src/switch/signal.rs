//! What the engine needs to know from FreeSWITCH's events, as typed signals, and the
//! channel variables callbackd tags its calls with.
//!
//! The subscription and filters live here too: they and the classification must agree, or
//! the daemon would either miss events it needs or read a busy switch's whole firehose.

use super::ChannelId;
use crate::esl::Event;
use crate::queue::Timestamp;

/// Channel variable the dialplan sets on a queue call (and FreeSWITCH echoes on its events).
pub const VAR_QUEUE: &str = "callbackd_queue";
/// Channel variable naming the line the caller dialed.
pub const VAR_LINE: &str = "callbackd_line";
/// Origination variable marking the legs callbackd places (`agent`).
pub const VAR_ROLE: &str = "callbackd_role";
/// Origination variable carrying the queue of the entry an agent leg was placed for.
pub const VAR_ENTRY_QUEUE: &str = "callbackd_entry_queue";
/// Origination variable carrying the entry an agent leg was placed for.
pub const VAR_ENTRY: &str = "callbackd_entry";
/// Origination variable naming the agent of an agent leg.
pub const VAR_AGENT: &str = "callbackd_agent";
/// Origination variable naming the daemon that placed a leg, so that only it (or its
/// next life, after a restart) picks the leg up again.
pub const VAR_DAEMON: &str = "callbackd_daemon";
/// The CUSTOM subclass agent feature codes raise.
pub const AGENT_SUBCLASS: &str = "callbackd::agent";

/// The events the daemon subscribes to.
pub fn subscription() -> Vec<String> {
    [
        "CHANNEL_PARK",
        "CHANNEL_BRIDGE",
        "CHANNEL_HANGUP",
        "CHANNEL_EXECUTE_COMPLETE",
        "DTMF",
        "BACKGROUND_JOB",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([AGENT_SUBCLASS.to_owned()])
    .collect()
}

/// Filters (ORed by FreeSWITCH) that let through only what concerns callbackd: events of
/// channels tagged for a configured queue or placed by callbackd, and the event kinds that
/// carry no channel variables at all. DTMF events have none (see the flow recordings), so
/// they pass by name and are matched to callers by Unique-ID.
pub fn filters<'a>(queues: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = queues
        .into_iter()
        .map(|q| (format!("variable_{VAR_QUEUE}"), q.to_owned()))
        .collect();
    f.push((format!("variable_{VAR_ROLE}"), "agent".into()));
    f.push((format!("variable_{VAR_ROLE}"), "customer".into()));
    f.push(("Event-Name".into(), "DTMF".into()));
    f.push(("Event-Name".into(), "BACKGROUND_JOB".into()));
    f.push(("Event-Subclass".into(), AGENT_SUBCLASS.into()));
    f
}

/// One thing that happened on the switch that the engine acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A call tagged by the dialplan is parked: a new caller, or one back from a bridge.
    CallerParked(ParkedCaller),
    /// A leg callbackd placed is parked (answered), with the entry and agent it was for.
    LegParked {
        leg: ChannelId,
        queue: String,
        entry: String,
        agent: String,
    },
    /// A customer leg answered (parked).
    CustomerParked {
        leg: ChannelId,
    },
    Dtmf {
        channel: ChannelId,
        digit: char,
    },
    Bridged {
        a: ChannelId,
        b: ChannelId,
    },
    CallerHangup {
        channel: ChannelId,
        queue: String,
        cause: String,
    },
    LegHangup {
        leg: ChannelId,
        cause: String,
    },
    /// `agent` is the id or extension the feature code reported; `action` the new state.
    AgentAction {
        agent: String,
        action: String,
    },
}

/// A parked queue call as its CHANNEL_PARK describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedCaller {
    pub channel: ChannelId,
    pub queue: String,
    pub line: String,
    pub caller_id_number: Option<String>,
    pub sip_from_user: Option<String>,
    /// When the call arrived, if known better than "now" (a caller found after a restart).
    pub arrived: Option<Timestamp>,
}

fn channel(event: &Event) -> Option<ChannelId> {
    ChannelId::new(&event.unique_id()?).ok()
}

/// Read `event` as a [`Signal`], or `None` when it is nothing the engine acts on.
pub fn classify(event: &Event) -> Option<Signal> {
    let name = event.name()?;
    match name.as_ref() {
        "CHANNEL_PARK" => {
            let channel = channel(event)?;
            if let Some(role) = event.variable(VAR_ROLE) {
                if role != "agent" {
                    return Some(Signal::CustomerParked { leg: channel });
                }
                let var = |name| event.variable(name).unwrap_or_default().into_owned();
                return Some(Signal::LegParked {
                    leg: channel,
                    queue: var(VAR_ENTRY_QUEUE),
                    entry: var(VAR_ENTRY),
                    agent: var(VAR_AGENT),
                });
            }
            let queue = event.variable(VAR_QUEUE)?.into_owned();
            Some(Signal::CallerParked(ParkedCaller {
                channel,
                queue,
                line: event.variable(VAR_LINE).unwrap_or_default().into_owned(),
                caller_id_number: event
                    .header("Caller-Caller-ID-Number")
                    .map(|c| c.into_owned()),
                sip_from_user: event.variable("sip_from_user").map(|c| c.into_owned()),
                arrived: None,
            }))
        }
        "DTMF" => {
            let digit = event.header("DTMF-Digit")?.chars().next()?;
            Some(Signal::Dtmf {
                channel: channel(event)?,
                digit,
            })
        }
        "CHANNEL_BRIDGE" => Some(Signal::Bridged {
            a: ChannelId::new(&event.header("Bridge-A-Unique-ID")?).ok()?,
            b: ChannelId::new(&event.header("Bridge-B-Unique-ID")?).ok()?,
        }),
        "CHANNEL_HANGUP" => {
            let cause = event
                .header("Hangup-Cause")
                .unwrap_or_default()
                .into_owned();
            let channel = channel(event)?;
            if event.variable(VAR_ROLE).is_some() {
                return Some(Signal::LegHangup {
                    leg: channel,
                    cause,
                });
            }
            Some(Signal::CallerHangup {
                channel,
                queue: event.variable(VAR_QUEUE)?.into_owned(),
                cause,
            })
        }
        "CUSTOM" if event.subclass().as_deref() == Some(AGENT_SUBCLASS) => {
            Some(Signal::AgentAction {
                agent: event.header("agent")?.into_owned(),
                action: event.header("action")?.into_owned(),
            })
        }
        _ => None,
    }
}
