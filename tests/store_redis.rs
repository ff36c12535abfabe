//! The Redis store against a real `redis-server`: atomic transitions, events, timers,
//! restarts, and two store handles racing for the same entries and agents.

mod common;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callbackd::config::{Config, RedisSettings};
use callbackd::queue::{
    AgentId, AgentState, Clock, CloseReason, EndedCall, Entry, EntryStatus, LineName, ManualClock,
    Offer, QueueError, QueueName, Timestamp,
};
use callbackd::store::{
    EventKind, MissRules, NoAnswerCause, OfferOutcome, StateSource, Store, StoreError, Timer,
    TimerScope,
};
use callbackd::switch::{CallId, PhoneNumber};
use common::RedisServer;

const RING: Duration = Duration::from_secs(20);
/// How long a missed offer holds its agent off the entry in these tests.
const HOLD_OFF: Duration = Duration::from_secs(30);

fn config(url: &str, agents: &[(&str, &str)]) -> Config {
    let mut text = format!(
        r#"
[esl]
address = "127.0.0.1:8021"
password = "ClueCon"
[redis]
url = "{url}"
key_prefix = "test"
[[queues]]
name = "support"
hold_music = "local_stream://moh"
[[queues]]
name = "sales"
hold_music = "local_stream://moh"
strategy = "ring-all"
"#
    );
    for (id, queues) in agents {
        text.push_str(&format!(
            "[[agents]]\nid = \"{id}\"\ncontact = \"user/{id}\"\nqueues = {queues}\n"
        ));
    }
    Config::parse(Path::new("test.toml"), &text).unwrap()
}

struct Setup {
    _redis: RedisServer,
    config: Config,
    store: Store,
    clock: ManualClock,
}

async fn setup(agents: &[(&str, &str)]) -> Setup {
    let redis = RedisServer::start();
    let config = config(&redis.url(), agents);
    let store = Store::connect(&config.redis).await.unwrap();
    let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
    store
        .register_agents(&config.agents, clock.now())
        .await
        .unwrap();
    Setup {
        _redis: redis,
        config,
        store,
        clock,
    }
}

fn q(name: &str) -> QueueName {
    QueueName::new(name).unwrap()
}

fn id(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn caller(queue: &str, clock: &ManualClock) -> Entry {
    let entry = Entry::live_caller(
        q(queue),
        LineName::new("main").unwrap(),
        CallId::random(),
        None,
        clock,
    );
    clock.advance(Duration::from_millis(10));
    entry
}

async fn available(s: &Setup, agents: &[&str]) {
    for a in agents {
        s.store
            .set_agent_state(
                &id(a),
                AgentState::Available,
                s.clock.now(),
                StateSource::Cli,
            )
            .await
            .unwrap();
    }
}

/// `agent`'s call to `entry` in `support`, ended.
fn ended(entry: &Entry, agent: &str) -> EndedCall {
    EndedCall {
        queue: q("support"),
        agent: id(agent),
        entry: entry.id.clone(),
    }
}

fn offer(entry: &Entry, agents: &[&str]) -> Offer {
    Offer {
        entry: entry.id.clone(),
        queue: entry.queue.clone(),
        agents: agents.iter().map(|a| id(a)).collect(),
        ahead: vec![],
    }
}

async fn kinds(store: &Store, queue: Option<&QueueName>) -> Vec<EventKind> {
    store
        .events(queue, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test]
async fn enqueue_keeps_arrival_order_and_records_entered() {
    let s = setup(&[]).await;
    let first = caller("support", &s.clock);
    let second = caller("support", &s.clock);
    let cb =
        caller("support", &s.clock).into_callback(PhoneNumber::new("+4930222").unwrap(), &s.clock);
    for e in [&cb, &second, &first] {
        s.store.enqueue(e, None).await.unwrap();
    }
    assert!(matches!(
        s.store.enqueue(&first, None).await,
        Err(StoreError::EntryExists(_))
    ));
    let waiting = s.store.waiting_entries(&q("support"), 10).await.unwrap();
    assert_eq!(waiting, vec![first.clone(), second, cb]);
    assert_eq!(
        s.store.waiting_entries(&q("support"), 1).await.unwrap(),
        vec![first]
    );
    let events = s.store.events(Some(&q("support")), None, 10).await.unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.kind == EventKind::Entered));
    assert_eq!(events[2].field("kind"), Some("live"));
    assert_eq!(events[0].field("kind"), Some("callback"));
    assert_eq!(events[0].field("queue"), Some("support"));
    assert_eq!(events[0].field("line"), Some("main"));
}

#[tokio::test]
async fn an_entry_is_offered_once_and_an_agent_booked_once() {
    let s = setup(&[
        ("alice", "[{ queue = \"support\" }]"),
        ("bob", "[{ queue = \"support\" }]"),
    ])
    .await;
    available(&s, &["alice", "bob"]).await;
    let e1 = caller("support", &s.clock);
    let e2 = caller("support", &s.clock);
    s.store.enqueue(&e1, None).await.unwrap();
    s.store.enqueue(&e2, None).await.unwrap();
    let now = s.clock.now();
    assert_eq!(
        s.store
            .offer(&offer(&e1, &["alice"]), now, RING)
            .await
            .unwrap(),
        OfferOutcome::Offered
    );
    assert_eq!(
        s.store
            .offer(&offer(&e1, &["bob"]), now, RING)
            .await
            .unwrap(),
        OfferOutcome::EntryNotWaiting
    );
    // Bob's booking for the lost race was released.
    let bob = s.store.agent(&id("bob"), now).await.unwrap().unwrap();
    assert!(bob.is_free());
    assert_eq!(
        s.store
            .offer(&offer(&e2, &["alice"]), now, RING)
            .await
            .unwrap(),
        OfferOutcome::AgentNotFree(id("alice"))
    );
    let entry = s.store.entry(&q("support"), &e1.id).await.unwrap().unwrap();
    assert!(
        matches!(entry.status, EntryStatus::Offered { ref agents, .. } if agents == &[id("alice")])
    );
    assert_eq!(
        s.store.waiting_entries(&q("support"), 10).await.unwrap(),
        vec![e2.clone()]
    );
    // Routing over what the store holds picks bob for the remaining entry.
    let router = s.config.router();
    let entries = s.store.waiting_entries(&q("support"), 10).await.unwrap();
    let agents = s.store.agents(now).await.unwrap();
    assert_eq!(
        router.next_offer(&entries, &agents, now),
        Some(offer(&e2, &["bob"]))
    );
    // Offered once for good: the claim of e2 for busy alice was withdrawn.
    let events: Vec<_> = kinds(&s.store, Some(&q("support"))).await;
    let count = |kind| events.iter().filter(|k| **k == kind).count();
    assert_eq!(count(EventKind::Offered), 2);
    assert_eq!(count(EventKind::OfferWithdrawn), 1);
}

