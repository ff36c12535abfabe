//! A rig for end-to-end tests: the simulator, a private Redis, and daemons wired to both.
//!
//! Time runs `SCALE` times faster in the simulator and the daemons alike, so ring times and
//! waits measured in tens of seconds pass in a few.
//!
//! Nothing here depends on the machine's speed: scripted people press keys on hearing the
//! prompt they answer (`press_when`, see [`requesting`]), and tests wait for what they
//! assert ([`until`], [`Rig::wait_for`], [`Rig::heard`], [`Rig::hung_up`]) under one
//! generous deadline, [`PATIENCE`]. A fixed sleep is a stimulus (time that must pass for
//! a timer to fire) or grace for something that must not happen, never a guess at how
//! long the daemon takes.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use callbackd::config::Config;
use callbackd::engine::{Engine, EngineError, EngineHandle, EngineOptions};
use callbackd::esl::Client;
use callbackd::queue::{AgentId, AgentState, ScaledClock};
use callbackd::sim::{self, CallRecord, Caller, ClockMode, Party, SimConfig};
use callbackd::store::{EventKind, StateSource, Store, StoredEvent};
use callbackd::switch::FreeSwitch;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::common::RedisServer;

pub const SCALE: f64 = 5.0;

/// Simulated seconds as real time under [`SCALE`].
pub fn sim_secs(s: f64) -> Duration {
    Duration::from_secs_f64(s / SCALE)
}

pub struct Rig {
    pub redis: RedisServer,
    pub sim: sim::Switch,
    pub config: Arc<Config>,
    pub store: Store,
    clock: ScaledClock,
}

/// The config every test starts from: queue `support` fed by line `main` (what the
/// simulator's `cbq` extension tags), agents alice/bob/carol on user/1001..1003.
pub fn base_config(queue_extra: &str) -> String {
    config_with(queue_extra, "")
}

/// [`base_config`] with extra keys for the queue and for the line (`[lines.callback]`…).
pub fn config_with(queue_extra: &str, line_extra: &str) -> String {
    format!(
        r#"
[esl]
address = "ESL"
password = "ClueCon"
[esl.reconnect]
initial_delay_ms = 50
max_delay_secs = 1

[redis]
url = "REDIS"
key_prefix = "cbd"

[[queues]]
name = "support"
hold_music = "local_stream://moh"
ring_time_secs = 5
wrap_up_secs = 0
{queue_extra}

[[lines]]
name = "main"
did = "5000"
queue = "support"
language = "en"
outbound_caller_id = "+4930123456"
dial_template = "sofia/gateway/carrier/{{number}}"
{line_extra}

[[agents]]
id = "alice"
display_name = "Alice"
contact = "user/1001"
queues = [{{ queue = "support" }}]

[[agents]]
id = "bob"
display_name = "Bob"
contact = "user/1002"
queues = [{{ queue = "support" }}]

[[agents]]
id = "carol"
display_name = "Carol"
contact = "user/1003"
queues = [{{ queue = "support" }}]
"#
    )
}

impl Rig {
    pub async fn start(config_text: &str, parties: &[(&str, Party)]) -> Self {
        Self::start_with(config_text, parties, Vec::new()).await
    }

    /// Like [`Rig::start`], with more dialplan extensions in the simulator.
    pub async fn start_with(
        config_text: &str,
        parties: &[(&str, Party)],
        extensions: Vec<sim::Extension>,
    ) -> Self {
        Self::start_custom(config_text, parties, |sim| sim.dialplan.extend(extensions)).await
    }

    /// Like [`Rig::start`], with the simulator's config adjusted by `adjust`.
    pub async fn start_custom(
        config_text: &str,
        parties: &[(&str, Party)],
        adjust: impl FnOnce(&mut SimConfig),
    ) -> Self {
        // RUST_LOG=callbackd=debug shows what the daemons did when a test fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let redis = RedisServer::start();
        let mut sim_config = SimConfig {
            clock: ClockMode::Scaled(SCALE),
            heartbeat: None,
            ..SimConfig::default()
        };
        adjust(&mut sim_config);
        let sim = sim::Switch::start(sim_config).await.unwrap();
        for (dial, party) in parties {
            sim.add_party(dial, party.clone()).unwrap();
        }
        let text = config_text
            .replace("ESL", &sim.addr().to_string())
            .replace("REDIS", &redis.url());
        let config = Arc::new(Config::parse(Path::new("test.toml"), &text).unwrap());
        let store = Store::connect(&config.redis).await.unwrap();
        let clock = ScaledClock::new(SCALE);
        store
            .register_agents(&config.agents, callbackd::queue::Clock::now(&clock))
            .await
            .unwrap();
        Self {
            redis,
            sim,
            config,
            store,
            clock,
        }
    }

