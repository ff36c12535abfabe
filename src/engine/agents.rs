//! Agents' states as this daemon changes them (feature codes from the phone, the daemon's
//! own steps), and the config's agents as Redis has them now.
//!
//! Changes made elsewhere reach the engine as events on the bus (see `commands`).

use super::Engine;
use crate::queue::{Agent, AgentId, AgentState};
use crate::store::{StateSource, StoreError};
use crate::switch::Pbx;

impl<P: Pbx> Engine<P> {
    pub(super) async fn set_state(
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

    pub(super) async fn on_agent_action(
        &mut self,
        who: &str,
        action: &str,
    ) -> Result<(), StoreError> {
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
        self.agent_state_changed().await
    }

    /// An agent's state changed on this daemon's doing: look for offers, and tell waiting
    /// callers at once whether callbacks are open, without waiting for the agents' stream.
    pub(super) async fn agent_state_changed(&mut self) -> Result<(), StoreError> {
        self.routing.changed();
        self.refresh_callbacks_open().await
    }

    /// The config's agents as Redis has them now.
    pub(super) async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.store
            .agents_named(&self.agent_ids, self.clock.now())
            .await
    }
}
