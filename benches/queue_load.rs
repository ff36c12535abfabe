//! The queue under a contact center's load (2,000 callers waiting, 50 agents, 100 new calls/s),
//! to report the daemon's CPU share, peak memory, agent-free→originate latency and Redis trips.
//
// How each figure is taken, so that it is the daemon's and nobody else's:
// - The simulator runs as a child process (`callbackd sim`, real clock) and Redis as another
//   (`LocalRedis`), so neither's CPU or memory lands in this process.
// - The daemon (the same wiring as `callbackd run`: store, ESL client, engine, info-level
//   logging, here written to a sink) runs on a tokio runtime of its own. Its CPU is the sum of
//   that runtime's threads' CPU time (`/proc/self/task/<tid>/schedstat`), threads that end
//   included, over the measured window. The observer and the harness run on other threads.
// - Latency is measured on the switch's side, by an observer with its own event-socket
//   connection: from an agent leg's CHANNEL_HANGUP (the agent is free: wrap-up is 0) to the
//   CHANNEL_CREATE of the next leg the simulator creates for that agent, which it does on
//   receiving the daemon's `bgapi originate`. It covers the event's way to the daemon, the
//   daemon's work and Redis trips, and the command's way back. The target is judged on the
//   times the observer receives the two events: the simulator stamps an event a timer fires
//   (the agent hanging up) with the timer's due time, so its `Event-Date-Timestamp`s also
//   count how late the simulator itself runs (tokio timers fire up to a millisecond late, and
//   a burst of hangups due together goes out one after another). Both are reported.
// - Redis round trips are Redis's own count of socket reads with data (`total_reads_processed`,
//   one per request or pipeline) over the window; commands (scripts' inner calls included)
//   come from `total_commands_processed`. Both are divided by the calls connected meanwhile.
//
// - The HTTP API is served as `callbackd run` serves it, on a runtime and thread of its own
//   (counted in the daemon's CPU). The window
//   is cut in four quarters: in the second and fourth a client on another thread sends it
//   `LOAD_API_RPS` requests a second (queue views and callback lists, alternating), in the
//   first and third nobody does. The latency and CPU figures of the two halves are set side
//   by side: the same run, with the API and without, the one way to compare on a machine
//   whose load drifts.
//
// - With `LOAD_WEBHOOK_MS=<ms>`, a webhook is sent every `connected` event (100 a second)
//   and its receiver, on a thread of its own, answers each after that many ms; the
//   daemon's deliverers run on its runtime, and the deliveries a second are reported.
//
// Knobs (environment): `LOAD_WARMUP_SECS` (default 10), `LOAD_WINDOW_SECS` (default 60),
// `LOAD_LOCKSTEP=1` (every agent talks exactly `TALK`; see `TALK_SPREAD`), `LOAD_API_RPS`
// (default 200; 0 leaves the API idle), `LOAD_WEBHOOK_MS` (no webhook by default).
// Targets are reported, never enforced: these machines are shared and noisy.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callbackd::api::ApiState;
use callbackd::config::Config;
use callbackd::engine::{Engine, EngineOptions};
use callbackd::esl::{Client, ClientConfig, Delivery, Event};
use callbackd::queue::{AgentState, Clock, QueueName, SystemClock};
use callbackd::store::local::{free_port, LocalRedis};
use callbackd::store::{EventKind, StateSource, Store};
use callbackd::switch::tags;
use callbackd::switch::FreeSwitch;
use tokio::sync::{oneshot, watch};

const WAITING: usize = 2_000;
const AGENTS: usize = 50;
const ARRIVALS_PER_SEC: usize = 100;
/// An agent's phone rings this long before it answers.
const RING: Duration = Duration::from_millis(200);
/// Ring 0.2 s + talk 0.3 s on average: each agent takes two calls a second, so 50 agents
/// serve the 100 arrivals a second and the queue stays near 2,000 rather than growing
/// without end.
const TALK: Duration = Duration::from_millis(300);
/// Agents' talk times are spread this much either side of `TALK`, one fixed time per agent.
/// With one talk time for all, the 50 agents who log in together stay in lock-step for the
/// whole run: each cycle, all of them hang up within a few milliseconds, and the figures
/// measure that burst (a simulator core emitting 50 hangups, Redis serving 50 bookings)
/// more than the daemon. No contact center's calls end in step; `LOAD_LOCKSTEP=1` still
/// runs that worst case.
const TALK_SPREAD: Duration = Duration::from_millis(100);
/// Simulated seconds at which the 2,000 first callers start arriving (after every connection
/// is up, so the observer sees each of them park).
const PRELOAD_AT: f64 = 1.0;
const PRELOAD_PER_SEC: f64 = 500.0;
/// When the agents log in and the steady arrivals begin.
const AGENTS_AT: f64 = 7.0;
const QUEUE: &str = "support";
const P99_TARGET_MS: f64 = 5.0;
const CPU_TARGET: f64 = 0.25;
const API_P99_TARGET_MS: f64 = 10.0;
const API_TOKEN: &str = "queue-load-read-token-000001";

