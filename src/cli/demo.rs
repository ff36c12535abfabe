//! `callbackd demo`: the whole product on one machine, no FreeSWITCH needed.
//!
//! It starts the simulator with a built-in scenario, a private redis-server (unless one is
//! given), runs the real daemon against both and narrates each call from the store's records.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;

use crate::config::Config;
use crate::engine::EngineOptions;
use crate::queue::{AgentId, AgentState, Clock, EntryId, QueueName, ScaledClock};
use crate::sim::{self, Caller, ClockMode, Outcome, Party, Scenario, SimConfig};
use crate::store::local::LocalRedis;
use crate::store::{EventKind, StateSource, Store, StoredEvent};
use crate::switch::MediaDir;
use crate::values::DaemonId;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this Redis instead of starting a private redis-server.
    #[arg(long)]
    pub redis: Option<String>,
    /// Stay up after the scenario (until Ctrl-C): connect `callbackd probe` to the
    /// simulator's address to watch, or place more calls.
    #[arg(long)]
    pub keep: bool,
    /// Run the scenario this many times faster than real time.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(k) if (0.1..=100.0).contains(&k) => Ok(k),
        _ => Err("a factor from 0.1 to 100".into()),
    }
}

/// The daemon's configuration for the demo; the addresses are filled in at start.
const DEMO_CONFIG: &str = r#"
[esl]
address = "ESL_ADDRESS"
password = "ClueCon"

[redis]
url = "REDIS_URL"
key_prefix = "KEY_PREFIX"

[[queues]]
name = "support"
greetings = ["ivr/ivr-welcome.wav"]
hold_music = "local_stream://moh"
ring_time_secs = 6
wrap_up_secs = 2

[[lines]]
name = "main"
did = "5000"
queue = "support"
language = "en"
outbound_caller_id = "+4930123456"
dial_template = "sofia/gateway/carrier/{number}"

[lines.callback]
enabled = true
expiry_secs = 3600
country = "DE"

[[agents]]
id = "alice"
display_name = "Alice"
contact = "user/1001"
queues = [{ queue = "support" }]

[[agents]]
id = "bob"
display_name = "Bob"
contact = "user/1002"
queues = [{ queue = "support" }]

[[agents]]
id = "carol"
display_name = "Carol"
contact = "user/1003"
queues = [{ queue = "support" }]

[http]
listen = "HTTP_LISTEN"
[[http.tokens]]
token = "DEMO_TOKEN"
role = "admin"
"#;

/// The demo's API token (its API listens on loopback only, for the README's examples).
pub const DEMO_TOKEN: &str = "demo-admin-token-0123456789abcdef";
/// Where the demo's API listens when the port is free (else on any free port).
const DEMO_HTTP_PORT: u16 = 8089;

/// Six callers, who press keys as they hear the prompts that ask for them. alice and bob take the first two; while both are on those calls (the
/// moment callbacks exist for) two more ask to be called back, one at their own number,
/// one at another keyed in national format; one gives up. bob declines callbacks, carol
/// logs in later and never answers, and one customer does not pick up when called back.
fn scenario() -> Scenario {
    let secs = Duration::from_secs_f64;
    Scenario::default()
        .caller(Caller::number("+4930555001").at(secs(0.5)))
        .caller(Caller::number("+4930555002").at(secs(1.0)))
        .caller(
            Caller::number("+4930555003")
                .at(secs(2.0))
                .press_when("callback-offer", secs(0.5), "2")
                .press_when("menu-own-number", secs(0.5), "1")
                .press_when("confirm-options", secs(1.0), "1"),
        )
        .caller(
            Caller::number("+4930555004")
                .at(secs(3.0))
                .hang_up_after(secs(8.0)),
        )
        .caller(
            Caller::number("+4930555005")
                .at(secs(3.5))
                .press_when("callback-offer", secs(0.5), "2")
                .press_when("menu-other-number", secs(0.5), "2")
                .press_when("enter-number", secs(0.5), "0301234567#")
                .press_when("confirm-options", secs(1.0), "1"),
        )
        .caller(Caller::number("+4930555006").at(secs(5.0)))
        .party(
            "user/1001",
            Party::answers_after(secs(2.0))
                .press_when("agent-options", secs(0.5), "1")
                .hang_up_after(secs(7.0)),
        )
        .party(
            "user/1002",
            Party::answers_after(secs(2.0))
                .press_when("agent-options", secs(0.5), "2")
                .hang_up_after(secs(7.0)),
        )
        .party("user/1003", Party::fails(Outcome::NoAnswer))
        .party(
            "sofia/gateway/carrier/+4930555003",
            Party::answers_after(secs(3.0)).hang_up_after(secs(6.0)),
        )
        .party(
            "sofia/gateway/carrier/+49301234567",
            Party::fails(Outcome::NoAnswer),
        )
}