#[tokio::test]
async fn an_entry_put_back_ahead_of_a_plan_is_served_first() {
    let s = setup(&[
        ("alice", "[{ queue = \"support\" }]"),
        ("bob", "[{ queue = \"support\" }]"),
    ])
    .await;
    available(&s, &["alice", "bob"]).await;
    let e1 = caller("support", &s.clock);
    let e2 = caller("support", &s.clock);
    s.store.enqueue(&e2, None).await.unwrap();
    // A plan read the queue when e2 was its head; then e1 (older) came back.
    s.store.enqueue(&e1, None).await.unwrap();
    let now = s.clock.now();
    assert_eq!(
        s.store
            .offer(&offer(&e2, &["alice"]), now, RING)
            .await
            .unwrap(),
        OfferOutcome::EntryNotFirst
    );
    let alice = s.store.agent(&id("alice"), now).await.unwrap().unwrap();
    assert!(
        alice.is_free(),
        "the booking of a refused claim is released"
    );
    assert_eq!(
        s.store.waiting_entries(&q("support"), 10).await.unwrap(),
        vec![e1.clone(), e2.clone()]
    );
    // A plan that saw e1 and gave it to another agent may claim e2.
    let knowing = Offer {
        ahead: vec![e1.id.clone()],
        ..offer(&e2, &["alice"])
    };
    assert_eq!(
        s.store.offer(&knowing, now, RING).await.unwrap(),
        OfferOutcome::Offered
    );
    assert_eq!(
        s.store
            .offer(&offer(&e1, &["bob"]), now, RING)
            .await
            .unwrap(),
        OfferOutcome::Offered
    );
}

#[tokio::test]
async fn a_claim_for_a_busy_agent_is_withdrawn_and_the_entry_waits_on() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let e1 = caller("support", &s.clock);
    let e2 = caller("support", &s.clock);
    s.store.enqueue(&e1, None).await.unwrap();
    s.store.enqueue(&e2, None).await.unwrap();
    s.store
        .set_agent_state(
            &id("alice"),
            AgentState::Away,
            s.clock.now(),
            StateSource::Cli,
        )
        .await
        .unwrap();
    assert_eq!(
        s.store
            .offer(&offer(&e1, &["alice"]), s.clock.now(), RING)
            .await
            .unwrap(),
        OfferOutcome::AgentNotFree(id("alice"))
    );
    let waiting = s.store.waiting_entries(&q("support"), 10).await.unwrap();
    assert_eq!(waiting, vec![e1.clone(), e2], "same place, nobody tried");
    assert_eq!(
        kinds(&s.store, Some(&q("support"))).await[2..],
        [EventKind::Offered, EventKind::OfferWithdrawn]
    );
    // No offer timeout is left to fire for it.
    s.clock.advance(RING + Duration::from_secs(60));
    let timers = s
        .store
        .claim_due_timers(
            &TimerScope::Queue(q("support")),
            "d1",
            s.clock.now(),
            RING,
            10,
        )
        .await
        .unwrap();
    assert!(timers.is_empty(), "{timers:?}");
}

#[tokio::test]
async fn an_offer_after_a_call_frees_and_books_the_agent_in_one_step() {
    let s = setup(&[
        ("alice", "[{ queue = \"support\" }]"),
        ("bob", "[{ queue = \"support\" }]"),
    ])
    .await;
    available(&s, &["alice", "bob"]).await;
    let entries: Vec<Entry> = (0..4).map(|_| caller("support", &s.clock)).collect();
    for e in &entries {
        s.store.enqueue(e, None).await.unwrap();
    }
    // Both agents take a call.
    for (e, agent) in entries.iter().zip(["alice", "bob"]) {
        let now = s.clock.now();
        s.store.offer(&offer(e, &[agent]), now, RING).await.unwrap();
        s.store
            .connected(&q("support"), &e.id, &id(agent), now)
            .await
            .unwrap();
    }
    s.clock.advance(Duration::from_secs(30));
    // Alice's call ends and she takes the next caller at once.
    let now = s.clock.now();
    assert_eq!(
        s.store
            .offer_after_call(
                &offer(&entries[2], &["alice"]),
                &[ended(&entries[0], "alice")],
                now,
                RING
            )
            .await
            .unwrap(),
        OfferOutcome::Offered
    );
    let alice = s.store.agent(&id("alice"), now).await.unwrap().unwrap();
    assert_eq!(alice.state, AgentState::Available);
    assert_eq!(alice.idle_since, now);
    assert_eq!(alice.booked, Some(entries[2].id.clone()));
    let last = s
        .store
        .events(None, None, 100)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.field("agent"), last.field("from"), last.field("to")),
        (Some("alice"), Some("on_call"), Some("available"))
    );
    // Bob's call was ended elsewhere and he went away since: he stays away, and the
    // claim is withdrawn.
    s.store
        .set_agent_state_from(
            &id("bob"),
            &[AgentState::OnCall],
            AgentState::Available,
            now,
            StateSource::Daemon,
        )
        .await
        .unwrap();
    s.store
        .set_agent_state(&id("bob"), AgentState::Away, now, StateSource::Cli)
        .await
        .unwrap();
    assert_eq!(
        s.store
            .offer_after_call(
                &offer(&entries[3], &["bob"]),
                &[ended(&entries[1], "bob")],
                now,
                RING
            )
            .await
            .unwrap(),
        OfferOutcome::AgentNotFree(id("bob"))
    );
    let bob = s.store.agent(&id("bob"), now).await.unwrap().unwrap();
    assert_eq!(bob.state, AgentState::Away);
    assert_eq!(
        s.store.waiting_entries(&q("support"), 10).await.unwrap(),
        vec![entries[3].clone()]
    );
}

