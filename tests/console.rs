//! Console lines (`agent_mode = "console"`) against the simulator and a real Redis: a
//! callback waits in every eligible agent's console instead of ringing a phone; the first
//! agent to take it has their phone rung and the customer dialed with no whisper, across
//! daemons; declines by every eligible agent close it; live callers behind it are routed.

mod common;
mod engine;

use std::time::Duration;

use callbackd::engine::CommandError;
use callbackd::queue::{AgentId, AgentState, EntryId, QueueName};
use callbackd::sim::{Caller, Party};
use callbackd::store::EventKind;
use engine::{config_with, customer_answers, field, requesting, sim_secs, until_some, Rig};

const OFFER: &str = "/sounds/offer.wav";

fn console_line() -> String {
    format!(
        r#"
[lines.callback]
enabled = true
agent_mode = "console"
offer_greeting = "{OFFER}"
country = "DE"
"#
    )
}

async fn start(parties: &[(&str, Party)]) -> Rig {
    // A console line needs the HTTP API, which serves the console.
    let text = format!("{}\n[http]\n", config_with("", &console_line()));
    Rig::start_custom(&text, parties, engine::short_prompts).await
}

/// An agent who picks up after a second and stays on the line: they press nothing.
fn agent_answering() -> Party {
    Party::answers_after(Duration::from_secs(1)).hang_up_after(Duration::from_secs(60))
}

fn support() -> QueueName {
    QueueName::new("support").unwrap()
}

fn agent(id: &str) -> AgentId {
    AgentId::new(id).unwrap()
}

