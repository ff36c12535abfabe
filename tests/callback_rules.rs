//! Who may have a callback and when, as the reference article says it, end to end against
//! the simulator and a real Redis: busy agents count, the offer follows agents logging in
//! and out while callers wait, and the agent's decision window outlasts a real whisper.
//!
//! Prompts last 0.2 simulated seconds each unless a test says otherwise; the offer greeting
//! lasts 10 s. Keys are pressed on hearing the prompt they answer (`press_when`), so a key
//! pressed "during the offer" truly is, whatever the machine's load.

mod common;
mod engine;

use std::time::Duration;

use callbackd::esl::{Client, Delivery};
use callbackd::queue::AgentState;
use callbackd::sim::{Caller, Party};
use callbackd::store::EventKind;
use callbackd::switch::{CallId, FreeSwitch, HangupCause, Pbx};
use engine::{config_with, field, requesting, short_prompts, sim_secs, Rig};

const OFFER: &str = "/sounds/offer.wav";
const UNAVAILABLE: &str = "/sounds/en/callbackd/callbacks-unavailable.wav";
const MUSIC: &str = "local_stream://moh";

fn callback_line(extra: &str) -> String {
    format!(
        r#"
[lines.callback]
enabled = true
offer_greeting = "{OFFER}"
country = "DE"
{extra}
"#
    )
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

async fn start(queue_extra: &str, line_extra: &str, parties: &[(&str, Party)]) -> Rig {
    Rig::start_custom(
        &config_with(queue_extra, &callback_line(line_extra)),
        parties,
        short_prompts,
    )
    .await
}

/// Press 2 a second into the offer greeting, 1 for the own number and 1 to confirm.
fn requesting_from(caller: Caller) -> Caller {
    requesting(caller, OFFER)
}

/// An agent who answers after 1 s, presses 1 during the whisper, and hangs up `after`.
fn agent_accepting(after: f64) -> Party {
    Party::answers_after(secs(1.0))
        .press_when("agent-options", secs(0.5), "1")
        .hang_up_after(secs(after))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_offered_callbacks_while_every_agent_is_on_a_call() {
    let rig = start(
        "",
        "",
        &[
            // Alice takes the first caller for 30 s, then the callback: 1 in the whisper.
            ("user/1001", agent_accepting(30.0)),
            (
                "sofia/gateway/carrier/+4930555002",
                Party::answers_after(secs(1.0)).hang_up_after(secs(10.0)),
            ),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Available).await;
    let daemon = rig.daemon("d1");
    rig.call(Caller::number("+4930555001"));
    rig.wait_for(EventKind::Connected, 1).await;
    assert_eq!(rig.agent_state("alice").await, AgentState::OnCall);
    // The only agent is on a call: the moment callbacks exist for.
    rig.call(requesting_from(Caller::number("+4930555002")));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    assert_eq!(field(&requested[0], "number"), "+4930555002");
    assert!(rig.callers().await["+4930555002"].played(OFFER));
    // Once her call ends, alice gets the callback and the customer is dialed.
    rig.wait_for_within(EventKind::CustomerAnswered, 1, Duration::from_secs(60))
        .await;
    let accepted = rig.events_of(EventKind::Accepted).await;
    assert_eq!(field(&accepted[0], "agent"), "alice");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offer_follows_agents_logging_in_and_out_while_callers_wait() {
    let rig = start("", "", &[]).await;
    let daemon = rig.daemon("d1");
    // Nobody is logged in: 2 in the hold music is answered "not available now". Alice
    // logs in right after: the offer plays at once, and 2 during it opens the menu.
    rig.call(requesting_from(Caller::number("+4930555001").press_when(
        MUSIC,
        secs(1.0),
        "2",
    )));
    let before = rig.heard("+4930555001", UNAVAILABLE).await;
    assert!(!before.iter().any(|m| m == OFFER), "{before:?}");
    assert!(rig.events_of(EventKind::Requested).await.is_empty());
    rig.set_agent("alice", AgentState::Away).await;
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    assert_eq!(field(&requested[0], "number"), "+4930555001");
    let media = &rig.callers().await["+4930555001"].media;
    let offered = media.iter().position(|m| m == OFFER).expect("offer");
    let unavailable = media.iter().position(|m| m == UNAVAILABLE).unwrap();
    assert!(unavailable < offered, "{media:?}");

    // The last agent logs out during the offer: 2 in the hold music after it (5 s in,
    // well after the logout) is answered "not available now" again.
    rig.call(
        Caller::number("+4930555002")
            .press_when(MUSIC, secs(5.0), "2")
            .press_when("menu-own-number", secs(0.5), "1"),
    );
    rig.heard("+4930555002", OFFER).await;
    rig.set_agent("alice", AgentState::Offline).await;
    rig.heard("+4930555002", UNAVAILABLE).await;
    // Grace for a request that must not come.
    tokio::time::sleep(sim_secs(6.0)).await;
    assert_eq!(rig.events_of(EventKind::Requested).await.len(), 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_threshold_is_checked_again_at_each_announcement() {
    // A 2-minute pace: under a 150 s threshold, no offer at arrival, but announced waits.
    let rig = start(
        "announce_every_secs = 10",
        "offer_when_wait_over_secs = 150",
        &[],
    )
    .await;
    rig.paced(120, 3, 1).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(Caller::number("+4930555001"));
    let media = rig.heard("+4930555001", "position-is.wav").await;
    let announcement = media
        .iter()
        .find(|m| m.contains("position-is.wav"))
        .unwrap();
    assert!(
        announcement.ends_with("wait-minutes.wav!/sounds/en/callbackd/digit-2.wav"),
        "the announcement says the estimated wait: {announcement}"
    );
    assert!(!media.iter().any(|m| m.contains(OFFER)), "{media:?}");
    // The pace slows to about 5 minutes a call: the next announcement offers callbacks.
    rig.paced(600, 2, 2_000).await;
    let media = rig.heard("+4930555001", OFFER).await;
    let offer = media.iter().position(|m| m == OFFER).unwrap();
    assert!(
        media[offer - 1].contains("position-is.wav"),
        "right after an announcement: {media:?}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_says_when_to_expect_the_call() {
    let rig = start("", "", &[]).await;
    rig.paced(120, 3, 1).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(requesting_from(Caller::number("+4930555001")));
    rig.wait_for(EventKind::Requested, 1).await;
    let media = rig.heard("+4930555001", "confirmation.wav").await;
    let closing = media
        .iter()
        .find(|m| m.contains("confirmation.wav"))
        .unwrap();
    assert!(
        closing.contains(
            "callback-in-about.wav!/sounds/en/callbackd/digit-2.wav!\
             /sounds/en/callbackd/callback-minutes.wav!"
        ),
        "about 2 minutes: {closing}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_while_saying_their_name_keeps_the_callback() {
    let rig = start("", "record_name = true", &[]).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(requesting_from(Caller::number("+4930555001")).speaking(secs(5.0)));
    // The caller hangs up as soon as the recording starts.
    let entry = rig.entry_of("+4930555001").await;
    rig.heard("+4930555001", &format!("callbackd-{entry}.wav"))
        .await;
    let (client, mut events) = Client::start(FreeSwitch::client_config(&rig.config));
    while !matches!(events.recv().await, Some(Delivery::Connected) | None) {}
    FreeSwitch::new(client.clone())
        .hang_up(
            &CallId::new(&entry).unwrap(),
            &HangupCause::normal_clearing(),
        )
        .await
        .unwrap();
    client.shutdown().await;
    let record = &rig.hung_up("+4930555001").await;
    assert!(
        !record.media.iter().any(|m| m.contains("confirmation.wav")),
        "hung up before the confirmation: {:?}",
        record.media
    );
    rig.wait_for(EventKind::Requested, 1).await;
    assert!(rig.events_of(EventKind::Abandoned).await.is_empty());
    let open = rig
        .store
        .open_entries(&rig.config.queues[0].name)
        .await
        .unwrap();
    assert!(
        open.iter().any(|e| e.id.as_str() == entry),
        "the callback waits"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_silent_through_a_real_length_whisper_has_declined() {
    // Prompts of realistic length: 2.5 s per file, so one hearing of the whisper (13
    // files: the number digit by digit) and its input timeout take about 40 s, three of
    // them about 2 minutes: far more than the decision window, which must therefore be
    // kept open while the whisper plays.
    let rig = Rig::start_custom(
        // A window far shorter than one hearing: renewed while the whisper plays.
        &config_with("", &callback_line("agent_decision_secs = 10")),
        &[(
            "user/1001",
            Party::answers_after(secs(1.0)).hang_up_after(secs(300.0)),
        )],
        |sim| {
            sim.default_media = Duration::from_millis(2_500);
            sim.media.push((OFFER.to_owned(), Duration::from_secs(10)));
        },
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    // 2 during the offer, 1 during the menu, 1 during the read-back.
    rig.call(requesting_from(Caller::number("+4930555001")));
    rig.wait_for_within(EventKind::Requested, 1, Duration::from_secs(60))
        .await;
    rig.set_agent("alice", AgentState::Available).await;
    let declined = rig
        .wait_for_within(EventKind::Declined, 1, Duration::from_secs(90))
        .await;
    assert_eq!(field(&declined[0], "agent"), "alice");
    assert!(
        rig.events_of(EventKind::AgentNoAnswer).await.is_empty(),
        "the decision window ran out: {:#?}",
        rig.events().await
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_rings_as_long_as_the_line_says() {
    // The customer would answer after 15 s: within the default 30 s, not within 10 s.
    let rig = start(
        "",
        "customer_ring_secs = 10",
        &[
            ("user/1001", agent_accepting(60.0)),
            (
                "sofia/gateway/carrier/+4930555001",
                Party::answers_after(secs(15.0)).hang_up_after(secs(10.0)),
            ),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(requesting_from(Caller::number("+4930555001")));
    rig.wait_for(EventKind::Requested, 1).await;
    rig.set_agent("alice", AgentState::Available).await;
    let failed = rig.wait_for(EventKind::AttemptFailed, 1).await;
    assert_eq!(field(&failed[0], "cause"), "NO_ANSWER");
    let dialing = rig.events_of(EventKind::DialingCustomer).await;
    let rang_ms = field(&failed[0], "at").parse::<u64>().unwrap()
        - field(&dialing[0], "at").parse::<u64>().unwrap();
    assert!(rang_ms < 15_000, "rang {rang_ms} ms");
    assert!(rig.events_of(EventKind::CustomerAnswered).await.is_empty());
    daemon.stop().await;
}
