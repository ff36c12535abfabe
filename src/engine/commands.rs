//! The loop's side of the engine handle: commands carried out and answered, and the
//! domain events from the bus that concern this daemon.
//!
//! Both come through the loop, because only it knows the legs and callers this daemon runs.

use tokio::sync::broadcast;

use super::arrivals::number_rules;
use super::handle::{Command, CommandError};
use super::Engine;
use crate::queue::{AgentId, Entry, EntryId, LineName, QueueName, Timestamp};
use crate::store::{CallbackCreated, DomainEvent, EventKind, EventStream};

impl Engine {
    /// Carry out a command from an [`super::EngineHandle`] and answer it.
    pub(super) async fn on_command(&mut self, command: Command) {
        match command {
            Command::CancelCallback {
                queue,
                entry,
                reply,
            } => {
                let now = self.clock.now();
                let canceled = self.store.callback_cancel(&queue, &entry, now).await;
                if canceled.is_ok() {
                    tracing::info!(%queue, %entry, "callback canceled by an operator");
                    // Its legs stop when the `canceled` event comes back on the bus, as
                    // they do on every other daemon.
                    self.forget_next_in_line();
                    self.dirty = true;
                }
                let _ = reply.send(canceled.map(drop).map_err(CommandError::from));
            }
            Command::SetAgentState {
                agent,
                state,
                source,
                reply,
            } => {
                let now = self.clock.now();
                let changed = self.store.set_agent_state(&agent, state, now, source).await;
                if changed.is_ok() {
                    if let Err(e) = self.agent_state_changed().await {
                        tracing::warn!(error = %e, "reading agent states failed");
                    }
                }
                let _ = reply.send(changed.map_err(CommandError::from));
            }
            Command::CreateCallback {
                queue,
                line,
                number,
                earliest,
                reply,
            } => {
                let created = self.create_callback(queue, line, number, earliest).await;
                let _ = reply.send(created);
            }
        }
    }

    /// Create a callback for an operator's tool ([`super::EngineHandle::create_callback`]).
    /// Everything that can be refused without the store is, before it is asked.
    async fn create_callback(
        &mut self,
        queue: QueueName,
        line: LineName,
        number: String,
        earliest: Option<Timestamp>,
    ) -> Result<EntryId, CommandError> {
        let line_config = self
            .config
            .line(&line)
            .ok_or_else(|| CommandError::UnknownLine(line.clone()))?;
        if line_config.queue != queue {
            return Err(CommandError::LineNotForQueue {
                feeds: line_config.queue.clone(),
                line,
                queue,
            });
        }
        let rules = line_config
            .offers_callbacks()
            .then(|| number_rules(line_config))
            .flatten()
            .ok_or_else(|| CommandError::NoCallbacks(line.clone()))?;
        let number = rules
            .presented(&number)
            .map_err(|reason| CommandError::BadNumber { number, reason })?;
        let now = self.clock.now();
        // An earliest time already past is no reason to wait.
        let not_before = earliest.filter(|t| *t > now);
        let from = not_before.unwrap_or(now);
        let expires_at = from.plus(line_config.callback.expiry);
        let entry = Entry::callback(queue, line, number, now, from);
        match self
            .store
            .create_callback(&entry, now, expires_at, not_before)
            .await?
        {
            CallbackCreated::Created => {}
            CallbackCreated::Duplicate { existing } => {
                return Err(CommandError::Duplicate { entry: existing })
            }
        }
        tracing::info!(queue = %entry.queue, entry = %entry.id, not_before = ?not_before,
            "callback created by an operator");
        // Offered as a new arrival is, by a routing pass; one that waits is looked at when
        // its timer comes due.
        self.dirty |= not_before.is_none();
        Ok(entry.id)
    }

    /// A domain event from the streams (this daemon's or another's). Agent changes are
    /// taken at the next tick, together; a callback withdrawn or declined by all anywhere
    /// stops the phones this daemon rings for it.
    pub(super) fn on_domain_event(
        &mut self,
        event: Result<DomainEvent, broadcast::error::RecvError>,
    ) {
        let event = match event {
            Ok(event) => event,
            // Events were missed: whatever they said about agents is read afresh.
            Err(_) => {
                self.agents_changed = true;
                return;
            }
        };
        match (&event.stream, event.event.kind) {
            (EventStream::Agents, _) => self.agents_changed = true,
            (
                EventStream::Queue(_),
                EventKind::Canceled | EventKind::Expired | EventKind::DeclinedByAll,
            ) => {
                let Some(entry) = event
                    .event
                    .field("entry")
                    .and_then(|e| EntryId::new(e).ok())
                else {
                    return;
                };
                let ringing: Vec<AgentId> = self
                    .legs
                    .values()
                    .filter(|l| l.entry == entry && !l.answered)
                    .map(|l| l.agent.clone())
                    .collect();
                self.stop_ringing(&entry, &ringing);
            }
            _ => {}
        }
    }
}
