//! The client's supervisor against a scripted peer that misbehaves on purpose.
//!
//! A dropped, refused or silent connection must end in a fresh, re-subscribed one and an
//! explicit `Reconnected`; hostile arguments must never reach the socket.

use std::time::Duration;

use bytes::BytesMut;
use callbackd::esl::{Backoff, Client, ClientConfig, Delivery, Error, FrameDecoder};
use callbackd::switch::{DialString, PhoneNumber, VarValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How one scripted connection behaves after the greeting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Script {
    /// Answers every command with `+OK` and sends an event once subscribed.
    Healthy,
    RefuseAuth,
    /// Authenticates, then sends half an event and closes.
    DropMidFrame,
    /// Authenticates and subscribes, then never answers an `api` command.
    GoSilent,
    /// The ACL refusal FreeSWITCH sends before any greeting.
    RudeRejection,
}

const EVENT: &str =
    "Event-Name: CHANNEL_PARK\nUnique-ID: u-1\nvariable_callbackd_queue: support\n\n";

fn event_frame() -> String {
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{EVENT}",
        EVENT.len()
    )
}

/// Read one command; `None` when the client closed.
async fn next_command(
    sock: &mut TcpStream,
    dec: &mut FrameDecoder,
    buf: &mut BytesMut,
) -> Option<String> {
    loop {
        if let Some(f) = dec.decode(buf).unwrap() {
            return Some(f.headers().command().unwrap().to_owned());
        }
        if sock.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

/// Serve connections in order, one script each; report every command received.
fn scripted_peer(
    listener: TcpListener,
    scripts: Vec<Script>,
) -> mpsc::UnboundedReceiver<(usize, String)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        for (n, script) in scripts.into_iter().enumerate() {
            let (mut sock, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                if script == Script::RudeRejection {
                    let body = "Access Denied, go away.\n";
                    let frame = format!(
                        "Content-Type: text/rude-rejection\nContent-Length: {}\n\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(frame.as_bytes()).await;
                    return;
                }
                sock.write_all(b"Content-Type: auth/request\n\n")
                    .await
                    .unwrap();
                let mut dec = FrameDecoder::for_commands(1 << 20);
                let mut buf = BytesMut::new();
                while let Some(cmd) = next_command(&mut sock, &mut dec, &mut buf).await {
                    let _ = tx.send((n, cmd.clone()));
                    let reply = if cmd.starts_with("auth") && script == Script::RefuseAuth {
                        let _ = sock
                            .write_all(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
                            .await;
                        return;
                    } else if cmd.starts_with("auth") {
                        "Content-Type: command/reply\nReply-Text: +OK accepted\n\n".to_owned()
                    } else if script == Script::GoSilent && cmd.starts_with("api") {
                        // Keep the socket open, answer nothing.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    } else if let Some(api) = cmd.strip_prefix("api ") {
                        let body = format!("+OK {api}\n");
                        format!(
                            "Content-Type: api/response\nContent-Length: {}\n\n{body}",
                            body.len()
                        )
                    } else {
                        "Content-Type: command/reply\nReply-Text: +OK\n\n".to_owned()
                    };
                    sock.write_all(reply.as_bytes()).await.unwrap();
                    // `filter` is the last command of the subscription.
                    if cmd.starts_with("filter") {
                        match script {
                            Script::DropMidFrame => {
                                // Let the client announce the connection before it breaks.
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                let frame = event_frame();
                                sock.write_all(&frame.as_bytes()[..frame.len() / 2])
                                    .await
                                    .unwrap();
                                return;
                            }
                            Script::Healthy => {
                                sock.write_all(event_frame().as_bytes()).await.unwrap()
                            }
                            _ => {}
                        }
                    }
                }
            });
        }
    });
    rx
}

fn fast_config(addr: String) -> ClientConfig {
    let mut config = ClientConfig::new(addr, "ClueCon");
    config.events = vec!["CHANNEL_PARK".into(), "DTMF".into()];
    config.custom_subclasses = vec!["callbackd::agent".into()];
    config.filters = vec![("Event-Name".into(), "CHANNEL_PARK".into())];
    config.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
    };
    config.idle_probe = Duration::from_millis(200);
    config.liveness_timeout = Duration::from_millis(300);
    config.command_timeout = Duration::from_secs(2);
    config
}

async fn next(rx: &mut mpsc::Receiver<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a delivery within 10 s")
        .expect("channel open")
}

