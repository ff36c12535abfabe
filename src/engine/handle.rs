//! The engine's door for what runs beside it (an HTTP API, metrics, webhooks, a console):
//! commands the loop answers, and the bus of domain events.
//!
//! Commands go through the loop rather than to the store directly because only the loop
//! knows the legs ringing for a callback, which a cancel or a decline must stop, the agents'
//! whispers, which an accept must reach, and the routing under way, which a drain waits
//! for; the bus carries what the Redis streams get, so a subscriber sees every daemon's
//! changes, in order.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::callback::Answer;
use crate::callback::NumberRejected;
use crate::latency::{LatencyHistogram, DISPATCH_BUCKETS};
use crate::queue::{AgentId, AgentState, EntryId, LineName, QueueName, Timestamp};
use crate::store::{DomainEvent, StateSource, StoreError};

/// How many commands may wait for the loop before senders wait too.
pub(super) const COMMAND_QUEUE: usize = 256;
/// How many domain events a slow subscriber may fall behind before it is told it lagged
/// (and reads what it missed from the streams by id). While anyone subscribes, the bus
/// keeps this many events in memory whether anyone lags or not, about 0.7 KiB each:
/// 4,096 cost the daemon 3 MiB.
pub(super) const BUS_CAPACITY: usize = 1024;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The engine stopped (or is stopping).
    #[error("the engine is not running")]
    EngineGone,
    /// The store refused it: an unknown entry or agent, or a transition the rules forbid.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The daemon is draining ([`EngineHandle::drain`]): it takes no new callbacks, which
    /// the daemons staying take instead.
    #[error("this daemon is draining and takes no new callbacks")]
    Draining,
    /// The config has no such line: a callback is called from its line's caller ID.
    #[error("no line {0} in the config")]
    UnknownLine(LineName),
    /// A callback is routed in the queue its line feeds, and called from that line.
    #[error("line {line} feeds queue {feeds}, not {queue}")]
    LineNotForQueue {
        line: LineName,
        queue: QueueName,
        feeds: QueueName,
    },
    /// Callbacks are off on the line, or it has no outbound caller ID to call from.
    #[error("line {0} offers no callbacks")]
    NoCallbacks(LineName),
    /// The number is not one the line may call back (the reason is part of the message,
    /// not a `source`, so error chains print it once).
    #[error("{number:?} cannot be called back: {reason}")]
    BadNumber {
        number: String,
        reason: NumberRejected,
    },
    /// The number already has a callback pending in the queue, `entry`: it keeps its place
    /// and the customer is called once.
    #[error("a callback for this number is pending already: entry {entry}")]
    Duplicate { entry: EntryId },
    /// The agent's phone still rings for the offer: nobody has heard whom to call yet, and
    /// the customer is dialed only once an agent is on the line.
    #[error("agent {agent} has not answered the offer of {entry} yet")]
    NotAnswered { entry: EntryId, agent: AgentId },
    /// The agent answered the offer already (a key, silence through the whisper, a hangup,
    /// or an earlier command): one answer per offer.
    #[error("agent {agent} has answered the offer of {entry} already")]
    AlreadyAnswered { entry: EntryId, agent: AgentId },
    /// Another daemon sharing the store rings the agent for the offer: only it can stop
    /// that phone or speak for the agent in its whisper, so ask its handle.
    #[error("another daemon rings agent {agent} for {entry}")]
    OtherDaemon { entry: EntryId, agent: AgentId },
    /// Another agent took the callback from their console first (or it left the queue
    /// meanwhile).
    #[error("callback {entry} was taken by another agent or left the queue")]
    Taken { entry: EntryId },
    /// The agent is not free to take a callback now (on a call, ringing, away).
    #[error("agent {agent} is not free to take a callback")]
    AgentNotFree { agent: AgentId },
    /// The agent does not serve the callback's queue.
    #[error("agent {agent} does not serve queue {queue}")]
    NotServing { agent: AgentId, queue: QueueName },
    /// The switch is out of reach: no phone can ring now.
    #[error("the switch is out of reach")]
    SwitchDown,
    /// A new config was not taken in (the old one stays): why.
    #[error("the config was not reloaded: {0}")]
    ReloadRefused(String),
}

