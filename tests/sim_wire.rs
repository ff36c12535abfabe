//! Wire fidelity: for every event name the simulator emits, it carries at least the header
//! names FreeSWITCH always sent for that event in the recordings (variables aside).
//!
//! The required set per name is the intersection over all recorded instances.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use callbackd::esl::{Client, ClientConfig, ContentType, Delivery, Event, EventFormat};
use callbackd::sim::{ClockMode, SimConfig, Switch};
use support::recording;

/// Per event name, the header names every recorded instance carries, over the plain,
/// json and xml recordings (variables aside).
fn recorded_required() -> HashMap<String, HashSet<String>> {
    let mut req: HashMap<String, HashSet<String>> = HashMap::new();
    let dirs = [recording::fixtures(), recording::fixtures().join("flows")];
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".raw") || name.starts_with("outbound") {
                continue;
            }
            for f in recording::frames(&std::fs::read(&path).unwrap(), false) {
                if !matches!(
                    f.content_type(),
                    ContentType::EventPlain | ContentType::EventJson | ContentType::EventXml
                ) {
                    continue;
                }
                let ev = Event::from_frame(&f).unwrap().unwrap();
                let names: HashSet<String> = ev
                    .headers()
                    .into_iter()
                    .map(|(n, _)| n.into_owned())
                    .filter(|n| !n.starts_with("variable_"))
                    .collect();
                let key = ev.name().unwrap().into_owned();
                req.entry(key)
                    .and_modify(|s| s.retain(|n| names.contains(n)))
                    .or_insert(names);
            }
        }
    }
    req
}

#[tokio::test]
async fn emitted_headers_include_the_recorded_ones() {
    for format in [EventFormat::Plain, EventFormat::Json, EventFormat::Xml] {
        check(format).await;
    }
}

async fn check(format: EventFormat) {
    let required = recorded_required();
    let switch = Switch::start(SimConfig {
        clock: ClockMode::Manual,
        heartbeat: Some(Duration::from_secs(20)),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut config = ClientConfig::new(switch.addr().to_string(), "ClueCon");
    config.events = vec!["ALL".into()];
    config.format = format;
    let (client, mut rx) = Client::start(config);
    assert!(matches!(rx.recv().await, Some(Delivery::Connected)));
    let a = "cb000009-0000-4000-8000-00000000000a";
    let job = client
        .bgapi(&format!(
            "originate {{origination_uuid={a}}}loopback/cbq/default &park()"
        ))
        .await
        .unwrap();
    switch.advance(Duration::from_secs(1)).await.unwrap();
    job.wait().await.unwrap();
    let b = client
        .api(&format!("uuid_getvar {a} other_loopback_leg_uuid"))
        .await
        .unwrap();
    client
        .api(&format!(
            "uuid_broadcast {b} tone_stream://%(500,0,440) aleg"
        ))
        .await
        .unwrap();
    client.api(&format!("uuid_send_dtmf {a} 1")).await.unwrap();
    let exec = client
        .execute(&b, "say", "en number iterated 42", false)
        .await
        .unwrap();
    switch.advance(Duration::from_secs(5)).await.unwrap();
    exec.wait().await.unwrap();
    // As in the recording, the record runs after a transfer (Caller-Transfer-Source).
    client
        .api(&format!("uuid_transfer {b} park inline"))
        .await
        .unwrap();
    switch.advance(Duration::from_millis(10)).await.unwrap();
    let rec = client
        .execute(&b, "record", "/tmp/x.wav 2 200", false)
        .await
        .unwrap();
    switch.advance(Duration::from_secs(5)).await.unwrap();
    rec.wait().await.unwrap();
    let c = "cb000009-0000-4000-8000-00000000000c";
    let job = client
        .bgapi(&format!(
            "originate {{origination_uuid={c}}}loopback/agent_answer/default &park()"
        ))
        .await
        .unwrap();
    switch.advance(Duration::from_secs(1)).await.unwrap();
    job.wait().await.unwrap();
    client.api(&format!("uuid_bridge {b} {c}")).await.unwrap();
    switch.advance(Duration::from_secs(1)).await.unwrap();
    client.api(&format!("uuid_kill {c}")).await.unwrap();
    // A far end that rings and never answers: CHANNEL_PROGRESS, then NO_ANSWER.
    let ring = client
        .bgapi("originate {originate_timeout=2}loopback/agent_noanswer/default &park()")
        .await
        .unwrap();
    switch.advance(Duration::from_secs(3)).await.unwrap();
    assert!(ring.wait().await.is_err());
    client
        .sendevent(
            "CUSTOM",
            &[("Event-Subclass", "callbackd::agent"), ("agent", "1")],
        )
        .await
        .unwrap();
    switch.advance(Duration::from_secs(21)).await.unwrap();
    // A round trip: its reply comes after every event the switch sent before it.
    client.api("status").await.unwrap();
    let mut checked = HashSet::new();
    while let Ok(d) = rx.try_recv() {
        let Delivery::Event(ev) = d else { continue };
        let name = ev.name().unwrap().into_owned();
        let Some(req) = required.get(&name) else {
            continue;
        };
        let have: HashSet<String> = ev
            .headers()
            .into_iter()
            .map(|(n, _)| n.into_owned())
            .collect();
        let missing: Vec<_> = req.iter().filter(|n| !have.contains(*n)).collect();
        assert!(missing.is_empty(), "{format:?} {name} lacks {missing:?}");
        checked.insert(name);
    }
    if format != EventFormat::Plain {
        // A JSON client folds FreeSWITCH's repeated keys (COMMAND reads as PRIVATE_COMMAND),
        // so coverage is judged on the plain run.
        return;
    }
    // Every event the recordings contain must have been emitted and checked, except
    // CODEC (media codec negotiation is not modelled).
    let mut unchecked: Vec<_> = required
        .keys()
        .filter(|n| *n != "CODEC" && !checked.contains(*n))
        .collect();
    unchecked.sort();
    assert!(unchecked.is_empty(), "never emitted: {unchecked:?}");
}
