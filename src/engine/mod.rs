//! The engine: turns switch signals, due timers and operators' commands into queue
//! transitions, writes each one to Redis, then commands the switch.
//!
//! One loop owns the routing decisions and every leg this daemon places; anything slow on
//! the switch (originates, bridges, playbacks) runs in tasks that report back through a
//! channel, so the loop always keeps the socket drained. A caller's media task and an
//! agent's callback task also write the transitions of their own dialogue (a callback
//! requested, accepted, declined) and then tell the loop that the store changed.
//!
//! Where each part lives:
//! - `arrivals`: a caller enters the queue; their media task and what their line offers.
//! - `dispatch` (with `booking`, its store side): who is offered which entry, and when;
//!   `routing_state`: what the loop remembers between routing passes, and its rules.
//! - `legs`: agent legs answered or missed, bridges, callbacks answered, hangups.
//! - `timers`: the tick and the durable timers (max wait, expiry, retries, wrap-up).
//! - `agents`, `commands`: agent states; the [`EngineHandle`] commands and the event bus.
//! - `ownership`: the leases on callers' media, so one daemon plays to each caller and a
//!   dead daemon's callers are taken over.
//! - `recovery`: matching the store with the switch after a restart or an event gap.
//! - `caller`, `callback`: the caller's and the agent's side of the call flow, as tasks.
//!
//! The switch is any [`Pbx`] (FreeSWITCH in production, a fake one in rule tests); its
//! events reach the engine as [`Signal`]s.

mod agents;
mod arrivals;
mod booking;
mod callback;
mod caller;
mod commands;
mod dispatch;
mod handle;
mod legs;
mod ownership;
mod recovery;
mod reload;
mod routing_state;
mod timers;

use std::collections::{HashMap, HashSet};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::queue::{AgentId, Clock, EndedCall, EntryId, EntryStatus, QueueName, Router};
use crate::store::{DomainEvent, FeedSinks, Store, StoreError};
use crate::switch::{CallId, FreeSwitch, MediaDir, Pbx, SwitchError};
use crate::switch::{ParkedCaller, PbxEvent, Signal};
use crate::values::DaemonId;
use arrivals::media_plan;
use booking::Booked;
use caller::{CallerMedia, MediaPlan};
use handle::Command;
pub use handle::{CommandError, EngineHandle, EngineStats};
use recovery::Dialed;
use routing_state::RoutingState;

/// How often due timers are claimed.
const TIMER_TICK: Duration = Duration::from_millis(200);
/// How long after a lost event or a failed resync the resync owed is tried.
const RESYNC_RETRY: Duration = Duration::from_secs(1);
/// How many of the feed's events may wait for the loop before the feed waits too: more
/// than one read of the agents' stream and the withdrawals brings at a busy switch's pace.
const FEED_QUEUE: usize = 4096;
/// At most this many queued signals are handled between two routing passes, so a flood
/// cannot hold back offers for long.
const BATCH: usize = 64;

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
        leg: CallId,
        result: Result<CallId, SwitchError>,
    },
    /// A caller could not be bridged to the agent who answered for them.
    BridgeFailed {
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        leg: CallId,
        failure: legs::BridgeFailure,
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
    /// Try again to take in a caller whom the store could not take when they parked.
    ParkAgain { parked: ParkedCaller, attempt: u32 },
    /// A leg that could not be hung up (the switch was out of reach): the next resync
    /// does, if it is still there.
    HangUpWhenBack(CallId),
    /// A resync found a caller parked while no daemon listened.
    FoundParked(ParkedCaller),
    /// A waiting caller's media task ended with an error (a command the switch refused or
    /// lost): it is started again shortly, where the caller is.
    MediaFailed(CallId),
    /// Start the media of a caller whose media failed again, if they still wait here.
    MediaAgain(CallId),
    /// An audit found calls under way that the switch no longer has.
    CallsNotOnSwitch(recovery::NotOnSwitch),
    /// A round of media lease renewals is done.
    MediaTended(ownership::MediaTended),
    /// An agent answered, and the store could not record it: try again (`attempt` so far).
    AnsweredAgain {
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        leg: CallId,
        attempt: u32,
    },
}

