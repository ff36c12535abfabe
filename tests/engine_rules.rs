//! The engine's call-flow rules on the fake PBX: no sockets, no simulator, no time scale.
//! Redis is real; the switch is [`FakePbx`], and time is a [`ManualClock`] that moves only
//! when a test moves it.
//!
//! Each test reacts to the operations the engine asks of the switch (the agent leg it
//! places, the prompt it plays) and answers them, so nothing depends on how fast the
//! machine is. Paused tokio time is not used: with a real Redis, tokio's auto-advance would
//! fire the store's response timeouts while a reply is still on the wire. The durable
//! timers (max wait, wrap-up, expiry) run on the injected clock, which is what matters.

mod common;
mod engine;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callbackd::config::Config;
use callbackd::engine::{Engine, EngineError, EngineHandle, EngineOptions};
use callbackd::queue::{
    AgentId, AgentState, Clock, Entry, EntryId, EntryStatus, LineName, ManualClock, QueueName,
    Timestamp,
};
use callbackd::store::{EventKind, StateSource, Store, StoredEvent};
use callbackd::switch::fake::{FakePbx, Op};
use callbackd::switch::{tags, CallId, Collected};
use common::RedisServer;
use engine::{base_config, config_with, until};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const OFFER: &str = "/sounds/offer.wav";

/// One engine on a fake switch, a private Redis and a manual clock.
struct Rules {
    redis: RedisServer,
    fake: FakePbx,
    clock: ManualClock,
    store: Store,
    handle: EngineHandle,
    shutdown: watch::Sender<bool>,
    engine: JoinHandle<Result<(), EngineError>>,
}

impl Rules {
    async fn start(config_text: &str) -> Self {
        Self::start_on(RedisServer::start(), config_text).await
    }

    async fn start_on(redis: RedisServer, config_text: &str) -> Self {
        let text = config_text
            .replace("ESL", "127.0.0.1:1")
            .replace("REDIS", &redis.url());
        let config = Arc::new(Config::parse(Path::new("test.toml"), &text).unwrap());
        let store = Store::connect(&config.redis).await.unwrap();
        let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
        let (fake, events) = FakePbx::new();
        let options = EngineOptions {
            daemon_id: callbackd::values::DaemonId::new("d1").unwrap(),
            sounds: callbackd::switch::MediaDir::new(std::path::Path::new("/sounds")).unwrap(),
            languages: vec!["en".into()],
            default_language: "en".into(),
            recordings: callbackd::switch::MediaDir::new(&std::env::temp_dir()).unwrap(),
            time_scale: 1.0,
        };
        let engine = Engine::new(
            config,
            options,
            store.clone(),
            fake.clone(),
            Arc::new(clock.clone()),
        );
        let (shutdown, stop) = watch::channel(false);
        let handle = engine.handle();
        let engine = tokio::spawn(engine.run(events, stop));
        Self {
            redis,
            fake,
            clock,
            store,
            handle,
            shutdown,
            engine,
        }
    }

    async fn set_agent(&self, agent: &str, state: AgentState) {
        self.store
            .set_agent_state(&agent_id(agent), state, self.clock.now(), StateSource::Cli)
            .await
            .unwrap();
    }

    async fn agent_state(&self, agent: &str) -> AgentState {
        let agent = self.store.agent(&agent_id(agent), self.clock.now()).await;
        agent.unwrap().unwrap().state
    }

    /// The entry whose offer `agent` is booked for, if any.
    async fn booked(&self, agent: &str) -> Option<EntryId> {
        let agent = self.store.agent(&agent_id(agent), self.clock.now()).await;
        agent.unwrap().unwrap().booked
    }

    /// A caller dialed line `main`, whose dialplan parks them in queue `support`.
    async fn caller(&self, number: &str) -> CallId {
        self.fake.park_caller("support", "main", number).await
    }

    /// A caller from `number` who is bridged to `agent` (free, and answering at once):
    /// the caller's call and the agent's leg.
    async fn connected(&self, number: &str, agent: &str) -> (CallId, CallId) {
        let caller = self.caller(number).await;
        let leg = self.agent_answers(agent).await;
        self.bridged(&caller, &leg).await;
        (caller, leg)
    }

    /// Answer the leg the engine places for `agent`, and return it.
    async fn agent_answers(&self, agent: &str) -> CallId {
        let leg = self.fake.placed(tags::AGENT, agent).await;
        self.fake.answer(&leg).await;
        leg
    }