async fn expect_event(rx: &mut mpsc::Receiver<Delivery>) {
    match next(rx).await {
        Delivery::Event(e) => assert_eq!(e.unique_id().unwrap(), "u-1"),
        other => panic!("expected the event, got {other:?}"),
    }
}

/// The commands connection `n` received, once it has at least `count`.
async fn commands_of(
    rx: &mut mpsc::UnboundedReceiver<(usize, String)>,
    n: usize,
    count: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let (conn, cmd) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if conn == n {
            seen.push(cmd);
        }
    }
    seen
}

const SUBSCRIBE: [&str; 3] = [
    "auth ClueCon",
    "event plain CHANNEL_PARK DTMF CUSTOM callbackd::agent",
    "filter Event-Name CHANNEL_PARK",
];

#[tokio::test]
async fn reconnects_after_a_drop_mid_frame_and_resubscribes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut cmds = scripted_peer(listener, vec![Script::DropMidFrame, Script::Healthy]);
    let (client, mut rx) = Client::start(fast_config(addr));
    assert!(matches!(next(&mut rx).await, Delivery::Connected));
    assert!(matches!(next(&mut rx).await, Delivery::Disconnected(_)));
    // The half event is never delivered; the next connection starts clean.
    let after = next(&mut rx).await;
    let after = match after {
        Delivery::Event(_) => next(&mut rx).await,
        d => d,
    };
    assert!(matches!(after, Delivery::Reconnected), "{after:?}");
    assert_eq!(commands_of(&mut cmds, 0, 3).await, SUBSCRIBE);
    assert_eq!(commands_of(&mut cmds, 1, 3).await, SUBSCRIBE);
    expect_event(&mut rx).await;
    assert_eq!(client.api("status").await.unwrap(), "+OK status\n");
    client.shutdown().await;
}

#[tokio::test]
async fn retries_after_refused_auth_and_rude_rejection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut cmds = scripted_peer(
        listener,
        vec![Script::RefuseAuth, Script::RudeRejection, Script::Healthy],
    );
    let (client, mut rx) = Client::start(fast_config(addr));
    // Failures before the first success are retried silently (and logged).
    assert!(matches!(next(&mut rx).await, Delivery::Connected));
    expect_event(&mut rx).await;
    assert_eq!(commands_of(&mut cmds, 0, 1).await, ["auth ClueCon"]);
    assert_eq!(commands_of(&mut cmds, 2, 3).await, SUBSCRIBE);
    assert_eq!(
        client
            .stats()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_silent_peer_is_detected_and_replaced() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut cmds = scripted_peer(listener, vec![Script::GoSilent, Script::Healthy]);
    let (client, mut rx) = Client::start(fast_config(addr));
    assert!(matches!(next(&mut rx).await, Delivery::Connected));
    match next(&mut rx).await {
        Delivery::Disconnected(reason) => assert!(reason.contains("did not answer"), "{reason}"),
        other => panic!("expected a disconnect, got {other:?}"),
    }
    assert!(matches!(next(&mut rx).await, Delivery::Reconnected));
    let first = commands_of(&mut cmds, 0, 3).await;
    assert_eq!(first[..2], SUBSCRIBE[..2]);
    assert_eq!(commands_of(&mut cmds, 1, 3).await, SUBSCRIBE);
    client.shutdown().await;
}

#[tokio::test]
async fn a_stalled_consumer_gets_a_gap_not_silence() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"Content-Type: auth/request\n\n")
            .await
            .unwrap();
        let mut dec = FrameDecoder::for_commands(1 << 20);
        let mut buf = BytesMut::new();
        while let Some(cmd) = next_command(&mut sock, &mut dec, &mut buf).await {
            let reply = if cmd.starts_with("auth") {
                "+OK accepted"
            } else {
                "+OK"
            };
            let frame = format!("Content-Type: command/reply\nReply-Text: {reply}\n\n");
            sock.write_all(frame.as_bytes()).await.unwrap();
            if cmd.starts_with("filter") {
                for _ in 0..100 {
                    sock.write_all(event_frame().as_bytes()).await.unwrap();
                }
            }
        }
    });
    let mut config = fast_config(addr);
    config.event_buffer = 16;
    config.overflow_grace = Duration::from_millis(50);
    let (client, mut rx) = Client::start(config);
    assert!(matches!(next(&mut rx).await, Delivery::Connected));
    // Let the reader overflow the 16-slot buffer while nobody reads.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut events = 0;
    let mut dropped = 0;
    while let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        match d {
            Delivery::Event(_) => events += 1,
            Delivery::Gap { dropped: n } => dropped += n,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(events + dropped, 100, "every event is delivered or counted");
    assert!(dropped > 0);
    assert_eq!(
        client
            .stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        dropped
    );
    client.shutdown().await;
}

