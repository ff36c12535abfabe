//! A new config taken in while calls are under way, against the simulator and a real
//! Redis: a caller waits and a callback's customer is being dialed when an agent is added
//! and the queue's ring time changes; nothing drops, and the new settings are in force.
//! A reload that would strand a queue's callers is refused, the old config kept.

mod common;
mod engine;

use std::sync::Arc;
use std::time::Duration;

use callbackd::config::Config;
use callbackd::engine::CommandError;
use callbackd::queue::{AgentId, AgentState, QueueName};
use callbackd::sim::{Caller, Party};
use callbackd::store::EventKind;
use engine::{agent_pressing, config_with, requesting, Rig};

const OFFER: &str = "/sounds/offer.wav";

fn line() -> String {
    format!("\n[lines.callback]\nenabled = true\noffer_greeting = \"{OFFER}\"\ncountry = \"DE\"\n")
}

/// The rig's config as a daemon would read it from its file.
fn config(rig: &Rig, text: &str) -> Arc<Config> {
    let redis = rig.config.redis.url.clone();
    let esl = rig.config.esl.address.clone();
    let text = text.replace("ESL", &esl).replace("REDIS", &redis).replace(
        "key_prefix = \"cbd\"",
        &format!("key_prefix = \"{}\"", rig.config.redis.key_prefix),
    );
    Arc::new(Config::parse(std::path::Path::new("reloaded.toml"), &text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_added_and_a_ring_time_changed_while_calls_are_under_way_drop_nothing() {
    let rig = Rig::start_custom(
        &config_with("", &line()),
        &[
            ("user/1001", agent_pressing("1")),
            // Rings a while: the reload comes while it is being dialed.
            (
                "sofia/gateway/carrier/+4930555777",
                Party::answers_after(Duration::from_secs(6)).hang_up_after(Duration::from_secs(30)),
            ),
        ],
        engine::short_prompts,
    )
    .await;
    for agent in ["alice", "bob", "carol"] {
        rig.set_agent(agent, AgentState::Away).await;
    }
    let mut daemon = rig.daemon("d1");
    let handle = daemon.handle().await;
    rig.call(requesting(Caller::number("+4930555777"), OFFER));
    rig.wait_for(EventKind::Requested, 1).await;
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::DialingCustomer, 1).await;
    // A live caller waits meanwhile (nobody else is available).
    rig.call(Caller::number("+4930555888").hang_up_after(Duration::from_secs(120)));
    rig.wait_for(EventKind::Entered, 2).await;

    let text = config_with("", &line()).replace("ring_time_secs = 5", "ring_time_secs = 9")
        + "\n[[agents]]\nid = \"dave\"\ndisplay_name = \"Dave\"\ncontact = \"user/1004\"\n\
           queues = [{ queue = \"support\" }]\n";
    handle.reload(config(&rig, &text)).await.unwrap();
    let now = handle.config();
    let support = QueueName::new("support").unwrap();
    assert_eq!(
        now.queue(&support).unwrap().ring_time,
        Duration::from_secs(9)
    );
    let dave = AgentId::new("dave").unwrap();
    assert!(rig
        .store
        .agents(rig.now())
        .await
        .unwrap()
        .iter()
        .any(|a| a.id == dave));

    // The callback being dialed connects; the waiting caller is still waiting.
    let answered = rig.wait_for(EventKind::CustomerAnswered, 1).await;
    assert_eq!(engine::field(&answered[0], "agent"), "alice");
    let waiting = rig.store.waiting_entries(&support, 10).await.unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(rig.events_of(EventKind::Abandoned).await.is_empty());

    // Dropping the queue while its caller waits is refused; the config in force stays.
    let text = config_with("", &line()).replace("name = \"support\"", "name = \"sales\"");
    let text = text.replace("queue = \"support\"", "queue = \"sales\"");
    let refused = handle.reload(config(&rig, &text)).await;
    assert!(
        matches!(&refused, Err(CommandError::ReloadRefused(why)) if why.contains("support")),
        "{refused:?}"
    );
    assert!(handle.config().queue(&support).is_some());
    daemon.stop().await;
}