    /// Serve the HTTP API of the config's `[http]` for `handle` on a loopback port, with
    /// webhook figures from `webhooks`: its base URL, and the sender that stops it.
    pub async fn serve_api(
        &self,
        handle: EngineHandle,
        webhooks: Arc<callbackd::webhooks::WebhookStats>,
    ) -> (String, watch::Sender<bool>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        assert!(self.config.http.is_some(), "the rig's config has [http]");
        let state = callbackd::api::ApiState::new(
            handle,
            self.store.clone(),
            Arc::new(self.clock.clone()),
            webhooks,
        );
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(callbackd::api::serve(listener, state, stopped));
        (base, stop)
    }

    /// Now on the clock the daemons and the simulator share.
    pub fn now(&self) -> callbackd::queue::Timestamp {
        callbackd::queue::Clock::now(&self.clock)
    }

    pub async fn set_agent(&self, agent: &str, state: AgentState) {
        self.store
            .set_agent_state(
                &AgentId::new(agent).unwrap(),
                state,
                self.now(),
                StateSource::Cli,
            )
            .await
            .unwrap();
    }

    pub async fn agent_state(&self, agent: &str) -> AgentState {
        self.store
            .agent(&AgentId::new(agent).unwrap(), self.now())
            .await
            .unwrap()
            .unwrap()
            .state
    }

    pub fn daemon(&self, id: &str) -> Daemon {
        Daemon::start(self.config.clone(), self.clock.clone(), id)
    }

    pub fn call(&self, caller: Caller) {
        self.sim.add_caller(caller).unwrap();
    }

    /// Give queue `support` a pace: `count` past connections `gap_secs` apart, from
    /// `start_secs` (simulated clock), as if agents had answered callers then.
    pub async fn paced(&self, gap_secs: u64, count: u64, start_secs: u64) {
        let mut conn = redis::Client::open(self.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        for i in 0..count {
            let at = (start_secs + i * gap_secs) * 1000;
            let _: String = redis::cmd("XADD")
                .arg("cbd:{support}:events")
                .arg("*")
                .arg(&[
                    ("event", "connected"),
                    ("entry", &format!("history-{at}")),
                    ("queue", "support"),
                    ("line", "main"),
                    ("agent", "alice"),
                    ("at", &at.to_string()),
                ])
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }

    /// Every queue's event stream so far, merged in the order Redis stamped them.
    pub async fn events(&self) -> Vec<StoredEvent> {
        let mut all = Vec::new();
        for queue in &self.config.queues {
            all.extend(
                self.store
                    .events(Some(&queue.name), None, 100_000)
                    .await
                    .unwrap(),
            );
        }
        let stamp = |e: &StoredEvent| {
            let (ms, seq) = e.id.split_once('-').unwrap_or((&e.id, "0"));
            (
                ms.parse::<u64>().unwrap_or(0),
                seq.parse::<u64>().unwrap_or(0),
            )
        };
        all.sort_by_key(stamp);
        all
    }

    pub async fn events_of(&self, kind: EventKind) -> Vec<StoredEvent> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect()
    }

    /// Wait (up to [`PATIENCE`]) until `count` events of `kind` were recorded.
    pub async fn wait_for(&self, kind: EventKind, count: usize) -> Vec<StoredEvent> {
        self.wait_for_within(kind, count, PATIENCE).await
    }

    /// [`Rig::wait_for`] with a deadline of its own.
    pub async fn wait_for_within(
        &self,
        kind: EventKind,
        count: usize,
        limit: Duration,
    ) -> Vec<StoredEvent> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            let found = self.events_of(kind).await;
            if found.len() >= count {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {count} {kind:?} events, have {:#?}",
            self.events().await
        );
    }

    /// Wait (up to [`PATIENCE`]) until the caller with `number` has heard a playback
    /// whose path contains `media`; everything they heard so far.
    pub async fn heard(&self, number: &str, media: &str) -> Vec<String> {
        let what = format!("{number} heard {media}");
        until_some(&what, || async {
            let caller = self.callers().await.remove(number)?;
            caller
                .media
                .iter()
                .any(|m| m.contains(media))
                .then_some(caller.media)
        })
        .await
    }

    /// Wait (up to [`PATIENCE`]) until the caller with `number` has been hung up on;
    /// their record then.
    pub async fn hung_up(&self, number: &str) -> CallRecord {
        until_some(&format!("{number} hung up"), || async {
            self.callers()
                .await
                .remove(number)
                .filter(|r| r.hangup_cause.is_some())
        })
        .await
    }

    /// The simulator's record of each caller, by caller-ID number. A caller's channel is
    /// named after their own number; agent legs show the caller's number but are named
    /// after the agent, so they are left out.
    pub async fn callers(&self) -> HashMap<String, CallRecord> {
        self.sim
            .records()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| {
                r.channel_name
                    .strip_prefix("sofia/internal/")
                    .is_some_and(|rest| rest.starts_with(&format!("{}@", r.caller_number)))
            })
            .map(|r| (r.caller_number.clone(), r))
            .collect()
    }

