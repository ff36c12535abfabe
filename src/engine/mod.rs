//! The engine: turns switch signals and due timers into queue transitions, writes each one
//! to Redis, then commands FreeSWITCH.
//!
//! One loop owns the decisions; anything slow on the switch (originates, playbacks) runs in
//! tasks that report back through a channel, so the loop always keeps the socket drained.
//! So does the round trip that books freed agents for the callers next in line: the next
//! hangups of a burst do not wait behind it.

mod booking;
mod callback;
mod caller;
mod recovery;
pub mod signal;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::callback::{MenuSettings, NumberRules};
use crate::config::{Config, ExitAction, LineConfig, NoAgentPolicy, QueueConfig};
use crate::esl::{self, Delivery};
use crate::prompts::PromptSet;
use crate::queue::{
    Agent, AgentId, AgentState, Clock, CloseReason, Entry, EntryId, EntryKind, EntryStatus, Offer,
    QueueError, QueueName, Router, Timestamp,
};
use crate::store::{
    MissRules, NoAnswerCause, OfferOutcome, StateSource, Store, StoreError, Timer, TimerScope,
};
use crate::switch::{
    ChannelId, FreeSwitch, HangupCause, MediaSource, Originate, PendingCall, SwitchError, VarName,
    VarValue,
};
use booking::Booked;
use callback::AgentCallback;
use caller::{CallbackPlan, CallerMedia, CallerTask, MediaPlan};
use recovery::Dialed;
use signal::{ParkedCaller, Signal};

/// At most this many waiting entries per queue routing looks at: the oldest are always
/// among them.
const ROUTING_WINDOW: usize = 64;
/// Routing first reads this many entries per queue beyond one per free agent (room for
/// entries a free agent already missed); only when that leaves a free agent without an
/// offer does it read the whole window. Reading 64 entries per pass was most of its cost.
const ROUTING_SLACK: usize = 4;
/// Below this many callers known to be next in line, a routing pass reads the queues'
/// heads again (off the path of a freed agent, who is offered one of those known).
const NEXT_IN_LINE_MIN: usize = 16;
/// A full routing pass waits while signals are queued (they may free agents, whose offers
/// come first), but only this many times in a row.
const MAX_DEFERRED_PASSES: usize = 8;
/// How long a key pressed on an unknown channel waits for that channel to become a caller.
const EARLY_KEYS: Duration = Duration::from_secs(5);
/// How often due timers are claimed.
const TIMER_TICK: Duration = Duration::from_millis(200);
/// How often the event streams are trimmed to the configured length.
const TRIM_EVERY: Duration = Duration::from_secs(60);
/// A claimed timer not completed within this time comes due again for any daemon.
const TIMER_LEASE: Duration = Duration::from_secs(30);
/// At most this many queued signals are handled between two routing passes, so a flood
/// cannot hold back offers for long.
const BATCH: usize = 64;
/// How long a call ended by its agent leg's hangup is remembered, so that its caller's
/// hangup (which follows) costs nothing.
const CALLER_HANGUP_WAIT: Duration = Duration::from_secs(60);

/// Why the engine stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the event socket client stopped")]
    ClientGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a task reports back to the engine loop.
#[derive(Debug)]
enum Report {
    /// An agent leg's originate finished: answered (`Ok`) or failed with a cause.
    AgentLeg {
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        leg: ChannelId,
        result: Result<ChannelId, SwitchError>,
    },
    /// A caller could not be bridged to the agent who answered for them.
    BridgeFailed {
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        leg: ChannelId,
        error: SwitchError,
    },
    /// A task changed the store (a callback declined, failed, connected): look for offers.
    StoreChanged,
    /// A caller's task took an entry out of the queue (a repeat caller kept or canceled
    /// their pending callback): stop the agents still ringing for it, and look for offers
    /// afresh, since the caller's own entry may have moved ahead.
    EntryLeft {
        entry: EntryId,
        ringing: Vec<AgentId>,
    },
    /// A routing round trip that ran off the loop is done: track the legs it placed, and
    /// look again for the offers it could not make.
    Booked(Booked),
}

/// An agent leg placed by this daemon, by its channel id.
#[derive(Debug, Clone)]
struct AgentLeg {
    queue: QueueName,
    entry: EntryId,
    agent: AgentId,
    /// The waiting caller's channel; `None` for a callback, whose customer is dialed later.
    caller: Option<ChannelId>,
    answered: bool,
}

/// Settings that are not in the config file: who this daemon is and where prompts live.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Unique per daemon sharing a Redis: owns timer leases and callers' media.
    pub daemon_id: String,
    /// The sounds directory as FreeSWITCH sees it.
    pub sounds: PathBuf,
    /// Languages with prompts under `sounds`.
    pub languages: Vec<String>,
    /// The language for lines whose own has no prompts (before the English fallback).
    pub default_language: String,
    /// Where callers' name recordings go, as FreeSWITCH sees it.
    pub recordings: PathBuf,
    /// How many times faster than real time the clock runs (1 in production; tests pair
    /// a [`crate::queue::ScaledClock`] with the simulator's scaled clock).
    pub time_scale: f64,
}