#[tokio::test]
async fn hostile_arguments_never_reach_the_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut cmds = scripted_peer(listener, vec![Script::Healthy]);
    let (client, mut rx) = Client::start(fast_config(addr));
    assert!(matches!(next(&mut rx).await, Delivery::Connected));
    assert_eq!(commands_of(&mut cmds, 0, 3).await, SUBSCRIBE);

    for bad in [",", "{", "}", "[", "]", "|", "^", "'", " ", "\n", "&"] {
        let number = format!("+4930{bad}123");
        assert!(PhoneNumber::new(&number).is_err(), "number {number:?}");
        let contact = format!("user/1001{bad}user/1002");
        assert!(DialString::new(&contact).is_err(), "contact {contact:?}");
        if bad != " " {
            assert!(VarValue::new(&format!("x{bad}y")).is_err());
        }
    }
    // Line breaks are refused by the client itself, whatever the caller built.
    for bad in ["status\n\nexit", "status\rexit"] {
        assert!(matches!(
            client.api(bad).await,
            Err(Error::InvalidCommand(_))
        ));
    }
    assert!(matches!(
        client
            .execute("u-1", "playback", "a.wav\nexecute-app-name: hangup", false)
            .await,
        Err(Error::InvalidCommand(_))
    ));
    assert!(matches!(
        client
            .command(
                "sendmsg u-1",
                &[("content-length", "0")],
                Some(b"\n\napi x")
            )
            .await,
        Err(Error::InvalidCommand(_))
    ));
    // The one command that gets through is the harmless probe below, nothing before it.
    client.api("status").await.unwrap();
    assert_eq!(commands_of(&mut cmds, 0, 1).await, ["api status"]);
    client.shutdown().await;
}

/// A consumer that drops its receiver ends the client: it neither spins on the closed
/// channel (which would starve a single-threaded runtime) nor reconnects for nobody.
#[tokio::test]
async fn a_dropped_receiver_stops_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let _cmds = scripted_peer(listener, vec![Script::Healthy]);
    let mut config = fast_config(addr);
    config.overflow_grace = Duration::from_millis(10);
    let (client, mut rx) = Client::start(config);
    assert!(matches!(next(&mut rx).await, Delivery::Connected));
    drop(rx);
    // The scripted peer sends an event after each `filter`: events for nobody now. The
    // client must wind down, not loop.
    let stopped = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let _ = client.filter("Event-Name", "CHANNEL_PARK").await;
            if matches!(client.api("status").await, Err(Error::NotConnected)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        stopped.is_ok(),
        "client still running after its receiver was dropped"
    );
}

#[tokio::test]
async fn a_command_given_up_on_mid_write_never_leaves_half_a_frame_on_the_link() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // The first peer answers the handshake, then stops reading: a big write blocks.
    let stalled = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"Content-Type: auth/request\n\n")
            .await
            .unwrap();
        let mut dec = FrameDecoder::for_commands(1 << 20);
        let mut buf = BytesMut::new();
        next_command(&mut sock, &mut dec, &mut buf).await.unwrap();
        sock.write_all(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(sock);
    });
    let mut config = fast_config(addr);
    config.events.clear();
    config.custom_subclasses.clear();
    config.filters.clear();
    config.idle_probe = Duration::from_secs(60);
    let (client, mut rx) = Client::start(config);
    assert!(matches!(next(&mut rx).await, Delivery::Connected));
    let body = vec![b'x'; 64 << 20];
    let given_up = tokio::time::timeout(
        Duration::from_millis(200),
        client.command("sendevent CUSTOM", &[], Some(&body)),
    )
    .await;
    assert!(given_up.is_err(), "the write should have blocked");
    // The next command finds the link torn: it is closed, not written after half a frame.
    assert!(matches!(
        client.api("status").await,
        Err(callbackd::esl::Error::ConnectionLost)
    ));
    assert!(matches!(next(&mut rx).await, Delivery::Disconnected(_)));
    stalled.abort();
    client.shutdown().await;
}