    /// The entry id (= channel uuid) of the caller with this number.
    pub async fn entry_of(&self, number: &str) -> String {
        until_some(&format!("caller {number} is on the switch"), || async {
            self.callers().await.remove(number).map(|r| r.uuid)
        })
        .await
    }
}

/// How long [`until`] waits: long enough for a loaded 2-core machine, where a
/// test that waits this long has failed.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// Wait until `check` holds, polling; panics with `what` after [`PATIENCE`].
pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until_some(what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// Wait until `check` gives a value, polling; panics with `what` after [`PATIENCE`].
pub async fn until_some<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if std::time::Instant::now() >= deadline {
            panic!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One daemon: an engine with its own event-socket connection.
pub struct Daemon {
    shutdown: watch::Sender<bool>,
    /// Its engine's handle, sent once the engine is built (after Redis answered).
    handle: Option<oneshot::Receiver<EngineHandle>>,
    task: JoinHandle<Result<(), EngineError>>,
    client: Client,
}

impl Daemon {
    fn start(config: Arc<Config>, clock: ScaledClock, id: &str) -> Self {
        let (client, deliveries) = Client::start(FreeSwitch::client_config(&config));
        let options = EngineOptions {
            daemon_id: callbackd::values::DaemonId::new(id).unwrap(),
            sounds: callbackd::switch::MediaDir::new(std::path::Path::new("/sounds")).unwrap(),
            languages: vec!["en".into()],
            default_language: "en".into(),
            recordings: callbackd::switch::MediaDir::new(&std::env::temp_dir()).unwrap(),
            time_scale: SCALE,
        };
        let switch = FreeSwitch::new(client.clone());
        let (shutdown, rx) = watch::channel(false);
        let (handle_tx, handle) = oneshot::channel();
        let task = tokio::spawn(async move {
            let store = Store::connect(&config.redis).await?;
            let engine = Engine::new(config, options, store, switch, Arc::new(clock));
            let _ = handle_tx.send(engine.handle());
            engine.run(deliveries, rx).await
        });
        Self {
            shutdown,
            handle: Some(handle),
            task,
            client,
        }
    }

    /// The engine's handle, as an operator's tools get it.
    pub async fn handle(&mut self) -> EngineHandle {
        let handle = self.handle.take().expect("handle asked for once");
        handle.await.expect("the engine was built")
    }

    /// Stop as a killed daemon would: no goodbye to anyone.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
        self.client.shutdown().await;
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.client.shutdown().await;
    }
}

/// `caller` presses 2 a second into the offer greeting `offer`, then as
/// [`own_number_confirmed`]: a callback request at their own number, each key in answer to
/// its prompt however slow the daemon is to ask.
pub fn requesting(caller: Caller, offer: &str) -> Caller {
    own_number_confirmed(caller.press_when(offer, Duration::from_secs(1), "2"))
}

/// `caller` presses 1 in the callback menu for their own number, and 1 to confirm the
/// read-back.
pub fn own_number_confirmed(caller: Caller) -> Caller {
    caller
        .press_when("menu-own-number", Duration::from_millis(500), "1")
        .press_when("confirm-options", Duration::from_secs(1), "1")
}

/// An agent who answers after 1 s and presses `key` during the whisper (which names the
/// options first thing, in one playback).
pub fn agent_pressing(key: &str) -> Party {
    Party::answers_after(Duration::from_secs(1))
        .press_when("agent-options", Duration::from_millis(500), key)
        .hang_up_after(Duration::from_secs(60))
}

/// A customer who answers the callback after 1 s and talks for 20.
pub fn customer_answers() -> Party {
    Party::answers_after(Duration::from_secs(1)).hang_up_after(Duration::from_secs(20))
}

/// The offer greeting the callback tests' lines play.
pub const OFFER_GREETING: &str = "/sounds/offer.wav";

/// The simulator's timing for callback tests: prompts of 0.2 s (it cannot measure files),
/// the offer greeting [`OFFER_GREETING`] 10 s, so a key pressed during it truly is.
pub fn short_prompts(sim: &mut SimConfig) {
    sim.default_media = Duration::from_millis(200);
    sim.media
        .push((OFFER_GREETING.to_owned(), Duration::from_secs(10)));
}

pub fn field<'a>(e: &'a StoredEvent, name: &str) -> &'a str {
    e.field(name).unwrap_or_default()
}