#[tokio::test]
async fn failed_offer_keeps_position_frees_agent_and_holds_them_off_for_the_delay() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let e1 = caller("support", &s.clock);
    let e2 = caller("support", &s.clock);
    s.store.enqueue(&e1, None).await.unwrap();
    s.store.enqueue(&e2, None).await.unwrap();
    s.store
        .offer(&offer(&e1, &["alice"]), s.clock.now(), RING)
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(20));
    let failed = s
        .store
        .offer_failed(
            &q("support"),
            &e1.id,
            &id("alice"),
            NoAnswerCause::NoAnswer,
            s.clock.now(),
            MissRules {
                hold_off: HOLD_OFF,
                away_after: None,
            },
        )
        .await
        .unwrap();
    let missed_at = s.clock.now();
    assert!(failed.entry_waiting);
    assert!(!failed.agent_set_away);
    let waiting = s.store.waiting_entries(&q("support"), 10).await.unwrap();
    assert_eq!(
        waiting[0].id, e1.id,
        "the entry keeps its place at the head"
    );
    assert_eq!(waiting[0].position, e1.position);
    assert_eq!(
        waiting[0].held_off.get(&id("alice")),
        Some(&missed_at.plus(HOLD_OFF))
    );
    let alice = s
        .store
        .agent(&id("alice"), s.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(alice.is_free());
    assert_eq!(alice.missed_in_a_row, 1);
    assert_eq!(
        s.store
            .offer(&offer(&e1, &["alice"]), s.clock.now(), RING)
            .await
            .unwrap(),
        OfferOutcome::HeldOff(id("alice"))
    );
    // The refused offer left alice free for the next entry, which a plan chooses knowing
    // that e1 is ahead of it.
    let next = Offer {
        ahead: vec![e1.id.clone()],
        ..offer(&e2, &["alice"])
    };
    assert_eq!(
        s.store.offer(&next, s.clock.now(), RING).await.unwrap(),
        OfferOutcome::Offered
    );
    let events = s
        .store
        .events(Some(&q("support")), None, 100)
        .await
        .unwrap();
    let no_answer = events
        .iter()
        .find(|e| e.kind == EventKind::AgentNoAnswer)
        .unwrap();
    assert_eq!(no_answer.field("agent"), Some("alice"));
    assert_eq!(no_answer.field("cause"), Some("no_answer"));
    assert_eq!(no_answer.field("rang_ms"), Some("20000"));
    let until = missed_at.plus(HOLD_OFF).as_millis().to_string();
    assert_eq!(no_answer.field("held_off_until"), Some(until.as_str()));
}

#[tokio::test]
async fn a_held_off_agent_may_take_the_entry_again_once_the_delay_is_over() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let e = caller("support", &s.clock);
    s.store.enqueue(&e, None).await.unwrap();
    let support = q("support");
    s.store
        .offer(&offer(&e, &["alice"]), s.clock.now(), RING)
        .await
        .unwrap();
    let rules = MissRules {
        hold_off: HOLD_OFF,
        away_after: None,
    };
    s.store
        .offer_failed(
            &support,
            &e.id,
            &id("alice"),
            NoAnswerCause::NoAnswer,
            s.clock.now(),
            rules,
        )
        .await
        .unwrap();
    // The end of the hold-off is a timer, so some daemon routes again then.
    let ends = Timer::HoldOffEnd {
        queue: support.clone(),
        entry: e.id.clone(),
        agent: id("alice"),
    };
    let scope = TimerScope::Queue(support.clone());
    let lease = Duration::from_secs(30);
    s.clock.advance(HOLD_OFF - Duration::from_millis(1));
    let early = s.clock.now();
    assert!(s
        .store
        .claim_due_timers(&scope, "d1", early, lease, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.store
            .offer(&offer(&e, &["alice"]), early, RING)
            .await
            .unwrap(),
        OfferOutcome::HeldOff(id("alice"))
    );
    s.clock.advance(Duration::from_millis(1));
    let now = s.clock.now();
    assert_eq!(
        s.store
            .claim_due_timers(&scope, "d1", now, lease, 10)
            .await
            .unwrap(),
        vec![ends]
    );
    assert_eq!(
        s.store
            .offer(&offer(&e, &["alice"]), now, RING)
            .await
            .unwrap(),
        OfferOutcome::Offered
    );
    // Missing it again holds alice off anew, from this miss.
    s.clock.advance(Duration::from_secs(5));
    s.store
        .offer_failed(
            &support,
            &e.id,
            &id("alice"),
            NoAnswerCause::Busy,
            s.clock.now(),
            rules,
        )
        .await
        .unwrap();
    let entry = s.store.entry(&support, &e.id).await.unwrap().unwrap();
    assert_eq!(
        entry.held_off.get(&id("alice")),
        Some(&s.clock.now().plus(HOLD_OFF))
    );
}

#[tokio::test]
async fn an_entry_that_a_previous_version_marked_tried_is_offered_again() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let e = caller("support", &s.clock);
    s.store.enqueue(&e, None).await.unwrap();
    // What the version before hold-offs left: alice in `tried`, for good.
    let client = redis::Client::open(s.config.redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("test:{{support}}:entry:{}", e.id);
    redis::cmd("HDEL")
        .arg(&key)
        .arg("held_off")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    redis::cmd("HSET")
        .arg(&key)
        .arg("tried")
        .arg("alice")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let read = s.store.entry(&q("support"), &e.id).await.unwrap().unwrap();
    assert!(read.held_off.is_empty());
    assert_eq!(
        s.store
            .offer(&offer(&e, &["alice"]), s.clock.now(), RING)
            .await
            .unwrap(),
        OfferOutcome::Offered
    );
}

