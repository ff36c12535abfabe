//! The ESL layer against recordings of a real FreeSWITCH 1.10.12.
//!
//! Every recorded frame must decode; typed fields must come out as FreeSWITCH meant them;
//! and the client, replayed against each recording, must write exactly the recorded commands.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use callbackd::esl::{
    Client, ClientConfig, ContentType, Delivery, Event, EventFormat, FrameDecoder,
};
use common::{all_raw_fixtures, commands, fixture, frames, frames_with_bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn events(name: &str) -> Vec<Event> {
    frames(&fixture(name))
        .iter()
        .filter_map(|f| Event::from_frame(f).expect("event decodes"))
        .collect()
}

fn named<'a>(events: &'a [Event], name: &str) -> Vec<&'a Event> {
    events.iter().filter(|e| e.is(name)).collect()
}

#[test]
fn every_recorded_frame_decodes_whole_and_split() {
    for name in all_raw_fixtures() {
        let raw = fixture(&name);
        let whole = frames(&raw);
        assert!(!whole.is_empty(), "{name}: no frames");
        for frame in &whole {
            if let Some(event) = Event::from_frame(frame).unwrap() {
                assert!(event.name().is_some(), "{name}: event without a name");
            }
        }
        // The same stream fed in uneven chunks yields the same frames.
        for chunk in [1usize, 7, 1000, 4093] {
            let mut decoder = FrameDecoder::default();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in raw.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got.len(), whole.len(), "{name} in chunks of {chunk}");
            for (a, b) in got.iter().zip(&whole) {
                assert_eq!(a.body(), b.body(), "{name} in chunks of {chunk}");
                assert_eq!(a.headers().len(), b.headers().len());
            }
        }
    }
}

#[test]
fn inbound_session_fields_in_every_format() {
    for format in ["plain", "json", "xml"] {
        let name = format!("inbound-{format}.raw");
        let all = frames(&fixture(&name));
        assert_eq!(all[0].content_type(), ContentType::AuthRequest);
        assert_eq!(all[1].reply_text().unwrap(), "+OK accepted");
        assert_eq!(
            all[2].reply_text().unwrap(),
            format!("+OK event listener enabled {format}")
        );
        let status = all
            .iter()
            .find(|f| f.content_type() == ContentType::ApiResponse)
            .unwrap();
        assert!(status.body_text().starts_with("UP 0 years"));
        let job_reply = all
            .iter()
            .find(|f| f.headers().raw("Job-UUID").is_some())
            .unwrap();
        let job = job_reply.headers().text("Job-UUID").unwrap().into_owned();
        assert_eq!(
            job_reply.reply_text().unwrap(),
            format!("+OK Job-UUID: {job}")
        );

        let events = events(&name);
        let jobs = named(&events, "BACKGROUND_JOB");
        let result = jobs
            .iter()
            .find(|e| e.job_uuid().as_deref() == Some(job.as_str()))
            .expect("BACKGROUND_JOB for the client's Job-UUID");
        assert!(result.body().contains("is ready"), "{name}");
        assert_eq!(result.header("Job-Command").unwrap(), "status");

        let digits: String = named(&events, "DTMF")
            .iter()
            .map(|e| e.header("DTMF-Digit").unwrap().into_owned())
            .collect();
        assert_eq!(digits, "1234#56", "{name}");
        let first = &events[0];
        assert!(
            first
                .header("Event-Date-GMT")
                .unwrap()
                .starts_with("Sun, 22 Nov 2026"),
            "{name}: percent-decoding"
        );
        assert_eq!(first.header("FreeSWITCH-IPv6").unwrap(), "fd00::2");

        let api_errors: Vec<String> = all
            .iter()
            .filter(|f| f.content_type() == ContentType::ApiResponse)
            .map(|f| f.body_text().into_owned())
            .filter(|b| b.starts_with("-ERR"))
            .collect();
        assert!(api_errors.contains(&"-ERR nosuchcommand Command not found!\n".to_owned()));
        assert!(api_errors.contains(&"-ERR USER_BUSY\n".to_owned()));
        assert!(all
            .iter()
            .any(|f| f.reply_text().as_deref() == Some("-ERR command not found")));

        let last = all.last().unwrap();
        assert_eq!(last.content_type(), ContentType::DisconnectNotice);
        assert_eq!(
            last.body_text(),
            "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
        );
    }
}