/// The callback the caller at `number` asked for, once it waits in the consoles.
async fn waiting_in_console(rig: &Rig, number: &str) -> EntryId {
    until_some("the callback waits in the consoles", || async {
        let waiting = rig.store.console_callbacks(&support()).await.ok()?;
        waiting
            .into_iter()
            .find(|c| {
                matches!(&c.entry.kind, callbackd::queue::EntryKind::Callback(r)
                    if r.number.as_str() == number)
            })
            .map(|c| c.entry.id)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_agent_to_take_it_is_rung_and_the_customer_dialed_without_a_whisper() {
    let rig = start(&[
        ("user/1001", agent_answering()),
        ("user/1002", agent_answering()),
        ("sofia/gateway/carrier/+4930555777", customer_answers()),
    ])
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    rig.set_agent("bob", AgentState::Away).await;
    rig.set_agent("carol", AgentState::Offline).await;
    let mut d1 = rig.daemon("d1");
    let mut d2 = rig.daemon("d2");
    let (h1, h2) = (d1.handle().await, d2.handle().await);
    rig.call(requesting(Caller::number("+4930555777"), OFFER));
    let entry = waiting_in_console(&rig, "+4930555777").await;
    // Agents are free, yet no phone rings for it: it waits for a click.
    rig.set_agent("alice", AgentState::Available).await;
    rig.set_agent("bob", AgentState::Available).await;
    tokio::time::sleep(sim_secs(3.0)).await;
    assert!(rig.events_of(EventKind::Offered).await.is_empty());
    // Alice clicks Call on one daemon, Bob a moment later on the other.
    h1.take_from_console(support(), entry.clone(), agent("alice"))
        .await
        .unwrap();
    let late = h2
        .take_from_console(support(), entry.clone(), agent("bob"))
        .await;
    assert!(matches!(late, Err(CommandError::Taken { .. })), "{late:?}");
    assert!(rig
        .store
        .console_callbacks(&support())
        .await
        .unwrap()
        .is_empty());
    let answered = rig.wait_for(EventKind::CustomerAnswered, 1).await;
    assert_eq!(field(&answered[0], "agent"), "alice");
    // Alice heard no whisper; the customer was dialed once.
    let records = rig.sim.records().await.unwrap();
    let alice = records
        .iter()
        .find(|r| r.channel_name.starts_with("sofia/internal/1001@"))
        .expect("alice's leg");
    assert!(
        !alice.media.iter().any(|m| m.contains("agent-callback-for")),
        "{:?}",
        alice.media
    );
    assert!(!records
        .iter()
        .any(|r| r.channel_name.starts_with("sofia/internal/1002@")));
    let dialed = rig
        .events_of(EventKind::Accepted)
        .await
        .iter()
        .filter(|e| field(e, "agent") == "alice")
        .count();
    assert_eq!(dialed, 1);
    d1.stop().await;
    d2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declines_by_every_eligible_agent_close_it_and_live_callers_behind_are_routed() {
    let rig = start(&[("user/1001", agent_answering())]).await;
    for agent in ["alice", "bob", "carol"] {
        rig.set_agent(agent, AgentState::Away).await;
    }
    let mut daemon = rig.daemon("d1");
    let handle = daemon.handle().await;
    rig.call(requesting(Caller::number("+4930555001"), OFFER));
    let entry = waiting_in_console(&rig, "+4930555001").await;
    // A live caller behind the callback is routed to Alice when she comes back.
    rig.call(Caller::number("+4930555002"));
    tokio::time::sleep(sim_secs(2.0)).await;
    rig.set_agent("alice", AgentState::Available).await;
    let offered = rig.wait_for(EventKind::Offered, 1).await;
    assert_ne!(field(&offered[0], "entry"), entry.as_str());
    // Bob declines: Carol and Alice still see it.
    assert!(!handle
        .decline_in_console(support(), entry.clone(), agent("bob"))
        .await
        .unwrap());
    let left = rig.store.console_callbacks(&support()).await.unwrap();
    assert_eq!(left[0].declined, [agent("bob")]);
    assert!(!handle
        .decline_in_console(support(), entry.clone(), agent("carol"))
        .await
        .unwrap());
    assert!(handle
        .decline_in_console(support(), entry.clone(), agent("alice"))
        .await
        .unwrap());
    let closed = rig.wait_for(EventKind::DeclinedByAll, 1).await;
    assert_eq!(field(&closed[0], "entry"), entry.as_str());
    // Closed, it can no longer be taken.
    let taken = handle
        .take_from_console(support(), entry, agent("bob"))
        .await;
    assert!(
        matches!(taken, Err(CommandError::Taken { .. })),
        "{taken:?}"
    );
    daemon.stop().await;
}

const ALICE: &str = "agent-token-for-alice-console-01";
const BOB: &str = "agent-token-for-bob-console-0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sees_and_hears_only_what_their_own_token_allows() {
    let mut text = config_with("", &console_line());
    text.push_str("\n[http]\n");
    for (token, role) in [(ALICE, "agent:alice"), (BOB, "agent:bob")] {
        text.push_str(&format!(
            "[[http.tokens]]\ntoken = \"{token}\"\nrole = \"{role}\"\n"
        ));
    }
    let rig = Rig::start_custom(&text, &[], engine::short_prompts).await;
    for agent in ["alice", "bob", "carol"] {
        rig.set_agent(agent, AgentState::Away).await;
    }
    let mut daemon = rig.daemon("d1");
    let (base, _stop) = rig
        .serve_api(daemon.handle().await, Default::default())
        .await;
    rig.call(requesting(Caller::number("+4930555003"), OFFER));
    let entry = waiting_in_console(&rig, "+4930555003").await;
    // As a line with `record_name` would have it; the simulator records no sound, so the
    // file FreeSWITCH would have written is put there.
    let recording = std::env::temp_dir().join(format!("callbackd-{entry}.wav"));
    std::fs::write(&recording, b"RIFF....WAVE").unwrap();
    rig.store
        .set_caller_name(&support(), &entry, recording.to_str().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let get = |token: &'static str, path: String| {
        let req = http.get(format!("{base}{path}")).bearer_auth(token);
        async move { req.send().await.unwrap() }
    };

    let me: serde_json::Value = get(ALICE, "/v1/me".into()).await.json().await.unwrap();
    assert_eq!(me["agent"], "alice");
    let console: serde_json::Value = get(ALICE, "/v1/agents/alice/console".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(console["callbacks"][0]["id"], entry.as_str());
    assert_eq!(console["callbacks"][0]["number"], "+4930555003");
    assert_eq!(console["callbacks"][0]["has_name"], true);
    let name = get(
        ALICE,
        format!("/v1/agents/alice/console/support/{entry}/name"),
    )
    .await;
    assert_eq!(name.status(), 200);
    assert_eq!(name.headers()["content-type"], "audio/wav");
    assert_eq!(&name.bytes().await.unwrap()[..], b"RIFF....WAVE");
    // Bob's token cannot act as Alice, nor click for her.
    let as_alice = get(BOB, "/v1/agents/alice/console".into()).await;
    assert_eq!(as_alice.status(), 403);
    let click = http
        .post(format!(
            "{base}/v1/agents/alice/console/support/{entry}/call"
        ))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap();
    assert_eq!(click.status(), 403);
    // A recording path in Redis that is not the daemon's own name for it is never read.
    rig.store
        .set_caller_name(&support(), &entry, "/etc/passwd")
        .await
        .unwrap();
    let name = get(
        ALICE,
        format!("/v1/agents/alice/console/support/{entry}/name"),
    )
    .await;
    assert_eq!(name.status(), 404);
    let _ = std::fs::remove_file(recording);
    daemon.stop().await;
}
