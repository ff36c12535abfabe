//! Loopback throughput of callbackd's ESL client against `freeswitch-esl-tokio`, fed the events
//! a real FreeSWITCH sent, to show the client keeps far ahead of any switch it will listen to.
//!
//! A plain `main` rather than criterion: each sample is one multi-second stream over a socket,
//! and what matters is the sustained rate of events reaching a consumer, not per-call statistics.
//!
//! Knobs (environment): `CALLBACKD_EVENTS` (default 2,000,000), `BASELINE_EVENTS` (default
//! 100,000), `BENCH_ROUNDS` (default 3, the median round is reported), `BENCH_QUEUE` (event
//! queue length given to both clients, default 1024), `CALLBACKD_FIXTURES` (the `esl`
//! recordings folder; by default the copy in `tests/fixtures/esl`).

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use callbackd::esl::{self, ContentType, Delivery, FrameDecoder};
use freeswitch_esl_tokio::{EslClient, EslConnectOptions, EventFormat, EventOverflow};

const PASSWORD: &str = "ClueCon";
const TARGET_RATE: f64 = 100_000.0;
const TARGET_RATIO: f64 = 10.0;

/// The replayed traffic: every `text/event-plain` frame of the plain recordings, byte for byte.
struct Corpus {
    /// All frames back to back; the server writes this whole block over and over.
    cycle: Arc<Vec<u8>>,
    /// `prefix[i]` = bytes of the first `i` frames, to turn a delivered count into bytes.
    prefix: Vec<u64>,
}

impl Corpus {
    fn frames(&self) -> usize {
        self.prefix.len() - 1
    }

    /// Wire bytes of the first `events` frames of the endless replay.
    fn bytes_for(&self, events: u64) -> u64 {
        let per = self.frames() as u64;
        let cycle = self.cycle.len() as u64;
        (events / per) * cycle + self.prefix[(events % per) as usize]
    }

    /// How many times the cycle must be written for `events` frames to go out.
    fn repeats_for(&self, events: u64) -> usize {
        events.div_ceil(self.frames() as u64) as usize
    }
}

fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CALLBACKD_FIXTURES") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/esl")
}

/// Split the plain recordings with callbackd's own decoder and keep the event frames. The
/// decoder consumes the buffer from the front, so each frame's bytes are the stretch its
/// `decode` call took off.
fn load_corpus() -> Corpus {
    let dir = fixtures_dir();
    let mut files = vec![dir.join("inbound-plain.raw")];
    let mut flows: Vec<PathBuf> = std::fs::read_dir(dir.join("flows"))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.join("flows").display()))
        .map(|entry| entry.expect("listing flows").path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(".raw") && !name.contains("json")
        })
        .collect();
    flows.sort();
    files.extend(flows);

    let mut cycle = Vec::new();
    let mut prefix = vec![0u64];
    for file in &files {
        let raw = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut buf = BytesMut::from(&raw[..]);
        let mut decoder = FrameDecoder::default();
        let mut at = 0;
        while let Some(frame) = decoder.decode(&mut buf).expect("recordings decode") {
            let end = raw.len() - buf.len();
            if frame.content_type() == ContentType::EventPlain {
                cycle.extend_from_slice(&raw[at..end]);
                prefix.push(cycle.len() as u64);
            }
            at = end;
        }
    }
    assert!(
        prefix.len() > 1,
        "no text/event-plain frames under {}",
        dir.display()
    );
    Corpus {
        cycle: Arc::new(cycle),
        prefix,
    }
}

/// What the fake switch saw: the command lines each client sent before the stream began.
struct ServerLog {
    commands: Vec<String>,
}