/// How long after a caller's media failed it is started again: a moment for the hangup
/// that may have caused it to arrive first.
const MEDIA_RETRY: Duration = Duration::from_secs(1);

/// How many times an agent's answer is recorded again after a Redis error (see
/// [`store_retry_delay`]): about half a minute, which outlasts a Redis restart or failover.
const ANSWER_ATTEMPTS: u32 = 18;

/// How long after a Redis error a step is tried again: doubling from 100 ms to 2 s, so a
/// hiccup costs a caller a moment and a long outage costs Redis little.
fn store_retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(5)).min(Duration::from_secs(2))
}

/// An agent leg placed by this daemon, by its channel id.
#[derive(Debug, Clone)]
struct AgentLeg {
    queue: QueueName,
    entry: EntryId,
    agent: AgentId,
    /// The waiting caller's channel; `None` for a callback, whose customer is dialed later.
    caller: Option<CallId>,
    answered: bool,
    /// While the agent hears a callback's whisper: its task's door for an answer given for
    /// them from outside ([`EngineHandle::accept_callback`]), closed once they answered.
    answers: Option<mpsc::Sender<callback::OutsideAnswer>>,
    /// Rung because the agent clicked Call in their console: no whisper once they answer.
    from_console: bool,
}

/// Settings that are not in the config file: who this daemon is and where prompts live.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Unique per daemon sharing a Redis: owns timer leases and callers' media.
    pub daemon_id: DaemonId,
    /// The sounds directory as FreeSWITCH sees it.
    pub sounds: MediaDir,
    /// Languages with prompts under `sounds`.
    pub languages: Vec<String>,
    /// The language for lines whose own has no prompts (before the English fallback).
    pub default_language: String,
    /// Where callers' name recordings go, as FreeSWITCH sees it.
    pub recordings: MediaDir,
    /// How many times faster than real time the clock runs (1 in production; tests pair
    /// a [`crate::queue::ScaledClock`] with the simulator's scaled clock).
    pub time_scale: f64,
}

/// The daemon's brain. Build it with [`Engine::new`], take a [`Engine::handle`] for what
/// runs beside it, and drive it with [`Engine::run`].
pub struct Engine<P: Pbx = FreeSwitch> {
    config: Arc<Config>,
    options: EngineOptions,
    store: Store,
    switch: P,
    clock: Arc<dyn Clock>,
    router: Router,
    /// The agents of the config: the only ones this daemon can ring, so the only ones it reads.
    agent_ids: Vec<AgentId>,
    /// Callers whose media this daemon runs.
    callers: HashMap<CallId, CallerMedia>,
    /// Callers who parked while the store was unreachable: they hear the queue's hold
    /// music until it takes them in (see `arrivals`).
    held: HashSet<CallId>,
    /// Legs to hang up once the switch is back (see [`Report::HangUpWhenBack`]).
    hang_up_when_back: HashSet<CallId>,
    /// Agent legs this daemon stopped while they rang (or whose originate lost its answer
    /// with the switch): their agents stay booked until each leg is seen gone, so that no
    /// daemon rings a phone that may still ring or be answered for another entry.
    legs_ending: HashMap<CallId, EndedCall>,
    /// Entries withdrawn (closed, or their offer ended) while a routing round trip under
    /// way rang for them: its legs, unknown to the loop until it reports, are stopped then.
    withdrawn_under_way: HashSet<EntryId>,
    /// When each agent whose call ended here was freed, until their next ring (or a
    /// routing pass that had nothing for them): the start of their dispatch latency.
    freed_at: HashMap<AgentId, std::time::Instant>,
    legs: HashMap<CallId, AgentLeg>,
    /// Customer legs found ringing after a restart, whose callback task is gone: the
    /// engine bridges them to their agent when they answer.
    orphaned_customers: HashMap<CallId, Dialed>,
    plans: HashMap<QueueName, Arc<MediaPlan>>,
    /// Per queue that offers callbacks, whether an agent serving it takes queue calls (see
    /// [`AgentState::takes_queue_calls`]): its callers are offered callbacks only then.
    /// Callers' media tasks watch it, so an agent logging in reaches callers already waiting.
    callbacks_open: HashMap<QueueName, watch::Sender<bool>>,
    reports_tx: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
    handle: EngineHandle,
    commands: mpsc::Receiver<Command>,
    /// Whether this daemon drains ([`EngineHandle::drain`]); the handles read it.
    drain: watch::Sender<bool>,
    /// Whether the switch's event socket is up now; the handles read it (readiness).
    switch_up: watch::Sender<bool>,
    /// The config in force; the handles read it (the API's queues, agents and tokens).
    config_tx: watch::Sender<Arc<Config>>,
    /// What the loop counts about itself; the handles read it (`/metrics`).
    stats: Arc<EngineStats>,
    /// Drains asked for and not answered yet: answered once no routing round trip is
    /// under way.
    drains: Vec<oneshot::Sender<Result<(), CommandError>>>,
    /// The domain event bus, for subscribers beside the engine.
    bus: broadcast::Sender<DomainEvent>,
    /// An agent's state changed (here, elsewhere, or events were missed) since the last
    /// tick: whether callbacks are open is read again then, at most once per tick.
    agents_changed: bool,
    /// Every task the engine starts (media, originates, callbacks): they end with it, as
    /// they would if the process died, and never act on a switch after their engine.
    tasks: JoinSet<()>,
    /// When routing passes run, and what they know of agents, callers and claims.
    routing: RoutingState,
    /// Callers whose call this daemon saw end on the agent's side, with when: their own
    /// hangup follows and has nothing left to do. Kept for [`CALLER_HANGUP_WAIT`].
    callers_whose_call_ended: HashMap<CallId, std::time::Instant>,
    /// When the event streams were last trimmed.
    trimmed: std::time::Instant,
    /// When the callers' media leases were last renewed.
    media_tended: std::time::Instant,
    /// When the agents' calls were last checked against the switch's channels.
    audited: std::time::Instant,
    /// A round of renewals is under way (see `ownership`).
    tending_media: bool,
    /// A switch event or resync was lost to a Redis error: the store may not know what
    /// happened (a hangup, say), so a resync is owed, tried from this moment on.
    resync_owed: Option<std::time::Instant>,
}