/// The daemon's brain. Build it with [`Engine::new`] and drive it with [`Engine::run`].
pub struct Engine {
    config: Arc<Config>,
    options: EngineOptions,
    store: Store,
    switch: FreeSwitch,
    clock: Arc<dyn Clock>,
    router: Router,
    /// The agents of the config: the only ones this daemon can ring, so the only ones it reads.
    agent_ids: Vec<AgentId>,
    /// Callers whose media this daemon runs.
    callers: HashMap<ChannelId, CallerMedia>,
    legs: HashMap<ChannelId, AgentLeg>,
    /// Keys pressed on channels not (yet) known as callers, with when: a caller's keys
    /// pressed before their CHANNEL_PARK was handled. Kept for [`EARLY_KEYS`].
    early_keys: Vec<(ChannelId, char, std::time::Instant)>,
    /// Customer legs found ringing after a restart, whose callback task is gone: the
    /// engine bridges them to their agent when they answer.
    orphaned_customers: HashMap<ChannelId, Dialed>,
    plans: HashMap<QueueName, Arc<MediaPlan>>,
    /// Per queue that offers callbacks, whether an agent serving it takes queue calls (see
    /// [`AgentState::takes_queue_calls`]): its callers are offered callbacks only then.
    /// Callers' media tasks watch it, so an agent logging in reaches callers already waiting.
    callbacks_open: HashMap<QueueName, watch::Sender<bool>>,
    reports_tx: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
    /// Every task the engine starts (media, originates, callbacks): they end with it, as
    /// they would if the process died, and never act on a switch after their engine.
    tasks: JoinSet<()>,
    /// Something changed that may make an offer possible.
    dirty: bool,
    /// Agents this daemon made available since the last routing pass: that pass reads
    /// the entries for them at once, without first asking Redis whether anyone is free.
    agents_freed: usize,
    /// The last routing pass left free agents without an offer (or none ran yet): only
    /// then can a new caller be offered at once, so only then does an arrival route.
    idle_agents_seen: bool,
    /// Calls that ended since the last routing pass, by queue and agent: their agents are
    /// freed together before it.
    calls_ended: Vec<(QueueName, AgentId)>,
    /// The waiting entries the last routing pass read and did not offer, oldest first per
    /// queue: the callers next in line. An agent freed by the end of a call is offered one
    /// of them in the very round trip that frees them. `None` once an entry may have gone
    /// back ahead of them; a claim checks the order anyway (see [`Offer::ahead`]).
    next_in_line: Option<Vec<Entry>>,
    /// Full routing passes put off in a row while signals were queued.
    passes_deferred: usize,
    /// Entries being claimed by routing round trips under way, with their queue: no other
    /// plan takes them, and claims behind them count them as known.
    claiming: HashMap<EntryId, QueueName>,
    /// Routing round trips under way off the loop. The full pass waits for them: what it
    /// reads could be a step behind what they write.
    routes_under_way: usize,
    /// Callers whose call this daemon saw end on the agent's side, with when: their own
    /// hangup follows and has nothing left to do. Kept for [`CALLER_HANGUP_WAIT`].
    callers_whose_call_ended: HashMap<ChannelId, std::time::Instant>,
    /// The id of the newest agent event seen: state changes made elsewhere (the CLI,
    /// another daemon) reach this daemon through the agents' stream.
    agent_events_seen: Option<String>,
    /// When the event streams were last trimmed.
    trimmed: std::time::Instant,
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        options: EngineOptions,
        store: Store,
        switch: FreeSwitch,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let plans = config
            .queues
            .iter()
            .map(|q| (q.name.clone(), Arc::new(media_plan(&config, &options, q))))
            .collect();
        // Only queues fed by a line that offers callbacks have callers who care.
        let callbacks_open = config
            .lines
            .iter()
            .filter(|l| l.offers_callbacks())
            .map(|l| (l.queue.clone(), watch::Sender::new(false)))
            .collect();
        Self {
            callbacks_open,
            router: config.router(),
            agent_ids: config.agents.iter().map(|a| a.id.clone()).collect(),
            config,
            options,
            store,
            switch,
            clock,
            callers: HashMap::new(),
            legs: HashMap::new(),
            orphaned_customers: HashMap::new(),
            early_keys: Vec::new(),
            plans,
            reports_tx,
            reports,
            tasks: JoinSet::new(),
            dirty: true,
            agents_freed: 0,
            idle_agents_seen: true,
            callers_whose_call_ended: HashMap::new(),
            calls_ended: Vec::new(),
            next_in_line: None,
            passes_deferred: 0,
            claiming: HashMap::new(),
            routes_under_way: 0,
            agent_events_seen: None,
            trimmed: std::time::Instant::now(),
        }
    }

    /// The event-socket subscription and filters this engine needs.
    pub fn client_config(config: &Config) -> esl::ClientConfig {
        let mut client = config.esl.client_config();
        let (custom, events): (Vec<String>, Vec<String>) = signal::subscription()
            .into_iter()
            .partition(|e| e.contains("::"));
        client.events = events;
        client.custom_subclasses = custom;
        client.filters = signal::filters(config);
        client
    }

    /// Run until `shutdown` turns true or the client stops.
    pub async fn run(
        mut self,
        mut deliveries: mpsc::Receiver<Delivery>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        self.store
            .register_agents(&self.config.agents, self.clock.now())
            .await?;
        let mut tick = tokio::time::interval(TIMER_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                d = deliveries.recv() => match d {
                    Some(d) => self.on_delivery(d).await,
                    None => return Err(EngineError::ClientGone),
                },
                Some(report) = self.reports.recv() => self.on_report(report).await,
                _ = tick.tick() => self.on_tick().await,
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        return Ok(());
                    }
                }
            }
            // Under load, signals come in bursts (an agent's and a caller's hangup arrive
            // together; calls that started together end together): take what is already
            // queued, then route once for every agent freed meanwhile, rather than once per
            // signal, which would keep the last agent of a burst waiting on all the others.
            for _ in 0..BATCH {
                if let Ok(d) = deliveries.try_recv() {
                    self.on_delivery(d).await;
                } else if let Ok(report) = self.reports.try_recv() {
                    self.on_report(report).await;
                } else {
                    break;
                }
            }
            if !self.calls_ended.is_empty() {
                if let Err(e) = self.route_freed_agents().await {
                    tracing::warn!(error = %e, "routing freed agents failed; retrying");
                    self.dirty = true;
                }
            }
            if self.routes_under_way > 0 {
                continue;
            }
            // Signals that came in meanwhile may free agents: they go first.
            if self.dirty && !deliveries.is_empty() && self.passes_deferred < MAX_DEFERRED_PASSES {
                self.passes_deferred += 1;
                continue;
            }
            self.passes_deferred = 0;
            if self.dirty {
                self.dirty = false;
                let freed = std::mem::take(&mut self.agents_freed);
                if let Err(e) = self.dispatch(freed).await {
                    tracing::warn!(error = %e, "dispatch failed; retrying on the next change");
                    self.dirty = true;
                }
            }
        }
    }

    async fn on_delivery(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Event(event) => {
                if let Some(signal) = signal::classify(&event) {
                    if let Err(e) = self.on_signal(signal).await {
                        tracing::warn!(error = %e, "handling a switch event failed");
                    }
                }
            }
            Delivery::Connected | Delivery::Reconnected | Delivery::Gap { .. } => {
                if let Err(e) = self.resync().await {
                    tracing::error!(error = %e, "resync with FreeSWITCH failed");
                }
            }
            Delivery::Disconnected(reason) => {
                tracing::warn!(%reason, "FreeSWITCH connection lost; calls resync on reconnect");
            }
        }
    }

    async fn on_signal(&mut self, signal: Signal) -> Result<(), StoreError> {
        match signal {
            Signal::CallerParked(parked) => self.on_caller_parked(parked).await,
            Signal::LegParked {
                leg,
                queue,
                entry,
                agent,
            } => {
                if self.legs.contains_key(&leg) {
                    return Ok(());
                }
                // Another daemon's leg, or one placed before a restart: it stays only while
                // the store still has its entry offered or connected to its agent.
                let wanted = match (QueueName::new(&queue), EntryId::new(&entry)) {
                    (Ok(q), Ok(e)) => match self.store.entry(&q, &e).await?.map(|e| e.status) {
                        Some(EntryStatus::Offered { agents, .. }) => {
                            agents.iter().any(|a| a.as_str() == agent)
                        }
                        Some(EntryStatus::Connected { agent: a, .. }) => a.as_str() == agent,
                        _ => false,
                    },
                    _ => false,
                };
                if !wanted {
                    tracing::info!(%leg, %entry, %agent, "ending a stale agent leg");
                    self.kill(leg);
                }
                Ok(())
            }
            Signal::CustomerParked { leg } => {
                if let Some(dialed) = self.orphaned_customers.remove(&leg) {
                    self.connect_recovered(&dialed, leg).await?;
                }
                Ok(())
            }
            Signal::Dtmf { channel, digit } => {
                match self.callers.get(&channel) {
                    Some(media) => {
                        tracing::debug!(%channel, %digit, "caller pressed a key while waiting");
                        media.pressed(digit);
                    }
                    // A caller may press before the daemon has enqueued them (DTMF carries
                    // no variables to tell): keep the key briefly for their media task.
                    None => self
                        .early_keys
                        .push((channel, digit, std::time::Instant::now())),
                }
                Ok(())
            }
            Signal::Bridged { a, b } => {
                for channel in [a, b] {
                    if let Some(media) = self.callers.remove(&channel) {
                        media.leave();
                    }
                }
                Ok(())
            }
            Signal::CallerHangup { channel, queue, .. } => {
                self.on_caller_hangup(channel, &queue).await
            }
            Signal::LegHangup { leg, cause } => self.on_leg_hangup(leg, &cause).await,
            Signal::AgentAction { agent, action } => self.on_agent_action(&agent, &action).await,
        }
    }

    async fn on_caller_parked(&mut self, parked: ParkedCaller) -> Result<(), StoreError> {
        let (Ok(queue), Ok(line)) = (
            QueueName::new(&parked.queue),
            crate::queue::LineName::new(&parked.line),
        ) else {
            tracing::warn!(channel = %parked.channel, queue = %parked.queue, line = %parked.line,
                "parked call names an invalid queue or line; ignoring it");
            return Ok(());
        };
        let Some(queue_config) = self.config.queue(&queue).cloned() else {
            tracing::warn!(channel = %parked.channel, %queue, "parked call names an unknown queue");
            return Ok(());
        };
        if self.callers.contains_key(&parked.channel) {
            return Ok(());
        }
        let Ok(id) = EntryId::new(parked.channel.as_str()) else {
            return Ok(());
        };
        let mut entry = Entry::live_caller(
            queue.clone(),
            line,
            parked.channel.clone(),
            parked
                .caller_id_number
                .as_deref()
                .and_then(|n| VarValue::new(n).ok()),
            self.clock.as_ref(),
        );
        entry.id = id;
        if let Some(arrived) = parked.arrived {
            entry.position = arrived;
        }
        if let NoAgentPolicy::Transfer { extension, context } = &queue_config.no_agent {
            let logged_in = self
                .agents()
                .await?
                .iter()
                .any(|a| a.state.takes_queue_calls() && a.priority_for(&queue).is_some());
            // A caller back from a bridge is not new: the rule is for arrivals only.
            if !logged_in && self.store.entry(&queue, &entry.id).await?.is_none() {
                tracing::info!(channel = %parked.channel, %queue, %extension, "no agent logged in: overflow");
                self.spawn_transfer(parked.channel.clone(), extension.clone(), context.clone());
                return Ok(());
            }
        }
        let max_wait_due = queue_config
            .max_wait
            .as_ref()
            .map(|m| entry.position.plus(m.after));
        match self.store.enqueue(&entry, max_wait_due).await {
            Ok(()) => {}
            // Known already: back from a bridge, or enqueued by another daemon on the same
            // switch that won the race for this caller.
            Err(StoreError::EntryExists(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        tracing::info!(channel = %parked.channel, %queue, "caller entered the queue");
        self.adopt(&entry, true, parked.sip_from_user.as_deref());
        self.dirty |= self.idle_agents_seen;
        Ok(())
    }

    /// Start this daemon's media for a waiting caller. `sip_from_user` helps find a
    /// number to call back when the caller ID is not one.
    fn adopt(&mut self, entry: &Entry, greet: bool, sip_from_user: Option<&str>) {
        let EntryKind::LiveCaller { channel } = &entry.kind else {
            return;
        };
        let Some(plan) = self.plans.get(&entry.queue).cloned() else {
            return;
        };
        let callback = self.callback_plan(entry, sip_from_user);
        let media = caller::start(
            &mut self.tasks,
            CallerTask {
                switch: self.switch.clone(),
                store: self.store.clone(),
                clock: self.clock.clone(),
                channel: channel.clone(),
                queue: entry.queue.clone(),
                entry: entry.id.clone(),
                plan,
                callback,
                greet,
                reports: self.reports_tx.clone(),
            },
        );
        for (_, digit, _) in self.early_keys.iter().filter(|(c, _, _)| c == channel) {
            media.pressed(*digit);
        }
        self.early_keys.retain(|(c, _, _)| c != channel);
        self.callers.insert(channel.clone(), media);
    }

    /// What this caller's line offers them for callbacks, if it offers any: only a line with
    /// callbacks enabled and an outbound caller ID to call from. Whether the offer is made
    /// is decided while they wait (see [`CallbackPlan::open`]).
    fn callback_plan(&self, entry: &Entry, sip_from_user: Option<&str>) -> Option<CallbackPlan> {
        let line = self.callback_line(&entry.line)?;
        let settings = &line.callback;
        let rules = match NumberRules::new(
            settings.country.as_deref(),
            settings.dialing_policy.clone(),
        ) {
            Ok(rules) => rules,
            Err(e) => {
                tracing::warn!(line = %line.name, error = %e, "callbacks off: bad number rules");
                return None;
            }
        };
        let prompts = self.prompts_for(line);
        let own_number =
            rules.caller_number(entry.caller_id.as_ref().map(|c| c.as_str()), sip_from_user);
        Some(CallbackPlan {
            open: self.callbacks_open.get(&entry.queue)?.subscribe(),
            offer_when_wait_over: settings.offer_when_wait_over,
            offer_greeting: (!settings.ivr_in_front).then(|| {
                settings
                    .offer_greeting
                    .clone()
                    .unwrap_or_else(|| prompts.file("callback-offer"))
            }),
            menu: MenuSettings {
                record_name: settings.record_name,
                menu_tries: settings.menu_tries,
                number_tries: settings.number_tries,
                input_timeout: settings.timings.input_timeout,
                ..MenuSettings::default()
            },
            name_recording: settings
                .record_name
                .then(|| {
                    let path = self
                        .options
                        .recordings
                        .join(format!("callbackd-{}.wav", entry.id));
                    MediaSource::new(&path.to_string_lossy())
                })
                .and_then(Result::ok),
            rules,
            own_number,
            confirmation: settings
                .confirmation_greeting
                .clone()
                .unwrap_or_else(|| prompts.file("confirmation")),
            expiry: settings.expiry,
            prompts,
        })
    }

    /// Tell each queue's callers whether callbacks are open: some agent serving it takes
    /// queue calls. One small read of the agents' states.
    async fn refresh_callbacks_open(&self) -> Result<(), StoreError> {
        if self.callbacks_open.is_empty() {
            return Ok(());
        }
        let states = self.store.agent_states(&self.agent_ids).await?;
        for (queue, open) in &self.callbacks_open {
            let now_open = self
                .config
                .agents
                .iter()
                .zip(&states)
                .any(|(agent, state)| {
                    state.is_some_and(AgentState::takes_queue_calls)
                        && agent.queues.iter().any(|q| &q.queue == queue)
                });
            open.send_if_modified(|was| std::mem::replace(was, now_open) != now_open);
        }
        Ok(())
    }

    /// The line, if it offers callbacks: enabled, with an outbound caller ID to call from.
    fn callback_line(&self, line: &crate::queue::LineName) -> Option<&LineConfig> {
        self.config.line(line).filter(|l| l.offers_callbacks())
    }

    /// A line's prompts: from its own sounds directory or the daemon's; in its language,
    /// else the daemon's default, else English.
    fn prompts_for(&self, line: &LineConfig) -> PromptSet {
        PromptSet::choose(
            line.sounds.as_deref().unwrap_or(&self.options.sounds),
            &[line.language.as_str(), &self.options.default_language],
            &self.options.languages,
        )
    }

    async fn on_caller_hangup(
        &mut self,
        channel: ChannelId,
        queue: &str,
    ) -> Result<(), StoreError> {
        if let Some(media) = self.callers.remove(&channel) {
            media.leave();
        }
        let (Ok(queue), Ok(id)) = (QueueName::new(queue), EntryId::new(channel.as_str())) else {
            return Ok(());
        };
        if self.callers_whose_call_ended.remove(&channel).is_some() {
            return Ok(());
        }
        // Talking to an agent this daemon rang: the call is over, so is the agent's leg.
        let talking_to = self
            .legs
            .iter()
            .find(|(_, l)| l.answered && l.caller.as_ref() == Some(&channel))
            .map(|(leg, l)| (leg.clone(), l.agent.clone()));
        if let Some((leg, agent)) = talking_to {
            self.legs.remove(&leg);
            self.kill(leg);
            self.call_ended(&queue, &agent);
            return Ok(());
        }
        let Some(entry) = self.store.entry(&queue, &id).await? else {
            return Ok(());
        };
        match entry.status {
            EntryStatus::Waiting | EntryStatus::Offered { .. } => {
                let now = self.clock.now();
                match self
                    .store
                    .close(&queue, &id, CloseReason::Abandoned, now)
                    .await
                {
                    Ok(ringing) => {
                        tracing::info!(%channel, %queue, "caller abandoned");
                        self.stop_ringing(&id, &ringing);
                        if let Some(next) = &mut self.next_in_line {
                            next.retain(|e| e.id != id);
                        }
                    }
                    Err(StoreError::Rule(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            EntryStatus::Connected { agent, .. } => self.call_ended(&queue, &agent),
            // A callback outlives its caller's channel.
            EntryStatus::Dialing { .. } | EntryStatus::RetryWait { .. } => {}
            EntryStatus::Closed { .. } => {}
        }
        self.dirty = true;
        Ok(())
    }

    async fn on_leg_hangup(&mut self, leg: ChannelId, cause: &str) -> Result<(), StoreError> {
        if let Some(dialed) = self.orphaned_customers.remove(&leg) {
            // A customer found ringing after a restart did not answer.
            self.store
                .callback_attempt_failed(
                    &dialed.queue,
                    &dialed.entry,
                    &dialed.agent,
                    cause,
                    self.clock.now(),
                    None,
                )
                .await?;
            self.kill(dialed.agent_leg);
            self.dirty = true;
            return Ok(());
        }
        let Some(info) = self.legs.remove(&leg) else {
            return Ok(());
        };
        // A leg that never answered is reported by its originate's result instead.
        if let (true, Some(caller)) = (info.answered, info.caller) {
            // It was bridged to a waiting caller: that call is over.
            self.callers_whose_call_ended
                .insert(caller, std::time::Instant::now());
            self.call_ended(&info.queue, &info.agent);
        } else if info.answered {
            let Some(entry) = self.store.entry(&info.queue, &info.entry).await? else {
                return Ok(());
            };
            let talking = matches!(
                &entry.status,
                EntryStatus::Connected { agent, .. } if *agent == info.agent
            );
            if talking {
                if matches!(entry.kind, EntryKind::Callback(_)) {
                    let now = self.clock.now();
                    self.store
                        .callback_completed(&info.queue, &info.entry, &info.agent, now)
                        .await?;
                }
                self.call_ended(&info.queue, &info.agent);
            }
        }
        Ok(())
    }

    /// A connected call ended: its agent is freed before the next routing pass, together
    /// with every other agent whose call ended in the same burst of signals.
    fn call_ended(&mut self, queue: &QueueName, agent: &AgentId) {
        self.calls_ended.push((queue.clone(), agent.clone()));
    }

    /// Free the agents of the calls that ended, all at once (one round trip for a burst),
    /// and route them. When the last pass left nobody idle they are the only free agents
    /// worth routing: they are offered the callers known to be next in line, and freeing,
    /// booking and claiming go out together, off the loop, so an agent waits one round
    /// trip and the loop meanwhile takes the next hangups of a burst. Without callers
    /// known, the queue heads are read in the round trip that frees them. When agents were
    /// idle, a full pass routes these with them.
    async fn route_freed_agents(&mut self) -> Result<(), StoreError> {
        let ended = std::mem::take(&mut self.calls_ended);
        let now = self.clock.now();
        if self.idle_agents_seen {
            let freed = booking::end_calls(&self.store, &self.config, &ended, now).await;
            self.agents_freed += freed.len();
            self.dirty = true;
            return Ok(());
        }
        if let Some(next) = self.next_in_line.take().filter(|n| !n.is_empty()) {
            // An agent who went away meanwhile is not booked, and the claim is withdrawn.
            let freed = self.free_now(
                ended
                    .iter()
                    .filter(|(q, _)| booking::wrap_up(&self.config, q).is_zero())
                    .map(|(_, a)| a),
                now,
            );
            let offers = self.plan(&next, &freed, now);
            let unplaced = freed.len() - placed(&offers);
            let (entries, rest): (Vec<Entry>, Vec<Entry>) = next
                .into_iter()
                .partition(|e| offers.iter().any(|o| o.entry == e.id));
            if unplaced == 0 {
                // Few left: the next full pass reads more.
                self.dirty |= rest.len() < NEXT_IN_LINE_MIN;
                self.next_in_line = Some(rest);
            } else {
                self.agents_freed += unplaced;
                self.dirty = true;
            }
            for offer in &offers {
                self.claiming
                    .insert(offer.entry.clone(), offer.queue.clone());
            }
            // The booking frees the agents it books; the others' calls end on their own.
            let ended: Vec<(QueueName, AgentId)> = ended
                .into_iter()
                .filter(|(_, a)| !offers.iter().any(|o| o.agents.contains(a)))
                .collect();
            self.routes_under_way += 1;
            let (store, config, switch, reports) = (
                self.store.clone(),
                self.config.clone(),
                self.switch.clone(),
                self.reports_tx.clone(),
            );
            let daemon_id = self.options.daemon_id.clone();
            // The task rings the agents booked itself: the loop learns of the legs after.
            self.tasks.spawn(async move {
                let (_, made) = tokio::join!(
                    booking::end_calls(&store, &config, &ended, now),
                    booking::book(&store, &config, &offers, true, now)
                );
                let (config, daemon_id) = (&*config, daemon_id.as_str());
                let calls: Vec<(Originate, AgentLeg)> =
                    offers
                        .iter()
                        .zip(&made)
                        .filter(|(_, made)| matches!(made, Ok(OfferOutcome::Offered)))
                        .filter_map(|(offer, _)| {
                            let entry = entries.iter().find(|e| e.id == offer.entry)?;
                            Some(offer.agents.iter().filter_map(move |agent| {
                                agent_call(config, daemon_id, entry, agent)
                            }))
                        })
                        .flatten()
                        .collect();
                let placed = futures_util::future::join_all(
                    calls.iter().map(|(call, _)| switch.originate(call)),
                )
                .await;
                let rung = calls
                    .into_iter()
                    .zip(placed)
                    .map(|((call, leg), placed)| (call.uuid, leg, placed))
                    .collect();
                let _ = reports.send(Report::Booked(Booked { offers, made, rung }));
            });
            return Ok(());
        }
        let read = routing_window(ended.len());
        let (freed, entries) = tokio::join!(
            booking::end_calls(&self.store, &self.config, &ended, now),
            self.waiting_heads(read)
        );
        let freed = self.free_now(&freed, now);
        let entries = entries?;
        let offers = self.plan(&entries, &freed, now);
        self.dirty |= placed(&offers) < freed.len();
        self.make_offers(&offers, entries, now).await;
        Ok(())
    }

    /// The config's agents among `ids`, as they are once freed `now`: what routing needs
    /// of them, without reading them back.
    fn free_now<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a AgentId>,
        now: Timestamp,
    ) -> Vec<Agent> {
        ids.into_iter()
            .filter_map(|id| self.config.agent(id))
            .map(|a| Agent::freed_now(a.id.clone(), a.queues.clone(), now))
            .collect()
    }

    /// The router's plan for `entries` and `agents` `now`, around the entries being claimed
    /// by round trips under way: those are nobody else's, and are known to be ahead.
    fn plan(&self, entries: &[Entry], agents: &[Agent], now: Timestamp) -> Vec<Offer> {
        let mut offers = if self.claiming.is_empty() {
            self.router.plan(entries, agents, now)
        } else {
            let free: Vec<Entry> = entries
                .iter()
                .filter(|e| !self.claiming.contains_key(&e.id))
                .cloned()
                .collect();
            self.router.plan(&free, agents, now)
        };
        for offer in &mut offers {
            offer.ahead.extend(
                self.claiming
                    .iter()
                    .filter(|(_, q)| **q == offer.queue)
                    .map(|(e, _)| e.clone()),
            );
        }
        offers
    }

    async fn set_state(
        &self,
        agent: &AgentId,
        to: AgentState,
        source: StateSource,
    ) -> Result<(), StoreError> {
        match self
            .store
            .set_agent_state(agent, to, self.clock.now(), source)
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::Rule(e)) => {
                tracing::info!(%agent, error = %e, "agent state change refused");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn on_agent_action(&mut self, who: &str, action: &str) -> Result<(), StoreError> {
        let Some(agent) = self.config.agents.iter().find(|a| {
            a.id.as_str() == who
                || a.contact
                    .as_str()
                    .rsplit('/')
                    .next()
                    .map(|ext| ext.split('@').next() == Some(who))
                    == Some(true)
        }) else {
            tracing::warn!(%who, %action, "feature code from an unknown agent");
            return Ok(());
        };
        let to = match action {
            "login" => AgentState::Available,
            "logout" => AgentState::Offline,
            other => match other.parse::<AgentState>() {
                Ok(s) if s.is_chosen_by_people() => s,
                _ => {
                    tracing::warn!(agent = %agent.id, %action, "unknown agent action");
                    return Ok(());
                }
            },
        };
        let id = agent.id.clone();
        self.set_state(&id, to, StateSource::Phone).await?;
        tracing::info!(agent = %id, state = to.as_str(), "agent changed state from the phone");
        self.dirty = true;
        self.refresh_callbacks_open().await
    }

    /// The config's agents as Redis has them now.
    async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.store
            .agents_named(&self.agent_ids, self.clock.now())
            .await
    }

    /// The first `window` waiting entries of every queue, read together: one round trip
    /// on the shared connection.
    async fn waiting_heads(&self, window: usize) -> Result<Vec<Entry>, StoreError> {
        let reads = self
            .config
            .queues
            .iter()
            .map(|q| self.store.waiting_entries(&q.name, window));
        Ok(futures_util::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Make every offer that can be made now. When this daemon just freed `freed` agents,
    /// the free agents and the entries are read together; otherwise the entries are read
    /// only once an agent turns out to be free, which is the common case under load, or
    /// when few callers are known to be next in line.
    async fn dispatch(&mut self, freed: usize) -> Result<(), StoreError> {
        let now = self.clock.now();
        let refill = self
            .next_in_line
            .as_ref()
            .is_none_or(|n| n.len() < NEXT_IN_LINE_MIN);
        let free_agents = self.store.free_agents(&self.agent_ids, now);
        let (agents, mut entries, mut read) = if freed > 0 || refill {
            let read = if refill {
                ROUTING_WINDOW
            } else {
                routing_window(freed)
            };
            let (agents, entries) = tokio::try_join!(free_agents, self.waiting_heads(read))?;
            (agents, entries, read)
        } else {
            let agents = free_agents.await?;
            if agents.is_empty() {
                self.idle_agents_seen = false;
                return Ok(());
            }
            let read = routing_window(agents.len());
            (agents, self.waiting_heads(read).await?, read)
        };
        let mut offers = self.plan(&entries, &agents, now);
        if placed(&offers) < agents.len()
            && read < ROUTING_WINDOW
            && self.some_queue_full(&entries, read)
        {
            read = ROUTING_WINDOW;
            entries = self.waiting_heads(read).await?;
            offers = self.plan(&entries, &agents, now);
        }
        self.idle_agents_seen = placed(&offers) < agents.len();
        self.make_offers(&offers, entries, now).await;
        Ok(())
    }

    /// Book and ring `offers`, planned from `entries`; what is left of those is next in line.
    async fn make_offers(&mut self, offers: &[Offer], entries: Vec<Entry>, now: Timestamp) {
        let made = booking::book(&self.store, &self.config, offers, false, now).await;
        if self.ring_booked(offers, &entries, made) {
            self.keep_next_in_line(entries, offers);
        }
    }

    /// Ring the offers that were booked. False when some could not be made: the plan's
    /// view of the queues was out of date, so nobody is known to be next in line.
    fn ring_booked(
        &mut self,
        offers: &[Offer],
        entries: &[Entry],
        made: Vec<Result<OfferOutcome, StoreError>>,
    ) -> bool {
        let made = self.settle(offers, made);
        for offer in &made {
            if let Some(entry) = entries.iter().find(|e| e.id == offer.entry) {
                self.ring(entry, offer);
            }
        }
        made.len() == offers.len()
    }

    /// The offers that were made; for the others (a race lost with another daemon or a
    /// state change) routing looks again, without what it knew of the queues.
    fn settle<'a>(
        &mut self,
        offers: &'a [Offer],
        made: Vec<Result<OfferOutcome, StoreError>>,
    ) -> Vec<&'a Offer> {
        let mut rung = Vec::new();
        for (offer, outcome) in offers.iter().zip(made) {
            match outcome {
                Ok(OfferOutcome::Offered) => {
                    rung.push(offer);
                    continue;
                }
                Ok(
                    OfferOutcome::AgentNotFree(_)
                    | OfferOutcome::EntryNotWaiting
                    | OfferOutcome::EntryNotFirst
                    | OfferOutcome::HeldOff(_),
                ) => {}
                // An offer booked but never rung comes back when its booking lease or its
                // offer timer runs out.
                Err(e) => tracing::warn!(entry = %offer.entry, error = %e, "offer failed"),
            }
            self.dirty = true;
            self.forget_next_in_line();
        }
        rung
    }

    /// Keep what a routing pass read and did not offer as the callers next in line.
    fn keep_next_in_line(&mut self, mut entries: Vec<Entry>, offers: &[Offer]) {
        entries.retain(|e| {
            e.status == EntryStatus::Waiting
                && !offers.iter().any(|o| o.entry == e.id)
                && !self.claiming.contains_key(&e.id)
        });
        self.next_in_line = Some(entries);
    }

    /// Forget what is known of the callers next in line: an entry may have gone back ahead.
    fn forget_next_in_line(&mut self) {
        self.next_in_line = None;
    }

    /// Whether some queue had `read` entries or more waiting: then more wait beyond them.
    fn some_queue_full(&self, entries: &[Entry], read: usize) -> bool {
        self.config
            .queues
            .iter()
            .any(|q| entries.iter().filter(|e| e.queue == q.name).count() >= read)
    }

    /// Ring the offer's agents, each on a leg of its own.
    fn ring(&mut self, entry: &Entry, offer: &Offer) {
        for agent in &offer.agents {
            let Some((call, leg)) = agent_call(&self.config, &self.options.daemon_id, entry, agent)
            else {
                continue;
            };
            let switch = self.switch.clone();
            let uuid = call.uuid.clone();
            self.track_leg(uuid, leg, async move { switch.originate(&call).await });
        }
    }

    /// Remember an agent leg being placed, and report how its originate ends.
    fn track_leg(
        &mut self,
        uuid: ChannelId,
        leg: AgentLeg,
        placed: impl Future<Output = Result<PendingCall, SwitchError>> + Send + 'static,
    ) {
        tracing::info!(entry = %leg.entry, agent = %leg.agent, leg = %uuid, "offering to agent");
        self.legs.insert(uuid.clone(), leg.clone());
        let reports = self.reports_tx.clone();
        self.tasks.spawn(async move {
            let result = match placed.await {
                Ok(pending) => pending.wait().await,
                Err(e) => Err(e),
            };
            let _ = reports.send(Report::AgentLeg {
                queue: leg.queue,
                entry: leg.entry,
                agent: leg.agent,
                leg: uuid,
                result,
            });
        });
    }

    async fn on_report(&mut self, report: Report) {
        let (outcome, entry, agent) = match report {
            Report::AgentLeg {
                queue,
                entry,
                agent,
                leg,
                result,
            } => (
                self.on_agent_leg(&queue, &entry, &agent, leg, result).await,
                entry,
                agent,
            ),
            Report::BridgeFailed {
                queue,
                entry,
                agent,
                leg,
                error,
            } => (
                self.bridge_failed(&queue, &entry, &agent, leg, &error)
                    .await,
                entry,
                agent,
            ),
            Report::StoreChanged => {
                self.forget_next_in_line();
                self.dirty = true;
                return;
            }
            Report::EntryLeft { entry, ringing } => {
                self.stop_ringing(&entry, &ringing);
                self.forget_next_in_line();
                self.dirty = true;
                return;
            }
            Report::Booked(booked) => {
                self.routes_under_way -= 1;
                for offer in &booked.offers {
                    self.claiming.remove(&offer.entry);
                }
                self.settle(&booked.offers, booked.made);
                for (uuid, leg, placed) in booked.rung {
                    self.track_leg(uuid, leg, std::future::ready(placed));
                }
                return;
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(%entry, %agent, error = %e, "offer outcome could not be recorded");
        }
        self.dirty = true;
    }

    /// An agent leg's originate finished: answered, or not taken.
    async fn on_agent_leg(
        &mut self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        leg: ChannelId,
        result: Result<ChannelId, SwitchError>,
    ) -> Result<(), StoreError> {
        match result {
            Ok(_) => self.agent_answered(queue, entry, agent, leg).await,
            Err(e) => {
                self.legs.remove(&leg);
                self.forget_next_in_line();
                self.agent_missed(queue, entry, agent, &e).await
            }
        }
    }

    async fn agent_answered(
        &mut self,
        queue: &QueueName,
        entry_id: &EntryId,
        agent: &AgentId,
        leg: ChannelId,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let caller = self.legs.get(&leg).and_then(|l| l.caller.clone());
        let Some(channel) = caller else {
            return self.callback_answered(queue, entry_id, agent, leg).await;
        };
        match self.store.connected(queue, entry_id, agent, now).await {
            Ok(()) => {}
            Err(StoreError::Rule(QueueError::NowACallback(_))) => {
                return self.callback_answered(queue, entry_id, agent, leg).await;
            }
            Err(StoreError::Rule(
                QueueError::NotOfferedTo { .. } | QueueError::EntryStatus { .. },
            )) => {
                // Another ring-all agent won, or the caller left meanwhile.
                self.legs.remove(&leg);
                self.kill(leg);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        if let Some(info) = self.legs.get_mut(&leg) {
            info.answered = true;
        }
        self.release_other_legs(entry_id, agent);
        if let Some(media) = self.callers.remove(&channel) {
            media.leave();
        }
        tracing::info!(entry = %entry_id, %agent, "agent answered: bridging");
        // The bridge waits on two switch round trips: the loop goes on meanwhile.
        let switch = self.switch.clone();
        let reports = self.reports_tx.clone();
        let (queue, entry, agent) = (queue.clone(), entry_id.clone(), agent.clone());
        self.tasks.spawn(async move {
            let bridged = async {
                switch.break_media(&channel).await?;
                switch.bridge(&channel, &leg).await
            }
            .await;
            if let Err(error) = bridged {
                let _ = reports.send(Report::BridgeFailed {
                    queue,
                    entry,
                    agent,
                    leg,
                    error,
                });
            }
        });
        Ok(())
    }

    /// The caller could not be bridged to the agent who answered: the agent is free again
    /// and the caller waits at their place, with their media back on.
    async fn bridge_failed(
        &mut self,
        queue: &QueueName,
        entry_id: &EntryId,
        agent: &AgentId,
        leg: ChannelId,
        error: &SwitchError,
    ) -> Result<(), StoreError> {
        tracing::warn!(entry = %entry_id, %agent, %error,
            "bridge failed; the caller waits again at their place");
        self.legs.remove(&leg);
        self.kill(leg);
        self.forget_next_in_line();
        let now = self.clock.now();
        self.store
            .bridge_failed(queue, entry_id, agent, now)
            .await?;
        self.set_state(agent, AgentState::Available, StateSource::Daemon)
            .await?;
        if let Some(entry) = self.store.entry(queue, entry_id).await? {
            self.adopt(&entry, false, None);
        }
        Ok(())
    }

    /// An agent answered the offer of a callback: they hear whom to call, in a task.
    async fn callback_answered(
        &mut self,
        queue: &QueueName,
        entry_id: &EntryId,
        agent: &AgentId,
        leg: ChannelId,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let found = self.store.entry(queue, entry_id).await?;
        let Some((EntryKind::Callback(request), line)) = found.map(|e| (e.kind, e.line)) else {
            self.legs.remove(&leg);
            self.kill(leg);
            return Ok(());
        };
        if let Some(info) = self.legs.get_mut(&leg) {
            info.answered = true;
            // Rung while the caller waited, answered after they asked for a callback.
            info.caller = None;
        }
        self.release_other_legs(entry_id, agent);
        // Keep the offer and the agent's booking while they hear whom to call; their
        // whisper task renews it while the whisper plays.
        let decide_within = self
            .config
            .line(&line)
            .map(|l| l.callback.timings)
            .unwrap_or_default()
            .agent_decision;
        match self
            .store
            .callback_offer_answered(queue, entry_id, agent, now, decide_within)
            .await
        {
            Ok(()) => {}
            // Canceled, expired or taken meanwhile (maybe by another daemon, which could
            // not stop this leg): nothing is left for this agent to hear.
            Err(e @ (StoreError::Rule(_) | StoreError::UnknownEntry { .. })) => {
                tracing::info!(entry = %entry_id, %agent, error = %e,
                    "callback answered after it was withdrawn; ending the agent leg");
                self.legs.remove(&leg);
                self.kill(leg);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        self.start_callback(queue, entry_id, agent, leg, request, &line)
            .await
    }

    /// An agent answered a callback offer: their side runs in a task of its own.
    async fn start_callback(
        &mut self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        leg: ChannelId,
        request: crate::queue::CallbackRequest,
        line: &crate::queue::LineName,
    ) -> Result<(), StoreError> {
        let Some(line) = self.config.line(line).cloned() else {
            self.kill(leg);
            return Ok(());
        };
        // Agents logged out or taking transfers only count as having declined.
        let eligible = self
            .agents()
            .await?
            .into_iter()
            .filter(|a| a.priority_for(queue).is_some())
            .filter(|a| !matches!(a.state, AgentState::Offline | AgentState::TransfersOnly))
            .map(|a| a.id)
            .collect();
        let task = AgentCallback {
            switch: self.switch.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            queue: queue.clone(),
            entry: entry.clone(),
            agent: agent.clone(),
            agent_leg: leg,
            number: request.number,
            attempts: request.attempts,
            prompts: self.prompts_for(&line),
            daemon_id: self.options.daemon_id.clone(),
            renew_every: (line.callback.timings.agent_decision / 3)
                .div_f64(self.options.time_scale.max(1e-3)),
            line,
            eligible,
            decline_hold_off: self
                .config
                .queue(queue)
                .map_or(Duration::ZERO, |q| q.hold_off.decline),
        };
        let reports = self.reports_tx.clone();
        self.tasks.spawn(async move {
            task.run().await;
            let _ = reports.send(Report::StoreChanged);
        });
        Ok(())
    }

    async fn agent_missed(
        &mut self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        error: &SwitchError,
    ) -> Result<(), StoreError> {
        let cause = match error {
            SwitchError::CallFailed(c) => NoAnswerCause::of_hangup(c),
            _ => NoAnswerCause::Failed,
        };
        tracing::info!(%entry, %agent, error = %error, "agent did not take the offer");
        let rules = MissRules::of(self.config.queue(queue), cause);
        match self
            .store
            .offer_failed(queue, entry, agent, cause, self.clock.now(), rules)
            .await
        {
            Ok(_) | Err(StoreError::Rule(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Stop the other phones of a ring-all offer once one agent answered.
    fn release_other_legs(&mut self, entry: &EntryId, winner: &AgentId) {
        let others: Vec<ChannelId> = self
            .legs
            .iter()
            .filter(|(_, l)| &l.entry == entry && &l.agent != winner)
            .map(|(c, _)| c.clone())
            .collect();
        for leg in others {
            self.legs.remove(&leg);
            self.kill(leg);
        }
    }

    /// Stop ringing `agents` for `entry` (the caller left).
    fn stop_ringing(&mut self, entry: &EntryId, agents: &[AgentId]) {
        let legs: Vec<ChannelId> = self
            .legs
            .iter()
            .filter(|(_, l)| &l.entry == entry && agents.contains(&l.agent))
            .map(|(c, _)| c.clone())
            .collect();
        for leg in legs {
            self.kill(leg);
        }
    }

    fn kill(&mut self, channel: ChannelId) {
        let switch = self.switch.clone();
        self.tasks.spawn(async move {
            let _ = switch.kill(&channel, &HangupCause::normal_clearing()).await;
        });
    }

    fn spawn_transfer(
        &mut self,
        channel: ChannelId,
        extension: crate::switch::Extension,
        context: crate::switch::Extension,
    ) {
        let switch = self.switch.clone();
        self.tasks.spawn(async move {
            let _ = switch.break_media(&channel).await;
            if let Err(e) = switch.transfer(&channel, &extension, &context).await {
                tracing::warn!(%channel, error = %e, "transfer failed");
            }
        });
    }

    async fn on_tick(&mut self) {
        while let Some(ended) = self.tasks.try_join_next() {
            match ended {
                Err(e) if e.is_panic() => {
                    // Maybe a routing round trip, whose report will never come: stop waiting.
                    tracing::error!(error = %e, "an engine task panicked");
                    self.routes_under_way = 0;
                    self.claiming.clear();
                }
                _ => {}
            }
        }
        self.early_keys
            .retain(|(_, _, at)| at.elapsed() < EARLY_KEYS);
        self.callers_whose_call_ended
            .retain(|_, at| at.elapsed() < CALLER_HANGUP_WAIT);
        if self.trimmed.elapsed() >= TRIM_EVERY {
            self.trimmed = std::time::Instant::now();
            let queues: Vec<QueueName> =
                self.config.queues.iter().map(|q| q.name.clone()).collect();
            let keep = self.config.redis.events_kept;
            if let Err(e) = self.store.trim_events(&queues, keep).await {
                tracing::warn!(error = %e, "trimming the event streams failed");
            }
        }
        let now = self.clock.now();
        let scopes = self
            .config
            .queues
            .iter()
            .map(|q| TimerScope::Queue(q.name.clone()))
            .chain([TimerScope::Agents]);
        // One round trip for the whole tick: the loop is not taking signals meanwhile.
        let (store, daemon) = (&self.store, &self.options.daemon_id);
        let claims = futures_util::future::join_all(scopes.map(|scope| async move {
            let due = store
                .claim_due_timers(&scope, daemon, now, TIMER_LEASE, 100)
                .await;
            (scope, due)
        }));
        let (last_agent_event, claims) = tokio::join!(self.store.last_event_id(None), claims);
        // Agent state changes made elsewhere (the CLI, another daemon, a phone) reach this
        // daemon through the agents' stream.
        match last_agent_event {
            Ok(last) if last != self.agent_events_seen => {
                self.agent_events_seen = last;
                self.dirty = true;
                if let Err(e) = self.refresh_callbacks_open().await {
                    tracing::warn!(error = %e, "reading agent states failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading agent events failed"),
        }
        for (scope, due) in claims {
            let due = match due {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(?scope, error = %e, "claiming timers failed");
                    continue;
                }
            };
            for timer in due {
                if let Err(e) = self.on_timer(&timer).await {
                    tracing::warn!(?timer, error = %e, "timer failed; it comes due again");
                    continue;
                }
                let _ = self
                    .store
                    .complete_timer(&timer, &self.options.daemon_id)
                    .await;
            }
        }
    }

    async fn on_timer(&mut self, timer: &Timer) -> Result<(), StoreError> {
        let now = self.clock.now();
        // Every timer but the end of a wrap-up or of a hold-off may put an entry back in a
        // queue. A hold-off's end only makes an entry offerable again, which the routing
        // pass this ends with finds.
        if !matches!(timer, Timer::WrapUpEnd { .. } | Timer::HoldOffEnd { .. }) {
            self.forget_next_in_line();
        }
        match timer {
            Timer::MaxWait { queue, entry } => {
                let Some(found) = self.store.entry(queue, entry).await? else {
                    return Ok(());
                };
                let ringing = match self
                    .store
                    .close(queue, entry, CloseReason::MaxWaitExit, now)
                    .await
                {
                    Ok(ringing) => ringing,
                    Err(StoreError::Rule(_)) => return Ok(()),
                    Err(e) => return Err(e),
                };
                self.stop_ringing(entry, &ringing);
                let EntryKind::LiveCaller { channel } = found.kind else {
                    return Ok(());
                };
                if let Some(media) = self.callers.remove(&channel) {
                    media.leave();
                }
                tracing::info!(%channel, %queue, "max wait reached");
                let exit = self
                    .config
                    .queue(queue)
                    .and_then(|q| q.max_wait.as_ref())
                    .map(|m| m.exit.clone());
                match exit {
                    Some(ExitAction::Transfer { extension, context }) => {
                        self.spawn_transfer(channel, extension, context)
                    }
                    _ => self.kill(channel),
                }
            }
            Timer::OfferTimeout { queue, entry } => {
                // The daemon that made this offer never reported back (it may have died).
                if let Some(found) = self.store.entry(queue, entry).await? {
                    if let EntryStatus::Offered { agents, .. } = found.status {
                        let cause = NoAnswerCause::Timeout;
                        let rules = MissRules::of(self.config.queue(queue), cause);
                        for agent in agents {
                            let _ = self
                                .store
                                .offer_failed(queue, entry, &agent, cause, now, rules)
                                .await;
                        }
                    }
                }
            }
            Timer::CallbackExpiry { queue, entry } => {
                let ringing = self.store.callback_expire(queue, entry, now).await?;
                self.stop_ringing(entry, &ringing);
            }
            Timer::CallbackRetry { queue, entry } => {
                self.store.callback_retry_due(queue, entry, now).await?;
            }
            // One that comes due after its entry left the queue only costs a routing pass.
            Timer::HoldOffEnd { .. } => {}
            Timer::WrapUpEnd { agent } => {
                // Only from wrap_up: an agent who chose another state meanwhile keeps it.
                match self
                    .store
                    .set_agent_state_from(
                        agent,
                        &[AgentState::WrapUp],
                        AgentState::Available,
                        now,
                        StateSource::Daemon,
                    )
                    .await
                {
                    Ok(AgentState::WrapUp) => self.agents_freed += 1,
                    Ok(_) | Err(StoreError::Rule(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.dirty = true;
        Ok(())
    }
}

/// How many waiting entries per queue a pass first reads for `free` agents.
/// How many agents `offers` ring.
fn placed(offers: &[Offer]) -> usize {
    offers.iter().map(|o| o.agents.len()).sum()
}

fn routing_window(free: usize) -> usize {
    (free + ROUTING_SLACK).min(ROUTING_WINDOW)
}

/// An origination variable from a constant name and a validated id.
/// The call that rings `agent` for `entry`, and the leg the engine tracks for it.
fn agent_call(
    config: &Config,
    daemon_id: &str,
    entry: &Entry,
    agent: &AgentId,
) -> Option<(Originate, AgentLeg)> {
    let contact = &config.agent(agent)?.contact;
    let mut call = Originate::new(contact.clone());
    call.timeout = Some(config.queue(&entry.queue)?.ring_time);
    call.caller_id_number = entry.caller_id.clone();
    call.variables = vec![
        var(signal::VAR_ROLE, "agent"),
        var(signal::VAR_DAEMON, daemon_id),
        var(signal::VAR_ENTRY_QUEUE, entry.queue.as_str()),
        var(signal::VAR_ENTRY, entry.id.as_str()),
        var(signal::VAR_AGENT, agent.as_str()),
    ];
    let leg = AgentLeg {
        queue: entry.queue.clone(),
        entry: entry.id.clone(),
        agent: agent.clone(),
        caller: match &entry.kind {
            EntryKind::LiveCaller { channel } => Some(channel.clone()),
            EntryKind::Callback(_) => None,
        },
        answered: false,
    };
    Some((call, leg))
}

fn var(name: &str, value: &str) -> (VarName, VarValue) {
    (
        VarName::new(name).expect("constant variable name"),
        VarValue::new(value).expect("validated id"),
    )
}

fn media_plan(config: &Config, options: &EngineOptions, queue: &QueueConfig) -> MediaPlan {
    let language = config
        .lines
        .iter()
        .find(|l| l.queue == queue.name)
        .map(|l| l.language.to_string())
        .unwrap_or_else(|| crate::prompts::FALLBACK_LANGUAGE.to_owned());
    MediaPlan {
        greetings: queue.greetings.clone(),
        hold_music: queue.hold_music.clone(),
        announce_every: queue
            .announce_every
            .map(|every| every.div_f64(options.time_scale.max(1e-3))),
        prompts: PromptSet::choose(
            &options.sounds,
            &[&language, &options.default_language],
            &options.languages,
        ),
    }
}