/// A fake FreeSWITCH on its own OS thread, so the client's single core is not shared with it.
/// It speaks just enough ESL to get a client subscribed, then writes the replay as fast as the
/// socket takes it and closes its sending side, so a client that lost events still ends.
fn spawn_server(corpus: &Corpus, events: u64) -> (SocketAddr, JoinHandle<ServerLog>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    let cycle = corpus.cycle.clone();
    let repeats = corpus.repeats_for(events);
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_nodelay(true).unwrap();
        stream.write_all(b"Content-Type: auth/request\n\n").unwrap();
        let mut commands = Vec::new();
        let mut pending = Vec::new();
        let mut chunk = [0u8; 4096];
        'handshake: loop {
            let n = stream.read(&mut chunk).expect("read command");
            assert!(n > 0, "client left during the handshake");
            pending.extend_from_slice(&chunk[..n]);
            // Both clients send bodiless commands here, so a blank line ends each one.
            while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                let command: Vec<u8> = pending.drain(..end + 2).collect();
                let line = String::from_utf8_lossy(&command).trim_end().to_owned();
                let reply: &[u8] = if line.starts_with("auth ") {
                    b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
                } else {
                    b"Content-Type: command/reply\nReply-Text: +OK\n\n"
                };
                stream.write_all(reply).unwrap();
                let subscribed = line.starts_with("event ");
                commands.push(line.replace(PASSWORD, "<password>"));
                if subscribed {
                    break 'handshake;
                }
            }
        }
        // Anything the client says from here on (a liveness probe) is read and ignored, so
        // its writes never block; the read end also keeps the socket open until it leaves.
        let mut drain = stream.try_clone().unwrap();
        let drainer = std::thread::spawn(move || {
            let mut sink = [0u8; 4096];
            while matches!(drain.read(&mut sink), Ok(n) if n > 0) {}
        });
        for _ in 0..repeats {
            if stream.write_all(&cycle).is_err() {
                break;
            }
        }
        let _ = stream.shutdown(Shutdown::Write);
        drainer.join().unwrap();
        ServerLog { commands }
    });
    (addr, handle)
}

/// One library's run: how many events reached the consumer and how long that took.
struct Run {
    delivered: u64,
    lost: u64,
    elapsed: Duration,
}

fn single_core_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The minimum a consumer does with an event in both runs: read its name.
fn touch(name: Option<&str>, checksum: &mut usize) {
    *checksum += name.map_or(0, str::len);
}

fn run_callbackd(addr: SocketAddr, events: u64, queue: usize) -> Run {
    single_core_runtime().block_on(async move {
        let mut config = esl::ClientConfig::new(addr.to_string(), PASSWORD);
        config.events = vec!["ALL".into()];
        config.event_buffer = queue;
        // Block, never drop: a consumer that is merely slower than the socket must not lose
        // events here, the same promise the baseline is configured to make.
        config.overflow_grace = Duration::from_secs(3600);
        let started = Instant::now();
        let (client, mut rx) = esl::Client::start(config);
        let mut delivered = 0u64;
        let mut checksum = 0usize;
        while delivered < events {
            match rx.recv().await {
                Some(Delivery::Event(event)) => {
                    touch(event.header("Event-Name").as_deref(), &mut checksum);
                    delivered += 1;
                }
                // Counted by the client's stats as well, read below.
                Some(Delivery::Gap { .. }) | Some(Delivery::Connected) => {}
                // The server closed after its last byte: whatever did not arrive is lost.
                Some(Delivery::Disconnected(_)) | Some(Delivery::Reconnected) | None => break,
            }
        }
        let elapsed = started.elapsed();
        black_box(checksum);
        let lost = client.stats().dropped.load(Ordering::Relaxed);
        drop(client);
        Run {
            delivered,
            lost,
            elapsed,
        }
    })
}

fn run_baseline(addr: SocketAddr, events: u64, queue: usize) -> Run {
    single_core_runtime().block_on(async move {
        let options = EslConnectOptions::new()
            .with_event_queue_size(queue)
            // The library's default drops on a full queue; a long wait budget makes its reader
            // wait for the consumer instead, like callbackd's grace above.
            .with_event_overflow(EventOverflow::BlockFor(Duration::from_secs(3600)));
        let started = Instant::now();
        let (client, mut stream) =
            EslClient::connect_with_options(&addr.ip().to_string(), addr.port(), PASSWORD, options)
                .await
                .expect("baseline connects");
        client
            .subscribe_all_events(EventFormat::Plain)
            .await
            .expect("baseline subscribes");
        let mut delivered = 0u64;
        let mut errors = 0u64;
        let mut checksum = 0usize;
        while delivered < events {
            match stream.recv().await {
                Some(Ok(event)) => {
                    touch(event.header_str("Event-Name"), &mut checksum);
                    delivered += 1;
                }
                Some(Err(_)) => errors += 1,
                None => break,
            }
        }
        let elapsed = started.elapsed();
        black_box(checksum);
        let lost = client.dropped_event_count();
        if errors > 0 {
            eprintln!("freeswitch-esl-tokio reported {errors} errors in the stream");
        }
        drop(client);
        Run {
            delivered,
            lost,
            elapsed,
        }
    })
}