fn main() {
    let warmup = env_secs("LOAD_WARMUP_SECS", 10);
    let window = env_secs("LOAD_WINDOW_SECS", 60);
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let redis = LocalRedis::start().expect("redis-server");
    let sim_port = free_port();
    let api_port = free_port();
    let api_rps = env_secs("LOAD_API_RPS", 200);
    let webhook = std::env::var("LOAD_WEBHOOK_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(|ms| SlowReceiver::start(Duration::from_millis(ms)));
    let scenario = write_scenario(warmup + window);
    let sim = SimProcess::start(sim_port, &scenario);
    let sim_started = Instant::now();
    let config = Arc::new(
        Config::parse(
            Path::new("queue_load.toml"),
            &config_text(
                sim_port,
                &redis.url(),
                api_port,
                webhook.as_ref().map(|w| w.url.as_str()),
            ),
        )
        .expect("bench config"),
    );

    let harness = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("harness runtime");
    let store = harness
        .block_on(Store::connect(&config.redis))
        .expect("store");
    let mut info = harness
        .block_on(async {
            redis::Client::open(redis.url())?
                .get_multiplexed_async_connection()
                .await
        })
        .expect("redis connection for INFO");

    eprintln!("queue_load: simulator and redis-server up; connecting the observer");
    let observer = Observer::start(sim_port);
    let mem_before = memory();

    // Production logs at info level; formatting them is part of the daemon's work.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::sink)
        .try_init();
    let daemon = Daemon::start(config.clone());

    eprintln!("queue_load: daemon started; agents log in at {AGENTS_AT} s");
    sleep_until(sim_started + Duration::from_secs_f64(AGENTS_AT));
    harness.block_on(async {
        store
            .register_agents(&config.agents, SystemClock.now())
            .await
            .expect("register agents");
        for agent in &config.agents {
            store
                .set_agent_state(
                    &agent.id,
                    AgentState::Available,
                    SystemClock.now(),
                    StateSource::Cli,
                )
                .await
                .expect("agent available");
        }
    });
    std::thread::sleep(Duration::from_secs(warmup));

    eprintln!("queue_load: measuring for {window} s, the API loaded in two quarters of it");
    let api = ApiLoad::start(api_port, api_rps);
    let hooks_before = webhook.as_ref().map_or(0, SlowReceiver::count);
    let mut quarters = vec![Snapshot::take(
        &harness, &mut info, &daemon, &observer, &sim,
    )];
    for quarter in 0..4 {
        api.set_on(quarter % 2 == 1 && api_rps > 0);
        std::thread::sleep(Duration::from_secs_f64(window as f64 / 4.0));
        quarters.push(Snapshot::take(
            &harness, &mut info, &daemon, &observer, &sim,
        ));
    }
    api.set_on(false);
    let api_requests = api.stop();
    let webhook_rate = webhook.as_ref().map(|w| {
        let sent = w.count() - hooks_before;
        (w.delay, sent as f64 / window as f64)
    });
    let end = quarters.pop().expect("five snapshots");
    let start = quarters.remove(0);
    let mem_peak = memory();
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let sim_peak_kb = status_kb(&format!("/proc/{}/status", sim.child.id()), "VmHWM:");

    // The arrivals stop with the window; give the last ones time to be queued, then stop.
    std::thread::sleep(Duration::from_secs(2));
    eprintln!("queue_load: stopping and checking every call");
    daemon.stop();
    std::thread::sleep(Duration::from_millis(500));
    let seen = observer.stop();
    let check = harness.block_on(verify(&store, &seen));
    drop(sim);

    let window_of = |all: &[u64]| {
        let mut l = all[start.latencies..end.latencies].to_vec();
        l.sort_unstable();
        l
    };
    let latencies = window_of(&seen.latencies_seen_us);
    let stamped_latencies = window_of(&seen.latencies_us);
    // The quarters without the API (first, third) and with it (second, fourth).
    let halves = {
        let bounds: Vec<&Snapshot> = std::iter::once(&start)
            .chain(&quarters)
            .chain(std::iter::once(&end))
            .collect();
        let half = |first: usize| {
            let mut l = Vec::new();
            let (mut cpu_ns, mut wall_ns, mut calls) = (0, 0, 0);
            let mut per_call = [0.0; 3];
            for q in [first, first + 2] {
                let (a, b) = (bounds[q], bounds[q + 1]);
                l.extend_from_slice(&seen.latencies_seen_us[a.latencies..b.latencies]);
                cpu_ns += b.daemon_cpu_ns - a.daemon_cpu_ns;
                wall_ns += b.at.duration_since(a.at).as_nanos() as u64;
                calls += b.bridges.saturating_sub(a.bridges);
                // Each snapshot's INFO and ZCARD are two commands and two reads.
                per_call[0] += b.redis_num("total_reads_processed")
                    - a.redis_num("total_reads_processed")
                    - 2.0;
                per_call[1] += b.redis_num("total_commands_processed")
                    - a.redis_num("total_commands_processed")
                    - 2.0;
                per_call[2] +=
                    b.command_calls("cmdstat_evalsha") - a.command_calls("cmdstat_evalsha");
            }
            l.sort_unstable();
            Half {
                latencies: l,
                daemon_share: cpu_ns as f64 / wall_ns.max(1) as f64,
                redis_per_call: per_call.map(|n| n / calls.max(1) as f64),
            }
        };
        (half(0), half(1))
    };
    report(&Report {
        warmup,
        window,
        start,
        end,
        without_api: halves.0,
        with_api: halves.1,
        api_rps,
        api_requests,
        webhook_rate,
        latencies,
        stamped_latencies,
        mem_before,
        mem_peak,
        sim_peak_kb,
        check,
        load_before,
        load_after,
    });
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sleep_until(at: Instant) {
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

fn agent_ext(i: usize) -> usize {
    1001 + i
}

fn config_text(sim_port: u16, redis_url: &str, api_port: u16, webhook: Option<&str>) -> String {
    let hook = webhook.map_or(String::new(), |url| {
        format!(
            "[[webhooks]]\nname = \"load\"\nurl = \"{url}\"\nsecret = \"queue-load-webhook-secret\"\n\
             events = [\"connected\"]\n"
        )
    });
    let mut text = hook;
    text += &format!(
        r#"
[http]
listen = "127.0.0.1:{api_port}"
[[http.tokens]]
token = "{API_TOKEN}"
role = "read"

[esl]
address = "127.0.0.1:{sim_port}"
password = "ClueCon"

[redis]
url = "{redis_url}"
key_prefix = "cbd"

[[queues]]
name = "{QUEUE}"
hold_music = "local_stream://moh"
ring_time_secs = 5
wrap_up_secs = 0

[[lines]]
name = "main"
did = "5000"
queue = "{QUEUE}"
language = "en"
outbound_caller_id = "+4930123456"
dial_template = "sofia/gateway/carrier/{{number}}"
"#
    );
    for i in 0..AGENTS {
        text.push_str(&format!(
            r#"
[[agents]]
id = "agent{i:02}"
display_name = "Agent {i}"
contact = "user/{}"
queues = [{{ queue = "{QUEUE}" }}]
"#,
            agent_ext(i)
        ));
    }
    text
}

/// The simulator's script: the preload, then steady arrivals from the agents' login until
/// the end of the measured window, and agents who answer after `RING` and then talk.
fn write_scenario(steady_secs: u64) -> PathBuf {
    let mut text = String::new();
    let mut caller = |n: usize, at: f64| {
        text.push_str(&format!(
            "[[caller]]\nat = {at:.4}\nnumber = \"+1555{n:07}\"\n"
        ));
    };
    for i in 0..WAITING {
        caller(i, PRELOAD_AT + i as f64 / PRELOAD_PER_SEC);
    }
    let steady = steady_secs as usize * ARRIVALS_PER_SEC;
    for i in 0..steady {
        caller(WAITING + i, AGENTS_AT + i as f64 / ARRIVALS_PER_SEC as f64);
    }
    for i in 0..AGENTS {
        text.push_str(&format!(
            "[party.\"user/{}\"]\nring = {}\nhangup_after = {}\n",
            agent_ext(i),
            RING.as_secs_f64(),
            talk_time(i).as_secs_f64()
        ));
    }
    let path =
        std::env::temp_dir().join(format!("callbackd-queue-load-{}.toml", std::process::id()));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("writing the scenario");
    path
}

fn lockstep() -> bool {
    std::env::var("LOAD_LOCKSTEP").is_ok_and(|v| v == "1")
}

/// Agent `i`'s talk time: spread evenly over `TALK ± TALK_SPREAD`, unless in lock-step.
fn talk_time(i: usize) -> Duration {
    if lockstep() {
        return TALK;
    }
    let low = TALK - TALK_SPREAD;
    low + (2 * TALK_SPREAD) * i as u32 / (AGENTS as u32 - 1)
}

/// `callbackd sim` as a child process, killed on drop so a failed run leaves nothing behind.
struct SimProcess {
    child: Child,
    scenario: PathBuf,
}

impl SimProcess {
    fn start(port: u16, scenario: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_callbackd"))
            .args(["--log-level", "warn", "sim", "--speed", "1"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--scenario")
            .arg(scenario)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning callbackd sim");
        let sim = Self {
            child,
            scenario: scenario.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "callbackd sim did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        sim
    }

    fn cpu_ns(&self) -> u64 {
        stat_cpu_ns(&format!("/proc/{}/stat", self.child.id()))
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.scenario);
    }
}

/// CPU time of a set of threads, kept across their exits.
#[derive(Default)]
struct ThreadCpu {
    /// `<pid>/task/<tid>` of each live thread.
    live: Mutex<Vec<PathBuf>>,
    exited_ns: AtomicU64,
}

impl ThreadCpu {
    fn enter(&self) {
        if let Ok(me) = std::fs::read_link("/proc/thread-self") {
            self.live.lock().unwrap().push(me);
        }
    }

    /// Called on the exiting thread itself, while its counters still exist.
    fn leave(&self) {
        let Ok(me) = std::fs::read_link("/proc/thread-self") else {
            return;
        };
        self.exited_ns
            .fetch_add(thread_cpu_ns(&me), Ordering::Relaxed);
        self.live.lock().unwrap().retain(|t| t != &me);
    }

    fn total_ns(&self) -> u64 {
        let live = self.live.lock().unwrap();
        self.exited_ns.load(Ordering::Relaxed) + live.iter().map(|t| thread_cpu_ns(t)).sum::<u64>()
    }
}

/// Nanoseconds on CPU; schedstat counts in ns where stat only has clock ticks.
fn thread_cpu_ns(task: &Path) -> u64 {
    std::fs::read_to_string(Path::new("/proc").join(task).join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a whole process (every thread, dead ones included) from `stat`.
fn stat_cpu_ns(path: &str) -> u64 {
    // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
    const NS_PER_TICK: u64 = 10_000_000;
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of stat; `fields` starts at field 3.
    (tick(11) + tick(12)) * NS_PER_TICK
}

fn status_kb(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
struct Memory {
    rss_kb: u64,
    hwm_kb: u64,
}

fn memory() -> Memory {
    Memory {
        rss_kb: status_kb("/proc/self/status", "VmRSS:"),
        hwm_kb: status_kb("/proc/self/status", "VmHWM:"),
    }
}

/// The daemon as `callbackd run` wires it, on a runtime whose threads are measured.
struct Daemon {
    runtime: tokio::runtime::Runtime,
    cpu: Arc<ThreadCpu>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Daemon {
    fn start(config: Arc<Config>) -> Self {
        let cpu = Arc::new(ThreadCpu::default());
        let (on_start, on_stop) = (cpu.clone(), cpu.clone());
        // Like `callbackd run`: a multi-threaded runtime with one worker per core.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("daemon")
            .on_thread_start(move || on_start.enter())
            .on_thread_stop(move || on_stop.leave())
            .build()
            .expect("daemon runtime");
        let (shutdown, stop) = watch::channel(false);
        let api_cpu = cpu.clone();
        let task = runtime.spawn(async move {
            let store = Store::connect(&config.redis).await.expect("daemon store");
            let (client, deliveries) = Client::start(FreeSwitch::client_config(&config));
            let options = EngineOptions {
                daemon_id: callbackd::values::DaemonId::new("load").unwrap(),
                sounds: callbackd::switch::MediaDir::new(std::path::Path::new(
                    "/usr/share/freeswitch/sounds",
                ))
                .unwrap(),
                languages: vec!["en".into()],
                default_language: "en".into(),
                recordings: callbackd::switch::MediaDir::new(&std::env::temp_dir()).unwrap(),
                time_scale: 1.0,
            };
            let engine = Engine::new(
                config.clone(),
                options,
                store.clone(),
                FreeSwitch::new(client.clone()),
                Arc::new(SystemClock),
            );
            // The API as `callbackd run` serves it: on a runtime and thread of its own,
            // whose CPU counts as the daemon's.
            let http = config.http.as_ref().expect("the bench config has [http]");
            let listener = std::net::TcpListener::bind(http.listen).expect("API port");
            let state = ApiState::new(
                engine.handle(),
                store.clone(),
                Arc::new(SystemClock),
                Arc::default(),
            );
            let (on_start, on_stop) = (api_cpu.clone(), api_cpu.clone());
            let api_runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("api")
                .enable_all()
                .on_thread_start(move || on_start.enter())
                .on_thread_stop(move || on_stop.leave())
                .build()
                .expect("API runtime");
            let api = callbackd::api::serve_apart(listener, state, stop.clone(), api_runtime)
                .expect("API thread");
            tokio::spawn(callbackd::webhooks::run(
                store.clone(),
                config.clone(),
                Arc::new(SystemClock),
                Arc::default(),
                stop.clone(),
            ));
            if let Err(e) = engine.run(deliveries, stop).await {
                eprintln!("queue_load: the engine stopped: {e}");
            }
            let _ = tokio::task::spawn_blocking(move || api.stop()).await;
            client.shutdown().await;
        });
        Self {
            runtime,
            cpu,
            shutdown,
            task,
        }
    }

    fn stop(self) {
        let _ = self.shutdown.send(true);
        // A stop that hangs must not hang the bench: the figures are already taken.
        let stopped = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), self.task).await });
        if stopped.is_err() {
            eprintln!("queue_load: the daemon did not stop within 5 s");
        }
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

/// What the switch did, as seen from a second event-socket connection.
#[derive(Debug, Default)]
struct Seen {
    /// Queue callers (parked with the queue tag), by channel = entry id.
    callers: HashMap<String, CallerSeen>,
    /// Live agent legs by channel.
    legs: HashMap<String, LegSeen>,
    /// Agent legs placed per entry: (placed, ended unanswered).
    offers: HashMap<String, (u32, u32)>,
    /// Live legs per agent; a second one means the agent was booked twice.
    agent_legs: HashMap<String, u32>,
    double_bookings: u64,
    /// When each agent's last leg ended, until their next leg: (switch stamp, observer
    /// receive time), both in µs since the epoch.
    free_since: HashMap<String, (u64, u64)>,
    /// By the switch's event stamps.
    latencies_us: Vec<u64>,
    /// By the observer's receive times; same indexes as `latencies_us`.
    latencies_seen_us: Vec<u64>,
    bridges: u64,
}

#[derive(Debug, Default)]
struct CallerSeen {
    bridges: u32,
    hung_up: bool,
}

#[derive(Debug)]
struct LegSeen {
    agent: String,
    entry: String,
    answered: bool,
}

impl Seen {
    fn on_event(&mut self, ev: &Event) {
        let (Some(name), Some(uuid)) = (ev.name(), ev.unique_id()) else {
            return;
        };
        let at: u64 = ev
            .header("Event-Date-Timestamp")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let received = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let agent = ev.variable(tags::AGENT).map(|a| a.into_owned());
        match (name.as_ref(), agent) {
            ("CHANNEL_CREATE", Some(agent)) => {
                let entry = ev.variable(tags::ENTRY).unwrap_or_default().into_owned();
                let live = self.agent_legs.entry(agent.clone()).or_default();
                if *live > 0 {
                    self.double_bookings += 1;
                }
                *live += 1;
                if let Some((free, seen)) = self.free_since.remove(&agent) {
                    self.latencies_us.push(at.saturating_sub(free));
                    self.latencies_seen_us.push(received.saturating_sub(seen));
                }
                self.offers.entry(entry.clone()).or_default().0 += 1;
                self.legs.insert(
                    uuid.into_owned(),
                    LegSeen {
                        agent,
                        entry,
                        answered: false,
                    },
                );
            }
            ("CHANNEL_PARK", Some(_)) => {
                if let Some(leg) = self.legs.get_mut(uuid.as_ref()) {
                    leg.answered = true;
                }
            }
            ("CHANNEL_PARK", None) if ev.variable(tags::QUEUE).is_some() => {
                self.callers.entry(uuid.into_owned()).or_default();
            }
            ("CHANNEL_BRIDGE", _) => {
                for side in ["Bridge-A-Unique-ID", "Bridge-B-Unique-ID"] {
                    let id = ev.header(side).unwrap_or_default();
                    if let Some(caller) = self.callers.get_mut(id.as_ref()) {
                        caller.bridges += 1;
                        self.bridges += 1;
                    }
                }
            }
            ("CHANNEL_HANGUP", _) => {
                if let Some(leg) = self.legs.remove(uuid.as_ref()) {
                    if let Some(live) = self.agent_legs.get_mut(&leg.agent) {
                        *live = live.saturating_sub(1);
                    }
                    if !leg.answered {
                        self.offers.entry(leg.entry).or_default().1 += 1;
                    }
                    self.free_since.insert(leg.agent, (at, received));
                } else if let Some(caller) = self.callers.get_mut(uuid.as_ref()) {
                    caller.hung_up = true;
                }
            }
            _ => {}
        }
    }
}

/// The observer's connection, on a thread and runtime of its own.
struct Observer {
    seen: Arc<Mutex<Seen>>,
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Observer {
    fn start(sim_port: u16) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, mut stopped) = oneshot::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let sink = seen.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("observer runtime");
            runtime.block_on(async move {
                let mut config = ClientConfig::new(format!("127.0.0.1:{sim_port}"), "ClueCon");
                config.events = [
                    "CHANNEL_CREATE",
                    "CHANNEL_PARK",
                    "CHANNEL_BRIDGE",
                    "CHANNEL_HANGUP",
                ]
                .map(str::to_owned)
                .to_vec();
                let (client, mut deliveries) = Client::start(config);
                loop {
                    tokio::select! {
                        d = deliveries.recv() => match d {
                            Some(Delivery::Event(ev)) => sink.lock().unwrap().on_event(&ev),
                            Some(Delivery::Connected) => { let _ = ready_tx.send(()); }
                            Some(other) => eprintln!("queue_load: observer: {other:?}"),
                            None => break,
                        },
                        _ = &mut stopped => break,
                    }
                }
                let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
            });
        });
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("observer connected to the simulator");
        Self { seen, stop, thread }
    }

    fn counts(&self) -> (usize, u64) {
        let seen = self.seen.lock().unwrap();
        (seen.latencies_us.len(), seen.bridges)
    }

    fn stop(self) -> Seen {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Counters read at each edge of the measured window.
struct Snapshot {
    at: Instant,
    daemon_cpu_ns: u64,
    process_cpu_ns: u64,
    sim_cpu_ns: u64,
    redis: HashMap<String, String>,
    waiting: u64,
    latencies: usize,
    bridges: u64,
}

impl Snapshot {
    fn take(
        harness: &tokio::runtime::Runtime,
        info: &mut redis::aio::MultiplexedConnection,
        daemon: &Daemon,
        observer: &Observer,
        sim: &SimProcess,
    ) -> Self {
        let at = Instant::now();
        let daemon_cpu_ns = daemon.cpu.total_ns();
        let process_cpu_ns = stat_cpu_ns("/proc/self/stat");
        let sim_cpu_ns = sim.cpu_ns();
        let (latencies, bridges) = observer.counts();
        let (text, waiting): (String, u64) = harness
            .block_on(async {
                let text = redis::cmd("INFO")
                    .arg("stats")
                    .arg("cpu")
                    .arg("commandstats")
                    .query_async(info)
                    .await?;
                let waiting = redis::cmd("ZCARD")
                    .arg(format!("cbd:{{{QUEUE}}}:waiting"))
                    .query_async(info)
                    .await?;
                Ok::<_, redis::RedisError>((text, waiting))
            })
            .expect("INFO from redis-server");
        let redis = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect();
        Self {
            at,
            daemon_cpu_ns,
            process_cpu_ns,
            sim_cpu_ns,
            redis,
            waiting,
            latencies,
            bridges,
        }
    }

    fn redis_num(&self, key: &str) -> f64 {
        self.redis
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// `calls` of one `cmdstat_*` line.
    fn command_calls(&self, key: &str) -> f64 {
        self.redis
            .get(key)
            .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("calls=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Lost and duplicated calls, from the switch's record and the store's.
#[derive(Debug, Default)]
struct Check {
    callers: usize,
    connected: usize,
    still_waiting: usize,
    /// Parked but neither connected nor open in the store, or hung up unconnected.
    lost: usize,
    /// Bridged or recorded `connected` more than once.
    duplicated: usize,
    /// Offered again without a failed or withdrawn offer in between (store events or agent
    /// legs).
    offered_twice: usize,
    /// Offers withdrawn: claimed for an agent who turned out busy, so nobody rang.
    withdrawn: u32,
    double_bookings: u64,
    /// Bridged on the switch without a `connected` in the store, or the reverse.
    mismatched: usize,
}

async fn verify(store: &Store, seen: &Seen) -> Check {
    let queue = QueueName::new(QUEUE).expect("queue name");
    let events = store
        .events(Some(&queue), None, 10_000_000)
        .await
        .expect("queue events");
    let mut per_entry: HashMap<&str, EventCounts> = HashMap::new();
    for e in &events {
        let counts = per_entry
            .entry(e.field("entry").unwrap_or_default())
            .or_default();
        counts.add(e.kind);
    }
    let open: std::collections::HashSet<String> = store
        .open_entries(&queue)
        .await
        .expect("open entries")
        .into_iter()
        .map(|e| e.id.to_string())
        .collect();
    let mut check = Check {
        callers: seen.callers.len(),
        double_bookings: seen.double_bookings,
        ..Check::default()
    };
    for (id, caller) in &seen.callers {
        let stored = per_entry.get(id.as_str()).copied().unwrap_or_default();
        check.withdrawn += stored.withdrawn;
        if caller.bridges > 1 || stored.connected > 1 {
            check.duplicated += 1;
        }
        if (caller.bridges > 0) != (stored.connected > 0) {
            check.mismatched += 1;
        }
        let legs = seen.offers.get(id).copied().unwrap_or_default();
        if stored.offered > 1 + stored.no_answer + stored.withdrawn || legs.0 > 1 + legs.1 {
            check.offered_twice += 1;
        }
        if caller.bridges > 0 {
            check.connected += 1;
        } else if open.contains(id) && !caller.hung_up {
            check.still_waiting += 1;
        } else {
            check.lost += 1;
        }
    }
    check
}

#[derive(Debug, Default, Clone, Copy)]
struct EventCounts {
    offered: u32,
    withdrawn: u32,
    no_answer: u32,
    connected: u32,
}

impl EventCounts {
    fn add(&mut self, kind: EventKind) {
        match kind {
            EventKind::Offered => self.offered += 1,
            EventKind::OfferWithdrawn => self.withdrawn += 1,
            EventKind::AgentNoAnswer => self.no_answer += 1,
            EventKind::Connected => self.connected += 1,
            _ => {}
        }
    }
}

struct Report {
    warmup: u64,
    window: u64,
    start: Snapshot,
    end: Snapshot,
    without_api: Half,
    with_api: Half,
    api_rps: u64,
    api_requests: Vec<ApiRequest>,
    /// The slow receiver's delay and the deliveries a second it took, with a webhook.
    webhook_rate: Option<(Duration, f64)>,
    /// Agent free → originate, by the observer's receive times (judged).
    latencies: Vec<u64>,
    /// The same by the simulator's event stamps (reported).
    stamped_latencies: Vec<u64>,
    mem_before: Memory,
    mem_peak: Memory,
    sim_peak_kb: u64,
    check: Check,
    load_before: String,
    load_after: String,
}

/// The two quarters of the window with the API idle, or the two with it loaded.
struct Half {
    /// Agent free → originate, by the observer's receive times, sorted.
    latencies: Vec<u64>,
    daemon_share: f64,
    /// Redis round trips, commands and EVALSHAs per call connected.
    redis_per_call: [f64; 3],
}

/// A webhook receiver on a thread of its own that answers every delivery after `delay`.
struct SlowReceiver {
    url: String,
    delay: Duration,
    received: Arc<AtomicU64>,
}

impl SlowReceiver {
    fn start(delay: Duration) -> Self {
        let received = Arc::new(AtomicU64::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("receiver port");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let counted = received.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().route(
                    "/hook",
                    axum::routing::post(move || {
                        let counted = counted.clone();
                        async move {
                            tokio::time::sleep(delay).await;
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                    }),
                );
                let _ = axum::serve(listener, app).await;
            });
        });
        Self {
            url,
            delay,
            received,
        }
    }

    fn count(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// One request the API load sent.
struct ApiRequest {
    kind: &'static str,
    latency_us: u64,
    ok: bool,
}

/// A client on a thread of its own sending the daemon's API a steady rate of requests
/// while it is on: each request goes out on time, whether or not the last one is back.
struct ApiLoad {
    on: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<ApiRequest>>,
}

impl ApiLoad {
    fn start(port: u16, rps: u64) -> Self {
        let on = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (on2, stop2) = (on.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("API load runtime");
            rt.block_on(async move {
                let http = reqwest::Client::new();
                let base = format!("http://127.0.0.1:{port}");
                let paths = [
                    ("queue view", format!("{base}/v1/queues/{QUEUE}")),
                    ("callback list", format!("{base}/v1/callbacks?limit=50")),
                ];
                let (done, mut results) = tokio::sync::mpsc::unbounded_channel();
                let mut tick =
                    tokio::time::interval(Duration::from_secs_f64(1.0 / rps.max(1) as f64));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut sent = 0usize;
                while !stop2.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if !on2.load(Ordering::Relaxed) || rps == 0 {
                        continue;
                    }
                    let (kind, url) = paths[sent % paths.len()].clone();
                    sent += 1;
                    let (http, done) = (http.clone(), done.clone());
                    tokio::spawn(async move {
                        let at = Instant::now();
                        let resp = http.get(url).bearer_auth(API_TOKEN).send().await;
                        let ok = match resp {
                            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        let latency_us = at.elapsed().as_micros() as u64;
                        let _ = done.send(ApiRequest {
                            kind,
                            latency_us,
                            ok,
                        });
                    });
                }
                drop(done);
                let mut all = Vec::new();
                while let Some(r) = results.recv().await {
                    all.push(r);
                }
                all
            })
        });
        Self { on, stop, thread }
    }

    fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    fn stop(self) -> Vec<ApiRequest> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the API load thread")
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn report(r: &Report) {
    let (s, e) = (&r.start, &r.end);
    let wall_ns = e.at.duration_since(s.at).as_nanos() as f64;
    let share = |a: u64, b: u64| b.saturating_sub(a) as f64 / wall_ns;
    let daemon_share = share(s.daemon_cpu_ns, e.daemon_cpu_ns);
    let process_share = share(s.process_cpu_ns, e.process_cpu_ns);
    let sim_share = share(s.sim_cpu_ns, e.sim_cpu_ns);
    let redis_cpu = |x: &Snapshot| x.redis_num("used_cpu_user") + x.redis_num("used_cpu_sys");
    let redis_share = (redis_cpu(e) - redis_cpu(s)) * 1e9 / wall_ns;
    let calls = e.bridges.saturating_sub(s.bridges);
    // Per call, from the quarters without the API: its reads are not the calls' cost.
    let [reads, commands, evalsha] = r.without_api.redis_per_call;
    let p50 = percentile(&r.latencies, 0.50);
    let p99 = percentile(&r.latencies, 0.99);
    let max = percentile(&r.latencies, 1.0);
    let c = &r.check;
    let no_loss = c.lost == 0
        && c.duplicated == 0
        && c.offered_twice == 0
        && c.double_bookings == 0
        && c.mismatched == 0;

    println!();
    println!(
        "queue_load: {WAITING} callers waiting, {AGENTS} agents, {ARRIVALS_PER_SEC} new calls/s"
    );
    let talk = if lockstep() {
        format!("{} ms each, in lock-step", TALK.as_millis())
    } else {
        format!(
            "{}-{} ms (one per agent)",
            talk_time(0).as_millis(),
            talk_time(AGENTS - 1).as_millis()
        )
    };
    println!(
        "  agents ring {} ms, talk {talk}, wrap-up 0; real clock; warm-up {} s, window {} s",
        RING.as_millis(),
        r.warmup,
        r.window
    );
    println!(
        "  machine: {} cores; load average before {}, after {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        r.load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        r.load_after
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!("  {:<52} {:>14}  target", "figure", "value");
    let row = |name: &str, value: String, target: &str| {
        println!("  {name:<52} {value:>14}  {target}");
    };
    row(
        "calls connected in the window",
        format!("{calls} ({:.1}/s)", calls as f64 * 1e9 / wall_ns),
        "",
    );
    row(
        "callers waiting at window start / end",
        format!("{} / {}", s.waiting, e.waiting),
        "",
    );
    row(
        "daemon CPU (its runtime's threads), share of a core",
        format!("{:.3}", daemon_share),
        &format!("< {CPU_TARGET}  {}", verdict(daemon_share < CPU_TARGET)),
    );
    row(
        "  whole bench process (daemon + observer + harness)",
        format!("{:.3}", process_share),
        "",
    );
    row(
        "  simulator process (not the daemon)",
        format!("{:.3}", sim_share),
        "",
    );
    row(
        "  redis-server process (not the daemon)",
        format!("{:.3}", redis_share),
        "",
    );
    row(
        "agent free -> originate p50 (ms), on the socket",
        format!("{p50:.2}"),
        "",
    );
    row(
        "agent free -> originate p99 (ms), on the socket",
        format!("{p99:.2}"),
        &format!("< {P99_TARGET_MS}  {}", verdict(p99 < P99_TARGET_MS)),
    );
    row(
        "  max (ms), samples",
        format!("{max:.2}, {}", r.latencies.len()),
        "",
    );
    row(
        "  p50 / p99 by the simulator's stamps (ms)",
        format!(
            "{:.2} / {:.2}",
            percentile(&r.stamped_latencies, 0.50),
            percentile(&r.stamped_latencies, 0.99)
        ),
        "",
    );
    let api_window = r.window as f64 / 2.0;
    row(
        "API requests answered / sent, per second while on",
        format!(
            "{} / {} ({:.0}/s)",
            r.api_requests.iter().filter(|q| q.ok).count(),
            r.api_requests.len(),
            r.api_requests.len() as f64 / api_window
        ),
        &format!("{} /s asked", r.api_rps),
    );
    for kind in ["queue view", "callback list"] {
        let mut l: Vec<u64> = (r.api_requests.iter())
            .filter(|q| q.kind == kind)
            .map(|q| q.latency_us)
            .collect();
        l.sort_unstable();
        let p99 = percentile(&l, 0.99);
        row(
            &format!("  API {kind} p50 / p99 (ms)"),
            format!("{:.2} / {p99:.2}", percentile(&l, 0.50)),
            &format!(
                "p99 < {API_P99_TARGET_MS}  {}",
                verdict(p99 < API_P99_TARGET_MS)
            ),
        );
    }
    if let Some((delay, rate)) = r.webhook_rate {
        row(
            &format!(
                "webhook deliveries/s to a {} ms receiver",
                delay.as_millis()
            ),
            format!("{rate:.1}"),
            &format!("{ARRIVALS_PER_SEC}/s made"),
        );
    }
    let (off, on) = (&r.without_api, &r.with_api);
    let (off_p99, on_p99) = (
        percentile(&off.latencies, 0.99),
        percentile(&on.latencies, 0.99),
    );
    row(
        "  agent free -> originate p99 without / with API (ms)",
        format!("{off_p99:.2} / {on_p99:.2}"),
        // Noise allowed: 10 % and 0.2 ms.
        &format!("within 10 %  {}", verdict(on_p99 <= off_p99 * 1.1 + 0.2)),
    );
    row(
        "  daemon CPU share without / with API",
        format!("{:.3} / {:.3}", off.daemon_share, on.daemon_share),
        "",
    );
    row(
        "Redis round trips per call (server socket reads)",
        format!("{reads:.1}"),
        "",
    );
    row(
        "  Redis commands per call (incl. inside scripts)",
        format!("{commands:.1}"),
        "",
    );
    row("  of which EVALSHA per call", format!("{evalsha:.1}"), "");
    row(
        "peak memory, bench process VmHWM (MiB)",
        format!("{:.1}", r.mem_peak.hwm_kb as f64 / 1024.0),
        "",
    );
    row(
        "  before the daemon started: VmRSS (MiB)",
        format!("{:.1}", r.mem_before.rss_kb as f64 / 1024.0),
        "",
    );
    row(
        "  simulator process VmHWM (MiB, not the daemon)",
        format!("{:.1}", r.sim_peak_kb as f64 / 1024.0),
        "",
    );
    row(
        "callers parked / connected / still waiting",
        format!("{} / {} / {}", c.callers, c.connected, c.still_waiting),
        "",
    );
    row(
        "lost / duplicated / offered twice / double-booked",
        format!(
            "{} / {} / {} / {}",
            c.lost, c.duplicated, c.offered_twice, c.double_bookings
        ),
        &format!("0  {}", verdict(no_loss)),
    );
    row(
        "  offers withdrawn (claimed for an agent just turned busy)",
        c.withdrawn.to_string(),
        "",
    );
    row(
        "  switch bridge vs store `connected` mismatches",
        c.mismatched.to_string(),
        "",
    );
    println!();
}