#[tokio::test]
async fn missed_offers_in_a_row_set_the_agent_away() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let limit = NonZeroU32::new(2);
    let mut missed = Vec::new();
    for round in 1..=2 {
        let e = caller("support", &s.clock);
        s.store.enqueue(&e, None).await.unwrap();
        let next = Offer {
            ahead: missed.clone(),
            ..offer(&e, &["alice"])
        };
        assert_eq!(
            s.store.offer(&next, s.clock.now(), RING).await.unwrap(),
            OfferOutcome::Offered
        );
        missed.push(e.id.clone());
        let failed = s
            .store
            .offer_failed(
                &q("support"),
                &e.id,
                &id("alice"),
                NoAnswerCause::Busy,
                s.clock.now(),
                MissRules {
                    away_after: limit,
                    ..MissRules::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(failed.agent_set_away, round == 2);
    }
    let alice = s
        .store
        .agent(&id("alice"), s.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.state, AgentState::Away);
    let agent_events = s.store.events(None, None, 100).await.unwrap();
    let last = agent_events.last().unwrap();
    assert_eq!(last.kind, EventKind::AgentState);
    assert_eq!(last.field("to"), Some("away"));
    assert_eq!(last.field("source"), Some("missed_offers"));
}

#[tokio::test]
async fn ring_all_answer_connects_one_agent_and_releases_the_others() {
    let s = setup(&[
        ("alice", "[{ queue = \"sales\" }]"),
        ("bob", "[{ queue = \"sales\" }]"),
    ])
    .await;
    available(&s, &["alice", "bob"]).await;
    let e = caller("sales", &s.clock);
    s.store.enqueue(&e, None).await.unwrap();
    let router = s.config.router();
    let plan = router.next_offer(
        &s.store.waiting_entries(&q("sales"), 10).await.unwrap(),
        &s.store.agents(s.clock.now()).await.unwrap(),
        s.clock.now(),
    );
    let plan = plan.unwrap();
    assert_eq!(plan.agents.len(), 2, "ring-all rings both");
    s.store.offer(&plan, s.clock.now(), RING).await.unwrap();
    s.clock.advance(Duration::from_secs(3));
    s.store
        .connected(&q("sales"), &e.id, &id("bob"), s.clock.now())
        .await
        .unwrap();
    assert!(matches!(
        s.store
            .connected(&q("sales"), &e.id, &id("alice"), s.clock.now())
            .await,
        Err(StoreError::Rule(QueueError::NotOfferedTo { .. }))
    ));
    // A retry after a lost reply is harmless.
    s.store
        .connected(&q("sales"), &e.id, &id("bob"), s.clock.now())
        .await
        .unwrap();
    let now = s.clock.now();
    let alice = s.store.agent(&id("alice"), now).await.unwrap().unwrap();
    let bob = s.store.agent(&id("bob"), now).await.unwrap().unwrap();
    // Alice's phone may still ring: she is free once her leg is gone, not before.
    assert_eq!(alice.booked, Some(e.id.clone()));
    assert_eq!(bob.state, AgentState::OnCall);
    assert_eq!(bob.booked, None);
    assert!(s.store.open_entries(&q("sales")).await.unwrap().is_empty());
    let events = s.store.events(Some(&q("sales")), None, 100).await.unwrap();
    let connected = events
        .iter()
        .find(|e| e.kind == EventKind::Connected)
        .unwrap();
    assert_eq!(connected.field("agent"), Some("bob"));
    assert_eq!(connected.field("waited_ms"), Some("3010"));
    assert_eq!(connected.field("rang_ms"), Some("3000"));
    // on_call is left only through wrap-up.
    assert!(matches!(
        s.store
            .set_agent_state(&id("bob"), AgentState::Away, now, StateSource::Cli)
            .await,
        Err(StoreError::Rule(QueueError::AgentTransition { .. }))
    ));
    s.store
        .set_agent_state(&id("bob"), AgentState::WrapUp, now, StateSource::Daemon)
        .await
        .unwrap();
}

#[tokio::test]
async fn abandon_while_ringing_keeps_the_agent_for_their_leg_and_records_the_wait() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let e = caller("support", &s.clock);
    s.store.enqueue(&e, None).await.unwrap();
    s.store
        .offer(&offer(&e, &["alice"]), s.clock.now(), RING)
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(5));
    let ringing = s
        .store
        .close(&q("support"), &e.id, CloseReason::Abandoned, s.clock.now())
        .await
        .unwrap();
    assert_eq!(ringing, vec![id("alice")]);
    // Alice stays booked until the daemon ringing her sees her leg gone; that ring's end
    // frees her, as a ring does whose entry is closed.
    let alice = s
        .store
        .agent(&id("alice"), s.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(!alice.is_free());
    let rules = MissRules {
        hold_off: HOLD_OFF,
        away_after: NonZeroU32::new(1),
    };
    let failed = s
        .store
        .offer_failed(
            &q("support"),
            &e.id,
            &id("alice"),
            NoAnswerCause::NoAnswer,
            s.clock.now(),
            rules,
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Rule(_))));
    let alice = s
        .store
        .agent(&id("alice"), s.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(alice.is_free(), "a ring for a caller who left is no miss");
    assert!(s
        .store
        .open_entries(&q("support"))
        .await
        .unwrap()
        .is_empty());
    let events = s
        .store
        .events(Some(&q("support")), None, 100)
        .await
        .unwrap();
    let abandoned = events.last().unwrap();
    assert_eq!(abandoned.kind, EventKind::Abandoned);
    assert_eq!(abandoned.field("waited_ms"), Some("5010"));
    // A hangup seen twice closes once.
    let again = s
        .store
        .close(&q("support"), &e.id, CloseReason::Abandoned, s.clock.now())
        .await
        .unwrap();
    assert_eq!(again, Vec::<AgentId>::new());
    let events_after = s.store.events(Some(&q("support")), None, 100).await;
    assert_eq!(events_after.unwrap().len(), events.len());
    assert!(matches!(
        s.store
            .close(
                &q("support"),
                &e.id,
                CloseReason::MaxWaitExit,
                s.clock.now()
            )
            .await,
        Err(StoreError::Rule(QueueError::EntryStatus { .. }))
    ));
    // The agent's no-answer arriving after the hangup changes nothing.
    let late = s
        .store
        .offer_failed(
            &q("support"),
            &e.id,
            &id("alice"),
            NoAnswerCause::NoAnswer,
            s.clock.now(),
            MissRules::default(),
        )
        .await;
    assert!(matches!(
        late,
        Err(StoreError::Rule(QueueError::EntryStatus { .. }))
    ));
    let alice = s
        .store
        .agent(&id("alice"), s.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.missed_in_a_row, 0);
}

