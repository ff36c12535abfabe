//! The engine handle and the domain event bus, end to end: what an HTTP API or a dashboard
//! will do through them, against the simulator and a real Redis, with two daemons.

mod common;
mod engine;

use std::time::Duration;

use callbackd::callback::NumberRejected;
use callbackd::engine::{CommandError, EngineHandle};
use callbackd::queue::{AgentId, AgentState, EntryId, EntryStatus, LineName, QueueName};
use callbackd::sim::{CallRecord, Caller, Party, SimConfig};
use callbackd::store::{DomainEvent, EventKind, EventStream, StateSource, StoreError};
use engine::{
    agent_pressing, config_with, customer_answers, field, requesting, sim_secs, until, until_some,
    Rig,
};
use tokio::sync::broadcast;

const OFFER: &str = "/sounds/offer.wav";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn support() -> QueueName {
    QueueName::new("support").unwrap()
}

fn main_line() -> LineName {
    LineName::new("main").unwrap()
}

fn alice() -> AgentId {
    AgentId::new("alice").unwrap()
}

fn bob() -> AgentId {
    AgentId::new("bob").unwrap()
}

/// A callback line whose agents ring for ten simulated minutes: a phone that stops ringing
/// soon after a cancel stopped because of it.
async fn start(parties: &[(&str, Party)]) -> Rig {
    start_with(false, parties).await
}

/// The first prompt of the whisper, which names the callback's number.
const WHISPER: &str = "/sounds/en/callbackd/agent-callback-for.wav";

/// [`start`]; with `long_whisper`, the whisper's first prompt plays a simulated minute, so
/// it still plays when a test answers for the agent, however slow the machine.
async fn start_with(long_whisper: bool, parties: &[(&str, Party)]) -> Rig {
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
        if long_whisper {
            sim.media
                .push((WHISPER.to_owned(), Duration::from_secs(60)));
        }
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
/// A callback for `number` created through `handle`, due at once, in queue `support` from
/// line `main`.
async fn created(handle: &EngineHandle, number: &str) -> EntryId {
    handle
        .create_callback(support(), main_line(), number, None)
        .await
        .unwrap()
}

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

/// An agent who answers after 1 s and then only listens.
fn listens() -> Party {
    Party::answers_after(secs(1.0)).hang_up_after(secs(600.0))
}

/// The simulator's record of the (latest) leg to `contact`, once there is one.
async fn leg_to(rig: &Rig, contact: &str) -> Option<CallRecord> {
    rig.sim
        .records()
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|r| r.destination.contains(contact) || r.channel_name.contains(contact))
}

/// Wait until the agent on `contact` hears whom a callback is for.
async fn hears_whisper(rig: &Rig, contact: &str) {
    until(&format!("{contact} hears the whisper"), || async {
        leg_to(rig, contact)
            .await
            .is_some_and(|r| r.media.iter().any(|m| m.contains(WHISPER)))
    })
    .await;
}