    /// Wait for the bridge of `caller` with `leg`.
    async fn bridged(&self, caller: &CallId, leg: &CallId) {
        self.fake
            .wait_for("the caller bridged to the agent", |ops| {
                ops.iter()
                    .any(|op| {
                        *op == Op::Bridge {
                            a: caller.clone(),
                            b: leg.clone(),
                        }
                    })
                    .then_some(())
            })
            .await;
    }

    /// Wait until `call` hears `media`.
    async fn hears(&self, call: &CallId, media: &str) {
        self.fake
            .wait_for(&format!("{media} on the call"), |ops| {
                ops.iter()
                    .any(|op| call_of(op) == Some(call) && op.media() == Some(media))
                    .then_some(())
            })
            .await;
    }

    async fn events_of(&self, kind: EventKind) -> Vec<StoredEvent> {
        let queue = QueueName::new("support").unwrap();
        let events = self.store.events(Some(&queue), None, 1000).await.unwrap();
        events.into_iter().filter(|e| e.kind == kind).collect()
    }

    /// Wait for a digit collection on `call` whose prompt names `prompt`, and key `digits`.
    async fn keys_in(&self, call: &CallId, prompt: &str, digits: &str) {
        self.fake
            .wait_for(&format!("a collection playing {prompt}"), |ops| {
                ops.iter()
                    .any(|op| {
                        matches!(op, Op::Collect { call: c, prompt: p }
                            if c == call && p.contains(prompt))
                    })
                    .then_some(())
            })
            .await;
        self.fake.key_in(call, Collected::Digits(digits.into()));
    }

    /// `caller` presses 2 for a callback at their own number and confirms it; the request
    /// is recorded.
    async fn requests_callback(&self, caller: &CallId) {
        self.fake.press(caller, '2');
        self.keys_in(caller, "menu-own-number", "1").await;
        self.keys_in(caller, "confirm-options", "1").await;
        until("the callback is requested", || async {
            !self.events_of(EventKind::Requested).await.is_empty()
        })
        .await;
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.engine.await.unwrap().unwrap();
    }
}

fn agent_id(agent: &str) -> AgentId {
    AgentId::new(agent).unwrap()
}

fn call_of(op: &Op) -> Option<&CallId> {
    match op {
        Op::Play { call, .. }
        | Op::StartPlay { call, .. }
        | Op::Collect { call, .. }
        | Op::Transfer { call, .. }
        | Op::HangUp { call, .. } => Some(call),
        _ => None,
    }
}

fn callback_config(queue_extra: &str) -> String {
    config_with(
        queue_extra,
        &format!(
            r#"
[lines.callback]
enabled = true
offer_greeting = "{OFFER}"
country = "DE"
"#
        ),
    )
}

