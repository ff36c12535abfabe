//! A new config taken in while the daemon runs (SIGHUP, `callbackd reload`): queues, lines,
//! agents, prompts, webhooks and tokens change without a call dropped.
//!
//! Callers and calls under way keep the settings they started with (their tasks hold
//! them); everything that starts from now on uses the new ones. What lives in connections
//! (the event socket, Redis, the API's address) needs a restart, which is said.

use std::sync::Arc;

use tokio::sync::watch;

use super::arrivals::media_plan;
use super::handle::CommandError;
use super::Engine;
use crate::config::Config;
use crate::switch::Pbx;

impl<P: Pbx> Engine<P> {
    /// Take `new` in. Refused, with nothing changed, when it drops a queue that still has
    /// callers or callbacks open: they would be left without agents or routing.
    pub(super) async fn reload(&mut self, new: Arc<Config>) -> Result<(), CommandError> {
        for old in &self.config.queues {
            if new.queue(&old.name).is_some() {
                continue;
            }
            let open = self.store.open_entries(&old.name).await?.len();
            if open > 0 {
                return Err(CommandError::ReloadRefused(format!(
                    "queue {} still has {open} open entries: remove its lines first, and \
                     the queue once they are served",
                    old.name
                )));
            }
        }
        let needs_restart: Vec<&str> = [
            (self.config.esl.address != new.esl.address, "[esl]"),
            (
                self.config.redis.redacted_url() != new.redis.redacted_url(),
                "[redis]",
            ),
            (
                self.config.http.as_ref().map(|h| h.listen) != new.http.as_ref().map(|h| h.listen),
                "[http] listen",
            ),
        ]
        .into_iter()
        .filter_map(|(changed, what)| changed.then_some(what))
        .collect();
        if !needs_restart.is_empty() {
            tracing::warn!(changed = ?needs_restart,
                "these settings apply at the next restart; the rest applies now");
        }
        self.store
            .register_agents(&new.agents, self.clock.now())
            .await?;
        self.plans = new
            .queues
            .iter()
            .map(|q| (q.name.clone(), Arc::new(media_plan(&new, &self.options, q))))
            .collect();
        // Callers waiting hold these: a queue that keeps offering callbacks keeps its own.
        let mut open = std::mem::take(&mut self.callbacks_open);
        self.callbacks_open = new
            .lines
            .iter()
            .filter(|l| l.offers_callbacks())
            .map(|l| {
                let sender = open
                    .remove(&l.queue)
                    .unwrap_or_else(|| watch::Sender::new(false));
                (l.queue.clone(), sender)
            })
            .collect();
        self.router = new.router();
        self.agent_ids = new.agents.iter().map(|a| a.id.clone()).collect();
        self.config = new.clone();
        self.config_tx.send_replace(new);
        self.agents_changed = true;
        self.routing.changed();
        tracing::info!(
            queues = self.config.queues.len(),
            lines = self.config.lines.len(),
            agents = self.config.agents.len(),
            "config reloaded"
        );
        Ok(())
    }
}
