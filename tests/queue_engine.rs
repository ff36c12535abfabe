//! The queue end to end: simulator + real Redis + the daemon's engine over real sockets.
//!
//! Each test scripts callers and agents in the simulator and checks what the store
//! recorded and what the simulated switch saw.

mod common;
mod engine;

use std::time::Duration;

use callbackd::queue::AgentState;
use callbackd::sim::Extension as SimExtension;
use callbackd::sim::{Caller, Outcome, Party};
use callbackd::store::EventKind;
use engine::{base_config, field, sim_secs, until, until_some, Rig};

/// A caller arriving `at` simulated seconds from now.
fn caller(number: &str, at: f64) -> Caller {
    Caller::number(number).at(Duration::from_secs_f64(at))
}

fn answers() -> Party {
    Party::answers_after(Duration::from_secs(1)).hang_up_after(Duration::from_secs(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_served_in_order_by_the_longest_idle_agent() {
    let rig = Rig::start(
        &base_config(""),
        &[("user/1001", answers()), ("user/1002", answers())],
    )
    .await;
    rig.set_agent("bob", AgentState::Available).await;
    tokio::time::sleep(sim_secs(2.0)).await;
    rig.set_agent("alice", AgentState::Available).await;
    let daemon = rig.daemon("d1");
    rig.call(caller("+4930100001", 0.0));
    rig.call(caller("+4930100002", 1.0));
    rig.wait_for(EventKind::Connected, 2).await;
    let first = rig.entry_of("+4930100001").await;
    let second = rig.entry_of("+4930100002").await;
    let offered = rig.events_of(EventKind::Offered).await;
    let offers: Vec<(&str, &str)> = offered
        .iter()
        .map(|e| (field(e, "entry"), field(e, "agents")))
        .collect();
    // The first caller goes to bob, idle the longest; the second to alice.
    assert_eq!(
        offers,
        [(first.as_str(), "bob"), (second.as_str(), "alice")]
    );
    // The switch bridged each caller to an agent leg.
    let callers = until_some("both callers are bridged", || async {
        let callers = rig.callers().await;
        ["+4930100001", "+4930100002"]
            .iter()
            .all(|n| callers.get(*n).is_some_and(|r| r.saw("CHANNEL_BRIDGE")))
            .then_some(callers)
    })
    .await;
    for number in ["+4930100001", "+4930100002"] {
        let record = &callers[number];
        assert!(
            record.saw("CHANNEL_BRIDGE"),
            "{number}: {:?}",
            record.events
        );
        assert!(
            record.played("local_stream://moh"),
            "{number}: {:?}",
            record.media
        );
    }
    assert_eq!(rig.agent_state("bob").await, AgentState::OnCall);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_or_busy_agent_passes_the_caller_to_the_next() {
    let rig = Rig::start(
        &base_config(""),
        &[
            ("user/1001", Party::fails(Outcome::NoAnswer)),
            ("user/1002", Party::fails(Outcome::Busy)),
            ("user/1003", answers()),
        ],
    )
    .await;
    for agent in ["alice", "bob", "carol"] {
        rig.set_agent(agent, AgentState::Available).await;
        tokio::time::sleep(sim_secs(1.0)).await;
    }
    let daemon = rig.daemon("d1");
    rig.call(caller("+4930100001", 0.0));
    let connected = rig.wait_for(EventKind::Connected, 1).await;
    assert_eq!(field(&connected[0], "agent"), "carol");
    let missed = rig.events_of(EventKind::AgentNoAnswer).await;
    let who: Vec<(&str, &str)> = missed
        .iter()
        .map(|e| (field(e, "agent"), field(e, "cause")))
        .collect();
    assert_eq!(who, [("alice", "no_answer"), ("bob", "busy")]);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_agent_missing_a_ring_is_rung_again_after_the_delay() {
    let rig = Rig::start(
        &base_config("no_answer_delay_secs = 10"),
        &[("user/1001", Party::fails(Outcome::NoAnswer))],
    )
    .await;
    rig.set_agent("alice", AgentState::Available).await;
    let daemon = rig.daemon("d1");
    rig.call(caller("+4930100001", 0.0));
    let missed = rig.wait_for(EventKind::AgentNoAnswer, 1).await;
    // Alice is back at her desk: she answers the next ring.
    rig.sim.add_party("user/1001", answers()).unwrap();
    let connected = rig.wait_for(EventKind::Connected, 1).await;
    assert_eq!(field(&connected[0], "agent"), "alice");
    let offered = rig.events_of(EventKind::Offered).await;
    assert_eq!(offered.len(), 2, "{offered:#?}");
    let at = |e| field(e, "at").parse::<u64>().unwrap();
    let held = at(&offered[1]) - at(&missed[0]);
    assert!(held >= 10_000, "rung again {held} ms after the miss");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_all_rings_every_free_agent_and_the_first_answer_wins() {
    let rig = Rig::start(
        &base_config(r#"strategy = "ring-all""#),
        &[
            ("user/1001", Party::answers_after(Duration::from_secs(3))),
            ("user/1002", Party::answers_after(Duration::from_secs(1))),
            ("user/1003", Party::answers_after(Duration::from_secs(3))),
        ],
    )
    .await;
    for agent in ["alice", "bob", "carol"] {
        rig.set_agent(agent, AgentState::Available).await;
    }
    let daemon = rig.daemon("d1");
    rig.call(caller("+4930100001", 0.0));
    let connected = rig.wait_for(EventKind::Connected, 1).await;
    assert_eq!(field(&connected[0], "agent"), "bob");
    let offered = rig.events_of(EventKind::Offered).await;
    assert_eq!(offered.len(), 1);
    let mut rung: Vec<&str> = field(&offered[0], "agents").split(',').collect();
    rung.sort_unstable();
    assert_eq!(rung, ["alice", "bob", "carol"]);
    // The others' phones stop ringing and they are free again.
    until("alice and carol are free again", || async {
        rig.agent_state("alice").await == AgentState::Available
            && rig.agent_state("carol").await == AgentState::Available
    })
    .await;
    assert_eq!(rig.agent_state("bob").await, AgentState::OnCall);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_is_recorded_as_abandoned_with_the_wait() {
    let rig = Rig::start(&base_config(""), &[]).await;
    let daemon = rig.daemon("d1");
    rig.call(caller("+4930100001", 0.0).hang_up_after(Duration::from_secs(6)));
    let abandoned = rig.wait_for(EventKind::Abandoned, 1).await;
    let waited: u64 = field(&abandoned[0], "waited_ms").parse().unwrap();
    // 6 simulated seconds, give or take scheduling.
    assert!((4_000..9_000).contains(&waited), "waited {waited} ms");
    assert_eq!(field(&abandoned[0], "line"), "main");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_wait_sends_the_caller_to_the_configured_exit() {
    let queue = r#"
[queues.max_wait]
after_secs = 10
action = "transfer"
extension = "park"
context = "default""#;
    let rig = Rig::start(&base_config(queue), &[]).await;
    let daemon = rig.daemon("d1");
    rig.call(caller("+4930100001", 0.0));
    let exits = rig.wait_for(EventKind::MaxWaitExit, 1).await;
    let waited: u64 = field(&exits[0], "waited_ms").parse().unwrap();
    assert!(waited >= 10_000, "waited {waited} ms");
    // The hold music was stopped and the caller left the park for the exit.
    until("the caller is transferred out of the queue", || async {
        rig.callers()
            .await
            .get("+4930100001")
            .is_some_and(|record| {
                (record.saw("CHANNEL_UNPARK") || record.saw("CHANNEL_EXECUTE"))
                    && record.completions.iter().any(|(app, _)| app == "playback")
            })
    })
    .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_change_state_by_cli_and_by_phone_feature_codes() {
    let rig = Rig::start(&base_config(""), &[]).await;
    let daemon = rig.daemon("d1");
    // The CLI path writes through the store (tests/cli.rs runs the binary itself).
    rig.set_agent("alice", AgentState::Available).await;
    assert_eq!(rig.agent_state("alice").await, AgentState::Available);
    // The simulator's `fire_custom` extension raises CUSTOM callbackd::agent agent=1001
    // action=away, as the dialplan `event` application does in the recordings; once the
    // daemon listens for it.
    until("the daemon listens for agent events", || async {
        rig.sim.listeners_for("callbackd::agent").await.unwrap() > 0
    })
    .await;
    rig.call(Caller::number("1001").to_extension("fire_custom"));
    until("alice is away", || async {
        rig.agent_state("alice").await == AgentState::Away
    })
    .await;
    let agent_events = rig.store.events(None, None, 100).await.unwrap();
    let sources: Vec<&str> = agent_events.iter().map(|e| field(e, "source")).collect();
    assert_eq!(sources, ["cli", "phone"]);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_several_queues_are_served_by_priority_then_age_with_wrap_up() {
    // A second queue fed by the `sales` extension; bob serves both, support first.
    let text = base_config("")
        .replace("wrap_up_secs = 0", "wrap_up_secs = 3")
        .replace(
            r#"contact = "user/1002"
queues = [{ queue = "support" }]"#,
            r#"contact = "user/1002"
queues = [{ queue = "support" }, { queue = "sales", priority = 2 }]"#,
        )
        + r#"
[[queues]]
name = "sales"
hold_music = "local_stream://moh"
ring_time_secs = 5

[[lines]]
name = "sales-line"
did = "5001"
queue = "sales"
language = "en"
dial_template = "sofia/gateway/carrier/{number}"
"#;
    let brief = Party::answers_after(Duration::from_secs(1)).hang_up_after(Duration::from_secs(2));
    let rig = Rig::start_with(
        &text,
        &[("user/1002", brief)],
        vec![SimExtension::queue("sales", "sales", "sales-line")],
    )
    .await;
    let daemon = rig.daemon("d1");
    rig.call(caller("+4930100001", 0.0).to_extension("sales"));
    rig.call(caller("+4930100002", 1.0));
    rig.call(caller("+4930100003", 2.0).to_extension("sales"));
    // All three wait before bob is free.
    rig.wait_for(EventKind::Entered, 3).await;
    rig.set_agent("bob", AgentState::Available).await;
    let connected = rig.wait_for(EventKind::Connected, 3).await;
    let order: Vec<&str> = connected.iter().map(|e| field(e, "entry")).collect();
    let mut want = Vec::new();
    for n in ["+4930100002", "+4930100001", "+4930100003"] {
        want.push(rig.entry_of(n).await);
    }
    assert_eq!(order, want);
    // Between calls bob wrapped up for 3 simulated seconds.
    let states: Vec<String> = rig
        .store
        .events(None, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| field(e, "to").to_owned())
        .collect();
    assert!(
        states
            .windows(3)
            .any(|w| w == ["on_call", "wrap_up", "available"]),
        "{states:?}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_callers_hear_their_position_between_hold_music() {
    let rig = Rig::start(
        &base_config(
            r#"greetings = ["/sounds/welcome.wav"]
announce_every_secs = 10"#,
        ),
        &[],
    )
    .await;
    let daemon = rig.daemon("d1");
    rig.call(caller("+4930100001", 0.0));
    rig.call(caller("+4930100002", 1.0));
    let media = rig.heard("+4930100002", "position-is.wav").await;
    assert_eq!(
        media.first().map(String::as_str),
        Some("/sounds/welcome.wav")
    );
    let announcement = media
        .iter()
        .find(|m| m.contains("position-is.wav"))
        .unwrap();
    assert!(
        announcement.ends_with("digit-2.wav"),
        "second in line: {announcement}"
    );
    daemon.stop().await;
}
