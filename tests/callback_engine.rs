//! Callbacks end to end: the caller's menu, a caller calling again while their callback is
//! pending, and the agent's side against the simulator and a real Redis, one test per
//! branch of the journey.
//!
//! Prompts last 0.2 simulated seconds each (the simulator cannot measure files), the offer
//! greeting 10 s. Callers and agents press keys when they hear the prompt they answer
//! (`press_when`), never at a fixed second, so a key pressed "during the greeting" truly
//! is, whatever the machine's load.

mod common;
mod engine;

use std::time::Duration;

use callbackd::queue::AgentState;
use callbackd::sim::{Caller, Outcome, Party};
use callbackd::store::{EventKind, StoredEvent};
use engine::{
    agent_pressing, config_with, customer_answers, field, own_number_confirmed, requesting,
    short_prompts, sim_secs, until, until_some, Rig,
};

const OFFER: &str = "/sounds/offer.wav";
const MUSIC: &str = "local_stream://moh";

/// A callback line: offer greeting of its own, German numbering, no retries.
fn callback_line(extra: &str) -> String {
    callback_line_expiring(600, extra)
}

fn callback_line_expiring(expiry_secs: u64, extra: &str) -> String {
    format!(
        r#"
[lines.callback]
enabled = true
offer_greeting = "{OFFER}"
expiry_secs = {expiry_secs}
country = "DE"
{extra}
"#
    )
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

async fn start(line_extra: &str, parties: &[(&str, Party)]) -> Rig {
    Rig::start_custom(
        &config_with("", &callback_line(line_extra)),
        parties,
        short_prompts,
    )
    .await
}

fn kinds(events: &[StoredEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// Callers press 2 during the offer greeting, 1 for their own number, 1 to confirm.
fn own_number_caller(number: &str) -> Caller {
    requesting(Caller::number(number), OFFER)
}

/// A caller with no offer to answer presses 2 during the hold music; then as
/// [`own_number_confirmed`], should a menu come.
fn two_in_hold_music(number: &str) -> Caller {
    own_number_confirmed(Caller::number(number).press_when(MUSIC, secs(1.0), "2"))
}

/// A caller who presses 2 during the hold music, 2 for another number, keys `keyed` when
/// asked for it, and confirms the read-back.
fn another_number(number: &str, keyed: &str) -> Caller {
    Caller::number(number)
        .press_when(MUSIC, secs(1.0), "2")
        .press_when("menu-other-number", secs(0.5), "2")
        .press_when("enter-number", secs(0.5), keyed)
        .press_when("confirm-options", secs(1.0), "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_during_the_offer_then_own_number_then_agent_first_dialing() {
    let rig = start(
        "",
        &[
            ("user/1001", agent_pressing("1")),
            ("sofia/gateway/carrier/+4930555777", customer_answers()),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555777"));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    assert_eq!(field(&requested[0], "number"), "+4930555777");
    // The caller heard the offer, then the confirmation, and was hung up on.
    let record = &rig.hung_up("+4930555777").await;
    assert!(record.played(OFFER), "{:?}", record.media);
    assert!(
        record.media.iter().any(|m| m.ends_with("confirmation.wav")),
        "{:?}",
        record.media
    );
    // An away agent made the offer possible; once available they get the callback.
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::CustomerAnswered, 1).await;
    let sequence = kinds(&rig.events().await);
    let tail: Vec<&str> = sequence
        .iter()
        .copied()
        .skip_while(|k| *k != "requested")
        .filter(|k| *k != "connected")
        .collect();
    assert_eq!(
        tail,
        [
            "requested",
            "offered",
            "accepted",
            "dialing_customer",
            "customer_answered"
        ]
    );
    // The customer was called from the line's outbound caller ID and bridged to alice.
    let customer = until_some("the customer is bridged to alice", || async {
        let records = rig.sim.records().await.unwrap();
        let customer = records
            .iter()
            .find(|r| r.channel_name.contains("carrier/+4930555777"))?;
        let bridged = customer.saw("CHANNEL_BRIDGE")
            || !customer.bridges.is_empty()
            || records.iter().any(|r| r.bridges.contains(&customer.uuid));
        bridged.then(|| customer.clone())
    })
    .await;
    assert_eq!(customer.caller_number, "+4930123456");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_during_hold_music_and_another_number_keyed_nationally_after_a_mistake() {
    let rig = start("", &[]).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(
        Caller::number("+4930555001")
            .press_when(MUSIC, secs(1.0), "2") // after the 10 s greeting: during hold music
            .press_when("menu-other-number", secs(0.5), "2") // another number
            .press_when("enter-number", secs(0.5), "0049#") // not a number
            // Asked again after "not a valid number": national format, line country DE.
            .press_when_nth("enter-number", 2, secs(1.0), "0301234567#")
            .press_when("confirm-options", secs(1.0), "1"), // confirm the read-back
    );
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    assert_eq!(field(&requested[0], "number"), "+49301234567");
    let record = &rig.callers().await["+4930555001"];
    assert!(record.played(MUSIC));
    assert!(
        record
            .media
            .iter()
            .any(|m| m.contains("invalid-number.wav")),
        "{:?}",
        record.media
    );
    daemon.stop().await;
}

/// A caller on the German line keys `keyed` as the other number, confirms it, and is
/// called back on `e164` once alice is free.
async fn keyed_number_is_called_back(keyed: &str, e164: &str) {
    let customer = format!("sofia/gateway/carrier/{e164}");
    let rig = start(
        "",
        &[
            ("user/1001", agent_pressing("1")),
            (customer.as_str(), customer_answers()),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(another_number("+4930555001", keyed));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    assert_eq!(field(&requested[0], "number"), e164);
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::CustomerAnswered, 1).await;
    let records = rig.sim.records().await.unwrap();
    assert!(
        records.iter().any(|r| r.channel_name == customer),
        "{:?}",
        records.iter().map(|r| &r.channel_name).collect::<Vec<_>>()
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_number_keyed_with_star_for_plus_is_called_back() {
    keyed_number_is_called_back("*33612345678#", "+33612345678").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_number_keyed_as_bare_country_code_without_hash_is_called_back() {
    // On a German line these digits are no national number (no trunk 0), so they are
    // country code + number; without # the digit timeout ends the input.
    keyed_number_is_called_back("447911123456", "+447911123456").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_returns_to_the_queue_at_the_same_place() {
    let rig = start("", &[("user/1001", Party::answers_after(secs(1.0)))]).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(
        Caller::number("+4930555001")
            .press_when(OFFER, secs(1.0), "2")
            .press_when("menu-back", secs(0.5), "3"),
    );
    rig.heard("+4930555001", "returning-to-queue.wav").await;
    assert!(rig.events_of(EventKind::Requested).await.is_empty());
    rig.set_agent("alice", AgentState::Available).await;
    let connected = rig.wait_for(EventKind::Connected, 1).await;
    assert_eq!(
        field(&connected[0], "entry"),
        rig.entry_of("+4930555001").await
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_caller_is_called_back_on_their_sip_from_user() {
    let rig = start("", &[]).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(requesting(Caller::sip_user("+4930555321"), OFFER));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    assert_eq!(field(&requested[0], "number"), "+4930555321");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_offer_without_outbound_caller_id_or_without_agents() {
    // No outbound caller ID on the line: callback is unavailable there.
    let text =
        config_with("", &callback_line("")).replace("outbound_caller_id = \"+4930123456\"\n", "");
    let rig = Rig::start_custom(&text, &[], short_prompts).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(two_in_hold_music("+4930555001"));
    // The offer would have come before the music; the 2 in it is no callback key here.
    until("the caller pressed 2 in the hold music", || async {
        rig.callers()
            .await
            .get("+4930555001")
            .is_some_and(|r| r.digits.contains('2'))
    })
    .await;
    // Grace for a menu that must not come.
    tokio::time::sleep(sim_secs(3.0)).await;
    let record = &rig.callers().await["+4930555001"];
    assert!(!record.played(OFFER), "{:?}", record.media);
    assert!(
        !record.media.iter().any(|m| m.contains("menu-")),
        "{:?}",
        record.media
    );
    assert!(rig.events_of(EventKind::Requested).await.is_empty());
    daemon.stop().await;

    // Every agent offline: nobody would call back, so nothing is offered.
    let rig = start("", &[]).await;
    let daemon = rig.daemon("d1");
    rig.call(two_in_hold_music("+4930555002"));
    let media = rig.heard("+4930555002", "callbacks-unavailable.wav").await;
    assert!(!media.iter().any(|m| m == OFFER), "{media:?}");
    assert!(rig.events_of(EventKind::Requested).await.is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_request_for_the_same_number_is_not_queued_twice() {
    let rig = start("", &[]).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    rig.wait_for(EventKind::Requested, 1).await;
    // From another phone, keying the number that has a callback pending.
    rig.call(
        Caller::number("+4930555009")
            .press_when(OFFER, secs(1.0), "2")
            .press_when("menu-other-number", secs(0.5), "2")
            .press_when("enter-number", secs(0.5), "004930555001#")
            .press_when("confirm-options", secs(1.0), "1"),
    );
    rig.wait_for(EventKind::DuplicateIgnored, 1).await;
    assert_eq!(rig.events_of(EventKind::Requested).await.len(), 1);
    // The second caller hears that a callback is pending.
    rig.heard("+4930555009", "already-pending.wav").await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_goes_to_the_next_agent_and_all_declining_closes_it() {
    let rig = start(
        "",
        &[
            ("user/1001", agent_pressing("2")),
            ("user/1002", agent_pressing("2")),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    rig.wait_for(EventKind::Requested, 1).await;
    tokio::time::sleep(sim_secs(2.0)).await;
    rig.set_agent("alice", AgentState::Available).await;
    rig.set_agent("bob", AgentState::Available).await;
    let closed = rig.wait_for(EventKind::DeclinedByAll, 1).await;
    assert_eq!(field(&closed[0], "number"), "+4930555001");
    let declined: Vec<String> = rig
        .events_of(EventKind::Declined)
        .await
        .iter()
        .map(|e| field(e, "agent").to_owned())
        .collect();
    assert_eq!(declined.len(), 2, "{declined:?}");
    assert!(declined.contains(&"alice".to_owned()) && declined.contains(&"bob".to_owned()));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_ring_is_no_decline_so_one_decline_does_not_close_the_callback() {
    let rig = Rig::start_custom(
        &config_with(
            "no_answer_delay_secs = 20\ndecline_delay_secs = 5",
            &callback_line(""),
        ),
        &[
            ("user/1001", agent_pressing("2")),
            ("user/1002", Party::fails(Outcome::NoAnswer)),
        ],
        short_prompts,
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    rig.wait_for(EventKind::Requested, 1).await;
    // Bob's phone rings out first; then alice hears the callback and declines it.
    rig.set_agent("bob", AgentState::Available).await;
    rig.wait_for(EventKind::AgentNoAnswer, 1).await;
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::Declined, 1).await;
    // Bob never declined, so it is offered on (to alice again once her delay is over).
    let offered = rig.wait_for(EventKind::Offered, 3).await;
    let agents: Vec<&str> = offered.iter().map(|e| field(e, "agents")).collect();
    assert_eq!(agents[..2], ["bob", "alice"]);
    assert!(rig.events_of(EventKind::DeclinedByAll).await.is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_callback_expires_after_its_window() {
    let text = config_with("", &callback_line_expiring(60, ""));
    let rig = Rig::start_custom(&text, &[], short_prompts).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    rig.wait_for(EventKind::Requested, 1).await;
    // An away agent never takes it; after the 60 s window it is closed.
    let expired = rig
        .wait_for_within(EventKind::Expired, 1, Duration::from_secs(40))
        .await;
    let waited: u64 = field(&expired[0], "waited_ms").parse().unwrap();
    assert!(waited >= 60_000, "closed after {waited} ms");
    assert_eq!(field(&expired[0], "number"), "+4930555001");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_does_not_answer_is_reported_and_retried_when_allowed() {
    let no_answer = Party::fails(Outcome::NoAnswer);
    let rig = start(
        "[lines.callback.retry]\nmax_attempts = 2\nmin_interval_secs = 30\non = [\"no-answer\"]",
        &[
            ("user/1001", agent_pressing("1")),
            ("sofia/gateway/carrier/+4930555001", no_answer),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    rig.wait_for(EventKind::Requested, 1).await;
    rig.set_agent("alice", AgentState::Available).await;
    let failed = rig
        .wait_for_within(EventKind::AttemptFailed, 2, Duration::from_secs(60))
        .await;
    assert_eq!(field(&failed[0], "cause"), "NO_ANSWER");
    // Two attempts, then no more: the second failure closes the request. (Grace for a
    // third attempt that must not come.)
    tokio::time::sleep(sim_secs(10.0)).await;
    assert_eq!(rig.events_of(EventKind::AttemptFailed).await.len(), 2);
    assert_eq!(rig.events_of(EventKind::DialingCustomer).await.len(), 2);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_keeps_its_place_between_earlier_and_later_live_callers() {
    let rig = start(
        "",
        &[
            ("user/1001", agent_pressing("1").hang_up_after(secs(3.0))),
            ("sofia/gateway/carrier/+4930555002", customer_answers()),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(Caller::number("+4930555001"));
    rig.call(own_number_caller("+4930555002").at(secs(1.0)));
    rig.call(Caller::number("+4930555003").at(secs(2.0)));
    rig.wait_for(EventKind::Requested, 1).await;
    rig.set_agent("alice", AgentState::Available).await;
    let offered = rig
        .wait_for_within(EventKind::Offered, 3, Duration::from_secs(30))
        .await;
    let order: Vec<&str> = offered.iter().map(|e| field(e, "entry")).collect();
    let mut want = Vec::new();
    for n in ["+4930555001", "+4930555002", "+4930555003"] {
        want.push(rig.entry_of(n).await);
    }
    assert_eq!(order, want);
    daemon.stop().await;
}

/// The requester's own channel may end after their callback connected (a quick agent, a
/// long confirmation): that hangup ends nobody's call, so the agent talking to the
/// customer is not offered the next caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_hanging_up_after_their_callback_connected_leaves_the_agent_on_it() {
    let rig = Rig::start_custom(
        &config_with("", &callback_line("")),
        &[
            ("user/1001", agent_pressing("1")),
            ("sofia/gateway/carrier/+4930555001", customer_answers()),
        ],
        |sim| {
            short_prompts(sim);
            // The caller still hears it when the customer answers.
            sim.media
                .push(("/sounds/en/callbackd/confirmation.wav".into(), secs(12.0)));
        },
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    rig.wait_for(EventKind::Requested, 1).await;
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::CustomerAnswered, 1).await;
    rig.call(Caller::number("+4930555002"));
    let requester = rig.hung_up("+4930555001").await;
    assert!(
        requester
            .media
            .iter()
            .any(|m| m.ends_with("confirmation.wav")),
        "{:?}",
        requester.media
    );
    tokio::time::sleep(sim_secs(2.0)).await;
    assert_eq!(rig.agent_state("alice").await, AgentState::OnCall);
    let offered = rig.events_of(EventKind::Offered).await;
    assert_eq!(
        offered.len(),
        1,
        "only the callback was offered: {offered:?}"
    );
    daemon.stop().await;
}

/// Daemon d1 takes a callback request from +4930555001 while alice is away; alice comes
/// in, and d1 is killed once `kind` is recorded.
async fn kill_d1_at(rig: &Rig, kind: EventKind) {
    rig.set_agent("alice", AgentState::Away).await;
    let first = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    rig.wait_for(EventKind::Requested, 1).await;
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(kind, 1).await;
    first.kill().await;
}

/// A daemon killed while its callback is bridged never hears the call end, and may never
/// come back: another daemon finds the agent on a call the switch no longer has, completes
/// the callback and frees the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_daemon_died_during_the_call_is_freed_by_another_daemon() {
    let agent = Party::answers_after(Duration::from_secs(1))
        .press_when("agent-options", Duration::from_millis(500), "1")
        .hang_up_after(Duration::from_secs(15));
    let rig = start(
        "",
        &[
            ("user/1001", agent),
            ("sofia/gateway/carrier/+4930555001", customer_answers()),
        ],
    )
    .await;
    kill_d1_at(&rig, EventKind::CustomerAnswered).await;
    // Both legs end while no daemon listens.
    tokio::time::sleep(sim_secs(30.0)).await;
    assert_eq!(rig.agent_state("alice").await, AgentState::OnCall);
    let second = rig.daemon("d2");
    rig.wait_for(EventKind::Completed, 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rig.agent_state("alice").await != AgentState::Available {
        assert!(
            std::time::Instant::now() < deadline,
            "alice is still on the call"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.stop().await;
}

/// A daemon killed while the caller hears their confirmation never hangs them up; the
/// next daemon to start finds them parked in silence, sees their callback recorded, and
/// ends the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_whose_goodbye_was_cut_off_is_hung_up_by_the_next_daemon() {
    // A confirmation long enough to kill the daemon while it plays.
    let rig = Rig::start_custom(
        &config_with(
            "",
            &callback_line("confirmation_greeting = \"/sounds/confirmed.wav\""),
        ),
        &[],
        |sim| {
            short_prompts(sim);
            sim.media
                .push(("/sounds/confirmed.wav".to_owned(), Duration::from_secs(10)));
        },
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let first = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001").hang_up_after(secs(600.0)));
    rig.wait_for(EventKind::Requested, 1).await;
    first.kill().await;
    // The confirmation plays out; then nothing.
    tokio::time::sleep(sim_secs(15.0)).await;
    assert!(rig.callers().await["+4930555001"].ended_us.is_none());
    let second = rig.daemon("d2");
    let caller = rig.hung_up("+4930555001").await;
    assert_eq!(caller.hangup_cause.as_deref(), Some("NORMAL_CLEARING"));
    // The request stands: the caller ended nothing by being hung up.
    assert!(rig.events_of(EventKind::Abandoned).await.is_empty());
    second.stop().await;
}

/// A daemon killed while it dials a callback's customer leaves the callback `dialing`;
/// once both legs are gone, another daemon's audit lets it wait again, the lost attempt
/// counted, and it is dialed anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_whose_daemon_died_while_dialing_is_dialed_again_by_another_daemon() {
    let agent = agent_pressing("1").hang_up_after(secs(8.0));
    let rig = start(
        "[lines.callback.retry]\nmax_attempts = 3\nmin_interval_secs = 30\non = [\"no-answer\"]",
        &[
            ("user/1001", agent),
            (
                "sofia/gateway/carrier/+4930555001",
                Party::fails(Outcome::NoAnswer),
            ),
        ],
    )
    .await;
    kill_d1_at(&rig, EventKind::DialingCustomer).await;
    // Both legs end while no daemon listens.
    tokio::time::sleep(sim_secs(40.0)).await;
    let second = rig.daemon("d2");
    rig.wait_for_within(EventKind::DialingCustomer, 2, Duration::from_secs(30))
        .await;
    let failed = rig.events_of(EventKind::AttemptFailed).await;
    assert_eq!(field(&failed[0], "cause"), "DAEMON_LOST", "{failed:?}");
    second.stop().await;
}

/// Restart tests: the daemon dies at a point of the journey, its next life (same id) goes
/// on, and the customer is dialed exactly once.
async fn restart_after(
    kind: EventKind,
    parties: &[(&str, Party)],
    agents: &[&str],
    agents_after_restart: &[&str],
) -> Rig {
    let rig = start("", parties).await;
    rig.set_agent("alice", AgentState::Away).await;
    let first = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    rig.wait_for(EventKind::Requested, 1).await;
    for agent in agents {
        rig.set_agent(agent, AgentState::Available).await;
    }
    rig.wait_for(kind, 1).await;
    first.kill().await;
    tokio::time::sleep(sim_secs(1.0)).await;
    let second = rig.daemon("d1");
    for agent in agents_after_restart {
        rig.set_agent(agent, AgentState::Available).await;
    }
    rig.wait_for_within(EventKind::CustomerAnswered, 1, Duration::from_secs(30))
        .await;
    // Grace for a second dial that must not come.
    tokio::time::sleep(sim_secs(3.0)).await;
    assert_eq!(
        rig.events_of(EventKind::DialingCustomer).await.len(),
        1,
        "dialed once: {:?}",
        kinds(&rig.events().await)
    );
    second.stop().await;
    rig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_the_callback_waits_goes_on_with_one_dial() {
    restart_after(
        EventKind::Requested,
        &[
            ("user/1001", agent_pressing("1")),
            ("sofia/gateway/carrier/+4930555001", customer_answers()),
        ],
        &[],
        &["alice"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_an_agent_hears_the_offer_passes_it_on_with_one_dial() {
    // alice answers but thinks for 3 s; the daemon dies meanwhile; bob takes it.
    let slow = Party::answers_after(secs(1.0)).press_when("agent-options", secs(3.0), "1");
    restart_after(
        EventKind::Offered,
        &[
            ("user/1001", slow),
            ("user/1002", agent_pressing("1")),
            ("sofia/gateway/carrier/+4930555001", customer_answers()),
        ],
        &["alice", "bob"],
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_the_customer_rings_bridges_them_when_they_answer() {
    let slow_customer = Party::answers_after(secs(5.0)).hang_up_after(secs(20.0));
    let rig = restart_after(
        EventKind::DialingCustomer,
        &[
            ("user/1001", agent_pressing("1")),
            ("sofia/gateway/carrier/+4930555001", slow_customer),
        ],
        &["alice"],
        &[],
    )
    .await;
    let records = rig.sim.records().await.unwrap();
    let customer = records
        .iter()
        .find(|r| r.channel_name.contains("carrier/+4930555001"))
        .expect("customer leg");
    assert!(
        records.iter().any(|r| r.bridges.contains(&customer.uuid)) || !customer.bridges.is_empty(),
        "customer bridged to the agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_during_a_position_announcement_opens_the_menu() {
    let position = "/sounds/en/callbackd/position-is.wav";
    let rig = Rig::start_custom(
        &config_with("announce_every_secs = 10", &callback_line("")),
        &[],
        |sim| {
            short_prompts(sim);
            sim.media
                .push((position.to_owned(), Duration::from_secs(15)));
        },
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    // 10 s offer greeting, 10 s of hold music, then the 15 s announcement: 2 a second
    // into it, then 3 in the menu.
    rig.call(
        Caller::number("+4930555001")
            .press_when("position-is.wav", secs(1.0), "2")
            .press_when("menu-back", secs(0.5), "3"),
    );
    let media = rig.heard("+4930555001", "returning-to-queue.wav").await;
    let announced = media
        .iter()
        .position(|m| m.contains("position-is.wav"))
        .unwrap_or_else(|| panic!("no announcement: {media:?}"));
    let menu = media
        .iter()
        .position(|m| m.contains("menu-other-number.wav"))
        .unwrap_or_else(|| panic!("no menu: {media:?}"));
    assert_eq!(
        announced + 1,
        menu,
        "the 2 ended the announcement: {media:?}"
    );
    assert!(media[menu..]
        .iter()
        .any(|m| m.contains("returning-to-queue.wav")));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_name_is_played_to_the_agent_before_dialing() {
    let rig = start(
        "record_name = true",
        &[
            ("user/1001", agent_pressing("1")),
            ("sofia/gateway/carrier/+4930555001", customer_answers()),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001").speaking(secs(2.0)));
    rig.wait_for(EventKind::Requested, 1).await;
    let entry = rig.entry_of("+4930555001").await;
    let recording = format!("callbackd-{entry}.wav");
    // The request is saved first; the recording and the confirmation follow.
    let confirmed = rig.heard("+4930555001", "confirmation.wav").await;
    assert!(
        confirmed.iter().any(|m| m.ends_with(&recording)),
        "the caller's name was recorded: {confirmed:?}"
    );
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::CustomerAnswered, 1).await;
    let records = rig.sim.records().await.unwrap();
    let agent = records
        .iter()
        .find(|r| r.channel_name.starts_with("sofia/internal/1001@"))
        .expect("agent leg");
    let whisper = agent
        .media
        .iter()
        .find(|m| m.contains("agent-callback-for.wav"))
        .expect("whisper");
    assert!(
        whisper.contains("agent-customer-name.wav") && whisper.contains(&recording),
        "{whisper}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_offered_only_above_the_wait_threshold_with_the_estimate() {
    // Pace 120 s, first in line: a 2-minute estimate. Above a 60 s threshold: offered.
    let rig = start("offer_when_wait_over_secs = 60", &[]).await;
    // Connections two simulated minutes apart.
    rig.paced(120, 3, 1).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(Caller::number("+4930555001"));
    let media = rig.heard("+4930555001", "wait-minutes.wav").await;
    let estimate = media
        .iter()
        .find(|m| m.contains("wait-minutes.wav"))
        .unwrap();
    // The estimate, then the offer, in one playback.
    assert!(
        estimate.ends_with("wait-minutes.wav!/sounds/en/callbackd/digit-2.wav!/sounds/offer.wav"),
        "{estimate}"
    );
    daemon.stop().await;

    // Below a 300 s threshold: neither estimate nor offer.
    let rig = start("offer_when_wait_over_secs = 300", &[]).await;
    // Connections two simulated minutes apart.
    rig.paced(120, 3, 1).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(two_in_hold_music("+4930555002"));
    let media = rig.heard("+4930555002", "callbacks-unavailable.wav").await;
    assert!(!media.iter().any(|m| m.contains(OFFER)), "{media:?}");
    assert!(rig.events_of(EventKind::Requested).await.is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_with_its_own_sounds_speaks_from_them() {
    let text = config_with("", &callback_line("")).replace(
        "language = \"en\"\n",
        "language = \"en\"\nsounds = \"/brand\"\n",
    );
    let rig = Rig::start_custom(&text, &[], short_prompts).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    rig.wait_for(EventKind::Requested, 1).await;
    let media = rig.heard("+4930555001", "confirmation.wav").await;
    assert!(
        media
            .iter()
            .any(|m| m == "/brand/en/callbackd/confirmation.wav"),
        "{media:?}"
    );
    daemon.stop().await;
}

/// The records of the calls made from `number`, in the order they came in.
async fn calls_from(rig: &Rig, number: &str) -> Vec<callbackd::sim::CallRecord> {
    let prefix = format!("sofia/internal/{number}@");
    rig.sim
        .records()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.channel_name.starts_with(&prefix))
        .collect()
}

/// The call from `number` whose entry id is `entry`, once it has been hung up on.
async fn hung_up_call(rig: &Rig, number: &str, entry: &str) -> callbackd::sim::CallRecord {
    until_some(&format!("call {entry} hung up"), || async {
        calls_from(rig, number)
            .await
            .into_iter()
            .find(|r| r.uuid == entry && r.hangup_cause.is_some())
    })
    .await
}

/// A caller calling again from `number`, who presses `key` when asked about their
/// pending callback.
fn calling_again(number: &str, key: &str) -> Caller {
    Caller::number(number).press_when("callback-pending", secs(0.5), key)
}

/// A caller requests a callback and hangs up, then calls again from the same number and
/// presses `key` when asked about it. Returns the callback's entry id and the second call's.
async fn call_again_pressing(rig: &Rig, key: &str) -> (String, String) {
    rig.call(own_number_caller("+4930555001"));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    let callback = field(&requested[0], "entry").to_owned();
    rig.call(calling_again("+4930555001", key));
    let again = until_some("the second call comes", || async {
        calls_from(rig, "+4930555001")
            .await
            .into_iter()
            .find(|r| r.uuid != callback)
    })
    .await;
    (callback, again.uuid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_calling_again_presses_1_and_keeps_their_one_callback() {
    let rig = start(
        "",
        &[
            ("user/1001", agent_pressing("1")),
            ("sofia/gateway/carrier/+4930555001", customer_answers()),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    let (callback, again) = call_again_pressing(&rig, "1").await;
    let kept = rig.wait_for(EventKind::CallbackKept, 1).await;
    assert_eq!(field(&kept[0], "entry"), again);
    assert_eq!(field(&kept[0], "existing"), callback);
    assert_eq!(field(&kept[0], "choice"), "keep");
    // Asked before any greeting, confirmed, and hung up on.
    let second = hung_up_call(&rig, "+4930555001", &again).await;
    assert!(
        second.media[0].ends_with("callback-pending.wav"),
        "{:?}",
        second.media
    );
    assert!(
        second.media.iter().any(|m| m.ends_with("confirmation.wav")),
        "{:?}",
        second.media
    );
    assert!(!second.played(OFFER), "{:?}", second.media);
    // The one callback is dialed once; the second call was no abandoned caller.
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::CustomerAnswered, 1).await;
    // Grace for a second dial that must not come.
    tokio::time::sleep(sim_secs(3.0)).await;
    let events = rig.events().await;
    assert_eq!(
        rig.events_of(EventKind::DialingCustomer).await.len(),
        1,
        "{:?}",
        kinds(&events)
    );
    let offered: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == EventKind::Offered)
        .map(|e| field(e, "entry"))
        .collect();
    assert_eq!(offered, [callback.as_str()]);
    assert!(rig.events_of(EventKind::Abandoned).await.is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_calling_again_presses_2_cancels_the_callback_and_is_connected_live() {
    let rig = start(
        "",
        &[(
            "user/1001",
            Party::answers_after(secs(1.0)).hang_up_after(secs(30.0)),
        )],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    let (callback, again) = call_again_pressing(&rig, "2").await;
    let canceled = rig.wait_for(EventKind::CallbackCanceledByCaller, 1).await;
    assert_eq!(field(&canceled[0], "entry"), callback);
    assert_eq!(field(&canceled[0], "live_entry"), again);
    // The caller waits in the callback's place: counted from the first call's arrival.
    let queue = callbackd::queue::QueueName::new("support").unwrap();
    let first = callbackd::queue::EntryId::new(&callback).unwrap();
    let second = callbackd::queue::EntryId::new(&again).unwrap();
    let place = rig
        .store
        .entry(&queue, &first)
        .await
        .unwrap()
        .unwrap()
        .position;
    let entry = rig.store.entry(&queue, &second).await.unwrap().unwrap();
    assert_eq!(entry.position, place);
    assert_eq!(entry.status, callbackd::queue::EntryStatus::Waiting);
    rig.set_agent("alice", AgentState::Available).await;
    let connected = rig.wait_for(EventKind::Connected, 1).await;
    assert_eq!(field(&connected[0], "entry"), again);
    let record = until_some("the caller is bridged to alice", || async {
        calls_from(&rig, "+4930555001")
            .await
            .into_iter()
            .find(|r| r.uuid == again && !r.bridges.is_empty())
    })
    .await;
    assert!(
        record
            .media
            .iter()
            .any(|m| m.ends_with("callback-canceled.wav")),
        "{:?}",
        record.media
    );
    // Nobody is called back.
    let events = rig.events().await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Accepted | EventKind::DialingCustomer)),
        "{:?}",
        kinds(&events)
    );
    assert!(!rig
        .sim
        .records()
        .await
        .unwrap()
        .iter()
        .any(|r| r.channel_name.contains("carrier/")));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_callback_that_rings_an_agent_stops_that_phone() {
    // alice rings for 20 s before answering, within a 30 s ring time.
    let text =
        config_with("", &callback_line("")).replace("ring_time_secs = 5", "ring_time_secs = 30");
    let rig = Rig::start_custom(
        &text,
        &[(
            "user/1001",
            Party::answers_after(secs(20.0)).hang_up_after(secs(30.0)),
        )],
        short_prompts,
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    let callback = field(&requested[0], "entry").to_owned();
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::Offered, 1).await;
    rig.call(calling_again("+4930555001", "2"));
    let canceled = rig.wait_for(EventKind::CallbackCanceledByCaller, 1).await;
    assert_eq!(field(&canceled[0], "entry"), callback);
    let again = field(&canceled[0], "live_entry").to_owned();
    // alice's phone stopped ringing for the callback, then rang for the caller on the line.
    let connected = rig.wait_for(EventKind::Connected, 1).await;
    assert_eq!(field(&connected[0], "entry"), again);
    let offered: Vec<String> = rig
        .events_of(EventKind::Offered)
        .await
        .iter()
        .map(|e| field(e, "entry").to_owned())
        .collect();
    assert_eq!(offered, [callback, again]);
    let legs: Vec<_> = rig
        .sim
        .records()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.channel_name.starts_with("sofia/internal/1001@"))
        .collect();
    assert_eq!(legs.len(), 2, "{legs:?}");
    assert!(
        !legs[0].saw("CHANNEL_ANSWER") && legs[0].hangup_cause.is_some(),
        "{:?}",
        legs[0]
    );
    assert!(rig.events_of(EventKind::Accepted).await.is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_calling_again_who_presses_nothing_keeps_the_callback() {
    let rig = start("", &[]).await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    rig.call(calling_again("+4930555001", "7"));
    let kept = rig.wait_for(EventKind::CallbackKept, 1).await;
    assert_eq!(field(&kept[0], "choice"), "no_choice");
    assert_eq!(field(&kept[0], "existing"), field(&requested[0], "entry"));
    let second = hung_up_call(&rig, "+4930555001", field(&kept[0], "entry")).await;
    // Asked three times, told once that 7 is no choice, then confirmed and hung up on.
    let asked = second
        .media
        .iter()
        .filter(|m| m.contains("callback-pending.wav"))
        .count();
    assert_eq!(asked, 3, "{:?}", second.media);
    assert!(
        second
            .media
            .iter()
            .any(|m| m.contains("invalid-choice.wav")),
        "{:?}",
        second.media
    );
    assert!(second.media.last().unwrap().ends_with("confirmation.wav"));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_calling_again_while_being_called_back_is_told_to_hang_up() {
    // The customer's phone rings long: they are calling in meanwhile.
    let rig = start(
        "",
        &[
            ("user/1001", agent_pressing("1")),
            (
                "sofia/gateway/carrier/+4930555001",
                Party::answers_after(secs(20.0)).hang_up_after(secs(20.0)),
            ),
        ],
    )
    .await;
    rig.set_agent("alice", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::DialingCustomer, 1).await;
    // alice, the only agent logged in, is on the call: the repeat caller is asked all the
    // same.
    rig.call(calling_again("+4930555001", "2"));
    let kept = rig.wait_for(EventKind::CallbackKept, 1).await;
    assert_eq!(field(&kept[0], "choice"), "being_dialed");
    assert_eq!(field(&kept[0], "existing"), field(&requested[0], "entry"));
    let second = hung_up_call(&rig, "+4930555001", field(&kept[0], "entry")).await;
    assert_eq!(
        second.media,
        ["/sounds/en/callbackd/callback-in-progress.wav"],
        "not asked, only told"
    );
    // The callback goes on and connects.
    rig.wait_for(EventKind::CustomerAnswered, 1).await;
    assert!(rig
        .events_of(EventKind::CallbackCanceledByCaller)
        .await
        .is_empty());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_answered_live_while_asked_about_their_callback_loses_it() {
    // alice declined the callback (held off it for 10 minutes; bob, away, has not), so
    // she is free for the new call, which she answers while its caller is being asked.
    let rig = start("", &[("user/1001", agent_pressing("2"))]).await;
    rig.set_agent("alice", AgentState::Away).await;
    rig.set_agent("bob", AgentState::Away).await;
    let daemon = rig.daemon("d1");
    rig.call(own_number_caller("+4930555001"));
    let requested = rig.wait_for(EventKind::Requested, 1).await;
    rig.set_agent("alice", AgentState::Available).await;
    rig.wait_for(EventKind::Declined, 1).await;
    rig.call(Caller::number("+4930555001"));
    let connected = rig.wait_for(EventKind::Connected, 1).await;
    assert_ne!(field(&connected[0], "entry"), field(&requested[0], "entry"));
    let canceled = rig.wait_for(EventKind::Canceled, 1).await;
    assert_eq!(field(&canceled[0], "entry"), field(&requested[0], "entry"));
    assert!(rig.events_of(EventKind::CallbackKept).await.is_empty());
    daemon.stop().await;
}