#[test]
fn queue_flow_fields() {
    for name in [
        "flows/flow1-queue-dtmf.raw",
        "flows/flow1-queue-dtmf-json.raw",
    ] {
        let events = events(name);
        let park = named(&events, "CHANNEL_PARK")
            .into_iter()
            .find(|e| e.variable("callbackd_queue").is_some())
            .expect("parked queue leg");
        assert_eq!(park.variable("callbackd_queue").unwrap(), "support");
        assert_eq!(park.variable("callbackd_line").unwrap(), "main");
        assert!(park
            .header("Channel-Name")
            .unwrap()
            .starts_with("loopback/cbq-b"));

        let completes = named(&events, "CHANNEL_EXECUTE_COMPLETE");
        let moh = completes
            .iter()
            .find(|e| e.application_uuid().as_deref() == Some("cb-play-moh-1"))
            .unwrap();
        assert_eq!(moh.header("Application-Response").unwrap(), "FILE PLAYED");
        assert_eq!(moh.variable("playback_terminator_used").unwrap(), "2");
        let number = completes
            .iter()
            .find(|e| e.application_uuid().as_deref() == Some("cb-pagd-number"))
            .unwrap();
        assert_eq!(number.header("Application-Response").unwrap(), "_none_");
        assert_eq!(number.variable("cb_number").unwrap(), "0049301234567");
        assert_eq!(number.variable("read_terminator_used").unwrap(), "#");

        let dtmf = named(&events, "DTMF");
        assert!(dtmf.iter().all(|e| e.variable("callbackd_queue").is_none()));
        assert!(dtmf.iter().any(|e| e.header("DTMF-Digit").unwrap() == "#"));
        let playback = named(&events, "PLAYBACK_START");
        assert_eq!(
            playback[0].header("Playback-File-Path").unwrap(),
            "local_stream://moh"
        );
    }
}

#[test]
fn originate_outcomes_and_custom_events() {
    let outcomes = events("flows/flow2-originate-outcomes.raw");
    let bodies: Vec<String> = named(&outcomes, "BACKGROUND_JOB")
        .iter()
        .map(|e| e.body().into_owned())
        .collect();
    for want in [
        "-ERR NO_ANSWER\n",
        "-ERR USER_BUSY\n",
        "-ERR SUBSCRIBER_ABSENT\n",
        "-ERR USER_NOT_REGISTERED\n",
        "+OK cb000002-0000-4000-8000-0000a9e47001\n",
    ] {
        assert!(bodies.iter().any(|b| b == want), "missing {want:?}");
    }
    let hangups = named(&outcomes, "CHANNEL_HANGUP");
    assert!(hangups
        .iter()
        .any(|e| e.header("Hangup-Cause").unwrap() == "NO_ANSWER"));

    let custom = events("flows/flow4-custom-events-narrow.raw");
    assert_eq!(custom.len(), 4);
    let agents: Vec<(String, String)> = custom
        .iter()
        .map(|e| {
            assert!(e.is("CUSTOM"));
            assert_eq!(e.subclass().unwrap(), "callbackd::agent");
            (
                e.header("agent").unwrap().into_owned(),
                e.header("action").unwrap().into_owned(),
            )
        })
        .collect();
    assert!(agents.contains(&("1001".into(), "away".into())));
    assert!(agents.contains(&("1003".into(), "logout".into())));
}

#[test]
fn outbound_connect_reply_and_linger_notice() {
    let all = frames(&fixture("outbound.raw"));
    let connect = &all[0];
    assert_eq!(connect.content_type(), ContentType::CommandReply);
    assert_eq!(connect.reply_text().unwrap(), "+OK\n");
    let data = Event::from_frame(connect).unwrap().unwrap();
    assert!(data.is("CHANNEL_DATA"));
    assert_eq!(
        data.header("Caller-Caller-ID-Name").unwrap(),
        "ESL Outbound"
    );
    assert_eq!(data.header("Socket-Mode").unwrap(), "async");
    let lingers: Vec<_> = all
        .iter()
        .filter(|f| f.content_type() == ContentType::DisconnectNotice)
        .map(|f| {
            f.headers()
                .text("Content-Disposition")
                .unwrap()
                .into_owned()
        })
        .collect();
    assert_eq!(lingers, ["linger", "disconnect"]);
}

/// Serve `raw` to one client: every reply frame waits for the next command, so replies
/// line up with what the client sends. Returns every byte the client sent.
async fn replay(listener: TcpListener, raw: Vec<u8>) -> Vec<u8> {
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut decoder = FrameDecoder::for_commands(1 << 20);
    let mut inbox = BytesMut::new();
    let mut received = Vec::new();
    for (frame, bytes) in frames_with_bytes(&raw) {
        let is_reply = matches!(
            frame.content_type(),
            ContentType::CommandReply | ContentType::ApiResponse
        );
        if is_reply {
            while decoder.decode(&mut inbox).unwrap().is_none() {
                let mut chunk = [0u8; 4096];
                let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut chunk))
                    .await
                    .expect("client sent its next command")
                    .unwrap();
                assert!(n > 0, "client closed early");
                inbox.extend_from_slice(&chunk[..n]);
                received.extend_from_slice(&chunk[..n]);
            }
        }
        sock.write_all(&bytes).await.unwrap();
    }
    received
}