#[tokio::test]
async fn max_wait_timer_fires_for_live_callers_and_never_cuts_callbacks() {
    let s = setup(&[]).await;
    let live = caller("support", &s.clock);
    let cb =
        caller("support", &s.clock).into_callback(PhoneNumber::new("+4930222").unwrap(), &s.clock);
    let due = s.clock.now().plus(Duration::from_secs(60));
    s.store.enqueue(&live, Some(due)).await.unwrap();
    s.store.enqueue(&cb, Some(due)).await.unwrap();
    let scope = TimerScope::Queue(q("support"));
    let lease = Duration::from_secs(30);
    assert!(s
        .store
        .claim_due_timers(&scope, "d1", s.clock.now(), lease, 10)
        .await
        .unwrap()
        .is_empty());
    s.clock.advance(Duration::from_secs(61));
    let timers = s
        .store
        .claim_due_timers(&scope, "d1", s.clock.now(), lease, 10)
        .await
        .unwrap();
    assert_eq!(
        timers,
        vec![Timer::MaxWait {
            queue: q("support"),
            entry: live.id.clone()
        }],
        "callbacks get no max-wait timer"
    );
    s.store
        .close(
            &q("support"),
            &live.id,
            CloseReason::MaxWaitExit,
            s.clock.now(),
        )
        .await
        .unwrap();
    assert!(matches!(
        s.store
            .close(
                &q("support"),
                &cb.id,
                CloseReason::MaxWaitExit,
                s.clock.now()
            )
            .await,
        Err(StoreError::Rule(QueueError::CallbackNotCut(_)))
    ));
    assert_eq!(
        kinds(&s.store, Some(&q("support"))).await.last(),
        Some(&EventKind::MaxWaitExit)
    );
    // Closing removed the timer with the entry.
    s.clock.advance(Duration::from_secs(60));
    assert!(s
        .store
        .claim_due_timers(&scope, "d2", s.clock.now(), lease, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn timers_are_leased_and_come_back_when_their_owner_dies() {
    let s = setup(&[]).await;
    let timer = Timer::WrapUpEnd { agent: id("alice") };
    s.store.schedule(&timer, s.clock.now()).await.unwrap();
    let lease = Duration::from_secs(10);
    let now = s.clock.now();
    assert_eq!(
        s.store
            .claim_due_timers(&TimerScope::Agents, "d1", now, lease, 10)
            .await
            .unwrap(),
        vec![timer.clone()]
    );
    assert!(
        s.store
            .claim_due_timers(&TimerScope::Agents, "d2", now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased to d1"
    );
    s.clock.advance(Duration::from_secs(11));
    assert_eq!(
        s.store
            .claim_due_timers(&TimerScope::Agents, "d2", s.clock.now(), lease, 10)
            .await
            .unwrap(),
        vec![timer.clone()],
        "d1's lease ran out"
    );
    assert!(!s.store.complete_timer(&timer, "d1").await.unwrap());
    assert!(s.store.complete_timer(&timer, "d2").await.unwrap());
    s.clock.advance(Duration::from_secs(60));
    assert!(s
        .store
        .claim_due_timers(&TimerScope::Agents, "d1", s.clock.now(), lease, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn agent_state_changes_are_checked_and_recorded() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    let now = s.clock.now();
    let alice = s.store.agent(&id("alice"), now).await.unwrap().unwrap();
    assert_eq!(alice.state, AgentState::Offline, "new agents start offline");
    s.clock.advance(Duration::from_secs(7));
    let previous = s
        .store
        .set_agent_state(
            &id("alice"),
            AgentState::Available,
            s.clock.now(),
            StateSource::Cli,
        )
        .await
        .unwrap();
    assert_eq!(previous, AgentState::Offline);
    let alice = s
        .store
        .agent(&id("alice"), s.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.idle_since, s.clock.now());
    assert!(matches!(
        s.store
            .set_agent_state(&id("alice"), AgentState::WrapUp, now, StateSource::Cli)
            .await,
        Err(StoreError::Rule(QueueError::AgentTransition {
            from: AgentState::Available,
            ..
        }))
    ));
    assert!(matches!(
        s.store
            .set_agent_state(&id("nobody"), AgentState::Away, now, StateSource::Cli)
            .await,
        Err(StoreError::UnknownAgent(_))
    ));
    // Setting the same state again records nothing.
    s.store
        .set_agent_state(&id("alice"), AgentState::Available, now, StateSource::Phone)
        .await
        .unwrap();
    // Re-registering from config keeps the state.
    s.store
        .register_agents(&s.config.agents, now)
        .await
        .unwrap();
    let alice = s.store.agent(&id("alice"), now).await.unwrap().unwrap();
    assert_eq!(alice.state, AgentState::Available);
    let events = s.store.events(None, None, 100).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].field("agent"), Some("alice"));
    assert_eq!(events[0].field("from"), Some("offline"));
    assert_eq!(events[0].field("to"), Some("available"));
    assert_eq!(events[0].field("source"), Some("cli"));
}

#[tokio::test]
async fn the_newest_event_id_tells_that_something_happened() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    assert_eq!(s.store.last_event_id(None).await.unwrap(), None);
    available(&s, &["alice"]).await;
    let events = s.store.events(None, None, 100).await.unwrap();
    let newest = s.store.last_event_id(None).await.unwrap();
    assert_eq!(newest.as_deref(), Some(events.last().unwrap().id.as_str()));
    assert_eq!(
        s.store.last_event_id(Some(&q("support"))).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_new_store_handle_finds_open_entries_in_order() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let entries: Vec<Entry> = (0..5).map(|_| caller("support", &s.clock)).collect();
    for e in entries.iter().rev() {
        s.store.enqueue(e, None).await.unwrap();
    }
    let third = Offer {
        ahead: vec![entries[0].id.clone(), entries[1].id.clone()],
        ..offer(&entries[2], &["alice"])
    };
    assert_eq!(
        s.store.offer(&third, s.clock.now(), RING).await.unwrap(),
        OfferOutcome::Offered
    );
    // A restarted daemon: a fresh connection, nothing in memory.
    let restarted = Store::connect(&s.config.redis).await.unwrap();
    let open = restarted.open_entries(&q("support")).await.unwrap();
    let ids: Vec<_> = open.iter().map(|e| e.id.clone()).collect();
    let expected: Vec<_> = entries.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, expected);
    assert!(matches!(open[2].status, EntryStatus::Offered { .. }));
}

#[tokio::test]
async fn an_expired_booking_frees_the_agent() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let e1 = caller("support", &s.clock);
    let e2 = caller("support", &s.clock);
    s.store.enqueue(&e1, None).await.unwrap();
    s.store.enqueue(&e2, None).await.unwrap();
    s.store
        .offer(&offer(&e1, &["alice"]), s.clock.now(), RING)
        .await
        .unwrap();
    // The daemon that made the offer died: nobody reports its outcome.
    s.clock.advance(RING + Duration::from_secs(11));
    let alice = s
        .store
        .agent(&id("alice"), s.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(alice.is_free());
    let timers = s
        .store
        .claim_due_timers(
            &TimerScope::Queue(q("support")),
            "d2",
            s.clock.now(),
            RING,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        timers,
        vec![Timer::OfferTimeout {
            queue: q("support"),
            entry: e1.id.clone()
        }]
    );
    assert_eq!(
        s.store
            .offer(&offer(&e2, &["alice"]), s.clock.now(), RING)
            .await
            .unwrap(),
        OfferOutcome::Offered
    );
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error() {
    let port = common::free_port();
    let settings = RedisSettings {
        url: format!("redis://:hunter2@127.0.0.1:{port}/0"),
        cluster: false,
        key_prefix: "test".into(),
        events_kept: callbackd::config::DEFAULT_EVENTS_KEPT,
    };
    let err = match Store::connect(&settings).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot connect to Redis at redis://:***@127.0.0.1:{port}/0"
        )),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");

    // The TLS path (rustls with its crypto provider) fails the same clear way.
    let tls = RedisSettings {
        url: format!("rediss://127.0.0.1:{port}/0"),
        cluster: false,
        key_prefix: "test".into(),
        events_kept: callbackd::config::DEFAULT_EVENTS_KEPT,
    };
    let err = Store::connect(&tls)
        .await
        .err()
        .expect("connected to a closed port");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot connect to Redis at rediss://127.0.0.1:{port}/0"
        )),
        "{err}"
    );
}

