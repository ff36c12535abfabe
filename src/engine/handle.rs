//! The engine's door for what runs beside it (an HTTP API, metrics, webhooks, a console):
//! commands the loop answers, and the bus of domain events.
//!
//! Commands go through the loop rather than to the store directly because only the loop
//! knows the legs ringing for a callback, which a cancel must stop; the bus carries what
//! the Redis streams get, so a subscriber sees every daemon's changes, in order.

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::queue::{AgentId, AgentState, EntryId, QueueName};
use crate::store::{DomainEvent, StateSource, StoreError};

/// How many commands may wait for the loop before senders wait too.
pub(super) const COMMAND_QUEUE: usize = 256;
/// How many domain events a slow subscriber may fall behind before it is told it lagged.
pub(super) const BUS_CAPACITY: usize = 4096;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The engine stopped (or is stopping).
    #[error("the engine is not running")]
    EngineGone,
    /// The store refused it: an unknown entry or agent, or a transition the rules forbid.
    #[error(transparent)]
    Store(#[from] StoreError),
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
}

/// A cheap, cloneable handle on a running engine. Its commands are answered once the
/// engine has carried them out.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    commands: mpsc::Sender<Command>,
    bus: broadcast::Sender<DomainEvent>,
}

impl EngineHandle {
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        bus: broadcast::Sender<DomainEvent>,
    ) -> Self {
        Self { commands, bus }
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

    /// Every domain event from now on, this daemon's and the others' (from the Redis
    /// streams). A subscriber that falls more than the bus's capacity behind gets
    /// `Lagged` and can read what it missed from the streams by id.
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