/// Run `library` `rounds` times against fresh servers and keep the median round by rate.
fn measure(
    name: &str,
    corpus: &Corpus,
    events: u64,
    rounds: usize,
    library: impl Fn(SocketAddr, u64) -> Run,
) -> (Run, Vec<String>) {
    let mut runs = Vec::new();
    let mut commands = Vec::new();
    for round in 0..rounds {
        let (addr, server) = spawn_server(corpus, events);
        let run = library(addr, events);
        let log = server.join().expect("server thread");
        let rate = run.delivered as f64 / run.elapsed.as_secs_f64();
        eprintln!(
            "  {name} round {}: {} events in {:.3} s = {:.0} events/s{}",
            round + 1,
            run.delivered,
            run.elapsed.as_secs_f64(),
            rate,
            if run.lost > 0 {
                format!(", {} lost", run.lost)
            } else {
                String::new()
            }
        );
        commands = log.commands;
        runs.push(run);
    }
    runs.sort_by(|a, b| {
        let ra = a.delivered as f64 / a.elapsed.as_secs_f64();
        let rb = b.delivered as f64 / b.elapsed.as_secs_f64();
        ra.total_cmp(&rb)
    });
    let median = runs.swap_remove(runs.len() / 2);
    (median, commands)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`, and `cargo test --benches` passes nothing; a test run
    // only checks that the bench still builds and works, so it gets a token load.
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick && !fixtures_dir().join("inbound-plain.raw").is_file() {
        println!(
            "esl_throughput: no recordings at {}, skipped",
            fixtures_dir().display()
        );
        return;
    }
    let corpus = load_corpus();
    let (ours_n, theirs_n, rounds) = if quick {
        (20_000, 2_000, 1)
    } else {
        (
            env_or("CALLBACKD_EVENTS", 2_000_000u64),
            env_or("BASELINE_EVENTS", 100_000u64),
            env_or("BENCH_ROUNDS", 3usize).max(1),
        )
    };
    let queue = env_or("BENCH_QUEUE", 1024usize);
    println!(
        "replaying {} recorded text/event-plain frames ({} bytes, {:.0} bytes/event) over 127.0.0.1; \
         each client on a current-thread tokio runtime, event queue {queue}, {rounds} round(s), median shown",
        corpus.frames(),
        corpus.cycle.len(),
        corpus.cycle.len() as f64 / corpus.frames() as f64,
    );

    let (ours, our_commands) = measure("callbackd", &corpus, ours_n, rounds, |addr, n| {
        run_callbackd(addr, n, queue)
    });
    let (theirs, their_commands) = measure(
        "freeswitch-esl-tokio",
        &corpus,
        theirs_n,
        rounds,
        |addr, n| run_baseline(addr, n, queue),
    );
    println!("callbackd sent: {our_commands:?}");
    println!("freeswitch-esl-tokio sent: {their_commands:?}");

    let rate = |r: &Run| r.delivered as f64 / r.elapsed.as_secs_f64();
    let mbps = |r: &Run| corpus.bytes_for(r.delivered) as f64 / r.elapsed.as_secs_f64() / 1e6;
    let ratio = rate(&ours) / rate(&theirs);
    println!();
    println!(
        "{:<22} {:>10} {:>8} {:>9} {:>12} {:>9} {:>10}",
        "library", "events", "lost", "seconds", "events/s", "MB/s", "ratio"
    );
    for (name, run, r) in [
        ("callbackd", &ours, format!("{ratio:.1}x")),
        ("freeswitch-esl-tokio", &theirs, "1.0x".to_owned()),
    ] {
        println!(
            "{:<22} {:>10} {:>8} {:>9.3} {:>12.0} {:>9.1} {:>10}",
            name,
            run.delivered,
            run.lost,
            run.elapsed.as_secs_f64(),
            rate(run),
            mbps(run),
            r
        );
    }
    println!();
    if quick {
        // A test build is unoptimised and tiny: its rates say nothing about the targets.
        assert_eq!(ours.delivered, ours_n, "callbackd lost events");
        println!("smoke run only; `cargo bench --bench esl_throughput` judges the targets");
        return;
    }
    let rate_ok = rate(&ours) >= TARGET_RATE;
    let ratio_ok = ratio >= TARGET_RATIO;
    let complete = ours.delivered == ours_n && ours.lost == 0;
    println!(
        "target >= {TARGET_RATE:.0} events/s on one core: {} ({:.0})",
        verdict(rate_ok),
        rate(&ours)
    );
    println!(
        "target >= {TARGET_RATIO:.0}x freeswitch-esl-tokio: {} ({ratio:.1}x)",
        verdict(ratio_ok)
    );
    println!(
        "callbackd delivered every event: {} ({} of {ours_n})",
        verdict(complete),
        ours.delivered
    );
    if theirs.delivered < theirs_n || theirs.lost > 0 {
        println!(
            "freeswitch-esl-tokio delivered {} of {theirs_n}, lost {}",
            theirs.delivered, theirs.lost
        );
    }
    if !(rate_ok && ratio_ok && complete) {
        std::process::exit(1);
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}