/// Two daemons share one Redis: each loads the queue, routes, and tries its offers; some
/// offers go unanswered and come back. A shared log records, in order, each booking and
/// each release as the daemons see them succeed; neither may ever overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_racing_never_double_offer_nor_double_book() {
    const ENTRIES: usize = 200;
    let agents: Vec<String> = (0..8).map(|i| format!("agent{i}")).collect();
    let agent_specs: Vec<(&str, &str)> = agents
        .iter()
        .map(|a| (a.as_str(), "[{ queue = \"support\" }]"))
        .collect();
    let s = setup(&agent_specs).await;
    let names: Vec<&str> = agents.iter().map(String::as_str).collect();
    available(&s, &names).await;
    for _ in 0..ENTRIES {
        s.store
            .enqueue(&caller("support", &s.clock), None)
            .await
            .unwrap();
    }

    #[derive(Debug)]
    enum Step {
        Booked { agent: AgentId, entry: String },
        Released { agent: AgentId, entry: String },
    }
    let log = Arc::new(Mutex::new(Vec::<Step>::new()));
    let mut daemons = Vec::new();
    for daemon in 0..2u64 {
        let store = Store::connect(&s.config.redis).await.unwrap();
        let router = s.config.router();
        let clock = s.clock.clone();
        let log = log.clone();
        daemons.push(tokio::spawn(async move {
            let (mut handled, mut lost) = (0usize, 0usize);
            let mut round = 0u64;
            loop {
                let now = clock.now();
                let entries = store.waiting_entries(&q("support"), 50).await.unwrap();
                if entries.is_empty() {
                    return (handled, lost);
                }
                let agents = store.agents(now).await.unwrap();
                for plan in router.plan(&entries, &agents, now) {
                    round += 1;
                    let outcome = store.offer(&plan, now, RING).await;
                    match outcome {
                        Ok(OfferOutcome::Offered) => {}
                        Ok(
                            OfferOutcome::AgentNotFree(_)
                            | OfferOutcome::EntryNotWaiting
                            | OfferOutcome::EntryNotFirst
                            | OfferOutcome::HeldOff(_),
                        ) => {
                            lost += 1;
                            continue;
                        }
                        Err(e) => panic!("offer failed: {e}"),
                    }
                    let agent = plan.agents[0].clone();
                    let entry = plan.entry.to_string();
                    log.lock().unwrap().push(Step::Booked {
                        agent: agent.clone(),
                        entry: entry.clone(),
                    });
                    // The phone rings a moment; the other daemon keeps trying meanwhile.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    // Release is logged before the store frees the agent, so a later
                    // booking by the other daemon always lands after it in the log.
                    log.lock().unwrap().push(Step::Released {
                        agent: agent.clone(),
                        entry,
                    });
                    if (round + daemon).is_multiple_of(5) {
                        store
                            .offer_failed(
                                &q("support"),
                                &plan.entry,
                                &agent,
                                NoAnswerCause::NoAnswer,
                                now,
                                MissRules::default(),
                            )
                            .await
                            .unwrap();
                    } else {
                        store
                            .connected(&q("support"), &plan.entry, &agent, now)
                            .await
                            .unwrap();
                        store
                            .set_agent_state(
                                &agent,
                                AgentState::Available,
                                now,
                                StateSource::Daemon,
                            )
                            .await
                            .unwrap();
                        handled += 1;
                    }
                }
            }
        }));
    }
    let (mut handled, mut lost) = (0, 0);
    for d in daemons {
        let (h, l) = tokio::time::timeout(Duration::from_secs(120), d)
            .await
            .expect("daemons finish")
            .unwrap();
        handled += h;
        lost += l;
    }
    eprintln!("races lost between the two stores: {lost}");
    assert_eq!(handled, ENTRIES, "every entry connected exactly once");

    let log = std::mem::take(&mut *log.lock().unwrap());
    let mut ringing: HashMap<AgentId, String> = HashMap::new();
    let mut entry_offered: HashSet<String> = HashSet::new();
    for step in log.iter() {
        match step {
            Step::Booked { agent, entry } => {
                assert!(!ringing.contains_key(agent), "{agent} booked twice");
                assert!(entry_offered.insert(entry.clone()), "{entry} offered twice");
                ringing.insert(agent.clone(), entry.clone());
            }
            Step::Released { agent, entry } => {
                assert_eq!(ringing.remove(agent).as_ref(), Some(entry));
                entry_offered.remove(entry);
            }
        }
    }
    // Redis agrees: one `connected` per entry, and every `offered` matched by an outcome.
    let events = s
        .store
        .events(Some(&q("support")), None, 10_000)
        .await
        .unwrap();
    let count = |k: EventKind| events.iter().filter(|e| e.kind == k).count();
    assert_eq!(count(EventKind::Connected), ENTRIES);
    assert_eq!(
        count(EventKind::Offered),
        count(EventKind::Connected)
            + count(EventKind::AgentNoAnswer)
            + count(EventKind::OfferWithdrawn)
    );
    let connected: HashSet<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Connected)
        .map(|e| e.field("entry").unwrap().to_owned())
        .collect();
    assert_eq!(connected.len(), ENTRIES);
}

