//! Load benchmark: how many events per second the simulator emits, on one core, to a
//! client that only drains the socket, with thousands of concurrent channels.
//!
//! `cargo bench --bench sim_load [-- CALLERS DIGITS]`; prints events/s and peak channels.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use callbackd::esl::{ContentType, FrameDecoder};
use callbackd::sim::{Caller, ClockMode, SimConfig, Switch};

/// A listener that subscribes to everything and only counts what arrives.
fn drain(
    addr: SocketAddr,
    events: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.write_all(b"auth ClueCon\n\nevent plain ALL\n\n")
        .expect("subscribe");
    let mut dec = FrameDecoder::default();
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 20];
    let mut replies = 0;
    loop {
        let n = match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        buf.extend_from_slice(&chunk[..n]);
        while let Some(frame) = dec.decode(&mut buf).expect("well-formed stream") {
            match frame.content_type() {
                ContentType::EventPlain => {
                    events.fetch_add(1, Ordering::Relaxed);
                }
                ContentType::CommandReply => {
                    replies += 1;
                    if replies == 2 {
                        let _ = ready.send(());
                    }
                }
                _ => {}
            }
        }
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let callers = args.first().copied().unwrap_or(2_000);
    let digits = args.get(1).copied().unwrap_or(60);
    // One thread: the whole simulator (core, listener, writer tasks) shares one core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let switch = Switch::start(SimConfig {
            clock: ClockMode::Manual,
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let (events, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let addr = switch.addr();
        let (e, b) = (events.clone(), bytes.clone());
        std::thread::spawn(move || drain(addr, e, b, ready_tx));
        while ready_rx.try_recv().is_err() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let keys: String = "1234567890".chars().cycle().take(digits).collect();
        // Everyone arrives within the first second, presses a key every 200 ms, and hangs
        // up after all keys: every caller is connected at the same time.
        let talk = Duration::from_millis(200) * digits as u32 + Duration::from_secs(2);
        for i in 0..callers {
            let caller = Caller::number(&format!("+1415{i:07}"))
                .at(Duration::from_micros(
                    (i as u64 * 1_000_000) / callers as u64,
                ))
                .press(Duration::from_secs(1), &keys)
                .hang_up_after(talk);
            switch.add_caller(caller).expect("caller");
        }
        let start = Instant::now();
        let mut peak = 0;
        let step = Duration::from_millis(100);
        let mut simulated = Duration::ZERO;
        while simulated < talk + Duration::from_secs(2) {
            switch.advance(step).await.expect("advance");
            simulated += step;
            peak = peak.max(switch.channel_count().await.expect("count"));
        }
        let emitted = switch.events_emitted().await.expect("count");
        let deadline = Instant::now() + Duration::from_secs(60);
        while events.load(Ordering::Relaxed) < emitted && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let wall = start.elapsed().as_secs_f64();
        let got = events.load(Ordering::Relaxed);
        println!(
            "sim_load: {callers} callers x {digits} digits, peak {peak} concurrent channels, \
             {got}/{emitted} events in {wall:.2} s wall ({:.1} s simulated): \
             {:.0} events/s, {:.1} MB/s",
            simulated.as_secs_f64(),
            got as f64 / wall,
            bytes.load(Ordering::Relaxed) as f64 / wall / 1e6
        );
    });
}
