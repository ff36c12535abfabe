//! The calls the engine placed or bridged: an agent leg answered or missed, the bridge to
//! the waiting caller, a callback answered, and the hangups of callers and legs.
//!
//! Each outcome is written to the store first; only then are legs stopped or tasks started.

use std::time::Duration;

use tokio::sync::mpsc;

use super::callback::AgentCallback;
use super::{Engine, Report};
use crate::queue::{
    AgentId, CloseReason, EndedCall, EntryId, EntryKind, EntryStatus, QueueError, QueueName,
};
use crate::store::{Answered, MissRules, NoAnswerCause, StoreError};
use crate::switch::{CallId, HangupCause, Pbx, SwitchError};

/// How long a call ended by its agent leg's hangup is remembered, so that its caller's
/// hangup (which follows) costs nothing.
pub(super) const CALLER_HANGUP_WAIT: Duration = Duration::from_secs(60);

/// Why a bridge to the agent who answered failed, and whether the caller is still there.
#[derive(Debug)]
pub(super) struct BridgeFailure {
    caller: CallId,
    error: SwitchError,
    /// The switch has no channel of the caller's left: they hung up, maybe while the event
    /// saying so could not be handled.
    caller_gone: bool,
}

impl BridgeFailure {
    /// Ask the switch, after `error`, whether `caller` is still there.
    async fn settle<P: Pbx>(switch: &P, caller: CallId, error: SwitchError) -> Self {
        // Out of reach, the switch tells nothing: the resync on reconnect settles the caller.
        let caller_gone = !error.unreachable()
            && switch
                .calls()
                .await
                .is_ok_and(|rows| !rows.iter().any(|row| row.id == caller));
        Self {
            caller,
            error,
            caller_gone,
        }
    }
}