const CALLERS: usize = 6;
/// The scenario is over well before this; a stuck demo still ends.
const TIME_LIMIT: Duration = Duration::from_secs(90);

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let local;
    let redis_url = match &args.redis {
        Some(url) => url.clone(),
        None => {
            local = LocalRedis::start().context("starting a private redis-server")?;
            local.url()
        }
    };
    let switch = sim::Switch::start_with(
        SimConfig {
            clock: ClockMode::Scaled(args.speed),
            // Prompts a little shorter than real ones keep the demo brisk.
            default_media: Duration::from_millis(300),
            ..SimConfig::default()
        },
        scenario(),
    )
    .await
    .context("starting the simulator")?;
    // A prefix of its own, so a shared Redis given with --redis keeps its other data.
    let prefix = format!("cbd-demo-{}", std::process::id());
    let http_port = std::net::TcpListener::bind(("127.0.0.1", DEMO_HTTP_PORT))
        .map(drop)
        .map_or_else(|_| crate::store::local::free_port(), |()| DEMO_HTTP_PORT);
    let http = format!("127.0.0.1:{http_port}");
    let text = DEMO_CONFIG
        .replace("HTTP_LISTEN", &http)
        .replace("DEMO_TOKEN", DEMO_TOKEN)
        .replace("ESL_ADDRESS", &switch.addr().to_string())
        .replace("REDIS_URL", &redis_url)
        .replace("KEY_PREFIX", &prefix);
    let config = Arc::new(Config::parse(Path::new("<built-in demo>"), &text)?);
    let store = Store::connect(&config.redis).await?;
    let clock = ScaledClock::new(args.speed);
    store.register_agents(&config.agents, clock.now()).await?;

    println!(
        "callbackd demo: a simulated FreeSWITCH on {}",
        switch.addr()
    );
    println!(
        "  Redis {}, keys under {prefix}:",
        config.redis.redacted_url()
    );
    println!("  API on http://{http} (Authorization: Bearer {DEMO_TOKEN})");
    println!("  dashboard: http://{http}/ui/#token={DEMO_TOKEN}");
    println!("  queue `support`: 6 callers; alice and bob are on calls when two callers press 2");
    println!("  to be called back. bob declines callbacks, carol (from 12 s) never answers.\n");
    // alice and bob start the shift; carol logs in a little later.
    let speed = args.speed;
    let (login_store, login_clock) = (store.clone(), clock.clone());
    let login = move |agent: &'static str, state: AgentState, after: f64| {
        let store = login_store.clone();
        let clock = login_clock.clone();
        async move {
            tokio::time::sleep(Duration::from_secs_f64(after / speed)).await;
            let id = AgentId::new(agent).expect("demo agent id");
            store
                .set_agent_state(&id, state, clock.now(), StateSource::Cli)
                .await
        }
    };
    login("alice", AgentState::Available, 0.0).await?;
    login("bob", AgentState::Available, 0.0).await?;
    let later = tokio::spawn(login("carol", AgentState::Available, 12.0));
    let (stop, stopped) = watch::channel(false);
    let options = EngineOptions {
        daemon_id: DaemonId::new("demo")?,
        sounds: MediaDir::new(Path::new("/usr/share/freeswitch/sounds"))?,
        languages: vec!["en".into()],
        default_language: "en".into(),
        recordings: MediaDir::new(&std::env::temp_dir()).context("the temporary directory")?,
        time_scale: args.speed,
    };
    let daemon = tokio::spawn(super::run::serve(
        config.clone(),
        options,
        Arc::new(clock.clone()),
        stopped,
        None,
    ));

    let mut narrator = Narrator::new(store.clone(), config.queues[0].name.clone());
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        narrator.tell(started.elapsed().mul_f64(args.speed)).await?;
        let done = narrator.finished() >= CALLERS && switch.channel_count().await? == 0;
        let over_time = started.elapsed().as_secs_f64() * args.speed > TIME_LIMIT.as_secs_f64();
        if (done && !args.keep) || over_time || daemon.is_finished() {
            break;
        }
        if args.keep && done && narrator.announce_keep() {
            println!(
                "\n  scenario over; still up (Ctrl-C to stop), simulator on {}",
                switch.addr()
            );
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tokio::time::sleep(Duration::from_secs(3600 * 24)) => break,
            }
        }
    }
    let _ = stop.send(true);
    let _ = daemon.await;
    later.abort();
    narrator.summary();
    println!();
    super::stats::print(&store, &config).await
}

