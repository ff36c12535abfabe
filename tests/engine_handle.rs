//! The engine handle and the domain event bus, end to end: what an HTTP API or a dashboard
//! will do through them, against the simulator and a real Redis, with two daemons.

mod common;
mod engine;

use std::time::Duration;

use callbackd::engine::CommandError;
use callbackd::queue::{AgentId, AgentState, EntryId, QueueName};
use callbackd::sim::{Caller, Party, SimConfig};
use callbackd::store::{DomainEvent, EventKind, EventStream, StateSource, StoreError};
use engine::{config_with, field, requesting, until, Rig};
use tokio::sync::broadcast;

const OFFER: &str = "/sounds/offer.wav";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn support() -> QueueName {
    QueueName::new("support").unwrap()
}

fn alice() -> AgentId {
    AgentId::new("alice").unwrap()
}

/// A callback line whose agents ring for ten simulated minutes: a phone that stops ringing
/// soon after a cancel stopped because of it.
async fn start(parties: &[(&str, Party)]) -> Rig {
    let config = config_with(
        "",
        &format!(
            r#"
[lines.callback]
enabled = true
offer_greeting = "{OFFER}"
country = "DE"
"#
        ),
    )
    .replace("ring_time_secs = 5", "ring_time_secs = 600");
    Rig::start_custom(&config, parties, |sim: &mut SimConfig| {
        sim.default_media = Duration::from_millis(200);
        sim.media.push((OFFER.to_owned(), Duration::from_secs(10)));
    })
    .await
}

/// Presses 2 during the offer, 1 for their own number, 1 to confirm, each on hearing it.
fn asks_for_a_callback(number: &str) -> Caller {
    requesting(Caller::number(number), OFFER)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_through_one_daemon_stops_the_phone_another_daemon_rings() {
    let rig = start(&[("user/1001", Party::answers_after(secs(3600.0)))]).await;
    // Away counts as taking queue calls: callbacks are offered, and wait for her.
    rig.set_agent("alice", AgentState::Away).await;
    let mut ringing_daemon = rig.daemon("d1");
    rig.call(asks_for_a_callback("+4930555777"));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    let entry = EntryId::new(field(&requested[0], "entry")).unwrap();
    // Alice comes back through d1's handle; d1 rings her for the callback.
    let previous = ringing_daemon
        .handle()
        .await
        .set_agent_state(alice(), AgentState::Available, StateSource::Cli)
        .await
        .unwrap();
    assert_eq!(previous, AgentState::Away);
    rig.wait_for(EventKind::Offered, 1).await;
    let agent_leg = || async {
        rig.sim
            .records()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.destination.contains("1001"))
    };
    until("alice's phone rings", || async {
        agent_leg().await.is_some()
    })
    .await;

    // An operator's tool on another daemon cancels it.
    let mut other = rig.daemon("d2");
    let operator = other.handle().await;
    operator
        .cancel_callback(support(), entry.clone())
        .await
        .unwrap();
    rig.wait_for(EventKind::Canceled, 1).await;
    until("alice's phone stops ringing", || async {
        agent_leg().await.is_some_and(|r| r.hangup_cause.is_some())
    })
    .await;
    until("alice is free again", || async {
        rig.agent_state("alice").await == AgentState::Available
    })
    .await;
    // The canceled offer is not recorded as her missing it, and a second cancel is refused.
    assert!(rig.events_of(EventKind::AgentNoAnswer).await.is_empty());
    let again = operator.cancel_callback(support(), entry).await;
    assert!(matches!(again, Err(CommandError::Store(_))), "{again:?}");
    ringing_daemon.stop().await;
    other.stop().await;
}

/// The next event of `kind` on the bus, within a generous deadline.
async fn next_of(bus: &mut broadcast::Receiver<DomainEvent>, kind: EventKind) -> DomainEvent {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let event = bus.recv().await.unwrap();
            if event.event.kind == kind {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind:?} on the bus"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_carries_every_daemons_events_with_their_stream_ids() {
    let rig = start(&[]).await;
    let mut daemon = rig.daemon("d1");
    let handle = daemon.handle().await;
    let mut bus = handle.subscribe();
    // A caller's arrival, which the engine writes once it runs, then a change made
    // elsewhere (the CLI writes Redis directly).
    rig.call(Caller::number("+4930555777").hang_up_after(secs(30.0)));
    let entered = next_of(&mut bus, EventKind::Entered).await;
    assert_eq!(entered.stream, EventStream::Queue(support()));
    rig.set_agent("bob", AgentState::Away).await;
    let agent_event = next_of(&mut bus, EventKind::AgentState).await;
    assert_eq!(agent_event.stream, EventStream::Agents);
    assert_eq!(agent_event.event.field("agent"), Some("bob"));
    assert_eq!(agent_event.event.field("to"), Some("away"));
    // The same events, with the same ids, as the streams hold.
    let stored = rig.events_of(EventKind::Entered).await;
    assert_eq!(stored[0].id, entered.event.id);

    // Commands the store refuses say why; a stopped engine says it is gone.
    let unknown = handle
        .set_agent_state(
            AgentId::new("mallory").unwrap(),
            AgentState::Available,
            StateSource::Cli,
        )
        .await;
    assert!(
        matches!(
            unknown,
            Err(CommandError::Store(StoreError::UnknownAgent(_)))
        ),
        "{unknown:?}"
    );
    let nothing = handle
        .cancel_callback(support(), EntryId::new("no-such-entry").unwrap())
        .await;
    assert!(
        matches!(nothing, Err(CommandError::Store(_))),
        "{nothing:?}"
    );
    daemon.stop().await;
    let gone = handle
        .set_agent_state(alice(), AgentState::Away, StateSource::Cli)
        .await;
    assert!(matches!(gone, Err(CommandError::EngineGone)), "{gone:?}");
}