impl<P: Pbx> Engine<P> {
    pub(super) async fn on_caller_hangup(
        &mut self,
        channel: CallId,
        queue: &str,
    ) -> Result<(), StoreError> {
        if let Some(media) = self.callers.remove(&channel) {
            media.leave();
        }
        self.held.remove(&channel);
        let (Ok(queue), Ok(id)) = (QueueName::new(queue), EntryId::new(channel.as_str())) else {
            return Ok(());
        };
        if self.callers_whose_call_ended.remove(&channel).is_some() {
            return Ok(());
        }
        // Talking to an agent this daemon rang: the call is over, and ends with the agent's
        // leg, which the switch hangs up with a bridged caller and this daemon with one
        // still to be bridged. Freed before the leg is gone, the agent could be rung while
        // their phone still has it.
        let talking_to = self
            .legs
            .iter_mut()
            .find(|(_, l)| l.answered && l.caller.as_ref() == Some(&channel));
        if let Some((leg, info)) = talking_to {
            info.caller = None;
            let leg = leg.clone();
            self.kill(leg);
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
                        self.routing.entry_abandoned(&id);
                    }
                    Err(StoreError::Rule(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            // Another daemon's agent leg (or one this daemon no longer holds): their call
            // ends with that leg, seen by the daemon holding it, or by an audit should it be
            // gone. A callback outlives its caller's channel: a requester whose hangup comes
            // after their callback connected (a quick agent, a long confirmation) ends
            // nobody's call.
            EntryStatus::Connected { .. }
            | EntryStatus::Dialing { .. }
            | EntryStatus::RetryWait { .. } => {}
            EntryStatus::Closed { .. } => {}
        }
        self.routing.changed();
        Ok(())
    }

    pub(super) async fn on_leg_hangup(
        &mut self,
        leg: CallId,
        cause: &str,
    ) -> Result<(), StoreError> {
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
                    true,
                )
                .await?;
            self.kill(dialed.agent_leg);
            self.routing.changed();
            return Ok(());
        }
        self.hang_up_when_back.remove(&leg);
        self.leg_gone(&leg).await?;
        let Some(info) = self.legs.remove(&leg) else {
            return Ok(());
        };
        // A leg that never answered is reported by its originate's result instead.
        if let (true, Some(caller)) = (info.answered, info.caller) {
            // It was bridged to a waiting caller: that call is over.
            self.callers_whose_call_ended
                .insert(caller, std::time::Instant::now());
            self.call_ended(EndedCall {
                queue: info.queue,
                agent: info.agent,
                entry: info.entry,
            });
        } else if info.answered {
            self.agent_call_over(EndedCall {
                queue: info.queue,
                agent: info.agent,
                entry: info.entry,
            })
            .await?;
        }
        Ok(())
    }

    /// An agent's call that is not a live caller's is over: a callback they talked on is
    /// completed. Talking or not (a callback whose customer did not answer, and whose leg
    /// could not be hung up then), the end frees them only while they are still on it.
    pub(super) async fn agent_call_over(&mut self, call: EndedCall) -> Result<(), StoreError> {
        let entry = self.store.entry(&call.queue, &call.entry).await?;
        let talking = entry.is_some_and(|e| {
            matches!(e.kind, EntryKind::Callback(_))
                && matches!(&e.status, EntryStatus::Connected { agent, .. } if *agent == call.agent)
        });
        if talking {
            let now = self.clock.now();
            self.store
                .callback_completed(&call.queue, &call.entry, &call.agent, now)
                .await?;
        } else {
            // A whisper declined while its leg could not be hung up kept the agent's
            // booking for as long as the leg was up.
            let agent = std::slice::from_ref(&call.agent);
            self.store.release_agents(&call.entry, agent).await?;
        }
        self.call_ended(call);
        Ok(())
    }

    /// An agent leg's originate finished: answered, or not taken.
    pub(super) async fn on_agent_leg(
        &mut self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        leg: CallId,
        result: Result<CallId, SwitchError>,
    ) -> Result<(), StoreError> {
        if self.legs_ending.contains_key(&leg) {
            // Stopped while it rang: answered after all, it is hung up again; failed, it
            // is gone, and its agent's booking with it.
            return match result {
                Ok(_) => {
                    self.kill(leg);
                    Ok(())
                }
                Err(e) if e.unreachable() => {
                    self.hang_up_when_back.insert(leg);
                    Ok(())
                }
                Err(_) => self.leg_gone(&leg).await,
            };
        }
        match result {
            Ok(_) => self.agent_answered(queue, entry, agent, leg).await,
            Err(e) => {
                self.legs.remove(&leg);
                self.routing.forget_next_in_line();
                if e.unreachable() {
                    self.leg_in_doubt(queue, entry, agent, leg, &e).await
                } else {
                    self.agent_missed(queue, entry, agent, &e).await
                }
            }
        }
    }

    pub(super) async fn agent_answered(
        &mut self,
        queue: &QueueName,
        entry_id: &EntryId,
        agent: &AgentId,
        leg: CallId,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let caller = self.legs.get(&leg).and_then(|l| l.caller.clone());
        let Some(channel) = caller else {
            return self.callback_answered(queue, entry_id, agent, leg).await;
        };
        match self.store.connected(queue, entry_id, agent, now).await {
            Ok(Answered::Connected) => {}
            Ok(Answered::NowACallback) => {
                return self.callback_answered(queue, entry_id, agent, leg).await;
            }
            Err(StoreError::Rule(
                QueueError::NotOfferedTo { .. } | QueueError::EntryStatus { .. },
            )) => {
                // Another ring-all agent won, or the caller left meanwhile.
                self.end_leg(leg);
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
                switch.stop_media(&channel).await?;
                switch.bridge(&channel, &leg).await
            }
            .await;
            if let Err(error) = bridged {
                let failure = BridgeFailure::settle(&switch, channel, error).await;
                let _ = reports.send(Report::BridgeFailed {
                    queue,
                    entry,
                    agent,
                    leg,
                    failure,
                });
            }
        });
        Ok(())
    }

    /// The caller could not be bridged to the agent who answered: the caller waits again at
    /// their place, with their media back on, or is closed when gone. The agent's leg is
    /// hung up and the agent stays on it until its end is seen (now, or after the switch
    /// is back): freed before, they could be rung while their phone still has it.
    pub(super) async fn bridge_failed(
        &mut self,
        queue: &QueueName,
        entry_id: &EntryId,
        agent: &AgentId,
        leg: CallId,
        failure: BridgeFailure,
    ) -> Result<(), StoreError> {
        let BridgeFailure {
            caller,
            error,
            caller_gone,
        } = failure;
        tracing::warn!(entry = %entry_id, %agent, %error, caller_gone,
            "bridge failed; the caller waits again at their place");
        // Not bridged, so not ended with the agent's leg either: their own hangup counts.
        self.callers_whose_call_ended.remove(&caller);
        self.routing.forget_next_in_line();
        let now = self.clock.now();
        self.store
            .bridge_failed(queue, entry_id, agent, now)
            .await?;
        // A leg whose end was seen already ended the agent's call.
        if let Some(info) = self.legs.get_mut(&leg) {
            info.caller = None;
            self.kill(leg);
        }
        if caller_gone {
            return self.on_caller_hangup(caller, queue.as_str()).await;
        }
        if let Some(entry) = self.store.entry(queue, entry_id).await? {
            self.take_over(queue, vec![entry]).await?;
        }
        Ok(())
    }

    /// An agent answered the offer of a callback: they hear whom to call, in a task.
    async fn callback_answered(
        &mut self,
        queue: &QueueName,
        entry_id: &EntryId,
        agent: &AgentId,
        leg: CallId,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let found = self.store.entry(queue, entry_id).await?;
        let Some((EntryKind::Callback(request), line)) = found.map(|e| (e.kind, e.line)) else {
            self.end_leg(leg);
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
                self.end_leg(leg);
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
        leg: CallId,
        request: crate::queue::CallbackRequest,
        line: &crate::queue::LineName,
    ) -> Result<(), StoreError> {
        let Some(line) = self.config.line(line).cloned() else {
            self.kill(leg);
            return Ok(());
        };
        let eligible = self.eligible(queue).await?;
        let (answers_tx, answers) = mpsc::channel(1);
        let mut taken_from_console = false;
        if let Some(info) = self.legs.get_mut(&leg) {
            info.answers = Some(answers_tx);
            taken_from_console = info.from_console;
        }
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
            decline_hold_off: self.decline_hold_off(queue),
            answers,
            leg_left_up: std::sync::atomic::AtomicBool::new(false),
            taken_from_console,
        };
        let reports = self.reports_tx.clone();
        self.tasks.spawn(async move {
            if let Some(leg) = task.run().await {
                let _ = reports.send(Report::HangUpWhenBack(leg));
            }
            let _ = reports.send(Report::StoreChanged);
        });
        Ok(())
    }

    /// The agents who could still take a callback of `queue`: once all of them declined
    /// it, nobody will. Agents logged out or taking transfers only count as having declined.
    pub(super) async fn eligible(&self, queue: &QueueName) -> Result<Vec<AgentId>, StoreError> {
        Ok(self
            .agents()
            .await?
            .into_iter()
            .filter(|a| a.takes_calls_for(queue))
            .map(|a| a.id)
            .collect())
    }

    /// How long a decline holds its agent off a callback of `queue`.
    pub(super) fn decline_hold_off(&self, queue: &QueueName) -> Duration {
        self.config
            .queue(queue)
            .map_or(Duration::ZERO, |q| q.hold_off.decline)
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

    /// The switch went out of reach while an agent's leg rang: it may ring on, or have
    /// been answered. The caller waits again at once (their media restarts with the
    /// resync), but the agent stays booked until the leg is found gone, so no daemon rings
    /// them meanwhile; the booking's own end is the backstop should this daemon die.
    async fn leg_in_doubt(
        &mut self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        leg: CallId,
        error: &SwitchError,
    ) -> Result<(), StoreError> {
        tracing::info!(%entry, %agent, %leg, %error,
            "the agent's leg was cut off with the switch; they stay booked until it is gone");
        self.hang_up_when_back.insert(leg.clone());
        self.legs_ending.insert(
            leg,
            EndedCall {
                queue: queue.clone(),
                agent: agent.clone(),
                entry: entry.clone(),
            },
        );
        let cause = NoAnswerCause::Failed;
        let rules = MissRules::of(self.config.queue(queue), cause);
        let now = self.clock.now();
        match self
            .store
            .offer_given_up(queue, entry, agent, cause, now, rules)
            .await
        {
            Ok(_) | Err(StoreError::Rule(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A leg this daemon stopped, or lost sight of, is gone (see `legs_ending`): its
    /// agent's booking ends.
    pub(super) async fn leg_gone(&mut self, leg: &CallId) -> Result<(), StoreError> {
        if let Some(call) = self.legs_ending.remove(leg) {
            self.store
                .release_agents(&call.entry, std::slice::from_ref(&call.agent))
                .await?;
            self.routing.changed();
        }
        Ok(())
    }

    /// Stop the other phones of a ring-all offer once one agent answered.
    fn release_other_legs(&mut self, entry: &EntryId, winner: &AgentId) {
        self.stop_legs(entry, |agent| agent != winner);
    }

    /// Stop ringing `agents` for `entry` (it left the queue, or was withdrawn).
    pub(super) fn stop_ringing(&mut self, entry: &EntryId, agents: &[AgentId]) {
        self.stop_legs(entry, |agent| agents.contains(agent));
    }

    /// End this daemon's legs for `entry` whose agent `stops`. The legs are no longer the
    /// entry's: their originates' failures change nothing for it, and a second stop for
    /// the same entry (the bus after a local close) finds none. Their agents stay booked
    /// until each leg is gone. Legs a round trip under way may be placing for it are
    /// stopped when it reports.
    fn stop_legs(&mut self, entry: &EntryId, stops: impl Fn(&AgentId) -> bool) {
        if self.routing.is_claiming(entry) {
            self.withdrawn_under_way.insert(entry.clone());
        }
        let legs: Vec<CallId> = self
            .legs
            .iter()
            .filter(|(_, l)| &l.entry == entry && stops(&l.agent))
            .map(|(c, _)| c.clone())
            .collect();
        for leg in legs {
            self.end_leg(leg);
        }
    }

    /// Hang up an agent leg that rang for an entry it is no longer wanted for; its agent
    /// stays booked until it is gone (see [`Engine::leg_gone`]).
    fn end_leg(&mut self, leg: CallId) {
        if let Some(info) = self.legs.remove(&leg) {
            let call = EndedCall {
                queue: info.queue,
                agent: info.agent,
                entry: info.entry,
            };
            self.legs_ending.insert(leg.clone(), call);
        }
        self.kill(leg);
    }

    /// Hang `channel` up, off the loop; out of reach, the switch does it once back.
    pub(super) fn kill(&mut self, channel: CallId) {
        let (switch, reports) = (self.switch.clone(), self.reports_tx.clone());
        self.tasks.spawn(async move {
            let hung_up = switch
                .hang_up(&channel, &HangupCause::normal_clearing())
                .await;
            if hung_up.is_err_and(|e| e.unreachable()) {
                let _ = reports.send(Report::HangUpWhenBack(channel));
            }
        });
    }

    pub(super) fn spawn_transfer(
        &mut self,
        channel: CallId,
        extension: crate::switch::Extension,
        context: crate::switch::Extension,
    ) {
        let switch = self.switch.clone();
        self.tasks.spawn(async move {
            let _ = switch.stop_media(&channel).await;
            if let Err(e) = switch.transfer(&channel, &extension, &context).await {
                tracing::warn!(%channel, error = %e, "transfer failed");
            }
        });
    }
}
