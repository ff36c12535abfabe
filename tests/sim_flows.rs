//! Behavioral fidelity: each recorded flow is replayed against the simulator with the
//! recorded commands and timing, and compared per leg with what FreeSWITCH did.
//!
//! Compared: event names per leg (with Application and Application-Response, DTMF digits,
//! CHANNEL_STATE states and CHANNEL_CALLSTATE transitions), hangup causes,
//! BACKGROUND_JOB bodies and api/command reply texts (uuids neutralised).

mod support;

use std::time::Duration;

use callbackd::esl::{Client, ClientConfig, Delivery, EventFormat};
use callbackd::sim::{ClockMode, SimConfig, Switch};
use support::recording::{self, Digest, Digester};

/// Replay `name`. Commands starting with one of `skip` are not sent (the simulator has no
/// Lua), and their recorded replies are left out of the comparison.
async fn replay(
    name: &str,
    format: EventFormat,
    skip: &[&str],
    speech: Duration,
) -> (Digest, Digest) {
    let raw = std::fs::read(
        recording::fixtures()
            .join("flows")
            .join(format!("{name}.raw")),
    )
    .unwrap();
    let mut rec = Digester::default();
    for f in recording::frames(&raw, false) {
        rec.frame(&f);
    }
    let switch = Switch::start(SimConfig {
        clock: ClockMode::Manual,
        heartbeat: None,
        // The one recorded prompt long enough to be cut by the first digit.
        media: vec![(
            "/usr/freeswitch/share/freeswitch/sounds/en/us/callie/vm-enter-num-to-call.wav".into(),
            Duration::from_secs(3),
        )],
        speech,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut config = ClientConfig::new(switch.addr().to_string(), "ClueCon");
    config.events = vec!["ALL".into()];
    config.format = format;
    let (client, mut rx) = Client::start(config);
    assert!(matches!(rx.recv().await, Some(Delivery::Connected)));
    let mut sim = Digester::default();
    let mut clock = 0.0;
    let mut skipped = Vec::new();
    let mut index = 0;
    for (t, frame) in recording::commands(name) {
        let line = frame.headers().command().unwrap().to_owned();
        if line.starts_with("auth ") || line.starts_with("event ") {
            continue;
        }
        index += 1;
        switch
            .advance(Duration::from_secs_f64((t - clock).max(0.0)))
            .await
            .unwrap();
        clock = t.max(clock);
        drain(&client, &mut rx, &mut sim).await;
        if line == "exit" {
            break;
        }
        if skip.iter().any(|s| line.starts_with(s)) {
            skipped.push(index - 1);
            continue;
        }
        let subst = |text: &str| {
            let mut out = text.to_owned();
            for (u, k) in &rec.keys {
                if let Some((su, _)) = sim.keys.iter().find(|(_, sk)| *sk == k) {
                    out = out.replace(u.as_str(), su);
                }
            }
            out
        };
        let line = subst(&line);
        let headers: Vec<(String, String)> = frame
            .headers()
            .iter_raw()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    subst(&String::from_utf8_lossy(v)),
                )
            })
            .filter(|(n, _)| !n.eq_ignore_ascii_case("content-length"))
            .collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = (!frame.body().is_empty()).then(|| frame.body().to_vec());
        let reply = client
            .command(&line, &headers, body.as_deref())
            .await
            .unwrap();
        drain(&client, &mut rx, &mut sim).await;
        sim.reply(&reply.text());
    }
    switch.advance(Duration::from_secs(120)).await.unwrap();
    drain(&client, &mut rx, &mut sim).await;
    let mut recorded = rec.digest;
    // The client's own handshake and goodbye are not part of the script.
    recorded.replies.retain(|r| {
        !matches!(
            r.as_str(),
            "+OK accepted"
                | "+OK event listener enabled plain"
                | "+OK event listener enabled json"
                | "+OK bye"
        )
    });
    for i in skipped.into_iter().rev() {
        recorded.replies.remove(i);
    }
    (recorded, sim.digest)
}

/// How long the recorded caller spoke into `record` (flow1: 2.34 s).
const SPEECH: Duration = Duration::from_millis(2340);

/// Every event the switch sent `client` so far. One round trip is the barrier: the switch
/// runs a command's zero-delay work before it reads the next command, and a reply follows
/// on the socket every event sent before it, which the client delivers first.
async fn barrier(client: &Client) {
    client.api("status").await.unwrap();
}

async fn drain(
    client: &Client,
    rx: &mut tokio::sync::mpsc::Receiver<Delivery>,
    sim: &mut Digester,
) {
    barrier(client).await;
    while let Ok(d) = rx.try_recv() {
        if let Delivery::Event(ev) = d {
            sim.event(&ev);
        }
    }
}

