//! A FreeSWITCH stand-in that speaks real ESL, for tests, the demo and load benchmarks.
//!
//! FreeSWITCH cannot run on the project's machines; this models calls closely enough
//! (checked against recordings of FreeSWITCH 1.10.12) that the daemon can be tested over
//! a real socket. See `tests/sim_wire.rs` and `tests/sim_flows.rs` for the proof.

mod api;
mod apps;
mod calls;
mod channel;
mod clock;
mod core;
mod event;
mod record;
mod scenario;
mod server;
mod subscription;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

pub use self::channel::Step;
pub use self::clock::ClockMode;
pub use self::record::CallRecord;
pub use self::scenario::{Caller, Outcome, Party, Press, Scenario, ScenarioError};

use self::core::{Core, CoreMsg};

/// Why the simulator could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the simulated switch has stopped")]
    Stopped,
}

/// A dialplan extension: the applications a call to it runs.
#[derive(Debug, Clone)]
pub struct Extension {
    pub name: String,
    pub steps: Vec<Step>,
}

impl Extension {
    pub fn new(name: &str, steps: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_owned(),
            steps: steps
                .iter()
                .map(|(app, arg)| Step {
                    app: (*app).to_owned(),
                    arg: (*arg).to_owned(),
                })
                .collect(),
        }
    }

    /// The callbackd queue extension: tag the call with its queue and line, answer, park.
    pub fn queue(name: &str, queue: &str, line: &str) -> Self {
        Self::new(
            name,
            &[
                ("set", &format!("callbackd_queue={queue}")),
                ("set", &format!("callbackd_line={line}")),
                ("answer", ""),
                ("park", ""),
            ],
        )
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub password: String,
    pub clock: ClockMode,
    /// HEARTBEAT period (FreeSWITCH: 20 s); `None` for none.
    pub heartbeat: Option<Duration>,
    pub hostname: String,
    pub domain: String,
    /// Directory users with no scripted party: dialing them gives USER_NOT_REGISTERED
    /// (any other unscripted `user/` gives SUBSCRIBER_ABSENT).
    pub directory: Vec<String>,
    pub dialplan: Vec<Extension>,
    /// Length of media the simulator cannot measure (files), by path.
    pub media: Vec<(String, Duration)>,
    pub default_media: Duration,
    /// Frames queued for a listener that does not read; beyond it events are lost and
    /// after 500 losses the listener is dropped (FreeSWITCH: `MAX_QUEUE_LEN` 100000).
    pub listener_queue: usize,
    /// How long a party with no scripted speech talks into a `record`.
    pub speech: Duration,
    /// Length of each file `say` plays.
    pub say_file_duration: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            password: "ClueCon".into(),
            clock: ClockMode::default(),
            heartbeat: Some(Duration::from_secs(20)),
            hostname: "sim".into(),
            domain: "127.0.0.1".into(),
            directory: (1000..=1019).map(|n| n.to_string()).collect(),
            dialplan: vec![
                Extension::queue("cbq", "support", "main"),
                Extension::new("agent_answer", &[("answer", ""), ("park", "")]),
                Extension::new("agent_noanswer", &[("ring_ready", ""), ("sleep", "60000")]),
                Extension::new("cust_answer", &[("answer", ""), ("park", "")]),
                Extension::new(
                    "fire_custom",
                    &[
                        (
                            "event",
                            "Event-Subclass=callbackd::agent,Event-Name=CUSTOM,agent=1001,action=away",
                        ),
                        ("hangup", ""),
                    ],
                ),
                Extension::new("park", &[("park", "")]),
            ],
            media: Vec::new(),
            default_media: Duration::from_secs(1),
            listener_queue: 100_000,
            speech: Duration::from_millis(2340),
            say_file_duration: Duration::from_millis(870),
        }
    }
}

impl SimConfig {
    pub fn dialplan_steps(&self, ext: &str) -> Option<Vec<Step>> {
        self.dialplan
            .iter()
            .find(|e| e.name == ext)
            .map(|e| e.steps.clone())
    }

