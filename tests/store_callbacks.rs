//! Callbacks in the Redis store against a real `redis-server`: a caller becomes a
//! callback in their place, one number is queued once, agents decline or accept, the
//! customer leg answers or fails and is retried, requests expire, a caller calling again
//! keeps or cancels their pending callback, an operator's tool asks for one, and every step
//! is recorded with its timings.

mod common;

use std::path::Path;
use std::time::Duration;

use callbackd::config::Config;
use callbackd::queue::{
    AgentId, AgentState, CallbackRequest, Clock, CloseReason, Entry, EntryId, EntryKind,
    EntryStatus, LineName, ManualClock, Offer, QueueError, QueueName, Timestamp,
};
use callbackd::store::{
    Answered, CallbackCreated, CallbackRequested, CallbackStats, CallerCancel, Declined, EventKind,
    KeptBy, MissRules, NoAnswerCause, OfferOutcome, StateSource, Store, StoreError, StoredEvent,
    Timer, TimerScope, TodayFigures,
};
use callbackd::switch::{CallId, PhoneNumber};
use common::RedisServer;

const RING: Duration = Duration::from_secs(20);
const WINDOW: Duration = Duration::from_secs(3600);
/// How long a decline holds its agent off the callback in these tests.
const REJECT: Duration = Duration::from_secs(10);

fn config(url: &str, agents: &[&str]) -> Config {
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
"#
    );
    for id in agents {
        text.push_str(&format!(
            "[[agents]]\nid = \"{id}\"\ncontact = \"user/{id}\"\nqueues = [{{ queue = \"support\" }}]\n"
        ));
    }
    Config::parse(Path::new("test.toml"), &text).unwrap()
}

struct Setup {
    _redis: RedisServer,
    store: Store,
    clock: ManualClock,
}

async fn setup(agents: &[&str]) -> Setup {
    let redis = RedisServer::start();
    let config = config(&redis.url(), agents);
    let store = Store::connect(&config.redis).await.unwrap();
    let clock = ManualClock::new(Timestamp::from_millis(1_700_000_000_000));
    store
        .register_agents(&config.agents, clock.now())
        .await
        .unwrap();
    for a in agents {
        store
            .set_agent_state(&id(a), AgentState::Available, clock.now(), StateSource::Cli)
            .await
            .unwrap();
    }
    Setup {
        _redis: redis,
        store,
        clock,
    }
}

fn support() -> QueueName {
    QueueName::new("support").unwrap()
}

fn id(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn number(n: &str) -> PhoneNumber {
    PhoneNumber::new(n).unwrap()
}

/// A live caller enqueued now, with a max-wait timer; the clock moves on 10 s.
async fn caller(s: &Setup) -> Entry {
    let entry = Entry::live_caller(
        support(),
        LineName::new("main").unwrap(),
        CallId::random(),
        None,
        &s.clock,
    );
    s.store
        .enqueue(&entry, Some(s.clock.now().plus(Duration::from_secs(600))))
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(10));
    entry
}

async fn request(s: &Setup, entry: &EntryId, n: &str) -> CallbackRequested {
    let now = s.clock.now();
    s.store
        .request_callback(&support(), entry, &number(n), now, now.plus(WINDOW), false)
        .await
        .unwrap()
}

/// Offer `entry` as a plan that read the whole queue would: knowing who waits ahead.
async fn offer(s: &Setup, entry: &EntryId, agent: &str) {
    let ahead = waiting_ids(s)
        .await
        .into_iter()
        .take_while(|e| e != entry)
        .collect();
    let offer = Offer {
        entry: entry.clone(),
        queue: support(),
        agents: vec![id(agent)],
        ahead,
    };
    assert_eq!(
        s.store.offer(&offer, s.clock.now(), RING).await.unwrap(),
        OfferOutcome::Offered
    );
}

async fn entry(s: &Setup, e: &EntryId) -> Entry {
    s.store.entry(&support(), e).await.unwrap().unwrap()
}