/// Issue one recorded command through the client's typed method for it.
async fn send_like_recorded(client: &Client, frame: &callbackd::esl::Frame) {
    let line = frame.headers().command().unwrap();
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let headers: Vec<(String, String)> = frame
        .headers()
        .iter_raw()
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    // Results are not checked here: the recordings include deliberate failures.
    match verb {
        "api" => drop(client.api(rest).await),
        "bgapi" if header("Job-UUID").is_some() => drop(
            client
                .bgapi_with_job_uuid(rest, header("Job-UUID").unwrap())
                .await,
        ),
        "sendmsg"
            if frame.body().is_empty()
                && names.first() == Some(&"call-command")
                && names.last() == Some(&"Event-UUID") =>
        {
            drop(
                client
                    .execute_with_uuid(
                        rest,
                        header("execute-app-name").unwrap(),
                        header("execute-app-arg").unwrap_or(""),
                        header("event-lock") == Some("true"),
                        header("Event-UUID").unwrap(),
                    )
                    .await,
            )
        }
        "filter" => match rest.strip_prefix("delete ") {
            Some(args) => {
                let (h, v) = args
                    .split_once(' ')
                    .map_or((args, None), |(h, v)| (h, Some(v)));
                drop(client.filter_delete(h, v).await)
            }
            None => {
                let (h, v) = rest.split_once(' ').unwrap();
                drop(client.filter(h, v).await)
            }
        },
        "sendevent" => {
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            drop(client.sendevent(rest, &pairs).await)
        }
        "exit" => drop(client.exit().await),
        _ => {
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let body = (!frame.body().is_empty()).then_some(frame.body().as_ref());
            drop(client.command(line, &pairs, body).await)
        }
    }
}

/// Replay one recording into the real client and compare what it wrote with `.sent`.
async fn client_writes_recorded_commands(stem: &str) {
    let raw = fixture(&format!("{stem}.raw"));
    let sent = fixture(&format!("{stem}.sent"));
    let recorded = commands(&sent);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = tokio::spawn(replay(listener, raw));

    let auth = recorded[0].0.headers().command().unwrap();
    let password = auth.strip_prefix("auth ").unwrap();
    let mut config = ClientConfig::new(addr, password);
    let mut rest = &recorded[1..];
    if let Some((frame, _)) = recorded.get(1) {
        let line = frame.headers().command().unwrap();
        if let Some(sub) = line.strip_prefix("event ") {
            let mut words = sub.split(' ');
            config.format = match words.next().unwrap() {
                "json" => EventFormat::Json,
                "xml" => EventFormat::Xml,
                _ => EventFormat::Plain,
            };
            let words: Vec<String> = words.map(str::to_owned).collect();
            if words.first().map(String::as_str) == Some("CUSTOM") {
                config.custom_subclasses = words[1..].to_vec();
            } else {
                config.events = words;
            }
            rest = &recorded[2..];
        }
    }
    let (client, mut deliveries) = Client::start(config);
    let mut peer = peer;
    // A recording that refuses auth ends the peer without a Connected ever coming.
    let early = tokio::select! {
        d = deliveries.recv() => {
            assert!(matches!(d, Some(Delivery::Connected)), "{stem}: {d:?}");
            None
        }
        r = &mut peer => Some(r.unwrap()),
    };
    let received = match early {
        Some(received) => received,
        None => {
            // Keep draining so the reader never waits on us.
            tokio::spawn(async move { while deliveries.recv().await.is_some() {} });
            for (frame, _) in rest {
                send_like_recorded(&client, frame).await;
            }
            tokio::time::timeout(Duration::from_secs(20), peer)
                .await
                .expect("replay finished")
                .unwrap()
        }
    };
    client.shutdown().await;
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(&sent),
        "{stem}: the client's bytes differ from the recording"
    );
}

#[tokio::test]
async fn client_replays_inbound_sessions_byte_for_byte() {
    for stem in [
        "inbound-plain",
        "inbound-json",
        "inbound-xml",
        "inbound-spandsp",
        "inbound-badauth",
    ] {
        client_writes_recorded_commands(stem).await;
    }
}

#[tokio::test]
async fn client_replays_queue_flows_byte_for_byte() {
    for stem in [
        "flows/flow1-queue-dtmf",
        "flows/flow1-queue-dtmf-json",
        "flows/flow1-endless-nested",
        "flows/flow2-originate-outcomes",
        "flows/flow3-bridge",
        "flows/flow4-custom-events",
        "flows/flow4-custom-events-narrow",
        "flows/flow5-filters-and-heartbeat",
    ] {
        client_writes_recorded_commands(stem).await;
    }
}
