//! Scripted parties and callers, the record of what happened, the TOML format and the
//! scaled clock: the simulator as tests and the demo use it.
//!
//! Outcomes are checked against FreeSWITCH's hangup causes for each party behaviour.

mod support;

use std::time::{Duration, Instant};

use callbackd::esl::{Client, ClientConfig, Delivery};
use callbackd::sim::{Caller, ClockMode, Outcome, Party, Scenario, SimConfig, Switch};
use support::harness::Harness;

const S: Duration = Duration::from_secs(1);

async fn originate(
    h: &mut Harness,
    dial: &str,
    vars: &str,
    wait: Duration,
) -> Result<String, String> {
    let job = h
        .client
        .bgapi(&format!("originate {{{vars}}}{dial} &park()"))
        .await
        .unwrap();
    h.run(wait).await;
    job.wait().await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn parties_behind_dial_strings_map_to_freeswitch_causes() {
    let scenario = Scenario::default()
        .party(
            "user/1001",
            Party::answers_after(2 * S)
                .hang_up_after(5 * S)
                .press(2 * S, "12"),
        )
        .party("user/1002", Party::fails(Outcome::NoAnswer))
        .party("user/1003", Party::fails(Outcome::Busy))
        .party("user/1004", Party::fails(Outcome::NotRegistered))
        .party(
            "sofia/gateway/carrier/123",
            Party::fails(Outcome::InvalidNumber),
        );
    let mut h = Harness::with(scenario).await;

    let agent = "cb000007-0000-4000-8000-000000001001";
    let ok = originate(
        &mut h,
        "user/1001",
        &format!("origination_uuid={agent}"),
        3 * S,
    )
    .await;
    assert_eq!(ok.unwrap(), format!("+OK {agent}\n"));
    let evs = h.run(10 * S).await;
    let digits: String = evs
        .iter()
        .filter(|e| e.is("DTMF") && e.unique_id().as_deref() == Some(agent))
        .map(|e| e.header("DTMF-Digit").unwrap().into_owned())
        .collect();
    assert_eq!(digits, "12");
    let records = h.switch.records().await.unwrap();
    let rec = records.iter().find(|r| r.uuid == agent).unwrap();
    assert_eq!(rec.channel_name, "sofia/internal/1001@127.0.0.1");
    assert_eq!(rec.hangup_cause.as_deref(), Some("NORMAL_CLEARING"));
    assert!(rec.saw("CHANNEL_ANSWER") && rec.saw("CHANNEL_PARK"));
    assert_eq!(rec.digits, "12");

    for (dial, vars, cause) in [
        ("user/1002", "originate_timeout=3", "NO_ANSWER"),
        ("user/1003", "", "USER_BUSY"),
        ("user/1004", "", "USER_NOT_REGISTERED"),
        ("sofia/gateway/carrier/123", "", "INVALID_NUMBER_FORMAT"),
    ] {
        let err = originate(&mut h, dial, vars, 5 * S).await.unwrap_err();
        assert!(err.ends_with(&format!("-ERR {cause}")), "{dial}: {err}");
    }
    let records = h.switch.records().await.unwrap();
    let causes: Vec<_> = records
        .iter()
        .filter(|r| r.uuid != agent)
        .map(|r| {
            (
                r.channel_name.as_str(),
                r.hangup_cause.as_deref().unwrap_or(""),
            )
        })
        .collect();
    // USER_NOT_REGISTERED never creates a channel.
    assert_eq!(
        causes,
        [
            ("sofia/internal/1002@127.0.0.1", "NO_ANSWER"),
            ("sofia/internal/1003@127.0.0.1", "USER_BUSY"),
            ("sofia/gateway/carrier/123", "INVALID_NUMBER_FORMAT"),
        ]
    );
}

#[tokio::test]
async fn callers_arrive_run_the_queue_dialplan_press_keys_and_hang_up() {
    let scenario = Scenario::default()
        .caller(
            Caller::number("+14155550123")
                .at(S)
                .press(3 * S, "2")
                .hang_up_after(10 * S),
        )
        .caller(Caller::sip_user("alice").at(2 * S));
    let mut h = Harness::with(scenario).await;
    let evs = h.run(5 * S).await;
    let parks: Vec<_> = evs.iter().filter(|e| e.is("CHANNEL_PARK")).collect();
    assert_eq!(parks.len(), 2);
    assert_eq!(parks[0].variable("callbackd_queue").unwrap(), "support");
    assert_eq!(parks[0].variable("callbackd_line").unwrap(), "main");
    assert_eq!(
        parks[0].header("Caller-Caller-ID-Number").unwrap(),
        "+14155550123"
    );
    assert_eq!(parks[1].variable("sip_from_user").unwrap(), "alice");
    assert_eq!(
        parks[1].variable("sip_from_uri").unwrap(),
        "alice@127.0.0.1"
    );
    let dtmf = evs.iter().find(|e| e.is("DTMF")).unwrap();
    assert_eq!(dtmf.unique_id(), parks[0].unique_id());
    assert_eq!(dtmf.header("DTMF-Source").unwrap(), "RTP");

    // The daemon records the second caller's name; the caller's script says how long.
    let alice = parks[1].unique_id().unwrap().into_owned();
    let rec = h.exec(&alice, "record", "/tmp/name.wav 5 200").await;
    h.run(10 * S).await;
    let done = rec.wait().await.unwrap();
    assert_eq!(done.variable("record_ms").unwrap(), "2340");

    let records = h.switch.records().await.unwrap();
    let first = records
        .iter()
        .find(|r| r.caller_number == "+14155550123")
        .unwrap();
    assert_eq!(first.hangup_cause.as_deref(), Some("NORMAL_CLEARING"));
    assert_eq!(first.digits, "2");
    assert_eq!(first.destination, "cbq");
    let second = records.iter().find(|r| r.uuid == alice).unwrap();
    assert!(second.played("/tmp/name.wav"));
    assert_eq!(second.response_of("record"), Some("_none_"));
    assert_eq!(second.hangup_cause, None);
}

#[tokio::test]
async fn a_scaled_clock_runs_an_hour_in_well_under_a_second() {
    let scenario = Scenario::default()
        .caller(Caller::number("+14155550199").hang_up_after(Duration::from_secs(3600)));
    let switch = Switch::start_with(
        SimConfig {
            clock: ClockMode::Scaled(10_000.0),
            ..SimConfig::default()
        },
        scenario,
    )
    .await
    .unwrap();
    let mut config = ClientConfig::new(switch.addr().to_string(), "ClueCon");
    config.events = vec!["CHANNEL_HANGUP".into(), "HEARTBEAT".into()];
    let (_client, mut rx) = Client::start(config);
    let started = Instant::now();
    let mut heartbeats: Vec<u64> = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
        {
            Some(Delivery::Event(ev)) if ev.is("HEARTBEAT") => {
                heartbeats.push(ev.header("Event-Date-Timestamp").unwrap().parse().unwrap())
            }
            Some(Delivery::Event(ev)) if ev.is("CHANNEL_HANGUP") => break,
            Some(_) => {}
            None => panic!("client stopped"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // One HEARTBEAT per 20 simulated seconds; those sent while the client was still
    // connecting (a few ms of real time, minutes of simulated time) are not seen.
    assert!(heartbeats.len() > 50, "{}", heartbeats.len());
    for pair in heartbeats.windows(2) {
        assert_eq!(pair[1] - pair[0], 20_000_000);
    }
}

#[tokio::test]
async fn the_documented_example_scenario_runs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios/example.toml");
    let mut h = Harness::with(Scenario::load(path).unwrap()).await;
    h.run(40 * S).await;
    let records = h.switch.records().await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].digits, "21");
    assert_eq!(records[0].hangup_cause.as_deref(), Some("NORMAL_CLEARING"));
    assert_eq!(records[1].channel_name, "sofia/internal/alice@127.0.0.1");
    let err = originate(&mut h, "user/1003", "", 3 * S).await.unwrap_err();
    assert!(err.ends_with("-ERR USER_BUSY"), "{err}");
}