impl<P: Pbx> Engine<P> {
    pub fn new(
        config: Arc<Config>,
        options: EngineOptions,
        store: Store,
        switch: P,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let (commands_tx, commands) = mpsc::channel(handle::COMMAND_QUEUE);
        let (bus, _) = broadcast::channel(handle::BUS_CAPACITY);
        let drain = watch::Sender::new(false);
        let switch_up = watch::Sender::new(false);
        let config_tx = watch::Sender::new(config.clone());
        let stats = Arc::new(EngineStats::default());
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
            held: HashSet::new(),
            hang_up_when_back: HashSet::new(),
            legs_ending: HashMap::new(),
            withdrawn_under_way: HashSet::new(),
            freed_at: HashMap::new(),
            legs: HashMap::new(),
            orphaned_customers: HashMap::new(),
            plans,
            reports_tx,
            reports,
            handle: EngineHandle::new(
                commands_tx,
                bus.clone(),
                drain.subscribe(),
                switch_up.subscribe(),
                config_tx.subscribe(),
                stats.clone(),
            ),
            commands,
            drain,
            switch_up,
            config_tx,
            stats,
            drains: Vec::new(),
            bus,
            agents_changed: true,
            tasks: JoinSet::new(),
            routing: RoutingState::new(),
            callers_whose_call_ended: HashMap::new(),
            trimmed: std::time::Instant::now(),
            media_tended: std::time::Instant::now(),
            audited: std::time::Instant::now(),
            tending_media: false,
            resync_owed: None,
        }
    }

    /// A handle for commands and domain events; it outlives the engine (its commands then
    /// fail with [`CommandError::EngineGone`]).
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Run until `shutdown` turns true or the client stops.
    pub async fn run(
        mut self,
        mut deliveries: mpsc::Receiver<P::Event>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        // The feed starts before anything this engine writes.
        let queues: Vec<QueueName> = self.config.queues.iter().map(|q| q.name.clone()).collect();
        let feed = self.store.feed(&queues).await?;
        let (engine, mut feed_events) = mpsc::channel(FEED_QUEUE);
        self.tasks.spawn(feed.run(FeedSinks {
            engine,
            bus: self.bus.clone(),
        }));
        self.store
            .register_agents(&self.config.agents, self.clock.now())
            .await?;
        // A dropped sender can never ask for a stop: the engine then runs until the client
        // stops, rather than wake on the closed channel forever.
        let mut can_stop = true;
        let mut tick = tokio::time::interval(TIMER_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                d = deliveries.recv() => match d {
                    Some(d) => self.on_delivery(d).await,
                    None => return Err(EngineError::ClientGone),
                },
                Some(report) = self.reports.recv() => self.on_report(report).await,
                Some(command) = self.commands.recv() => self.on_command(command).await,
                Some(event) = feed_events.recv() => {
                    self.on_domain_event(event);
                    // The feed sends what one read found at once: take it all in one turn.
                    while let Ok(event) = feed_events.try_recv() {
                        self.on_domain_event(event);
                    }
                }
                due = tick.tick() => {
                    let lag = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.stats.loop_lag_us.store(lag, Ordering::Relaxed);
                    self.stats.loop_ticks.fetch_add(1, Ordering::Relaxed);
                    self.on_tick().await;
                }
                changed = shutdown.changed(), if can_stop => {
                    if changed.is_err() {
                        can_stop = false;
                    } else if *shutdown.borrow() {
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
            if let Err(e) = self.route_freed_agents().await {
                tracing::warn!(error = %e, "routing freed agents failed; retrying");
                self.routing.changed();
            }
            // A drain is answered once no round trip is under way: none can still book.
            if self.routing.round_trips_done() {
                self.finish_drain().await;
            }
            // Signals that came in meanwhile may free agents, and round trips under way may
            // be writing what a pass would read: both go first.
            if let Some(freed) = self.routing.start_pass(!deliveries.is_empty()) {
                if let Err(e) = self.dispatch(freed).await {
                    tracing::warn!(error = %e, "dispatch failed; retrying on the next change");
                    self.routing.changed();
                }
            }
        }
    }

    async fn on_delivery(&mut self, delivery: P::Event) {
        self.stats.switch_events.fetch_add(1, Ordering::Relaxed);
        match self.switch.read(delivery) {
            Some(PbxEvent::Signal(signal)) => match self.on_signal(signal).await {
                Err(e @ StoreError::Redis(_)) => {
                    tracing::warn!(error = %e,
                            "handling a switch event failed; resyncing once Redis is back");
                    self.owe_resync();
                }
                Err(e) => tracing::warn!(error = %e, "handling a switch event failed"),
                Ok(()) => {}
            },
            Some(PbxEvent::Resync) => {
                // With the connection up all along, events were lost on the way: a gap.
                if *self.switch_up.borrow() {
                    self.stats.event_gaps.fetch_add(1, Ordering::Relaxed);
                }
                self.switch_up.send_replace(true);
                self.run_resync().await;
            }
            Some(PbxEvent::Lost(reason)) => {
                self.switch_up.send_replace(false);
                self.stats.switch_lost.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%reason, "switch connection lost; calls resync on reconnect");
            }
            None => {}
        }
    }

    /// Resync with the switch; one that fails is tried again (see [`Engine::owe_resync`]).
    async fn run_resync(&mut self) {
        self.resync_owed = None;
        self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.resync().await {
            tracing::error!(error = %e, "resync with the switch failed; trying again");
            self.owe_resync();
        }
    }

    /// A resync is owed: the tick runs it a moment from now (Redis, or the switch, may
    /// take a while to come back), unless one is owed already.
    fn owe_resync(&mut self) {
        self.resync_owed
            .get_or_insert_with(|| std::time::Instant::now() + RESYNC_RETRY);
    }

    async fn on_signal(&mut self, signal: Signal) -> Result<(), StoreError> {
        match signal {
            Signal::CallerParked(parked) => self.park(parked, 0).await,
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

    /// Record an agent's answer again after a Redis error, while the agent's leg waits
    /// (the caller hears hold music meanwhile); in the end, give the leg up, and the entry
    /// waits again once the store is back.
    fn answer_again(
        &mut self,
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        leg: CallId,
        attempt: u32,
    ) {
        if attempt >= ANSWER_ATTEMPTS || !self.legs.contains_key(&leg) {
            tracing::error!(%entry, %agent, "an agent's answer could not be recorded; ending their leg");
            self.legs.remove(&leg);
            self.kill(leg);
            return;
        }
        tracing::warn!(%entry, %agent, attempt, "recording an agent's answer failed; trying again");
        let again = Report::AnsweredAgain {
            queue,
            entry,
            agent,
            leg,
            attempt,
        };
        self.retry_later(attempt, again);
    }

    /// Deliver `report` to the loop after the delay for a step's `attempt` after a Redis
    /// error ([`store_retry_delay`]): the step is tried again then.
    fn retry_later(&mut self, attempt: u32, report: Report) {
        let reports = self.reports_tx.clone();
        let delay = store_retry_delay(attempt);
        self.tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = reports.send(report);
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
            } => {
                let answered = result.is_ok();
                let outcome = self
                    .on_agent_leg(&queue, &entry, &agent, leg.clone(), result)
                    .await;
                if answered && matches!(outcome, Err(StoreError::Redis(_))) {
                    self.answer_again(queue, entry, agent, leg, 0);
                    return;
                }
                (outcome, entry, agent)
            }
            Report::AnsweredAgain {
                queue,
                entry,
                agent,
                leg,
                attempt,
            } => {
                let outcome = self
                    .agent_answered(&queue, &entry, &agent, leg.clone())
                    .await;
                if matches!(outcome, Err(StoreError::Redis(_))) {
                    self.answer_again(queue, entry, agent, leg, attempt + 1);
                    return;
                }
                (outcome, entry, agent)
            }
            Report::BridgeFailed {
                queue,
                entry,
                agent,
                leg,
                failure,
            } => (
                self.bridge_failed(&queue, &entry, &agent, leg, failure)
                    .await,
                entry,
                agent,
            ),
            Report::StoreChanged => {
                self.routing.queues_changed();
                return;
            }
            Report::MediaTended(tended) => {
                if let Err(e) = self.on_media_tended(tended).await {
                    tracing::warn!(error = %e, "taking over callers failed");
                }
                return;
            }
            Report::HangUpWhenBack(leg) => {
                self.hang_up_when_back.insert(leg);
                return;
            }
            Report::MediaFailed(channel) => {
                let reports = self.reports_tx.clone();
                self.tasks.spawn(async move {
                    tokio::time::sleep(MEDIA_RETRY).await;
                    let _ = reports.send(Report::MediaAgain(channel));
                });
                return;
            }
            Report::MediaAgain(channel) => {
                if let Err(e) = self.restart_media(&channel).await {
                    tracing::warn!(%channel, error = %e, "restarting a caller's media failed");
                }
                return;
            }
            Report::CallsNotOnSwitch(calls) => {
                if let Err(e) = self.end_calls_not_on_switch(calls).await {
                    tracing::warn!(error = %e, "ending calls the switch no longer has failed");
                }
                return;
            }
            Report::FoundParked(parked) => {
                if let Err(e) = self.park(parked, 0).await {
                    tracing::warn!(error = %e, "taking in a caller found parked failed");
                }
                return;
            }
            Report::ParkAgain { parked, attempt } => {
                // Not if they hung up meanwhile.
                if self.held.contains(&parked.channel) {
                    if let Err(e) = self.park(parked, attempt).await {
                        tracing::warn!(error = %e, "taking in a caller failed");
                    }
                }
                return;
            }
            Report::EntryLeft { entry, ringing } => {
                self.stop_ringing(&entry, &ringing);
                self.routing.queues_changed();
                return;
            }
            Report::Booked(booked) => {
                self.routing.round_trip_booked(booked.trip);
                self.settle(&booked.offers, booked.made);
                for (uuid, leg, placed) in booked.rung {
                    self.track_leg(uuid, leg, std::future::ready(placed));
                }
                // Withdrawn while the trip rang for them: those legs are stopped now.
                for offer in &booked.offers {
                    if self.withdrawn_under_way.remove(&offer.entry) {
                        self.stop_ringing(&offer.entry, &offer.agents);
                    }
                }
                return;
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(%entry, %agent, error = %e, "offer outcome could not be recorded");
        }
        self.routing.changed();
    }
}