    /// How long `path` plays; `None` for media that never ends on its own
    /// (`local_stream://`, a negative `silence_stream://`).
    pub fn media_duration(&self, path: &str) -> Option<Duration> {
        if path.starts_with("local_stream://") {
            return None;
        }
        if let Some(ms) = path.strip_prefix("silence_stream://") {
            let ms: i64 = ms.split(',').next().unwrap_or("0").parse().unwrap_or(0);
            return (ms >= 0).then(|| Duration::from_millis(ms as u64));
        }
        if let Some(tones) = path.strip_prefix("tone_stream://") {
            if tones.contains("loops=-1") {
                return None;
            }
            let ms: u64 = tones
                .split("%(")
                .skip(1)
                .filter_map(|seg| {
                    let mut n = seg
                        .split(',')
                        .map(|x| x.trim_end_matches(')').parse::<u64>().ok());
                    Some(n.next()??.saturating_add(n.next().flatten().unwrap_or(0)))
                })
                .sum();
            return Some(Duration::from_millis(ms));
        }
        if let Some(list) = path.strip_prefix("file_string://") {
            return list.split('!').map(|p| self.media_duration(p)).sum();
        }
        Some(
            self.media
                .iter()
                .find(|(p, _)| p == path)
                .map_or(self.default_media, |(_, d)| *d),
        )
    }
}

/// A running simulated switch. Dropping it leaves the task running until the runtime ends.
pub struct Switch {
    addr: SocketAddr,
    core: mpsc::UnboundedSender<CoreMsg>,
}

impl Switch {
    /// Bind (127.0.0.1:0 by default) and start serving.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        Self::start_with(config, Scenario::default()).await
    }

    pub async fn start_with(config: SimConfig, scenario: Scenario) -> Result<Self, SimError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = config.listener_queue.max(1);
        tokio::spawn(Core::new(config, scenario).run(rx));
        tokio::spawn(server::listen(listener, tx.clone(), queue));
        Ok(Self { addr, core: tx })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Manual clock: run everything due in the next `by` of simulated time.
    pub async fn advance(&self, by: Duration) -> Result<(), SimError> {
        self.ask(|tx| CoreMsg::Advance(by, tx)).await
    }

    /// What happened to every call so far.
    pub async fn records(&self) -> Result<Vec<CallRecord>, SimError> {
        self.ask(CoreMsg::Records).await
    }

    pub async fn channel_count(&self) -> Result<usize, SimError> {
        self.ask(CoreMsg::ChannelCount).await
    }

    /// How many events the switch has emitted so far (each one sequence number).
    pub async fn events_emitted(&self) -> Result<u64, SimError> {
        self.ask(CoreMsg::EventCount).await
    }

    /// How many listeners subscribed to CUSTOM `subclass` events (their filters aside):
    /// whether a daemon would hear one fired now.
    pub async fn listeners_for(&self, subclass: &str) -> Result<usize, SimError> {
        self.ask(|tx| CoreMsg::Listeners(subclass.to_owned(), tx))
            .await
    }

    /// Send the core a request and wait for its answer.
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> CoreMsg,
    ) -> Result<T, SimError> {
        let (tx, rx) = oneshot::channel();
        self.core.send(request(tx)).map_err(|_| SimError::Stopped)?;
        rx.await.map_err(|_| SimError::Stopped)
    }

    /// Cut every event-socket connection, as a network fault would, and refuse new ones
    /// for `length` of simulated time; calls go on meanwhile.
    pub async fn outage(&self, length: Duration) -> Result<(), SimError> {
        self.ask(|tx| CoreMsg::Outage(length, tx)).await
    }

    /// Make the switch slow, as a loaded FreeSWITCH is: for `length` of simulated time every
    /// `api` and `bgapi` is answered `delay` late (commands behind one on its connection
    /// wait too); events and calls go on meanwhile.
    pub async fn slow_api(&self, delay: Duration, length: Duration) -> Result<(), SimError> {
        self.ask(|tx| CoreMsg::SlowApi(delay, length, tx)).await
    }

    /// Script a caller; `caller.at` counts from now.
    pub fn add_caller(&self, caller: Caller) -> Result<(), SimError> {
        self.core
            .send(CoreMsg::AddCaller(Box::new(caller)))
            .map_err(|_| SimError::Stopped)
    }

    /// Script the party behind dial string `dial` (`user/1001`, `sofia/gateway/gw/+49…`).
    pub fn add_party(&self, dial: &str, party: Party) -> Result<(), SimError> {
        self.core
            .send(CoreMsg::AddParty(dial.to_owned(), party))
            .map_err(|_| SimError::Stopped)
    }
}