/// Turns the store's event streams into one line per happening.
struct Narrator {
    store: Store,
    queue: QueueName,
    queue_seen: Option<String>,
    agents_seen: Option<String>,
    numbers: HashMap<String, String>,
    /// Each caller's latest outcome by entry, in the order callers first settled.
    outcomes: Vec<(String, String, String)>,
    keep_announced: bool,
}

impl Narrator {
    fn new(store: Store, queue: QueueName) -> Self {
        Self {
            store,
            queue,
            queue_seen: None,
            agents_seen: None,
            numbers: HashMap::new(),
            outcomes: Vec::new(),
            keep_announced: false,
        }
    }

    fn finished(&self) -> usize {
        self.outcomes.len()
    }

    /// Record where a caller ended up; a later outcome (called back) replaces an earlier one.
    fn settle(&mut self, e: &StoredEvent, who: String, outcome: String) {
        let entry = e.field("entry").unwrap_or_default().to_owned();
        match self.outcomes.iter_mut().find(|(id, _, _)| *id == entry) {
            Some(slot) => slot.2 = outcome,
            None => self.outcomes.push((entry, who, outcome)),
        }
    }

    fn announce_keep(&mut self) -> bool {
        !std::mem::replace(&mut self.keep_announced, true)
    }

    async fn tell(&mut self, at: Duration) -> anyhow::Result<()> {
        let queue_events = self
            .store
            .events(Some(&self.queue), self.queue_seen.as_deref(), 1000)
            .await?;
        if let Some(last) = queue_events.last() {
            self.queue_seen = Some(last.id.clone());
        }
        let agent_events = self
            .store
            .events(None, self.agents_seen.as_deref(), 1000)
            .await?;
        if let Some(last) = agent_events.last() {
            self.agents_seen = Some(last.id.clone());
        }
        for event in queue_events.iter().chain(&agent_events) {
            if let Some(line) = self.line_for(event).await? {
                println!("{:>6.1}s  {line}", at.as_secs_f64());
            }
        }
        Ok(())
    }

    /// The caller's number for an entry (looked up once, then remembered).
    async fn caller(&mut self, event: &StoredEvent) -> anyhow::Result<String> {
        let entry = event.field("entry").unwrap_or_default().to_owned();
        if let Some(n) = self.numbers.get(&entry) {
            return Ok(n.clone());
        }
        let number = match EntryId::new(&entry) {
            Ok(id) => self
                .store
                .entry(&self.queue, &id)
                .await?
                .and_then(|e| e.caller_id)
                .map(|c| c.to_string())
                .unwrap_or_else(|| "anonymous".into()),
            Err(_) => "?".into(),
        };
        self.numbers.insert(entry, number.clone());
        Ok(number)
    }