#[tokio::test]
async fn a_failed_bridge_puts_the_entry_back_at_its_place() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let e1 = caller("support", &s.clock);
    s.clock.advance(Duration::from_secs(1));
    let e2 = caller("support", &s.clock);
    s.store.enqueue(&e1, None).await.unwrap();
    s.store.enqueue(&e2, None).await.unwrap();
    s.store
        .offer(&offer(&e1, &["alice"]), s.clock.now(), RING)
        .await
        .unwrap();
    s.store
        .connected(&q("support"), &e1.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    s.store
        .bridge_failed(&q("support"), &e1.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    let waiting = s.store.waiting_entries(&q("support"), 10).await.unwrap();
    assert_eq!(
        waiting[0].id, e1.id,
        "back at the head, before the later caller"
    );
    assert_eq!(waiting[0].position, e1.position);
    assert_eq!(waiting[1].id, e2.id);
    // Only the agent it was connected to can fail it, and only once.
    assert!(s
        .store
        .bridge_failed(&q("support"), &e1.id, &id("alice"), s.clock.now())
        .await
        .is_err());
}

#[tokio::test]
async fn event_streams_are_trimmed_to_about_the_kept_length() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    for i in 0..3000 {
        let to = if i % 2 == 0 {
            AgentState::Available
        } else {
            AgentState::Away
        };
        s.store
            .set_agent_state(&id("alice"), to, s.clock.now(), StateSource::Cli)
            .await
            .unwrap();
    }
    for _ in 0..1500 {
        s.store
            .enqueue(&caller("support", &s.clock), None)
            .await
            .unwrap();
    }
    s.store
        .trim_events(&[q("support"), q("sales")], 1000)
        .await
        .unwrap();
    let agents = s.store.events(None, None, 10_000).await.unwrap();
    let support = s
        .store
        .events(Some(&q("support")), None, 10_000)
        .await
        .unwrap();
    for (name, kept) in [("agents", agents.len()), ("support", support.len())] {
        // `~` trims whole nodes of up to 100 entries: never below the length asked for.
        assert!((1000..=1100).contains(&kept), "{name}: {kept}");
    }
    // What is kept is the newest.
    assert_eq!(agents.last().and_then(|e| e.field("to")), Some("away"));
}

#[tokio::test]
async fn an_unreadable_record_is_skipped_and_counted_never_stalling_the_others() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    let good = caller("support", &s.clock);
    s.store.enqueue(&good, None).await.unwrap();
    let client = redis::Client::open(s._redis.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    // An entry ahead of the good one that some other tool wrote, and a timer nobody knows.
    redis::pipe()
        .zadd("test:{support}:waiting", "junk", 1)
        .hset("test:{support}:entry:junk", "kind", "parcel")
        .zadd("test:{@agents}:timers", "no-such-timer:x", 1)
        .sadd("test:{@agents}:ids", "bad id")
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        s.store.waiting_entries(&q("support"), 10).await.unwrap(),
        vec![good]
    );
    let timer = Timer::WrapUpEnd { agent: id("alice") };
    s.store.schedule(&timer, s.clock.now()).await.unwrap();
    let claim = || {
        s.store
            .claim_due_timers(&TimerScope::Agents, "d1", s.clock.now(), RING, 10)
    };
    assert_eq!(claim().await.unwrap(), vec![timer.clone()]);
    let agents = s.store.agents(s.clock.now()).await.unwrap();
    assert_eq!(
        agents.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    assert_eq!(s.store.poison_records(), 3);
    // Dropped, not leased again every lease to be said once more.
    s.clock.advance(RING * 2);
    assert!(claim().await.unwrap().iter().all(|t| *t == timer));
    assert_eq!(s.store.poison_records(), 3);
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg("test:{@agents}:timers")
        .arg(0)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(!ids.iter().any(|m| m.starts_with("no-such")), "{ids:?}");
}