/// A daemon's handle, with the daemon.
async fn daemon(rig: &Rig, id: &str) -> (engine::Daemon, EngineHandle) {
    let mut daemon = rig.daemon(id);
    let handle = daemon.handle().await;
    (daemon, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_callback_waits_behind_the_callers_there_and_is_dialed_like_a_phone_one() {
    let rig = start(&[
        ("user/1001", agent_pressing("1")),
        ("user/1002", listens()),
        ("sofia/gateway/carrier/+4930555777", customer_answers()),
    ])
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    rig.set_agent("bob", AgentState::Away).await;
    let (d1, handle) = daemon(&rig, "d1").await;
    rig.call(Caller::number("+4930555001").hang_up_after(secs(600.0)));
    let caller = EntryId::new(field(
        &rig.wait_for(EventKind::Entered, 1).await[0],
        "entry",
    ))
    .unwrap();

    // A CRM asks for a callback to a number written nationally, as the line's country does.
    let created = handle
        .create_callback(support(), main_line(), "030555777", None)
        .await
        .unwrap();
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    assert_eq!(field(&requested[0], "entry"), created.as_str());
    assert_eq!(field(&requested[0], "source"), "api");
    assert_eq!(field(&requested[0], "number"), "+4930555777");
    let waiting: Vec<EntryId> = rig
        .store
        .waiting_entries(&support(), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(waiting, [caller.clone(), created.clone()]);

    // The first agent free takes the caller who was there first; the next, the callback,
    // which goes as one a caller asked for: offered, accepted, the customer dialed.
    rig.set_agent("bob", AgentState::Available).await;
    let first = rig.wait_for(EventKind::Offered, 1).await;
    assert_eq!(field(&first[0], "entry"), caller.as_str());
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::CustomerAnswered, 1).await;
    let journey: Vec<&str> = rig
        .events()
        .await
        .iter()
        .filter(|e| field(e, "entry") == created.as_str() && e.kind != EventKind::Connected)
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        journey,
        [
            "requested",
            "offered",
            "accepted",
            "dialing_customer",
            "customer_answered"
        ]
    );
    let customer = leg_to(&rig, "carrier/+4930555777").await.unwrap();
    assert_eq!(customer.caller_number, "+4930123456");
    d1.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_created_for_later_is_offered_then_and_asked_for_twice_is_one() {
    let rig = start(&[("user/1001", listens())]).await;
    // Free all along: only the earliest time holds the offer back.
    rig.set_agent("alice", AgentState::Available).await;
    let (d1, handle) = daemon(&rig, "d1").await;
    let earliest = rig.now().plus(secs(30.0));
    let created = handle
        .create_callback(support(), main_line(), "+4930555777", Some(earliest))
        .await
        .unwrap();
    let stored = rig
        .store
        .entry(&support(), &created)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, EntryStatus::RetryWait { due: earliest });
    assert_eq!(stored.position, earliest);

    // The same number, however written, has its callback pending already.
    let again = handle
        .create_callback(support(), main_line(), "004930555777", None)
        .await;
    assert!(
        matches!(&again, Err(CommandError::Duplicate { entry }) if *entry == created),
        "{again:?}"
    );
    let offered = rig.wait_for(EventKind::Offered, 1).await;
    assert_eq!(field(&offered[0], "entry"), created.as_str());
    let at: u64 = field(&offered[0], "at").parse().unwrap();
    assert!(
        at >= earliest.as_millis(),
        "offered {at}, earliest {earliest}"
    );
    assert_eq!(rig.events_of(EventKind::Requested).await.len(), 1);
    d1.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_number_or_line_is_refused_before_the_store_is_asked() {
    let rig = start(&[]).await;
    let (d1, handle) = daemon(&rig, "d1").await;
    for (number, why) in [
        ("09001234567", "premium rate"),
        ("*4930555777", "a keypad star"),
        ("12", "too short"),
        ("", "empty"),
    ] {
        let refused = handle
            .create_callback(support(), main_line(), number, None)
            .await;
        assert!(
            matches!(&refused, Err(CommandError::BadNumber { number: n, .. }) if n == number),
            "{why}: {refused:?}"
        );
    }
    let premium = handle
        .create_callback(support(), main_line(), "09001234567", None)
        .await;
    assert!(matches!(
        premium,
        Err(CommandError::BadNumber {
            reason: NumberRejected::TypeRefused(_),
            ..
        })
    ));
    let unknown = handle
        .create_callback(
            support(),
            LineName::new("nope").unwrap(),
            "+4930555777",
            None,
        )
        .await;
    assert!(
        matches!(unknown, Err(CommandError::UnknownLine(_))),
        "{unknown:?}"
    );
    let elsewhere = handle
        .create_callback(
            QueueName::new("sales").unwrap(),
            main_line(),
            "+4930555777",
            None,
        )
        .await;
    assert!(
        matches!(&elsewhere, Err(CommandError::LineNotForQueue { feeds, .. }) if *feeds == support()),
        "{elsewhere:?}"
    );
    // Nothing of the queue's was written: no entry, no number held, no event.
    let mut redis = redis::Client::open(rig.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("cbd:{support}:*")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    d1.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_through_the_handle_during_the_whisper_dials_the_customer() {
    // The customer takes a while to answer: whatever stops the whisper before, the
    // bridge to them does not.
    let rig = start_with(
        true,
        &[
            ("user/1001", listens()),
            (
                "sofia/gateway/carrier/+4930555777",
                Party::answers_after(secs(15.0)).hang_up_after(secs(20.0)),
            ),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Available).await;
    let (d1, handle) = daemon(&rig, "d1").await;
    let entry = created(&handle, "+4930555777").await;
    hears_whisper(&rig, "1001").await;
    handle
        .accept_callback(support(), entry.clone(), alice())
        .await
        .unwrap();
    // The whisper stopped there, while the customer still rang, not a minute later.
    until("the whisper stops", || async {
        leg_to(&rig, "1001")
            .await
            .is_some_and(|r| r.saw("PLAYBACK_STOP"))
    })
    .await;
    assert!(rig.events_of(EventKind::CustomerAnswered).await.is_empty());
    rig.wait_for(EventKind::CustomerAnswered, 1).await;
    // One answer per offer.
    let again = handle.decline_callback(support(), entry, alice()).await;
    assert!(
        matches!(again, Err(CommandError::AlreadyAnswered { .. })),
        "{again:?}"
    );
    d1.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declines_through_the_handle_pass_the_callback_on_until_the_last_closes_it() {
    let rig = start_with(
        true,
        &[
            ("user/1001", listens()),
            ("user/1002", Party::answers_after(secs(3600.0))),
        ],
    )
    .await;
    // Bob is away, so he may still take it once back: alice's decline does not close it.
    rig.set_agent("alice", AgentState::Available).await;
    rig.set_agent("bob", AgentState::Away).await;
    let (d1, handle) = daemon(&rig, "d1").await;
    let entry = created(&handle, "+4930555777").await;

    // Alice hears whom to call, and declines through the handle.
    hears_whisper(&rig, "1001").await;
    handle
        .decline_callback(support(), entry.clone(), alice())
        .await
        .unwrap();
    let declined = rig.wait_for(EventKind::Declined, 1).await;
    assert_eq!(field(&declined[0], "agent"), "alice");
    until("alice's leg ends", || async {
        leg_to(&rig, "1001")
            .await
            .is_some_and(|r| r.hangup_cause.is_some())
    })
    .await;

    // Bob is next; his phone still rings, so only a decline can be given for him.
    rig.set_agent("bob", AgentState::Available).await;
    let offered = rig.wait_for(EventKind::Offered, 2).await;
    assert_eq!(field(&offered[1], "agents"), "bob");
    until_some("bob's phone rings", || leg_to(&rig, "1002")).await;
    let early = handle
        .accept_callback(support(), entry.clone(), bob())
        .await;
    assert!(
        matches!(early, Err(CommandError::NotAnswered { .. })),
        "{early:?}"
    );
    handle
        .decline_callback(support(), entry.clone(), bob())
        .await
        .unwrap();
    let closed = rig.wait_for(EventKind::DeclinedByAll, 1).await;
    assert_eq!(field(&closed[0], "agent"), "bob");
    until("bob's phone stops ringing", || async {
        leg_to(&rig, "1002")
            .await
            .is_some_and(|r| r.hangup_cause.is_some())
    })
    .await;
    until("bob is free again", || async {
        rig.agent_state("bob").await == AgentState::Available
    })
    .await;
    // Once closed, or for an entry that never was, the store says why.
    let closed_now = handle.decline_callback(support(), entry, bob()).await;
    assert!(
        matches!(closed_now, Err(CommandError::Store(StoreError::Rule(_)))),
        "{closed_now:?}"
    );
    let unknown = handle
        .decline_callback(support(), EntryId::new("no-such-entry").unwrap(), bob())
        .await;
    assert!(
        matches!(
            unknown,
            Err(CommandError::Store(StoreError::UnknownEntry { .. }))
        ),
        "{unknown:?}"
    );
    d1.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_daemon_makes_no_new_offers_and_leaves_its_ringing_phones_alone() {
    let rig = start(&[
        ("user/1001", Party::answers_after(secs(3600.0))),
        ("user/1002", Party::answers_after(secs(3600.0))),
    ])
    .await;
    rig.set_agent("alice", AgentState::Available).await;
    rig.set_agent("bob", AgentState::Away).await;
    let (d1, handle) = daemon(&rig, "d1").await;
    // One callback rings alice; a second waits, nobody else being free.
    let ringing = created(&handle, "+4930555777").await;
    rig.wait_for(EventKind::Offered, 1).await;
    until_some("alice's phone rings", || leg_to(&rig, "1001")).await;
    let waiting = created(&handle, "+4930555778").await;

    assert!(!handle.is_draining());
    handle.drain().await.unwrap();
    assert!(handle.is_draining());
    let refused = handle
        .create_callback(support(), main_line(), "+4930555779", None)
        .await;
    assert!(
        matches!(refused, Err(CommandError::Draining)),
        "{refused:?}"
    );
    // Bob comes back through the drained daemon itself, which would route at once. A
    // grace for what must not happen: no offer, and alice's phone rings on.
    handle
        .set_agent_state(bob(), AgentState::Available, StateSource::Cli)
        .await
        .unwrap();
    tokio::time::sleep(sim_secs(10.0)).await;
    let offered = rig.events_of(EventKind::Offered).await;
    assert_eq!(offered.len(), 1, "{offered:#?}");
    assert_eq!(field(&offered[0], "entry"), ringing.as_str());
    assert!(leg_to(&rig, "1001").await.unwrap().hangup_cause.is_none());

    // A daemon staying offers the callback that waited.
    let (d2, _) = daemon(&rig, "d2").await;
    let offered = rig.wait_for(EventKind::Offered, 2).await;
    assert_eq!(field(&offered[1], "entry"), waiting.as_str());
    assert_eq!(field(&offered[1], "agents"), "bob");
    d1.stop().await;
    d2.stop().await;
}