    async fn line_for(&mut self, e: &StoredEvent) -> anyhow::Result<Option<String>> {
        let secs = |field: &str| {
            e.field(field)
                .and_then(|ms| ms.parse::<f64>().ok())
                .map_or(String::new(), |ms| format!("{:.1} s", ms / 1000.0))
        };
        let field = |name: &str| e.field(name).unwrap_or_default().to_owned();
        Ok(Some(match e.kind {
            EventKind::Entered => {
                let who = self.caller(e).await?;
                format!("{who} calls and waits in the queue")
            }
            EventKind::Offered => {
                let who = self.caller(e).await?;
                format!("ringing {} for {who}", field("agents").replace(',', ", "))
            }
            EventKind::OfferWithdrawn => {
                let who = self.caller(e).await?;
                format!(
                    "{} became busy before ringing for {who}; the caller keeps their place",
                    field("agents").replace(',', ", ")
                )
            }
            EventKind::AgentNoAnswer => {
                let who = self.caller(e).await?;
                format!(
                    "{} did not take {who} ({}); the caller keeps their place",
                    field("agent"),
                    field("cause").replace('_', " ")
                )
            }
            // A callback's connection was already told as the customer answering.
            EventKind::Connected if e.field("number").is_some() => return Ok(None),
            EventKind::Connected => {
                let who = self.caller(e).await?;
                self.settle(e, who.clone(), format!("talked to {}", field("agent")));
                format!(
                    "{} answered: {who} connected after waiting {}",
                    field("agent"),
                    secs("waited_ms")
                )
            }
            EventKind::Abandoned => {
                let who = self.caller(e).await?;
                self.settle(e, who.clone(), "hung up while waiting".into());
                format!(
                    "{who} hung up after waiting {} (abandoned)",
                    secs("waited_ms")
                )
            }
            EventKind::MaxWaitExit => {
                let who = self.caller(e).await?;
                self.settle(e, who.clone(), "sent to the max-wait exit".into());
                format!("{who} waited too long and was sent on")
            }
            EventKind::Requested => {
                let who = self.caller(e).await?;
                format!(
                    "{who} asks to be called back at {} and keeps their place",
                    field("number")
                )
            }
            EventKind::DuplicateIgnored => {
                let who = self.caller(e).await?;
                self.settle(e, who.clone(), "already had a callback pending".into());
                format!(
                    "{who} already has a callback pending for {}",
                    field("number")
                )
            }
            EventKind::CallbackKept => {
                let who = self.caller(e).await?;
                self.settle(e, who.clone(), "kept the callback pending".into());
                format!(
                    "{who} calls again and keeps the callback pending for {}",
                    field("number")
                )
            }
            EventKind::CallbackCanceledByCaller => {
                let who = self.caller(e).await?;
                self.settle(
                    e,
                    who,
                    "canceled by the caller, who waits on the line".into(),
                );
                format!(
                    "the callback to {} is canceled by its caller, who waits on the line in its place",
                    field("number")
                )
            }
            EventKind::Declined => format!(
                "{} declined the callback to {}",
                field("agent"),
                field("number")
            ),
            EventKind::Accepted => format!(
                "{} accepts the callback to {}",
                field("agent"),
                field("number")
            ),
            EventKind::DialingCustomer => {
                format!("dialing {} for {}", field("number"), field("agent"))
            }
            EventKind::CustomerAnswered => {
                let who = self.caller(e).await?;
                self.settle(
                    e,
                    who,
                    format!("called back at {} by {}", field("number"), field("agent")),
                );
                format!(
                    "{} answered {} after {} since the request",
                    field("number"),
                    field("agent"),
                    secs("callback_wait_ms")
                )
            }
            EventKind::AttemptFailed => {
                let who = self.caller(e).await?;
                self.settle(
                    e,
                    who,
                    format!("callback to {} attempted, not answered", field("number")),
                );
                format!(
                    "calling {} back failed ({})",
                    field("number"),
                    field("cause").replace('_', " ")
                )
            }
            EventKind::Completed => format!(
                "{} finished the call with {}",
                field("agent"),
                field("number")
            ),
            EventKind::Expired | EventKind::DeclinedByAll | EventKind::Canceled => {
                let who = self.caller(e).await?;
                self.settle(
                    e,
                    who,
                    format!("callback {}", e.kind.as_str().replace('_', " ")),
                );
                format!(
                    "the callback to {} is closed: {}",
                    field("number"),
                    e.kind.as_str().replace('_', " ")
                )
            }
            EventKind::AgentState => format!(
                "agent {} is now {} (was {}, by {})",
                field("agent"),
                field("to").replace('_', " "),
                field("from").replace('_', " "),
                field("source")
            ),
        }))
    }

    fn summary(&self) {
        println!("\nsummary:");
        for (_, who, outcome) in &self.outcomes {
            println!("  {who:<14} {outcome}");
        }
    }
}