#[tokio::test]
async fn the_lease_of_a_timer_removed_while_its_daemon_was_dead_is_swept() {
    let s = setup(&[]).await;
    let (stays, goes) = (
        Timer::WrapUpEnd { agent: id("alice") },
        Timer::WrapUpEnd { agent: id("bob") },
    );
    for t in [&stays, &goes] {
        s.store.schedule(t, s.clock.now()).await.unwrap();
    }
    let scope = TimerScope::Agents;
    let claimed = s
        .store
        .claim_due_timers(&scope, "d1", s.clock.now(), RING, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    // d1 dies; meanwhile a transition removes one of its timers.
    let client = redis::Client::open(s._redis.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("ZREM")
        .arg("test:{@agents}:timers")
        .arg("wrap_up:bob")
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    assert_eq!(s.store.sweep_timer_leases(&scope).await.unwrap(), 1);
    assert_eq!(s.store.sweep_timer_leases(&scope).await.unwrap(), 0);
    assert!(s.store.complete_timer(&stays, "d1").await.unwrap());
}

#[tokio::test]
async fn a_callers_media_has_one_owner_until_its_lease_runs_out() {
    let s = setup(&[]).await;
    let support = q("support");
    let entry = caller("support", &s.clock);
    let lease = Duration::from_secs(9);
    let max_wait = s.clock.now();
    s.store
        .enqueue_caller(&entry, Some(max_wait), "d1", s.clock.now().plus(lease))
        .await
        .unwrap();
    let ids = [entry.id.clone()];
    let (now, until) = (s.clock.now(), s.clock.now().plus(lease));
    assert!(s
        .store
        .take_media(&support, "d2", now, until, &ids)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .store
        .unowned_callers(&support, now, 10)
        .await
        .unwrap()
        .is_empty());
    // Only the owner may send the caller elsewhere while its lease holds.
    let scope = TimerScope::Queue(support.clone());
    let claim = |owner: &'static str, now| {
        s.store
            .claim_due_timers(&scope, owner, now, Duration::from_secs(1), 10)
    };
    assert!(claim("d2", now).await.unwrap().is_empty());
    assert!(s
        .store
        .renew_media(&support, "d1", s.clock.now().plus(lease), &ids)
        .await
        .unwrap()
        .is_empty());
    // d1 dies: once its lease has run out, d2 may take the caller and their max wait.
    s.clock.advance(lease + Duration::from_secs(1));
    let now = s.clock.now();
    assert_eq!(
        s.store.unowned_callers(&support, now, 10).await.unwrap(),
        ids
    );
    assert_eq!(claim("d2", now).await.unwrap().len(), 1);
    assert_eq!(
        s.store
            .take_media(&support, "d2", now, now.plus(lease), &ids)
            .await
            .unwrap(),
        ids
    );
    // d1 comes back to find it has lost the caller.
    assert_eq!(
        s.store
            .renew_media(&support, "d1", now.plus(lease), &ids)
            .await
            .unwrap(),
        ids
    );
    // A caller who is no longer waiting needs no lease, and nobody takes them.
    s.store
        .close(&support, &entry.id, CloseReason::Abandoned, now)
        .await
        .unwrap();
    assert!(s
        .store
        .renew_media(&support, "d2", now.plus(lease), &ids)
        .await
        .unwrap()
        .is_empty());
    let later = now.plus(lease * 2);
    assert!(s
        .store
        .unowned_callers(&support, later, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_call_that_ends_schedules_its_wrap_up_end_in_the_same_step() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let e = caller("support", &s.clock);
    s.store.enqueue(&e, None).await.unwrap();
    let now = s.clock.now();
    s.store
        .offer(&offer(&e, &["alice"]), now, RING)
        .await
        .unwrap();
    s.store
        .connected(&q("support"), &e.id, &id("alice"), now)
        .await
        .unwrap();
    let wrap_up = Duration::from_secs(30);
    assert!(s
        .store
        .call_ended(&ended(&e, "alice"), wrap_up, now)
        .await
        .unwrap());
    // The second hangup of the call finds nothing left to do.
    assert!(!s
        .store
        .call_ended(&ended(&e, "alice"), wrap_up, now)
        .await
        .unwrap());
    let alice = s.store.agent(&id("alice"), now).await.unwrap().unwrap();
    assert_eq!(alice.state, AgentState::WrapUp);
    let due = now.plus(wrap_up);
    let timers = s
        .store
        .claim_due_timers(&TimerScope::Agents, "d1", due, RING, 10)
        .await
        .unwrap();
    assert_eq!(timers, vec![Timer::WrapUpEnd { agent: id("alice") }]);
}

#[tokio::test]
async fn the_late_end_of_a_call_never_frees_an_agent_from_the_next_one() {
    let s = setup(&[("alice", "[{ queue = \"support\" }]")]).await;
    available(&s, &["alice"]).await;
    let (first, second, third) = (
        caller("support", &s.clock),
        caller("support", &s.clock),
        caller("support", &s.clock),
    );
    for e in [&first, &second, &third] {
        s.store.enqueue(e, None).await.unwrap();
    }
    let now = s.clock.now();
    for e in [&first, &second] {
        s.store
            .offer_after_call(&offer(e, &["alice"]), &[ended(&first, "alice")], now, RING)
            .await
            .unwrap();
        s.store
            .connected(&q("support"), &e.id, &id("alice"), now)
            .await
            .unwrap();
    }
    // Alice talks to the second caller; a daemon learns only now that the first call ended.
    let no_wrap_up = Duration::ZERO;
    assert!(!s
        .store
        .call_ended(&ended(&first, "alice"), no_wrap_up, now)
        .await
        .unwrap());
    assert_eq!(
        s.store
            .offer_after_call(
                &offer(&third, &["alice"]),
                &[ended(&first, "alice")],
                now,
                RING
            )
            .await
            .unwrap(),
        OfferOutcome::AgentNotFree(id("alice"))
    );
    let alice = s.store.agent(&id("alice"), now).await.unwrap().unwrap();
    assert_eq!(alice.state, AgentState::OnCall);
    // The end of the call she is on frees her.
    assert!(s
        .store
        .call_ended(&ended(&second, "alice"), no_wrap_up, now)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_name_is_never_kept_for_an_entry_that_is_gone() {
    let s = setup(&[]).await;
    let e = caller("support", &s.clock);
    let support = q("support");
    assert!(matches!(
        s.store
            .set_caller_name(&support, &e.id, "/r/name.wav")
            .await,
        Err(StoreError::UnknownEntry { .. })
    ));
    assert!(s.store.entry(&support, &e.id).await.unwrap().is_none());
    s.store.enqueue(&e, None).await.unwrap();
    s.store
        .set_caller_name(&support, &e.id, "/r/name.wav")
        .await
        .unwrap();
    assert_eq!(
        s.store
            .caller_name(&support, &e.id)
            .await
            .unwrap()
            .as_deref(),
        Some("/r/name.wav")
    );
}
