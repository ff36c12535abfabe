//! The loop's side of the engine handle: commands carried out and answered, and the
//! domain events from the bus that concern this daemon.
//!
//! Both come through the loop, because only it knows the legs and callers this daemon runs.

use tokio::sync::oneshot;

use super::arrivals::number_rules;
use super::callback::{Answer, OutsideAnswer};
use super::handle::{Command, CommandError};
use super::Engine;
use crate::config::AgentMode;
use crate::queue::{AgentId, Entry, EntryId, LineName, Offer, QueueName, Timestamp};
use crate::store::{
    CallbackCreated, DomainEvent, EventKind, EventStream, OfferOutcome, StoreError,
};
use crate::switch::Pbx;

impl<P: Pbx> Engine<P> {
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
                    self.routing.queues_changed();
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
            Command::AnswerCallback {
                queue,
                entry,
                agent,
                answer,
                reply,
            } => {
                self.answer_callback(queue, entry, agent, answer, reply)
                    .await
            }
            Command::Reload { config, reply } => {
                let reloaded = self.reload(config).await;
                let _ = reply.send(reloaded);
            }
            Command::TakeFromConsole {
                queue,
                entry,
                agent,
                reply,
            } => {
                let taken = self.take_from_console(&queue, &entry, &agent).await;
                let _ = reply.send(taken);
            }
            Command::DeclineInConsole {
                queue,
                entry,
                agent,
                reply,
            } => {
                let declined = self.decline_in_console(&queue, &entry, &agent).await;
                let _ = reply.send(declined);
            }
            Command::Drain { reply } => {
                if !self.is_draining() {
                    tracing::info!("draining: no new callers, callbacks, offers or timers");
                    self.drain.send_replace(true);
                }
                // Answered once no routing round trip is under way (see `finish_drain`).
                self.drains.push(reply);
            }
        }
    }

    /// Whether this daemon was asked to drain: then it takes no new callers or callbacks,
    /// makes no new offers and claims no timers.
    pub(super) fn is_draining(&self) -> bool {
        *self.drain.borrow()
    }

    /// Answer the drains asked for, once the loop has no routing round trip under way (it
    /// calls this only then): the offers those made are rung, and no other is made. The
    /// timers this daemon holds and its callers' media are handed back first, due at once
    /// for the daemons staying.
    pub(super) async fn finish_drain(&mut self) {
        // Each drain asked for hands back what is left: after a failure, the next one tries
        // again, and answers with how its own attempt went.
        for reply in std::mem::take(&mut self.drains) {
            let handed = async {
                self.hand_back_timers().await?;
                let callers = self.hand_back_media().await?;
                tracing::info!(callers_handed_back = callers, "drained");
                Ok::<_, StoreError>(())
            }
            .await;
            let _ = reply.send(handed.map_err(CommandError::from));
        }
    }

    /// Hand back the timers this daemon holds, in every scope it claims from.
    async fn hand_back_timers(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let (store, daemon) = (&self.store, self.options.daemon_id.as_str());
        let handed = futures_util::future::try_join_all(
            self.timer_scopes()
                .map(|scope| async move { store.release_timers(&scope, daemon, now).await }),
        )
        .await?;
        tracing::info!(
            timers_handed_back = handed.iter().sum::<usize>(),
            "timers handed back"
        );
        Ok(())
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
        if self.is_draining() {
            return Err(CommandError::Draining);
        }
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
            .create_callback(
                &entry,
                now,
                expires_at,
                not_before,
                line_config.callback.agent_mode == AgentMode::Console,
            )
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
        if not_before.is_none() {
            self.routing.changed();
        }
        Ok(entry.id)
    }

    /// An operator answers the offer of callback `entry` for `agent`
    /// ([`super::EngineHandle::accept_callback`]). Whoever holds the agent's leg answers:
    /// their whisper task, once it is recorded; this loop, for a phone still ringing.
    async fn answer_callback(
        &mut self,
        queue: QueueName,
        entry: EntryId,
        agent: AgentId,
        answer: Answer,
        reply: oneshot::Sender<Result<(), CommandError>>,
    ) {
        let leg = self
            .legs
            .iter()
            .find(|(_, l)| l.queue == queue && l.entry == entry && l.agent == agent)
            .map(|(_, l)| (l.answered, l.answers.clone()));
        let answered = match leg {
            // They hear the whisper: their task takes it as it takes a key.
            Some((_, Some(answers))) => {
                if let Err(e) = answers.try_send(OutsideAnswer { answer, reply }) {
                    // They answered themselves (or another command did) just now.
                    let _ = e
                        .into_inner()
                        .reply
                        .send(Err(CommandError::AlreadyAnswered { entry, agent }));
                }
                return;
            }
            Some((false, None)) => match answer {
                // The customer is dialed only with an agent on the line: accepting waits
                // for them to pick up, and is theirs to do then.
                Answer::Accept => Err(CommandError::NotAnswered { entry, agent }),
                Answer::Decline => self.decline_ringing(&queue, &entry, &agent).await,
            },
            // Not a leg of this daemon's callbacks: the store tells why it cannot be
            // answered here, or that it is another daemon's to answer.
            _ => Err(
                match self.store.callback_offered_to(&queue, &entry, &agent).await {
                    Ok(()) => CommandError::OtherDaemon { entry, agent },
                    Err(e) => e.into(),
                },
            ),
        };
        let _ = reply.send(answered);
    }

    /// An agent takes a callback from their console
    /// ([`super::EngineHandle::take_from_console`]): booked and offered to them alone in
    /// the store's atomic step, then their phone rings as for any offer.
    async fn take_from_console(
        &mut self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
    ) -> Result<(), CommandError> {
        if self.is_draining() {
            return Err(CommandError::Draining);
        }
        if !*self.switch_up.borrow() {
            return Err(CommandError::SwitchDown);
        }
        self.must_serve(agent, queue)?;
        let Some(ring_time) = self.config.queue(queue).map(|q| q.ring_time) else {
            return Err(CommandError::NotServing {
                agent: agent.clone(),
                queue: queue.clone(),
            });
        };
        let Some(found) = self.store.entry(queue, entry).await? else {
            return Err(CommandError::Taken {
                entry: entry.clone(),
            });
        };
        let now = self.clock.now();
        let offer = Offer {
            entry: entry.clone(),
            queue: queue.clone(),
            agents: vec![agent.clone()],
            ahead: Vec::new(),
        };
        match self
            .store
            .take_from_console(queue, entry, agent, now, ring_time)
            .await?
        {
            OfferOutcome::Offered => {
                tracing::info!(%queue, %entry, %agent, "callback taken from the console");
                self.ring(&found, &offer);
                for leg in self.legs.values_mut() {
                    if leg.entry == *entry && leg.agent == *agent {
                        leg.from_console = true;
                    }
                }
                self.routing.queues_changed();
                Ok(())
            }
            OfferOutcome::AgentNotFree(_) => Err(CommandError::AgentNotFree {
                agent: agent.clone(),
            }),
            OfferOutcome::EntryNotWaiting | OfferOutcome::EntryNotFirst => {
                Err(CommandError::Taken {
                    entry: entry.clone(),
                })
            }
            // A hold-off after a missed ring: another agent takes it meanwhile.
            OfferOutcome::HeldOff(_) => Err(CommandError::AgentNotFree {
                agent: agent.clone(),
            }),
        }
    }

    /// Only an agent of the callback's queue may take or decline it.
    fn must_serve(&self, agent: &AgentId, queue: &QueueName) -> Result<(), CommandError> {
        let serves = self
            .config
            .agent(agent)
            .is_some_and(|a| a.queues.iter().any(|s| s.queue == *queue));
        if serves {
            Ok(())
        } else {
            Err(CommandError::NotServing {
                agent: agent.clone(),
                queue: queue.clone(),
            })
        }
    }

    /// An agent declines a callback in their console
    /// ([`super::EngineHandle::decline_in_console`]).
    async fn decline_in_console(
        &mut self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
    ) -> Result<bool, CommandError> {
        self.must_serve(agent, queue)?;
        let eligible = self.eligible(queue).await?;
        let now = self.clock.now();
        let by_all = self
            .store
            .console_declined(queue, entry, agent, now, &eligible)
            .await?;
        tracing::info!(%queue, %entry, %agent, declined_by_all = by_all,
            "callback declined in the console");
        Ok(by_all)
    }

    /// Decline, for its agent, a callback whose phone still rings, as their whisper task
    /// would once they heard it: recorded first, then the phone stops.
    async fn decline_ringing(
        &mut self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
    ) -> Result<(), CommandError> {
        let eligible = self.eligible(queue).await?;
        let declined = self
            .store
            .callback_declined(
                queue,
                entry,
                agent,
                self.clock.now(),
                self.decline_hold_off(queue),
                &eligible,
                true,
            )
            .await?;
        tracing::info!(%entry, %agent, declined_by_all = declined.declined_by_all,
            "callback declined for a ringing agent");
        self.stop_ringing(entry, std::slice::from_ref(agent));
        self.routing.queues_changed();
        Ok(())
    }

    /// A domain event from the streams (this daemon's or another's). Agent changes are
    /// taken at the next tick, together; an offer that ended anywhere while phones rang for
    /// it (a queue's withdrawals) stops the phones this daemon rings for it.
    pub(super) fn on_domain_event(&mut self, event: DomainEvent) {
        match (&event.stream, event.event.kind) {
            (EventStream::Agents, _) => self.agents_changed = true,
            (EventStream::Withdrawals(_), EventKind::OfferWithdrawn) => {
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