async fn waiting_ids(s: &Setup) -> Vec<EntryId> {
    s.store
        .waiting_entries(&support(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

async fn events(s: &Setup) -> Vec<StoredEvent> {
    s.store.events(Some(&support()), None, 1000).await.unwrap()
}

async fn events_of(s: &Setup, e: &EntryId) -> Vec<StoredEvent> {
    events(s)
        .await
        .into_iter()
        .filter(|ev| ev.field("entry") == Some(e.as_str()))
        .collect()
}

fn kinds(events: &[StoredEvent]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

async fn agent_state(s: &Setup, agent: &str) -> (AgentState, Option<EntryId>) {
    let a = s
        .store
        .agent(&id(agent), s.clock.now())
        .await
        .unwrap()
        .unwrap();
    (a.state, a.booked)
}

/// `entry`'s retry timer is not due yet, comes due `after` from now, and its first run
/// puts the callback back in the queue.
async fn retry_comes_due(s: &Setup, entry: &EntryId, after: Duration) {
    let retry = Timer::CallbackRetry {
        queue: support(),
        entry: entry.clone(),
    };
    assert!(!due_timers(s).await.contains(&retry));
    s.clock.advance(after);
    assert!(due_timers(s).await.contains(&retry));
    assert!(s
        .store
        .callback_retry_due(&support(), entry, s.clock.now())
        .await
        .unwrap());
}

async fn due_timers(s: &Setup) -> Vec<Timer> {
    s.store
        .claim_due_timers(
            &TimerScope::Queue(support()),
            "test",
            s.clock.now(),
            Duration::from_secs(30),
            100,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_caller_becomes_a_callback_in_their_place() {
    let s = setup(&[]).await;
    let first = caller(&s).await;
    let middle = caller(&s).await;
    let last = caller(&s).await;
    let asked_at = s.clock.now();
    assert_eq!(
        request(&s, &middle.id, "+4930222").await,
        CallbackRequested::Requested
    );
    // Asking again after a lost reply changes nothing.
    assert_eq!(
        request(&s, &middle.id, "+4930222").await,
        CallbackRequested::Requested
    );

    assert_eq!(
        waiting_ids(&s).await,
        vec![first.id.clone(), middle.id.clone(), last.id.clone()]
    );
    let cb = entry(&s, &middle.id).await;
    assert_eq!(cb.position, middle.position);
    assert_eq!(cb.status, EntryStatus::Waiting);
    assert_eq!(
        cb.kind,
        EntryKind::Callback(CallbackRequest {
            number: number("+4930222"),
            requested_at: asked_at,
            attempts: 0,
        })
    );
    assert_eq!(
        s.store.waiting_entries(&support(), 100).await.unwrap()[1],
        cb
    );

    let requested = events_of(&s, &middle.id).await;
    assert_eq!(
        kinds(&requested),
        vec![EventKind::Entered, EventKind::Requested]
    );
    let ev = &requested[1];
    assert_eq!(ev.field("number"), Some("+4930222"));
    assert_eq!(ev.field("line"), Some("main"));
    assert_eq!(ev.field("waited_ms"), Some("20000"));
    assert_eq!(ev.field("ticket"), None);

    // The max wait no longer applies to it; its expiry does.
    s.clock.advance(Duration::from_secs(600));
    let due = due_timers(&s).await;
    assert!(due.contains(&Timer::MaxWait {
        queue: support(),
        entry: first.id.clone()
    }));
    assert!(!due.iter().any(|t| matches!(t,
        Timer::MaxWait { entry, .. } if *entry == middle.id)));
    s.clock.advance(WINDOW);
    assert!(due_timers(&s).await.contains(&Timer::CallbackExpiry {
        queue: support(),
        entry: middle.id.clone()
    }));
}

#[tokio::test]
async fn a_second_request_for_a_pending_number_is_ignored_and_recorded() {
    let s = setup(&[]).await;
    let first = caller(&s).await;
    let second = caller(&s).await;
    request(&s, &first.id, "+4930222").await;
    assert_eq!(
        request(&s, &second.id, "+4930222").await,
        CallbackRequested::Duplicate {
            existing: first.id.clone()
        }
    );
    assert_eq!(waiting_ids(&s).await, vec![first.id.clone()]);
    assert!(matches!(
        entry(&s, &second.id).await.status,
        EntryStatus::Closed {
            reason: CloseReason::DuplicateIgnored,
            ..
        }
    ));
    let dup = events_of(&s, &second.id).await;
    assert_eq!(
        kinds(&dup),
        vec![EventKind::Entered, EventKind::DuplicateIgnored]
    );
    assert_eq!(dup[1].field("existing"), Some(first.id.as_str()));
    assert_eq!(dup[1].field("number"), Some("+4930222"));
    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap(),
        CallbackStats {
            in_queue: 1,
            total: 1,
            average_wait: None
        }
    );

    // Another number is no duplicate, and once the first is gone its number is free.
    let third = caller(&s).await;
    assert_eq!(
        request(&s, &third.id, "+4930333").await,
        CallbackRequested::Requested
    );
    s.store
        .callback_cancel(&support(), &first.id, s.clock.now())
        .await
        .unwrap();
    let fourth = caller(&s).await;
    assert_eq!(
        request(&s, &fourth.id, "+4930222").await,
        CallbackRequested::Requested
    );
}

#[tokio::test]
async fn only_waiting_or_ringing_live_callers_become_callbacks() {
    let s = setup(&["alice"]).await;
    let e = caller(&s).await;
    offer(&s, &e.id, "alice").await;
    s.store
        .connected(&support(), &e.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    let now = s.clock.now();
    assert!(matches!(
        s.store
            .request_callback(
                &support(),
                &e.id,
                &number("+4930222"),
                now,
                now.plus(WINDOW),
                false,
            )
            .await,
        Err(StoreError::Rule(QueueError::EntryStatus { .. }))
    ));
    let missing = EntryId::new("missing").unwrap();
    assert!(matches!(
        s.store
            .request_callback(
                &support(),
                &missing,
                &number("+4930222"),
                now,
                now.plus(WINDOW),
                false,
            )
            .await,
        Err(StoreError::UnknownEntry { .. })
    ));
}

#[tokio::test]
async fn a_declined_callback_goes_to_the_next_agent_and_closes_when_all_declined() {
    let s = setup(&["alice", "bob"]).await;
    let e = caller(&s).await;
    request(&s, &e.id, "+4930222").await;
    let eligible = [id("alice"), id("bob")];

    offer(&s, &e.id, "alice").await;
    let declined = s
        .store
        .callback_declined(
            &support(),
            &e.id,
            &id("alice"),
            s.clock.now(),
            REJECT,
            &eligible,
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        declined,
        Declined {
            declined_by_all: false
        }
    );
    assert_eq!(
        agent_state(&s, "alice").await,
        (AgentState::Available, None)
    );
    assert_eq!(waiting_ids(&s).await, vec![e.id.clone()]);
    let offer_alice = Offer {
        entry: e.id.clone(),
        queue: support(),
        agents: vec![id("alice")],
        ahead: vec![],
    };
    assert_eq!(
        s.store
            .offer(&offer_alice, s.clock.now(), RING)
            .await
            .unwrap(),
        OfferOutcome::HeldOff(id("alice"))
    );
    // Its end is a timer, so routing looks again then.
    let ends = s
        .store
        .claim_due_timers(
            &TimerScope::Queue(support()),
            "test",
            s.clock.now().plus(REJECT),
            Duration::from_secs(30),
            100,
        )
        .await
        .unwrap();
    assert_eq!(
        ends,
        vec![Timer::HoldOffEnd {
            queue: support(),
            entry: e.id.clone(),
            agent: id("alice"),
        }]
    );

    offer(&s, &e.id, "bob").await;
    let declined = s
        .store
        .callback_declined(
            &support(),
            &e.id,
            &id("bob"),
            s.clock.now(),
            REJECT,
            &eligible,
            true,
        )
        .await
        .unwrap();
    assert!(declined.declined_by_all);
    assert_eq!(agent_state(&s, "bob").await, (AgentState::Available, None));
    assert!(waiting_ids(&s).await.is_empty());
    assert!(matches!(
        entry(&s, &e.id).await.status,
        EntryStatus::Closed {
            reason: CloseReason::DeclinedByAll,
            ..
        }
    ));
    let evs = events_of(&s, &e.id).await;
    assert_eq!(
        kinds(&evs),
        vec![
            EventKind::Entered,
            EventKind::Requested,
            EventKind::Offered,
            EventKind::Declined,
            EventKind::Offered,
            EventKind::Declined,
            EventKind::DeclinedByAll,
        ]
    );
    assert_eq!(evs[3].field("agent"), Some("alice"));
    let all = evs.last().unwrap();
    assert_eq!(all.field("ticket"), Some("1"));
    assert_eq!(all.field("number"), Some("+4930222"));
    assert!(s.store.open_entries(&support()).await.unwrap().is_empty());
    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap().in_queue,
        0
    );
}

#[tokio::test]
async fn a_missed_ring_is_no_decline_and_a_decliner_may_be_offered_it_again_later() {
    let s = setup(&["alice", "bob"]).await;
    let e = caller(&s).await;
    request(&s, &e.id, "+4930222").await;
    let eligible = [id("alice"), id("bob")];
    // Bob's phone rings out; then alice hears it and declines.
    offer(&s, &e.id, "bob").await;
    s.store
        .offer_failed(
            &support(),
            &e.id,
            &id("bob"),
            NoAnswerCause::NoAnswer,
            s.clock.now(),
            MissRules {
                hold_off: Duration::from_secs(30),
                away_after: None,
            },
        )
        .await
        .unwrap();
    offer(&s, &e.id, "alice").await;
    let declined = s
        .store
        .callback_declined(
            &support(),
            &e.id,
            &id("alice"),
            s.clock.now(),
            REJECT,
            &eligible,
            true,
        )
        .await
        .unwrap();
    assert!(!declined.declined_by_all, "bob never declined");
    assert_eq!(waiting_ids(&s).await, vec![e.id.clone()]);
    // Once alice's reject delay is over she may be offered it again, and declining once
    // more still leaves it open: bob has not declined.
    s.clock.advance(REJECT);
    offer(&s, &e.id, "alice").await;
    let declined = s
        .store
        .callback_declined(
            &support(),
            &e.id,
            &id("alice"),
            s.clock.now(),
            REJECT,
            &eligible,
            true,
        )
        .await
        .unwrap();
    assert!(!declined.declined_by_all);
    s.clock.advance(Duration::from_secs(30));
    offer(&s, &e.id, "bob").await;
    let declined = s
        .store
        .callback_declined(
            &support(),
            &e.id,
            &id("bob"),
            s.clock.now(),
            REJECT,
            &eligible,
            true,
        )
        .await
        .unwrap();
    assert!(declined.declined_by_all);
}

#[tokio::test]
async fn an_accepted_callback_is_dialed_answered_and_completed_with_timings() {
    let s = setup(&["alice", "bob"]).await;
    let e = caller(&s).await;
    let later = caller(&s).await;
    let requested_at = s.clock.now();
    request(&s, &e.id, "+4930222").await;
    s.clock.advance(Duration::from_secs(30));
    offer(&s, &e.id, "alice").await;
    s.clock.advance(Duration::from_secs(8));
    s.store
        .callback_accepted(&support(), &e.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    // A repeat after a lost reply changes nothing.
    s.store
        .callback_accepted(&support(), &e.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    let accepted_at = s.clock.now();
    let dialing = entry(&s, &e.id).await;
    assert_eq!(
        dialing.status,
        EntryStatus::Dialing {
            agent: id("alice"),
            since: accepted_at
        }
    );
    assert!(matches!(&dialing.kind, EntryKind::Callback(r) if r.attempts == 1));
    assert_eq!(agent_state(&s, "alice").await, (AgentState::OnCall, None));
    // Never offered to anyone else, still open for a restarted daemon, no longer expiring.
    assert_eq!(waiting_ids(&s).await, vec![later.id.clone()]);
    assert_eq!(s.store.open_entries(&support()).await.unwrap().len(), 2);
    assert!(s
        .store
        .callback_expire(&support(), &e.id, s.clock.now().plus(WINDOW))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        s.store
            .callback_accepted(&support(), &e.id, &id("bob"), s.clock.now())
            .await,
        Err(StoreError::Rule(_))
    ));

    s.store
        .callback_dialing(&support(), &e.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(12));
    s.store
        .callback_customer_answered(&support(), &e.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    let answered_at = s.clock.now();
    assert_eq!(
        entry(&s, &e.id).await.status,
        EntryStatus::Connected {
            agent: id("alice"),
            at: answered_at
        }
    );
    assert_eq!(
        s.store.open_entries(&support()).await.unwrap().len(),
        1,
        "connected leaves the open set"
    );
    s.clock.advance(Duration::from_secs(90));
    s.store
        .callback_completed(&support(), &e.id, &id("alice"), s.clock.now())
        .await
        .unwrap();

    let evs = events_of(&s, &e.id).await;
    assert_eq!(
        kinds(&evs),
        vec![
            EventKind::Entered,
            EventKind::Requested,
            EventKind::Offered,
            EventKind::Accepted,
            EventKind::DialingCustomer,
            EventKind::CustomerAnswered,
            EventKind::Connected,
            EventKind::Completed,
        ]
    );
    for ev in &evs[1..] {
        assert_eq!(ev.field("number"), Some("+4930222"), "{ev:?}");
        assert_eq!(ev.field("queue"), Some("support"));
    }
    for ev in &evs[3..] {
        assert_eq!(ev.field("agent"), Some("alice"), "{ev:?}");
    }
    let accepted = &evs[3];
    assert_eq!(accepted.field("ticket"), Some("1"));
    assert_eq!(accepted.field("attempt"), Some("1"));
    let answered = &evs[5];
    let callback_wait = answered_at.since(requested_at);
    assert_eq!(
        answered.field("callback_wait_ms"),
        Some(callback_wait.as_millis().to_string().as_str())
    );
    assert_eq!(answered.field("dial_ms"), Some("12000"));
    assert_eq!(
        answered.field("waited_ms"),
        Some(
            answered_at
                .since(e.position)
                .as_millis()
                .to_string()
                .as_str()
        )
    );
    assert_eq!(evs[7].field("talk_ms"), Some("90000"));
    for ev in &evs {
        assert_eq!(
            ev.field("ticket") == Some("1"),
            ev.kind.opens_ticket(),
            "{ev:?}"
        );
    }

    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap(),
        CallbackStats {
            in_queue: 0,
            total: 1,
            average_wait: Some(callback_wait)
        }
    );
    let today = s
        .store
        .today_figures(&support(), s.clock.now())
        .await
        .unwrap();
    assert_eq!(
        today,
        TodayFigures {
            requested: 1,
            connected: 1,
            ended_unconnected: 0,
            abandoned: 0,
            average_wait: Some(callback_wait),
        }
    );
    assert_eq!(today.connected_share(), Some(1.0));
    // Tomorrow counts from zero.
    let tomorrow = s.clock.now().plus(Duration::from_secs(86_400));
    assert_eq!(
        s.store.today_figures(&support(), tomorrow).await.unwrap(),
        TodayFigures::default()
    );
    // The number is free again.
    let again = caller(&s).await;
    assert_eq!(
        request(&s, &again.id, "+4930222").await,
        CallbackRequested::Requested
    );
}

async fn accepted_callback(s: &Setup, agent: &str) -> (Entry, Entry, Entry) {
    let first = caller(s).await;
    let cb = caller(s).await;
    let last = caller(s).await;
    request(s, &cb.id, "+4930222").await;
    s.store
        .close(&support(), &first.id, CloseReason::Abandoned, s.clock.now())
        .await
        .unwrap();
    offer(s, &cb.id, agent).await;
    s.store
        .callback_accepted(&support(), &cb.id, &id(agent), s.clock.now())
        .await
        .unwrap();
    s.store
        .callback_dialing(&support(), &cb.id, &id(agent), s.clock.now())
        .await
        .unwrap();
    (first, cb, last)
}

#[tokio::test]
async fn a_failed_attempt_without_retry_closes_the_callback() {
    let s = setup(&["alice"]).await;
    let (_, cb, _) = accepted_callback(&s, "alice").await;
    s.clock.advance(Duration::from_secs(30));
    s.store
        .callback_attempt_failed(
            &support(),
            &cb.id,
            &id("alice"),
            "no_answer",
            s.clock.now(),
            None,
            true,
        )
        .await
        .unwrap();
    assert!(matches!(
        entry(&s, &cb.id).await.status,
        EntryStatus::Closed {
            reason: CloseReason::AttemptFailed,
            ..
        }
    ));
    assert_eq!(agent_state(&s, "alice").await.0, AgentState::Available);
    let failed = events_of(&s, &cb.id).await.pop().unwrap();
    assert_eq!(failed.kind, EventKind::AttemptFailed);
    assert_eq!(failed.field("cause"), Some("no_answer"));
    assert_eq!(failed.field("ticket"), Some("1"));
    assert_eq!(failed.field("agent"), Some("alice"));
    assert_eq!(failed.field("attempt"), Some("1"));
    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap().in_queue,
        0
    );
    // Today: the caller ahead hung up, and the callback ended unconnected.
    let today = s
        .store
        .today_figures(&support(), s.clock.now())
        .await
        .unwrap();
    assert_eq!((today.abandoned, today.ended_unconnected), (1, 1));
    assert_eq!(today.connected_share(), Some(0.0));
    assert!(!s
        .store
        .open_entries(&support())
        .await
        .unwrap()
        .iter()
        .any(|e| e.id == cb.id));
    let again = caller(&s).await;
    assert_eq!(
        request(&s, &again.id, "+4930222").await,
        CallbackRequested::Requested
    );
}

#[tokio::test]
async fn a_failed_attempt_with_retry_waits_until_due_then_takes_its_place_again() {
    let s = setup(&["alice"]).await;
    let (_, cb, last) = accepted_callback(&s, "alice").await;
    let retry_at = s.clock.now().plus(Duration::from_secs(300));
    s.store
        .callback_attempt_failed(
            &support(),
            &cb.id,
            &id("alice"),
            "busy",
            s.clock.now(),
            Some(retry_at),
            true,
        )
        .await
        .unwrap();
    assert_eq!(agent_state(&s, "alice").await.0, AgentState::Available);
    assert_eq!(
        entry(&s, &cb.id).await.status,
        EntryStatus::RetryWait { due: retry_at }
    );
    assert_eq!(waiting_ids(&s).await, vec![last.id.clone()]);
    assert!(s
        .store
        .open_entries(&support())
        .await
        .unwrap()
        .iter()
        .any(|e| e.id == cb.id));
    let failed = events_of(&s, &cb.id).await.pop().unwrap();
    assert_eq!(
        failed.field("retry_at"),
        Some(retry_at.as_millis().to_string().as_str())
    );
    // Still pending: the number is not queued twice meanwhile.
    let dup = caller(&s).await;
    assert!(matches!(
        request(&s, &dup.id, "+4930222").await,
        CallbackRequested::Duplicate { .. }
    ));

    retry_comes_due(&s, &cb.id, Duration::from_secs(300)).await;
    assert!(!s
        .store
        .callback_retry_due(&support(), &cb.id, s.clock.now())
        .await
        .unwrap());
    assert_eq!(waiting_ids(&s).await, vec![cb.id.clone(), last.id.clone()]);
    assert_eq!(entry(&s, &cb.id).await.position, cb.position);

    // The second attempt counts on, and the expiry still counts from the request.
    offer(&s, &cb.id, "alice").await;
    s.store
        .callback_accepted(&support(), &cb.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    assert!(matches!(&entry(&s, &cb.id).await.kind,
        EntryKind::Callback(r) if r.attempts == 2));
    s.store
        .callback_attempt_failed(
            &support(),
            &cb.id,
            &id("alice"),
            "no_answer",
            s.clock.now(),
            Some(s.clock.now().plus(WINDOW)),
            true,
        )
        .await
        .unwrap();
    s.clock.advance(WINDOW);
    assert!(!s
        .store
        .callback_retry_due(&support(), &cb.id, s.clock.now())
        .await
        .unwrap());
    assert!(matches!(
        entry(&s, &cb.id).await.status,
        EntryStatus::Closed {
            reason: CloseReason::Expired,
            ..
        }
    ));
    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap().in_queue,
        0
    );
}

#[tokio::test]
async fn expiry_closes_waiting_and_ringing_callbacks_but_not_dialing_ones() {
    let s = setup(&["alice", "bob"]).await;
    let waiting = caller(&s).await;
    let ringing = caller(&s).await;
    let dialing = caller(&s).await;
    let live = caller(&s).await;
    request(&s, &waiting.id, "+4930111").await;
    request(&s, &ringing.id, "+4930222").await;
    request(&s, &dialing.id, "+4930333").await;
    offer(&s, &dialing.id, "alice").await;
    s.store
        .callback_accepted(&support(), &dialing.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    offer(&s, &ringing.id, "bob").await;
    s.clock.advance(WINDOW);

    let due = due_timers(&s).await;
    for e in [&waiting, &ringing] {
        assert!(due.contains(&Timer::CallbackExpiry {
            queue: support(),
            entry: e.id.clone()
        }));
    }
    assert!(!due.iter().any(|t| matches!(t,
        Timer::CallbackExpiry { entry, .. } if *entry == dialing.id)));

    let now = s.clock.now();
    assert!(s
        .store
        .callback_expire(&support(), &waiting.id, now)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.store
            .callback_expire(&support(), &ringing.id, now)
            .await
            .unwrap(),
        vec![id("bob")]
    );
    assert_eq!(agent_state(&s, "bob").await, (AgentState::Available, None));
    assert!(s
        .store
        .callback_expire(&support(), &dialing.id, now)
        .await
        .unwrap()
        .is_empty());
    // A live caller is no callback to expire, and a repeat changes nothing.
    assert!(s
        .store
        .callback_expire(&support(), &live.id, now)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .store
        .callback_expire(&support(), &waiting.id, now)
        .await
        .unwrap()
        .is_empty());

    assert!(matches!(
        entry(&s, &dialing.id).await.status,
        EntryStatus::Dialing { .. }
    ));
    assert!(matches!(
        entry(&s, &live.id).await.status,
        EntryStatus::Waiting
    ));
    assert_eq!(waiting_ids(&s).await, vec![live.id.clone()]);
    let expired: Vec<StoredEvent> = events(&s)
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Expired)
        .collect();
    assert_eq!(expired.len(), 2);
    assert_eq!(expired[0].field("entry"), Some(waiting.id.as_str()));
    assert_eq!(expired[0].field("ticket"), Some("1"));
    assert_eq!(
        expired[0].field("waited_ms"),
        Some(now.since(waiting.position).as_millis().to_string().as_str())
    );
    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap().in_queue,
        1
    );
}

#[tokio::test]
async fn the_callers_hangup_after_confirming_does_not_close_the_callback() {
    let s = setup(&["alice"]).await;
    let e = caller(&s).await;
    request(&s, &e.id, "+4930222").await;
    for reason in [CloseReason::Abandoned, CloseReason::MaxWaitExit] {
        assert!(matches!(
            s.store
                .close(&support(), &e.id, reason, s.clock.now())
                .await,
            Err(StoreError::Rule(QueueError::CallbackNotCut(_)))
        ));
    }
    assert_eq!(entry(&s, &e.id).await.status, EntryStatus::Waiting);
    assert_eq!(waiting_ids(&s).await, vec![e.id.clone()]);

    offer(&s, &e.id, "alice").await;
    s.store
        .callback_accepted(&support(), &e.id, &id("alice"), s.clock.now())
        .await
        .unwrap();
    assert!(matches!(
        s.store
            .close(&support(), &e.id, CloseReason::Abandoned, s.clock.now())
            .await,
        Err(StoreError::Rule(QueueError::CallbackNotCut(_)))
    ));
    assert!(matches!(
        entry(&s, &e.id).await.status,
        EntryStatus::Dialing { .. }
    ));
    assert!(!kinds(&events(&s).await).contains(&EventKind::Abandoned));
}

#[tokio::test]
async fn stats_count_open_and_requested_callbacks_and_average_the_wait() {
    let s = setup(&["alice"]).await;
    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap(),
        CallbackStats {
            in_queue: 0,
            total: 0,
            average_wait: None
        }
    );
    let mut ids = Vec::new();
    for n in ["+4930111", "+4930222", "+4930333"] {
        let e = caller(&s).await;
        request(&s, &e.id, n).await;
        ids.push(e.id);
    }
    // Answered 30 s and 40 s after their requests (made 10 s apart).
    s.clock.advance(Duration::from_secs(10));
    for (i, e) in ids[..2].iter().enumerate() {
        offer(&s, e, "alice").await;
        s.store
            .callback_accepted(&support(), e, &id("alice"), s.clock.now())
            .await
            .unwrap();
        if i == 1 {
            s.clock.advance(Duration::from_secs(20));
        }
        s.store
            .callback_customer_answered(&support(), e, &id("alice"), s.clock.now())
            .await
            .unwrap();
        s.store
            .set_agent_state(
                &id("alice"),
                AgentState::Available,
                s.clock.now(),
                StateSource::Cli,
            )
            .await
            .unwrap();
    }
    s.store
        .callback_cancel(&support(), &ids[2], s.clock.now())
        .await
        .unwrap();
    assert!(matches!(
        s.store
            .callback_cancel(&support(), &ids[2], s.clock.now())
            .await,
        Err(StoreError::Rule(_))
    ));
    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap(),
        CallbackStats {
            in_queue: 0,
            total: 3,
            average_wait: Some(Duration::from_secs(35))
        }
    );
    assert!(kinds(&events(&s).await).contains(&EventKind::Canceled));
}

#[tokio::test]
async fn an_agent_hearing_a_callback_keeps_it_and_their_booking_until_they_decide() {
    let s = setup(&["alice"]).await;
    let e = caller(&s).await;
    let other = caller(&s).await;
    request(&s, &e.id, "+4930222").await;
    offer(&s, &e.id, "alice").await;
    s.clock.advance(Duration::from_secs(15));
    s.store
        .callback_offer_answered(
            &support(),
            &e.id,
            &id("alice"),
            s.clock.now(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    // Past the ring time and its grace, the decision is still being made.
    s.clock.advance(Duration::from_secs(20));
    let timeout = Timer::OfferTimeout {
        queue: support(),
        entry: e.id.clone(),
    };
    assert!(!due_timers(&s).await.contains(&timeout));
    assert_eq!(
        agent_state(&s, "alice").await,
        (AgentState::Available, Some(e.id.clone()))
    );
    let busy = Offer {
        entry: other.id.clone(),
        queue: support(),
        agents: vec![id("alice")],
        ahead: vec![],
    };
    assert_eq!(
        s.store.offer(&busy, s.clock.now(), RING).await.unwrap(),
        OfferOutcome::AgentNotFree(id("alice"))
    );
    // The engine connects a callback when its customer answers, never on the agent's
    // answer: that answer changes nothing but says to call the customer.
    assert_eq!(
        s.store
            .connected(&support(), &e.id, &id("alice"), s.clock.now())
            .await
            .unwrap(),
        Answered::NowACallback
    );
    s.clock.advance(Duration::from_secs(30));
    assert!(due_timers(&s).await.contains(&timeout));
}

async fn pending(s: &Setup, n: &str) -> Option<EntryId> {
    s.store
        .pending_callback(&support(), &number(n))
        .await
        .unwrap()
        .map(|e| e.id)
}

async fn keep(s: &Setup, live: &EntryId, n: &str, how: KeptBy) -> Result<Vec<AgentId>, StoreError> {
    s.store
        .callback_kept(&support(), live, &number(n), how, s.clock.now())
        .await
}

async fn cancel(s: &Setup, cb: &EntryId, live: &EntryId) -> Result<CallerCancel, StoreError> {
    s.store
        .callback_canceled_by_caller(&support(), cb, live, s.clock.now())
        .await
}

#[tokio::test]
async fn a_repeat_caller_who_keeps_the_callback_leaves_the_queue_and_it_keeps_its_place() {
    let s = setup(&["alice"]).await;
    let cb = caller(&s).await;
    request(&s, &cb.id, "+4930222").await;
    let again = caller(&s).await;
    assert_eq!(pending(&s, "+4930222").await, Some(cb.id.clone()));
    assert_eq!(pending(&s, "+4930333").await, None);
    // Their new call was already ringing an agent: that agent is returned, to stop the
    // ring, and stays booked until the daemon ringing them sees the leg gone.
    offer(&s, &again.id, "alice").await;
    assert_eq!(
        keep(&s, &again.id, "+4930222", KeptBy::Choice)
            .await
            .unwrap(),
        vec![id("alice")]
    );
    assert_eq!(
        agent_state(&s, "alice").await,
        (AgentState::Available, Some(again.id.clone()))
    );
    assert_eq!(waiting_ids(&s).await, vec![cb.id.clone()]);
    assert!(matches!(
        entry(&s, &again.id).await.status,
        EntryStatus::Closed {
            reason: CloseReason::CallbackKept,
            ..
        }
    ));
    let kept = events_of(&s, &again.id).await;
    assert_eq!(
        kinds(&kept),
        vec![
            EventKind::Entered,
            EventKind::Offered,
            EventKind::CallbackKept
        ]
    );
    assert_eq!(kept[2].field("existing"), Some(cb.id.as_str()));
    assert_eq!(kept[2].field("choice"), Some("keep"));
    assert_eq!(kept[2].field("number"), Some("+4930222"));
    // The callback is untouched, the kept call not counted abandoned nor a callback.
    assert_eq!(entry(&s, &cb.id).await.status, EntryStatus::Waiting);
    assert_eq!(pending(&s, "+4930222").await, Some(cb.id.clone()));
    assert!(!kinds(&events(&s).await).contains(&EventKind::Abandoned));
    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap(),
        CallbackStats {
            in_queue: 1,
            total: 1,
            average_wait: None
        }
    );
    // The caller's hangup that follows changes nothing.
    assert!(s
        .store
        .close(&support(), &again.id, CloseReason::Abandoned, s.clock.now())
        .await
        .is_err());

    // Refused: an entry no longer waiting, and a number without a callback.
    assert!(matches!(
        keep(&s, &again.id, "+4930222", KeptBy::Choice).await,
        Err(StoreError::Rule(QueueError::EntryStatus { .. }))
    ));
    let other = caller(&s).await;
    assert!(matches!(
        keep(&s, &other.id, "+4930333", KeptBy::NoChoice).await,
        Err(StoreError::Rule(QueueError::NoCallbackPending(_)))
    ));
    assert!(matches!(
        keep(&s, &cb.id, "+4930222", KeptBy::Choice).await,
        Err(StoreError::Rule(QueueError::EntryStatus { .. }))
    ));
    assert_eq!(entry(&s, &other.id).await.status, EntryStatus::Waiting);
    // Once the callback is gone, the number has none pending.
    s.store
        .callback_cancel(&support(), &cb.id, s.clock.now())
        .await
        .unwrap();
    assert_eq!(pending(&s, "+4930222").await, None);
}

#[tokio::test]
async fn a_repeat_caller_who_cancels_the_callback_takes_its_place_in_the_queue() {
    let s = setup(&["alice"]).await;
    let first = caller(&s).await;
    let cb = caller(&s).await;
    request(&s, &cb.id, "+4930222").await;
    let middle = caller(&s).await;
    let again = caller(&s).await;
    offer(&s, &cb.id, "alice").await;
    assert_eq!(
        cancel(&s, &cb.id, &again.id).await.unwrap(),
        CallerCancel::Canceled {
            ringing: vec![id("alice")]
        }
    );
    // Booked until the daemon ringing alice sees her leg gone.
    assert_eq!(
        agent_state(&s, "alice").await,
        (AgentState::Available, Some(cb.id.clone()))
    );
    assert!(matches!(
        entry(&s, &cb.id).await.status,
        EntryStatus::Closed {
            reason: CloseReason::CallbackCanceledByCaller,
            ..
        }
    ));
    assert_eq!(entry(&s, &again.id).await.position, cb.position);
    assert_eq!(
        waiting_ids(&s).await,
        vec![first.id.clone(), again.id.clone(), middle.id.clone()]
    );
    let closed = events_of(&s, &cb.id).await;
    let last = closed.last().unwrap();
    assert_eq!(last.kind, EventKind::CallbackCanceledByCaller);
    assert_eq!(last.field("live_entry"), Some(again.id.as_str()));
    assert_eq!(last.field("number"), Some("+4930222"));
    assert!(!due_timers(&s)
        .await
        .iter()
        .any(|t| matches!(t, Timer::CallbackExpiry { entry, .. } if *entry == cb.id)));
    assert_eq!(
        s.store.callback_stats(&support()).await.unwrap(),
        CallbackStats {
            in_queue: 0,
            total: 1,
            average_wait: None
        }
    );
    // The number is free again, and a closed callback cannot be canceled twice.
    assert_eq!(pending(&s, "+4930222").await, None);
    assert!(matches!(
        cancel(&s, &cb.id, &again.id).await,
        Err(StoreError::Rule(QueueError::EntryStatus { .. }))
    ));
    assert_eq!(
        request(&s, &middle.id, "+4930222").await,
        CallbackRequested::Requested
    );

    // A ringing caller taking the place waits there again if the agent misses. Alice's
    // leg for the canceled callback is gone by now.
    s.store
        .release_agents(&cb.id, &[id("alice")])
        .await
        .unwrap();
    let later = caller(&s).await;
    offer(&s, &later.id, "alice").await;
    let place = entry(&s, &middle.id).await.position;
    assert_eq!(
        cancel(&s, &middle.id, &later.id).await.unwrap(),
        CallerCancel::Canceled { ringing: vec![] }
    );
    assert_eq!(entry(&s, &later.id).await.position, place);
    assert!(!waiting_ids(&s).await.contains(&later.id));
    s.store
        .offer_failed(
            &support(),
            &later.id,
            &id("alice"),
            NoAnswerCause::NoAnswer,
            s.clock.now(),
            MissRules::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        waiting_ids(&s).await,
        vec![first.id.clone(), again.id.clone(), later.id.clone()]
    );
}

#[tokio::test]
async fn a_callback_being_dialed_or_a_caller_gone_cannot_be_canceled() {
    let s = setup(&["alice"]).await;
    let (_, cb, live) = accepted_callback(&s, "alice").await;
    // Being dialed: it stands, and is what the repeat caller keeps.
    assert_eq!(pending(&s, "+4930222").await, Some(cb.id.clone()));
    assert_eq!(
        cancel(&s, &cb.id, &live.id).await.unwrap(),
        CallerCancel::BeingDialed
    );
    assert!(matches!(
        entry(&s, &cb.id).await.status,
        EntryStatus::Dialing { .. }
    ));
    keep(&s, &live.id, "+4930222", KeptBy::BeingDialed)
        .await
        .unwrap();
    let kept = events_of(&s, &live.id).await;
    assert_eq!(kept.last().unwrap().field("choice"), Some("being_dialed"));

    // A caller who left while deciding cancels nothing.
    let waiting = caller(&s).await;
    request(&s, &waiting.id, "+4930444").await;
    let gone = caller(&s).await;
    s.store
        .close(&support(), &gone.id, CloseReason::Abandoned, s.clock.now())
        .await
        .unwrap();
    assert!(matches!(
        cancel(&s, &waiting.id, &gone.id).await,
        Err(StoreError::Rule(QueueError::EntryStatus { entry, .. })) if entry == gone.id
    ));
    assert_eq!(entry(&s, &waiting.id).await.status, EntryStatus::Waiting);
    assert_eq!(pending(&s, "+4930444").await, Some(waiting.id.clone()));
    // Only a callback is canceled, and only for a live caller.
    assert!(matches!(
        cancel(&s, &gone.id, &waiting.id).await,
        Err(StoreError::Rule(QueueError::EntryStatus { .. }))
    ));
}

/// A callback an operator's tool asks for now at `n`, to be offered from `from` on.
fn api_callback(s: &Setup, n: &str, from: Timestamp) -> Entry {
    Entry::callback(
        support(),
        LineName::new("main").unwrap(),
        number(n),
        s.clock.now(),
        from,
    )
}

async fn create(s: &Setup, cb: &Entry, not_before: Option<Timestamp>) -> CallbackCreated {
    let expires = cb.position.plus(WINDOW);
    s.store
        .create_callback(cb, s.clock.now(), expires, not_before, false)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_created_callback_joins_the_back_once_however_many_ask_at_once() {
    let s = setup(&[]).await;
    let first = caller(&s).await;
    let now = s.clock.now();
    // Two daemons asked at the same moment: one creates it, the other is told of it.
    let (a, b) = (
        api_callback(&s, "+4930222", now),
        api_callback(&s, "+4930222", now),
    );
    let (ra, rb) = tokio::join!(create(&s, &a, None), create(&s, &b, None));
    let (made, other) = match (&ra, &rb) {
        (CallbackCreated::Created, _) => (&a, rb),
        (_, CallbackCreated::Created) => (&b, ra),
        _ => panic!("neither was created: {ra:?} {rb:?}"),
    };
    assert_eq!(
        other,
        CallbackCreated::Duplicate {
            existing: made.id.clone()
        }
    );
    assert_eq!(
        waiting_ids(&s).await,
        vec![first.id.clone(), made.id.clone()]
    );
    assert_eq!(entry(&s, &made.id).await, *made);
    assert_eq!(pending(&s, "+4930222").await, Some(made.id.clone()));
    let events = events_of(&s, &made.id).await;
    assert_eq!(kinds(&events), [EventKind::Requested]);
    assert_eq!(events[0].field("source"), Some("api"));
    assert_eq!(events[0].field("waited_ms"), Some("0"));
    let stats = s.store.callback_stats(&support()).await.unwrap();
    assert_eq!((stats.total, stats.in_queue), (1, 1));
    // A caller asking for the same number is the duplicate now.
    let dup = caller(&s).await;
    assert_eq!(
        request(&s, &dup.id, "+4930222").await,
        CallbackRequested::Duplicate {
            existing: made.id.clone()
        }
    );
    // Once it expires, the number is free for a new one.
    let expiry = Timer::CallbackExpiry {
        queue: support(),
        entry: made.id.clone(),
    };
    s.clock.advance(WINDOW);
    assert!(due_timers(&s).await.contains(&expiry));
    s.store
        .callback_expire(&support(), &made.id, s.clock.now())
        .await
        .unwrap();
    let again = api_callback(&s, "+4930222", s.clock.now());
    assert_eq!(create(&s, &again, None).await, CallbackCreated::Created);
}

#[tokio::test]
async fn a_callback_created_for_later_waits_for_its_time_then_takes_the_back() {
    let s = setup(&[]).await;
    let from = s.clock.now().plus(Duration::from_secs(300));
    let cb = api_callback(&s, "+4930222", from);
    assert_eq!(create(&s, &cb, Some(from)).await, CallbackCreated::Created);
    assert_eq!(
        entry(&s, &cb.id).await.status,
        EntryStatus::RetryWait { due: from }
    );
    assert!(waiting_ids(&s).await.is_empty());
    let requested = events_of(&s, &cb.id).await;
    assert_eq!(
        requested[0].field("not_before"),
        Some(from.as_millis().to_string().as_str())
    );
    assert_eq!(requested[0].field("waited_ms"), Some("0"));
    // Pending meanwhile, and behind a caller who arrives before its time.
    assert_eq!(pending(&s, "+4930222").await, Some(cb.id.clone()));
    let before = caller(&s).await;
    retry_comes_due(&s, &cb.id, Duration::from_secs(290)).await;
    assert_eq!(
        waiting_ids(&s).await,
        vec![before.id.clone(), cb.id.clone()]
    );
    let expiry = Timer::CallbackExpiry {
        queue: support(),
        entry: cb.id.clone(),
    };
    s.clock.advance(WINDOW);
    assert!(due_timers(&s).await.contains(&expiry));
}

#[tokio::test]
async fn timers_a_daemon_hands_back_come_due_at_once_for_another() {
    let s = setup(&[]).await;
    let waiting = caller(&s).await;
    s.clock.advance(Duration::from_secs(600));
    let scope = TimerScope::Queue(support());
    let claim = |owner: &'static str| {
        let (store, scope, now) = (&s.store, &scope, s.clock.now());
        async move {
            store
                .claim_due_timers(scope, owner, now, Duration::from_secs(30), 100)
                .await
                .unwrap()
        }
    };
    let max_wait = Timer::MaxWait {
        queue: support(),
        entry: waiting.id.clone(),
    };
    assert_eq!(claim("d1").await, vec![max_wait.clone()]);
    // Leased to d1: nobody else has it until the lease runs out…
    assert!(claim("d2").await.is_empty());
    let now = s.clock.now();
    assert_eq!(s.store.release_timers(&scope, "d2", now).await.unwrap(), 0);
    // …unless d1 hands it back.
    assert_eq!(s.store.release_timers(&scope, "d1", now).await.unwrap(), 1);
    assert_eq!(claim("d2").await, vec![max_wait.clone()]);
    assert!(!s.store.complete_timer(&max_wait, "d1").await.unwrap());
    assert!(s.store.complete_timer(&max_wait, "d2").await.unwrap());
}
