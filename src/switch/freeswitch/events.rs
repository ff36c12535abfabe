//! FreeSWITCH's events read as the engine's [`Signal`]s, with the subscription and
//! filters that bring exactly those events.
//!
//! They live together because they must agree, or the daemon would either miss events it
//! needs or read a busy switch's whole firehose.

use crate::esl::{ClientConfig, Event};
use crate::switch::tags::{AGENT, ENTRY, ENTRY_QUEUE, LINE, QUEUE, ROLE};
use crate::switch::{CallId, ParkedCaller, Signal};

/// The CUSTOM subclass agent feature codes raise.
pub const AGENT_SUBCLASS: &str = "callbackd::agent";

/// `base` (address, password, backoff) with the subscription and filters that bring the
/// events [`classify`] reads, and nothing else, for the given queues.
pub fn client_config<'a>(
    mut base: ClientConfig,
    queues: impl IntoIterator<Item = &'a str>,
) -> ClientConfig {
    base.events = [
        "CHANNEL_PARK",
        "CHANNEL_BRIDGE",
        "CHANNEL_HANGUP",
        "CHANNEL_EXECUTE_COMPLETE",
        "DTMF",
        "BACKGROUND_JOB",
    ]
    .map(str::to_owned)
    .to_vec();
    base.custom_subclasses = vec![AGENT_SUBCLASS.to_owned()];
    base.filters = filters(queues);
    base
}

/// Filters (ORed by FreeSWITCH) that let through only what concerns callbackd: events of
/// channels tagged for a configured queue or placed by callbackd, and the event kinds that
/// carry no channel variables at all. DTMF events have none (see the flow recordings), so
/// they pass by name and are matched to callers by Unique-ID.
fn filters<'a>(queues: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = queues
        .into_iter()
        .map(|q| (format!("variable_{QUEUE}"), q.to_owned()))
        .collect();
    f.push((format!("variable_{ROLE}"), "agent".into()));
    f.push((format!("variable_{ROLE}"), "customer".into()));
    f.push(("Event-Name".into(), "DTMF".into()));
    f.push(("Event-Name".into(), "BACKGROUND_JOB".into()));
    f.push(("Event-Subclass".into(), AGENT_SUBCLASS.into()));
    f
}

fn channel(event: &Event) -> Option<CallId> {
    CallId::new(&event.unique_id()?).ok()
}

/// The call and digit of a DTMF event (which [`classify`] leaves to the key ledger).
pub fn dtmf(event: &Event) -> Option<(CallId, char)> {
    if event.name()? != "DTMF" {
        return None;
    }
    Some((channel(event)?, event.header("DTMF-Digit")?.chars().next()?))
}

/// Read `event` as a [`Signal`], or `None` when it is nothing the engine acts on.
pub fn classify(event: &Event) -> Option<Signal> {
    let name = event.name()?;
    match name.as_ref() {
        "CHANNEL_PARK" => {
            let channel = channel(event)?;
            if let Some(role) = event.variable(ROLE) {
                if role != "agent" {
                    return Some(Signal::CustomerParked { leg: channel });
                }
                let var = |name| event.variable(name).unwrap_or_default().into_owned();
                return Some(Signal::LegParked {
                    leg: channel,
                    queue: var(ENTRY_QUEUE),
                    entry: var(ENTRY),
                    agent: var(AGENT),
                });
            }
            let queue = event.variable(QUEUE)?.into_owned();
            Some(Signal::CallerParked(ParkedCaller {
                channel,
                queue,
                line: event.variable(LINE).unwrap_or_default().into_owned(),
                caller_id_number: event
                    .header("Caller-Caller-ID-Number")
                    .map(|c| c.into_owned()),
                sip_from_user: event.variable("sip_from_user").map(|c| c.into_owned()),
                arrived: None,
            }))
        }
        "CHANNEL_BRIDGE" => Some(Signal::Bridged {
            a: CallId::new(&event.header("Bridge-A-Unique-ID")?).ok()?,
            b: CallId::new(&event.header("Bridge-B-Unique-ID")?).ok()?,
        }),
        "CHANNEL_HANGUP" => {
            let cause = event
                .header("Hangup-Cause")
                .unwrap_or_default()
                .into_owned();
            let channel = channel(event)?;
            if event.variable(ROLE).is_some() {
                return Some(Signal::LegHangup {
                    leg: channel,
                    cause,
                });
            }
            Some(Signal::CallerHangup {
                channel,
                queue: event.variable(QUEUE)?.into_owned(),
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