/// What the engine counts about itself, for `/metrics`.
#[derive(Debug)]
pub struct EngineStats {
    /// Times the switch connection dropped.
    pub switch_lost: AtomicU64,
    /// Resyncs with the switch: after a (re)connect or an event gap.
    pub resyncs: AtomicU64,
    /// Switch events read.
    pub switch_events: AtomicU64,
    /// Times events were lost while the connection stayed up (each one resyncs).
    pub event_gaps: AtomicU64,
    /// How late the last timer tick ran, µs: how far behind the loop is.
    pub loop_lag_us: AtomicU64,
    /// Timer ticks the loop has taken: a count that stops when the loop is stuck, which is
    /// what a service manager's watchdog follows.
    pub loop_ticks: AtomicU64,
    /// From the end of an agent's call to the originate of their next ring.
    pub dispatch_latency: LatencyHistogram,
}

impl Default for EngineStats {
    fn default() -> Self {
        Self {
            switch_lost: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            switch_events: AtomicU64::new(0),
            event_gaps: AtomicU64::new(0),
            loop_lag_us: AtomicU64::new(0),
            loop_ticks: AtomicU64::new(0),
            dispatch_latency: LatencyHistogram::new(DISPATCH_BUCKETS),
        }
    }
}

/// What a command asks of the loop, with where its answer goes.
#[derive(Debug)]
pub(super) enum Command {
    CancelCallback {
        queue: QueueName,
        entry: EntryId,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    SetAgentState {
        agent: AgentId,
        state: AgentState,
        source: StateSource,
        reply: oneshot::Sender<Result<AgentState, CommandError>>,
    },
    CreateCallback {
        queue: QueueName,
        line: LineName,
        number: String,
        earliest: Option<Timestamp>,
        reply: oneshot::Sender<Result<EntryId, CommandError>>,
    },
    AnswerCallback {
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        answer: Answer,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    Drain {
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    TakeFromConsole {
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    Reload {
        config: Arc<crate::config::Config>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    DeclineInConsole {
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        reply: oneshot::Sender<Result<bool, CommandError>>,
    },
}

/// A cheap, cloneable handle on a running engine. Its commands are answered once the
/// engine has carried them out.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    commands: mpsc::Sender<Command>,
    bus: broadcast::Sender<DomainEvent>,
    draining: watch::Receiver<bool>,
    switch_up: watch::Receiver<bool>,
    config: watch::Receiver<Arc<crate::config::Config>>,
    stats: Arc<EngineStats>,
}

impl EngineHandle {
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        bus: broadcast::Sender<DomainEvent>,
        draining: watch::Receiver<bool>,
        switch_up: watch::Receiver<bool>,
        config: watch::Receiver<Arc<crate::config::Config>>,
        stats: Arc<EngineStats>,
    ) -> Self {
        Self {
            commands,
            bus,
            draining,
            switch_up,
            config,
            stats,
        }
    }

    /// The config in force now (the last one [`EngineHandle::reload`] took in).
    pub fn config(&self) -> Arc<crate::config::Config> {
        self.config.borrow().clone()
    }

    /// The config in force, and each one a reload takes in after it.
    pub fn watch_config(&self) -> watch::Receiver<Arc<crate::config::Config>> {
        self.config.clone()
    }

    /// Take in a new, validated config (see `engine::reload`): refused, with the old one
    /// kept, when it drops a queue that still has entries open.
    pub async fn reload(&self, config: Arc<crate::config::Config>) -> Result<(), CommandError> {
        self.ask(|reply| Command::Reload { config, reply }).await?
    }

    /// The engine's own counts, shared with it.
    pub fn stats(&self) -> Arc<EngineStats> {
        self.stats.clone()
    }

    /// Whether the engine's connection to the switch is up (it has resynced since it
    /// last heard the connection drop).
    pub fn switch_connected(&self) -> bool {
        *self.switch_up.borrow()
    }

    /// Withdraw a callback that is not being dialed yet (event `canceled`); every agent
    /// phone ringing for it stops, on whichever daemon placed the leg.
    pub async fn cancel_callback(
        &self,
        queue: QueueName,
        entry: EntryId,
    ) -> Result<(), CommandError> {
        self.ask(|reply| Command::CancelCallback {
            queue,
            entry,
            reply,
        })
        .await?
    }

    /// Set an agent's state by the same rules as the phone's feature codes; returns the
    /// state they were in.
    pub async fn set_agent_state(
        &self,
        agent: AgentId,
        state: AgentState,
        source: StateSource,
    ) -> Result<AgentState, CommandError> {
        self.ask(|reply| Command::SetAgentState {
            agent,
            state,
            source,
            reply,
        })
        .await?
    }

    /// Ask for a callback with no call in the queue (a CRM's, an API's): `number` is
    /// judged by `line`'s rules as a number keyed on the phone is (its country for national
    /// numbers, its dialing policy), before anything is written. The line must feed `queue`
    /// and offer callbacks. The callback joins the queue at the back, as a caller arriving
    /// now would, and is routed and dialed as one a caller asked for; with `earliest`, it
    /// is not offered before then and takes its place at the back then. Its window (the
    /// line's expiry) runs from that place. Returns the new entry's id; a number with a
    /// callback pending in the queue already is [`CommandError::Duplicate`], decided in the
    /// same atomic step as the creation, so daemons asked at once create it once.
    pub async fn create_callback(
        &self,
        queue: QueueName,
        line: LineName,
        number: &str,
        earliest: Option<Timestamp>,
    ) -> Result<EntryId, CommandError> {
        self.ask(|reply| Command::CreateCallback {
            queue,
            line,
            number: number.to_owned(),
            earliest,
            reply,
        })
        .await?
    }

    /// Accept the callback `entry` offered to `agent` for them, as if they had pressed 1 on
    /// its whisper: their side goes on to dial the customer. Only while they hear the
    /// whisper: a phone still ringing is [`CommandError::NotAnswered`] (nobody would be on
    /// the line when the customer answers), and the answer is theirs to give once they
    /// pick up. Answered once the acceptance is recorded.
    pub async fn accept_callback(
        &self,
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
    ) -> Result<(), CommandError> {
        self.answer(queue, entry, agent, Answer::Accept).await
    }

    /// Decline the callback `entry` offered to `agent` for them, as if they had pressed 2
    /// on its whisper: it goes to the next agent, or is closed (`declined_by_all`) when
    /// every agent has declined it. A phone still ringing for it stops. Answered once the
    /// decline is recorded.
    pub async fn decline_callback(
        &self,
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
    ) -> Result<(), CommandError> {
        self.answer(queue, entry, agent, Answer::Decline).await
    }

    async fn answer(
        &self,
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        answer: Answer,
    ) -> Result<(), CommandError> {
        self.ask(|reply| Command::AnswerCallback {
            queue,
            entry,
            agent,
            answer,
            reply,
        })
        .await?
    }

    /// `agent` clicked Call on callback `entry` in their console: the first agent to do so
    /// wins it (across daemons); their phone rings, and once they answer the customer is
    /// dialed, with no whisper to decide on. Answered once the offer is made and the
    /// phone rings; a callback someone else took is [`CommandError::Taken`].
    pub async fn take_from_console(
        &self,
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
    ) -> Result<(), CommandError> {
        self.ask(|reply| Command::TakeFromConsole {
            queue,
            entry,
            agent,
            reply,
        })
        .await?
    }

    /// `agent` clicked Decline on callback `entry` in their console: it leaves their list
    /// and stays in the others'; true when every eligible agent has now declined it and it
    /// closed (`declined_by_all`).
    pub async fn decline_in_console(
        &self,
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
    ) -> Result<bool, CommandError> {
        self.ask(|reply| Command::DeclineInConsole {
            queue,
            entry,
            agent,
            reply,
        })
        .await?
    }

    /// Let the daemon go quietly (before a shutdown or an upgrade): from now on it takes no
    /// new callers (they park for the daemons staying, or for the next start, which picks
    /// them up) and no new callbacks, makes no new offers and claims no more timers. Once
    /// the routing round trips under way have finished, the timers it holds and the leases
    /// on its callers' media are handed back, due at once for the others (a caller hears
    /// what plays until one takes them over), and the drain is answered. Calls already ringing
    /// or bridged, and the whispers agents hear, go on to their end. There is no undrain:
    /// a drained daemon is stopped and started again.
    pub async fn drain(&self) -> Result<(), CommandError> {
        self.ask(|reply| Command::Drain { reply }).await?
    }

    /// Whether the daemon was asked to drain (even if not answered yet).
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Every domain event from now on, this daemon's and the others' (from the Redis
    /// streams), perhaps with a few from just before: the queues' streams are read only
    /// while someone subscribes, starting a few seconds back (see `store::feed`), so a
    /// subscriber skips what it has by stream id. One that falls more than the bus's
    /// capacity behind gets `Lagged` and can read what it missed from the streams by id.
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.bus.subscribe()
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| CommandError::EngineGone)?;
        answer.await.map_err(|_| CommandError::EngineGone)
    }
}
