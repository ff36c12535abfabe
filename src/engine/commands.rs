//! The loop's side of the engine handle: commands carried out and answered, and the
//! domain events from the bus that concern this daemon.
//!
//! Both come through the loop, because only it knows the legs and callers this daemon runs.

use tokio::sync::broadcast;

use super::handle::{Command, CommandError};
use super::Engine;
use crate::queue::{AgentId, EntryId};
use crate::store::{DomainEvent, EventKind, EventStream};

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
        }
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