#[tokio::test]
async fn a_free_agent_is_rung_at_once_and_the_caller_bridged_when_they_answer() {
    let rules = Rules::start(&callback_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    let caller = rules.caller("+4930555001").await;
    let leg = rules.agent_answers("alice").await;
    rules.bridged(&caller, &leg).await;
    assert_eq!(rules.agent_state("alice").await, AgentState::OnCall);
    // Whatever the caller was hearing stopped before the bridge.
    let ops = rules.fake.ops();
    let stopped = ops.iter().position(|op| {
        *op == Op::StopMedia {
            call: caller.clone(),
        }
    });
    let bridged = ops.iter().position(|op| matches!(op, Op::Bridge { .. }));
    assert!(stopped.is_some() && stopped < bridged, "{ops:#?}");
    rules.stop().await;
}

#[tokio::test]
async fn the_callback_offer_is_made_while_every_agent_is_on_a_call() {
    let rules = Rules::start(&callback_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    rules.connected("+4930555001", "alice").await;
    // The only agent is busy: the next caller hears the offer, and 2 requests a callback.
    let second = rules.caller("+4930555002").await;
    rules.hears(&second, OFFER).await;
    rules.hears(&second, "local_stream://moh").await;
    rules.requests_callback(&second).await;
    let requested = rules.events_of(EventKind::Requested).await;
    assert_eq!(requested[0].field("number"), Some("+4930555002"));
    rules.stop().await;
}

#[tokio::test]
async fn a_2_pressed_before_anything_plays_opens_the_menu_at_the_first_prompt() {
    let rules = Rules::start(&callback_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    rules.connected("+4930555001", "alice").await;
    // Pressed while the daemon is still enqueuing the caller: no playback to end yet.
    let second = rules.caller("+4930555002").await;
    rules.fake.press(&second, '2');
    rules.keys_in(&second, "menu-own-number", "3").await;
    let ops = rules.fake.ops();
    let menu = ops
        .iter()
        .position(|op| matches!(op, Op::Collect { call, .. } if *call == second));
    let music = ops
        .iter()
        .position(|op| call_of(op) == Some(&second) && op.media() == Some("local_stream://moh"));
    assert!(
        menu.is_some() && (music.is_none() || music > menu),
        "{ops:#?}"
    );
    rules.stop().await;
}

#[tokio::test]
async fn an_agent_who_does_not_answer_is_passed_over_for_the_next() {
    let rules = Rules::start(&base_config("no_answer_delay_secs = 60")).await;
    rules.set_agent("alice", AgentState::Available).await;
    rules.clock.advance(Duration::from_secs(1));
    rules.set_agent("bob", AgentState::Available).await;
    let caller = rules.caller("+4930555001").await;
    // Alice has been idle longest: she is rung first, and misses it.
    let missed = rules.fake.placed(tags::AGENT, "alice").await;
    rules.fake.fail(&missed, "NO_ANSWER");
    let leg = rules.agent_answers("bob").await;
    rules.bridged(&caller, &leg).await;
    rules.stop().await;
}

#[tokio::test]
async fn wrap_up_ends_on_the_clock_and_the_agent_takes_the_next_caller() {
    let rules =
        Rules::start(&base_config("").replace("wrap_up_secs = 0", "wrap_up_secs = 30")).await;
    rules.set_agent("alice", AgentState::Available).await;
    let (_, leg) = rules.connected("+4930555001", "alice").await;
    let second = rules.caller("+4930555002").await;
    rules.hears(&second, "local_stream://moh").await;
    rules.fake.hang_up_party(&leg).await;
    until("alice is in wrap-up", || async {
        rules.agent_state("alice").await == AgentState::WrapUp
    })
    .await;
    // Wrap-up lasts 30 s on the engine's clock, however long the test takes meanwhile.
    rules.clock.advance(Duration::from_secs(29));
    tokio::time::sleep(Duration::from_millis(500)).await; // grace for a ring that must not come
    assert_eq!(
        rules
            .fake
            .ops()
            .iter()
            .filter(|op| matches!(op, Op::Originate { .. }))
            .count(),
        1
    );
    rules.clock.advance(Duration::from_secs(2));
    let next = rules.agent_answers("alice").await;
    rules.bridged(&second, &next).await;
    rules.stop().await;
}

#[tokio::test]
async fn max_wait_transfers_the_caller_to_the_exit_on_the_clock() {
    let queue = r#"
[queues.max_wait]
after_secs = 60
action = "transfer"
extension = "voicemail"
context = "default""#;
    let rules = Rules::start(&base_config(queue)).await;
    let caller = rules.caller("+4930555001").await;
    rules.hears(&caller, "local_stream://moh").await;
    rules.clock.advance(Duration::from_secs(61));
    rules
        .fake
        .wait_for("the transfer to voicemail", |ops| {
            ops.iter()
                .any(|op| {
                    *op == Op::Transfer {
                        call: caller.clone(),
                        extension: "voicemail".into(),
                    }
                })
                .then_some(())
        })
        .await;
    assert_eq!(rules.events_of(EventKind::MaxWaitExit).await.len(), 1);
    rules.stop().await;
}

#[tokio::test]
async fn a_caller_who_parks_while_redis_is_down_hears_music_and_joins_once_it_is_back() {
    let mut rules = Rules::start_on(RedisServer::start_durable(), &base_config("")).await;
    until("the engine registered its agents", || async {
        rules
            .store
            .agent(&agent_id("alice"), rules.clock.now())
            .await
            .is_ok_and(|a| a.is_some())
    })
    .await;
    rules.redis.kill();
    let caller = rules.caller("+4930555001").await;
    rules.hears(&caller, "local_stream://moh").await;
    rules.redis.restart();
    until("the caller entered the queue", || async {
        rules
            .store
            .waiting_count(&QueueName::new("support").unwrap())
            .await
            .ok()
            == Some(1)
    })
    .await;
    // The music played meanwhile stops for the queue's own media.
    rules
        .fake
        .wait_for("the stand-in music stopped", |ops| {
            ops.iter()
                .any(|op| {
                    *op == Op::StopMedia {
                        call: caller.clone(),
                    }
                })
                .then_some(())
        })
        .await;
    rules.stop().await;
}

#[tokio::test]
async fn an_answer_given_while_redis_is_down_is_recorded_once_it_is_back() {
    let mut rules = Rules::start_on(RedisServer::start_durable(), &base_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    let caller = rules.caller("+4930555001").await;
    let leg = rules.fake.placed(tags::AGENT, "alice").await;
    rules.redis.kill();
    rules.fake.answer(&leg).await;
    rules.redis.restart();
    rules.bridged(&caller, &leg).await;
    assert_eq!(rules.events_of(EventKind::Connected).await.len(), 1);
    rules.stop().await;
}

/// An agent who declines a callback while their leg cannot be hung up (the switch out of
/// reach) stays on that leg until it is gone: they are not offered anything meanwhile.
#[tokio::test]
async fn an_agent_whose_decline_cannot_hang_up_is_freed_only_once_the_leg_is_gone() {
    let rules = Rules::start(&callback_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    let (first, _) = rules.connected("+4930555001", "alice").await;
    let second = rules.caller("+4930555002").await;
    rules.hears(&second, OFFER).await;
    rules.requests_callback(&second).await;
    rules.fake.hang_up_party(&first).await;
    let leg = rules.agent_answers("alice").await;
    rules.fake.fail_hang_ups(true);
    rules.keys_in(&leg, "agent-options", "2").await;
    until("the decline is recorded", || async {
        !rules.events_of(EventKind::Declined).await.is_empty()
    })
    .await;
    assert!(rules.fake.is_up(&leg));
    let booked = || rules.booked("alice");
    assert!(
        booked().await.is_some(),
        "alice is bookable while on the leg"
    );
    // The switch is back: the leg left up is hung up, and its end frees alice.
    rules.fake.fail_hang_ups(false);
    rules.fake.reconnect().await;
    until("alice is free", || async { booked().await.is_none() }).await;
    assert!(!rules.fake.is_up(&leg));
    assert_eq!(rules.agent_state("alice").await, AgentState::Available);
    rules.stop().await;
}

/// A caller whose hangup the engine never heard is gone when their agent answers: the
/// bridge fails, and the caller is closed as abandoned instead of waiting again (and
/// ringing the agent again, and again, for nobody).
#[tokio::test]
async fn a_bridge_to_a_caller_who_is_gone_closes_them_instead_of_ringing_again() {
    let rules = Rules::start(&base_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    let caller = rules.caller("+4930555001").await;
    let leg = rules.fake.placed(tags::AGENT, "alice").await;
    rules.fake.vanish(&caller);
    rules.fake.answer(&leg).await;
    until("the caller is closed as abandoned", || async {
        !rules.events_of(EventKind::Abandoned).await.is_empty()
    })
    .await;
    assert!(!rules.fake.is_up(&leg), "the agent's leg is hung up");
    until("alice is available", || async {
        rules.agent_state("alice").await == AgentState::Available
    })
    .await;
    let originates = rules
        .fake
        .ops()
        .iter()
        .filter(|op| matches!(op, Op::Originate { .. }))
        .count();
    assert_eq!(
        originates,
        1,
        "alice was rung once: {:#?}",
        rules.fake.ops()
    );
    rules.stop().await;
}

/// A failed bridge whose agent leg cannot be hung up (the switch out of reach) leaves the
/// agent on that leg: they are not free, so not rung for the next caller, until the leg is
/// gone.
#[tokio::test]
async fn an_agent_whose_failed_bridge_cannot_hang_up_stays_on_the_leg_until_it_is_gone() {
    let rules = Rules::start(&base_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    let first = rules.caller("+4930555001").await;
    let leg = rules.fake.placed(tags::AGENT, "alice").await;
    let second = rules.caller("+4930555002").await;
    rules.fake.vanish(&first);
    rules.fake.fail_hang_ups(true);
    rules.fake.answer(&leg).await;
    until("the first caller is closed as abandoned", || async {
        !rules.events_of(EventKind::Abandoned).await.is_empty()
    })
    .await;
    assert!(rules.fake.is_up(&leg));
    assert_eq!(rules.agent_state("alice").await, AgentState::OnCall);
    // The switch is back: the leg left up is hung up, its end frees alice, and she is
    // rung for the second caller.
    rules.fake.fail_hang_ups(false);
    rules.fake.reconnect().await;
    let next = rules.fake.placed(tags::AGENT, "alice").await;
    assert_ne!(next, leg);
    assert!(!rules.fake.is_up(&leg));
    rules.fake.answer(&next).await;
    rules.bridged(&second, &next).await;
    rules.stop().await;
}

/// A caller who hangs up while Redis is down is not forgotten: the event could not be
/// handled, and once Redis is back the engine finds them gone (a resync owed, or their
/// media's lease, whichever comes first) and closes them.
#[tokio::test]
async fn a_hangup_lost_to_a_redis_outage_is_settled_once_redis_is_back() {
    let mut rules = Rules::start_on(RedisServer::start_durable(), &base_config("")).await;
    let caller = rules.caller("+4930555001").await;
    until("the caller waits", || async {
        !rules.events_of(EventKind::Entered).await.is_empty()
    })
    .await;
    rules.redis.kill();
    rules.fake.hang_up_party(&caller).await;
    // Time for the engine to try the hangup against the dead Redis: tried after the
    // restart instead, it would simply succeed, and this test prove nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    rules.redis.restart();
    let queue = QueueName::new("support").unwrap();
    until("the caller is closed as abandoned", || async {
        // The test's own connection may fail once, reconnecting to the restarted Redis.
        let events = rules.store.events(Some(&queue), None, 1000).await;
        events.is_ok_and(|events| events.iter().any(|e| e.kind == EventKind::Abandoned))
    })
    .await;
    rules.stop().await;
}

/// An agent leg whose originate is cut off with the switch may ring on: the caller waits
/// again, but the agent stays booked (nobody rings them) until the leg is found gone.
#[tokio::test]
async fn an_agent_whose_ring_was_cut_off_stays_booked_until_the_leg_is_gone() {
    let rules = Rules::start(&base_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    let first = rules.caller("+4930555001").await;
    let leg = rules.fake.placed(tags::AGENT, "alice").await;
    let second = rules.caller("+4930555002").await;
    rules.fake.cut_off(&leg);
    until("the first caller waits again", || async {
        !rules.events_of(EventKind::AgentNoAnswer).await.is_empty()
    })
    .await;
    let booked = rules.booked("alice").await;
    assert!(booked.is_some(), "alice is free while her phone may ring");
    // The switch is back: the leg is found ringing and hung up, and its end frees alice.
    rules.fake.reconnect().await;
    let next = rules.fake.placed(tags::AGENT, "alice").await;
    assert_ne!(next, leg);
    assert!(!rules.fake.is_up(&leg));
    rules.fake.answer(&next).await;
    let bridged = rules
        .fake
        .wait_for("a caller bridged to alice", |ops| {
            ops.iter().find_map(|op| match op {
                Op::Bridge { a, b } if *b == next => Some(a.clone()),
                _ => None,
            })
        })
        .await;
    assert!(bridged == first || bridged == second);
    rules.stop().await;
}

/// A resync lists the switch, then reads the queue: a caller another daemon parked in
/// between is in the queue but not in the listing, and must not be closed as gone. A
/// caller in neither that listing nor the switch now did hang up.
#[tokio::test]
async fn a_resync_closes_the_callers_gone_and_no_one_who_parked_after_its_listing() {
    let rules = Rules::start(&base_config("")).await;
    // A caller taken in: the engine's loop is past its first resync, which would
    // otherwise race the staging below.
    rules.caller("+4930555009").await;
    until("the caller waits", || async {
        !rules.events_of(EventKind::Entered).await.is_empty()
    })
    .await;
    let queue = QueueName::new("support").unwrap();
    let line = LineName::new("main").unwrap();
    let gone = Entry::live_caller(
        queue.clone(),
        line.clone(),
        CallId::new("gone-caller").unwrap(),
        None,
        &rules.clock,
    );
    let parking = CallId::new("just-parked-elsewhere").unwrap();
    let fresh = Entry::live_caller(queue.clone(), line, parking.clone(), None, &rules.clock);
    let lease = rules.clock.now().plus(Duration::from_secs(60));
    for entry in [&gone, &fresh] {
        let stored = rules.store.enqueue_caller(entry, None, "d2", lease).await;
        stored.unwrap();
    }
    rules.fake.up_after_next_listing(&parking);
    rules.fake.reconnect().await;
    until("the caller gone before the listing is closed", || async {
        let entry = rules.store.entry(&queue, &gone.id).await.unwrap();
        entry.is_none_or(|e| e.status != EntryStatus::Waiting)
    })
    .await;
    // The resync is over once the engine stops: it runs in the engine's loop. Redis
    // outlives the engine here, to be asked afterwards.
    let Rules {
        redis: _redis,
        store,
        shutdown,
        engine,
        ..
    } = rules;
    let _ = shutdown.send(true);
    engine.await.unwrap().unwrap();
    let fresh = store.entry(&queue, &fresh.id).await.unwrap();
    assert_eq!(fresh.map(|e| e.status), Some(EntryStatus::Waiting));
}

/// A caller who hangs up while an agent's phone rings for them frees the agent only with
/// that ring's end: freed at once, the agent could be rung for the next caller while the
/// phone still rings (or is answered) for the one who left.
#[tokio::test]
async fn an_agent_rung_for_a_caller_who_hangs_up_stays_booked_until_the_ring_is_over() {
    let rules = Rules::start(&base_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    let first = rules.caller("+4930555001").await;
    let leg = rules.fake.placed(tags::AGENT, "alice").await;
    rules.fake.fail_hang_ups(true);
    rules.fake.hang_up_party(&first).await;
    until("the caller is closed as abandoned", || async {
        !rules.events_of(EventKind::Abandoned).await.is_empty()
    })
    .await;
    let booked = rules.booked("alice").await;
    assert!(booked.is_some(), "alice is free while her phone rings");
    let second = rules.caller("+4930555002").await;
    // The switch takes hang-ups again: the ring left up is ended, and its end frees alice.
    rules.fake.fail_hang_ups(false);
    rules.fake.reconnect().await;
    until("the ring is ended", || async { !rules.fake.is_up(&leg) }).await;
    let next = rules.fake.placed(tags::AGENT, "alice").await;
    assert_ne!(next, leg);
    rules.fake.answer(&next).await;
    rules.bridged(&second, &next).await;
    rules.stop().await;
}

/// The time from an agent's call ending to their next ring is counted, for the metrics,
/// when a caller waited for them; a ring that follows an idle spell is not such a wait.
#[tokio::test]
async fn the_wait_from_a_call_end_to_the_next_ring_is_counted() {
    let rules = Rules::start(&base_config("")).await;
    rules.set_agent("alice", AgentState::Available).await;
    let (first, leg) = rules.connected("+4930555001", "alice").await;
    let second = rules.caller("+4930555002").await;
    until("the second caller waits", || async {
        rules.events_of(EventKind::Entered).await.len() == 2
    })
    .await;
    assert_eq!(rules.handle.stats().dispatch_latency.snapshot().count, 0);
    rules.fake.hang_up_party(&first).await;
    let next = rules
        .fake
        .wait_for("a second ring for alice", |ops| {
            ops.iter().rev().find_map(|op| match op {
                Op::Originate { id, tags, .. }
                    if *id != leg && tags.iter().any(|(_, v)| v == "alice") =>
                {
                    Some(id.clone())
                }
                _ => None,
            })
        })
        .await;
    let counted = rules.handle.stats().dispatch_latency.snapshot();
    assert_eq!(counted.count, 1, "{counted:?}");
    rules.fake.answer(&next).await;
    rules.bridged(&second, &next).await;
    rules.stop().await;
}

/// A caller whose media fails without the switch going away (a command that timed out on
/// a slow switch) hears it again shortly, not only at the next resync.
#[tokio::test]
async fn a_caller_whose_media_failed_hears_it_again_without_a_resync() {
    let rules = Rules::start(&base_config("")).await;
    let caller = rules.caller("+4930555001").await;
    rules.hears(&caller, "local_stream://moh").await;
    let plays = || {
        let ops = rules.fake.ops();
        ops.iter()
            .filter(|op| call_of(op) == Some(&caller) && op.media() == Some("local_stream://moh"))
            .count()
    };
    let before = plays();
    rules.fake.time_out_next_play(&caller);
    // The music ends, the next play times out, and the media comes back.
    rules.fake.end_playback(&caller);
    until("the hold music plays again", || async {
        plays() >= before + 2
    })
    .await;
    rules.stop().await;
}
