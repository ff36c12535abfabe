//! The tick: due timers claimed and acted on (max wait, offer timeouts, callback expiry and
//! retries, the ends of wrap-ups and hold-offs), finished tasks reaped, streams trimmed,
//! leases of vanished timers swept.
//!
//! Timers live in Redis under a lease, so whichever daemon claims one first acts on it.

use std::time::Duration;

use super::legs::CALLER_HANGUP_WAIT;
use super::Engine;
use crate::config::ExitAction;
use crate::queue::{AgentState, CloseReason, EntryKind, EntryStatus, QueueName};
use crate::store::{MissRules, NoAnswerCause, StateSource, StoreError, Timer, TimerScope};
use crate::switch::Pbx;

/// How often the event streams are trimmed to the configured length.
const TRIM_EVERY: Duration = Duration::from_secs(60);
/// How often the agents' calls are checked against the switch's channels, besides every
/// resync: a daemon that died during a call may never come back to end it.
const AUDIT_EVERY: Duration = Duration::from_secs(30);

/// A claimed timer not completed within this time comes due again for any daemon.
const TIMER_LEASE: Duration = Duration::from_secs(30);

impl<P: Pbx> Engine<P> {
    pub(super) async fn on_tick(&mut self) {
        while let Some(ended) = self.tasks.try_join_next() {
            match ended {
                Err(e) if e.is_panic() => {
                    // Maybe a routing round trip, whose report will never come: stop waiting.
                    tracing::error!(error = %e, "an engine task panicked");
                    self.routing.round_trips_lost();
                    self.withdrawn_under_way.clear();
                    // Or a round of lease renewals, whose report will never come either.
                    self.tending_media = false;
                }
                _ => {}
            }
        }
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
            for scope in self.timer_scopes().collect::<Vec<_>>() {
                if let Err(e) = self.store.sweep_timer_leases(&scope).await {
                    tracing::warn!(?scope, error = %e, "sweeping timer leases failed");
                }
            }
        }
        let owed = self
            .resync_owed
            .is_some_and(|at| std::time::Instant::now() >= at);
        if owed && *self.switch_up.borrow() {
            self.run_resync().await;
        }
        if self.audited.elapsed() >= AUDIT_EVERY {
            self.audit_agent_calls(self.clock.now(), None);
        }
        if !self.is_draining() && self.media_tended.elapsed() >= self.media_renewal() {
            self.media_tended = std::time::Instant::now();
            self.tend_media();
        }
        let now = self.clock.now();
        // A draining daemon leaves its timers to the daemons staying.
        let scopes = self.timer_scopes().filter(|_| !self.is_draining());
        // One round trip for the whole tick: the loop is not taking signals meanwhile.
        let (store, daemon) = (&self.store, self.options.daemon_id.as_str());
        let claims = futures_util::future::join_all(scopes.map(|scope| async move {
            let due = store
                .claim_due_timers(&scope, daemon, now, TIMER_LEASE, 100)
                .await;
            (scope, due)
        }));
        let claims = claims.await;
        if std::mem::take(&mut self.agents_changed) {
            self.routing.changed();
            if let Err(e) = self.refresh_callbacks_open().await {
                tracing::warn!(error = %e, "reading agent states failed");
                self.agents_changed = true;
            }
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
                    .complete_timer(&timer, self.options.daemon_id.as_str())
                    .await;
            }
        }
    }

    /// Every timer set this daemon claims from: its queues', and the agents'.
    pub(super) fn timer_scopes(&self) -> impl Iterator<Item = TimerScope> + '_ {
        self.config
            .queues
            .iter()
            .map(|q| TimerScope::Queue(q.name.clone()))
            .chain([TimerScope::Agents])
    }

    async fn on_timer(&mut self, timer: &Timer) -> Result<(), StoreError> {
        let now = self.clock.now();
        // Every timer but the end of a wrap-up or of a hold-off may put an entry back in a
        // queue. A hold-off's end only makes an entry offerable again, which the routing
        // pass this ends with finds.
        if !matches!(timer, Timer::WrapUpEnd { .. } | Timer::HoldOffEnd { .. }) {
            self.routing.forget_next_in_line();
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
                    Ok(AgentState::WrapUp) => self.routing.agents_freed(1),
                    Ok(_) | Err(StoreError::Rule(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.routing.changed();
        Ok(())
    }
}