fn assert_same(name: &str, recorded: &Digest, sim: &Digest) {
    for (key, events) in &recorded.legs {
        let got = sim.legs.iter().find(|(k, _)| k == key).map(|(_, e)| e);
        assert_eq!(Some(events), got, "{name}: leg {key} differs");
    }
    assert_eq!(recorded.legs.len(), sim.legs.len(), "{name}: leg count");
    let mut rh = recorded.hangups.clone();
    let mut sh = sim.hangups.clone();
    rh.sort();
    sh.sort();
    assert_eq!(rh, sh, "{name}: hangup causes");
    assert_eq!(recorded.jobs, sim.jobs, "{name}: BACKGROUND_JOB bodies");
    assert_eq!(recorded.replies, sim.replies, "{name}: reply texts");
}

#[tokio::test]
async fn flow2_originate_outcomes() {
    let (rec, sim) = replay("flow2-originate-outcomes", EventFormat::Plain, &[], SPEECH).await;
    assert_same("flow2", &rec, &sim);
}

#[tokio::test]
async fn flow1_queue_dtmf() {
    let (rec, sim) = replay("flow1-queue-dtmf", EventFormat::Plain, &[], SPEECH).await;
    assert_same("flow1", &rec, &sim);
}

#[tokio::test]
async fn flow1_endless_nested() {
    let (rec, sim) = replay("flow1-endless-nested", EventFormat::Plain, &[], SPEECH).await;
    assert_same("flow1-endless", &rec, &sim);
}

#[tokio::test]
async fn flow3_bridge() {
    let (rec, sim) = replay("flow3-bridge", EventFormat::Plain, &[], SPEECH).await;
    assert_same("flow3", &rec, &sim);
}

#[tokio::test]
async fn flow5_filters() {
    let (rec, sim) = replay(
        "flow5-filters-and-heartbeat",
        EventFormat::Plain,
        &[],
        SPEECH,
    )
    .await;
    assert_same("flow5", &rec, &sim);
}

#[tokio::test]
async fn flow1_queue_dtmf_json() {
    let (rec, sim) = replay(
        "flow1-queue-dtmf-json",
        EventFormat::Json,
        &[],
        // The caller's audio in this run made `record` stop after 3.0 s.
        Duration::from_secs(3),
    )
    .await;
    assert_same("flow1-json", &rec, &sim);
}

#[tokio::test]
async fn flow4_custom_events_without_lua() {
    let (rec, sim) = replay(
        "flow4-custom-events",
        EventFormat::Plain,
        &["api luarun"],
        SPEECH,
    )
    .await;
    assert_same("flow4", &rec, &sim);
}

/// flow4-narrow: a second connection subscribed to `CUSTOM callbackd::agent` only gets
/// those events (here the dialplan's and sendevent's; the recording also had two from Lua).
#[tokio::test]
async fn narrow_custom_subscription_gets_only_its_subclass() {
    let switch = Switch::start(SimConfig {
        clock: ClockMode::Manual,
        heartbeat: Some(Duration::from_secs(1)),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut config = ClientConfig::new(switch.addr().to_string(), "ClueCon");
    config.custom_subclasses = vec!["callbackd::agent".into()];
    let (narrow, mut rx) = Client::start(config);
    assert!(matches!(rx.recv().await, Some(Delivery::Connected)));
    let mut config = ClientConfig::new(switch.addr().to_string(), "ClueCon");
    config.events = vec!["ALL".into()];
    let (all, mut all_rx) = Client::start(config);
    assert!(matches!(all_rx.recv().await, Some(Delivery::Connected)));
    let job = all
        .bgapi("originate loopback/fire_custom/default &park()")
        .await
        .unwrap();
    switch.advance(Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        job.wait().await.unwrap_err().to_string(),
        "`originate loopback/fire_custom/default &park()` failed: -ERR NORMAL_CLEARING"
    );
    let reply = all
        .sendevent(
            "CUSTOM",
            &[("Event-Subclass", "callbackd::agent"), ("agent", "1003")],
        )
        .await
        .unwrap();
    assert!(reply.starts_with("+OK "), "{reply}");
    barrier(&narrow).await;
    let mut got = Vec::new();
    while let Ok(d) = rx.try_recv() {
        if let Delivery::Event(ev) = d {
            got.push((
                ev.name().unwrap().into_owned(),
                ev.subclass().unwrap_or_default().into_owned(),
                ev.header("agent").unwrap_or_default().into_owned(),
            ));
        }
    }
    assert_eq!(
        got,
        vec![
            ("CUSTOM".into(), "callbackd::agent".into(), "1001".into()),
            ("CUSTOM".into(), "callbackd::agent".into(), "1003".into()),
        ]
    );
}
