//! The queue end to end: simulator + real Redis + the daemon's engine over real sockets.
//!
//! Each test scripts callers and agents in the simulator and checks what the store
//! recorded and what the simulated switch saw.

mod common;
mod engine;

use std::time::Duration;

use callbackd::queue::AgentState;
use callbackd::sim::{Caller, Outcome, Party};
use callbackd::store::EventKind;
use engine::{base_config, field, sim_secs, Rig};

fn caller(number: &str, at: f64) -> Caller {
    Caller::number(number).at(Duration::from_secs_f64(at / engine::SCALE))
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let callers = rig.callers().await;
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
