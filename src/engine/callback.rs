//! The agent's side of a callback: whisper whom they are calling, take 1 or 2, dial the
//! customer from the line's caller ID with ringback to the agent, bridge on answer.
//!
//! Agent first: the customer is dialed only once an agent is on the line and said yes (on
//! the whisper, or by clicking Call in their console before their phone rang), so no
//! customer ever answers to nobody. Each step is written to Redis before the next
//! command goes to FreeSWITCH.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::handle::CommandError;
use crate::callback::CHOICE;
use crate::config::LineConfig;
use crate::prompts::{sequence, PromptSet};
use crate::queue::{AgentId, Clock, EntryId, QueueName};
use crate::store::{Store, StoreError};
use crate::switch::{
    tags, CallId, Collected, DialString, DigitCollect, HangupCause, MediaSource, Originate, Pbx,
    PhoneNumber, SwitchError, VarName, VarValue,
};

/// North American ringback, which agents everywhere recognise as "ringing".
const RINGBACK: &str = "tone_stream://%(2000,4000,440,480);loops=-1";

/// An agent's answer to a callback offered to them: 1 or 2 on the whisper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Accept,
    Decline,
}

/// Where an operator who answered for the agent hears how recording it went.
pub(super) type AnswerReply = oneshot::Sender<Result<(), CommandError>>;

/// An answer given for the agent from outside their call (an operator's tool), which their
/// task takes as it takes a key: the task alone decides, so a key pressed at the same
/// moment cannot make a second decision.
#[derive(Debug)]
pub(super) struct OutsideAnswer {
    pub answer: Answer,
    pub reply: AnswerReply,
}

/// What the agent made of the whisper; `Some` reply when an operator answered for them.
enum Decision {
    /// Pressed 1.
    Accepted(Option<AnswerReply>),
    /// Pressed 2, or nothing through every hearing, or hung up.
    Declined(Option<AnswerReply>),
    /// The offer was taken back meanwhile (expired, canceled): nothing to decide.
    Withdrawn,
}

impl From<OutsideAnswer> for Decision {
    fn from(given: OutsideAnswer) -> Self {
        match given.answer {
            Answer::Accept => Self::Accepted(Some(given.reply)),
            Answer::Decline => Self::Declined(Some(given.reply)),
        }
    }
}

/// One callback offer an agent answered.
pub struct AgentCallback<P: Pbx> {
    pub switch: P,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub queue: QueueName,
    pub entry: EntryId,
    pub agent: AgentId,
    pub agent_leg: CallId,
    pub number: PhoneNumber,
    /// Attempts made before this one.
    pub attempts: u32,
    pub line: LineConfig,
    pub prompts: PromptSet,
    /// The agents who could still take it: when all of them declined, nobody will.
    pub eligible: Vec<AgentId>,
    /// How long a decline holds this agent off the callback (the queue's reject delay).
    pub decline_hold_off: Duration,
    /// Marks the customer leg as this daemon's, for a restart to find.
    pub daemon_id: crate::values::DaemonId,
    /// How often the offer's decision window is renewed while the whisper plays (in real
    /// time: a third of the line's `agent_decision`, under the engine's time scale).
    pub renew_every: Duration,
    /// Answers given for the agent while they hear the whisper; the engine holds the
    /// sender in the leg's record.
    pub answers: mpsc::Receiver<OutsideAnswer>,
    /// The agent's leg could not be hung up (the switch was out of reach).
    pub leg_left_up: AtomicBool,
    /// They took it from their console (clicked Call): their answer is given, no whisper.
    pub taken_from_console: bool,
}

impl<P: Pbx> AgentCallback<P> {
    /// Run the agent's side to its end; the agent's leg if it is still up when it should
    /// not be (it could not be hung up). Errors are logged: the store's timers recover
    /// whatever a failure leaves half done.
    pub async fn run(mut self) -> Option<CallId> {
        let heard = if self.taken_from_console {
            Ok(Decision::Accepted(None))
        } else {
            self.whisper().await
        };
        let decision = match heard {
            Ok(decision) => decision,
            Err(e) => {
                tracing::info!(entry = %self.entry, agent = %self.agent, error = %e,
                    "agent left during the callback whisper");
                Decision::Declined(None)
            }
        };
        self.refuse_later_answers();
        let outcome = match decision {
            Decision::Accepted(reply) => self.dial_customer(reply).await,
            Decision::Declined(reply) => {
                let declined = self.decline().await;
                told(reply, declined).map(drop)
            }
            Decision::Withdrawn => {
                self.hang_up_agent().await;
                Ok(())
            }
        };
        if let Err(e) = outcome {
            // Nobody is left to act on their line: they are hung up, and the store's audit
            // lets the request wait again once it finds its legs gone.
            tracing::warn!(entry = %self.entry, agent = %self.agent, error = %e,
                "callback step failed; ending the agent's leg");
            self.hang_up_agent().await;
        }
        self.leg_left_up
            .load(Ordering::Relaxed)
            .then(|| self.agent_leg.clone())
    }

    /// Tell the agent whom they are calling (the number, and the name the caller said, if
    /// they recorded one), up to the line's `whisper_tries` times, until they press 1 or 2.
    /// While it plays, the offer's decision window is renewed, so a whisper of any length
    /// (a long number, a recorded name, slow prompts) never outlasts it; the window runs
    /// out only when this task stops renewing it (its daemon died). An answer given for the
    /// agent from outside ends it as a key would, the rest of the whisper cut off.
    async fn whisper(&mut self) -> Result<Decision, SwitchError> {
        let timings = self.line.callback.timings;
        let mut files = vec![self.prompts.file("agent-callback-for")];
        files.extend(self.prompts.digits(self.number.as_str()));
        if let Ok(Some(name)) = self.store.caller_name(&self.queue, &self.entry).await {
            if let Ok(name) = MediaSource::new(&name) {
                files.push(self.prompts.file("agent-customer-name"));
                files.push(name);
            }
        }
        files.push(self.prompts.file("agent-options"));
        let prompt = sequence(&files)?;
        for round in 1..=timings.whisper_tries {
            let variable = VarName::new(&format!("callbackd_agent_choice_{round}")).expect("valid");
            let collect = DigitCollect {
                min: 1,
                max: 1,
                tries: 1,
                timeout: timings.input_timeout,
                terminators: String::new(),
                prompt: prompt.clone(),
                invalid: MediaSource::new("silence_stream://250").expect("constant"),
                variable,
                regex: CHOICE.to_owned(),
                digit_timeout: Duration::from_secs(3),
            };
            let hearing = self.switch.collect(&self.agent_leg, &collect);
            tokio::pin!(hearing);
            let heard = loop {
                tokio::select! {
                    heard = &mut hearing => break heard?,
                    Some(given) = self.answers.recv() => {
                        // Otherwise the whisper plays on under the ringback or the hangup.
                        let _ = self.switch.stop_media(&self.agent_leg).await;
                        tracing::info!(entry = %self.entry, agent = %self.agent,
                            answer = ?given.answer, "answered for the agent from outside");
                        return Ok(given.into());
                    }
                    _ = tokio::time::sleep(self.renew_every) => {
                        if !self.keep_offer().await {
                            return Ok(Decision::Withdrawn);
                        }
                    }
                }
            };
            match heard {
                Collected::Digits(d) if d == "1" => return Ok(Decision::Accepted(None)),
                Collected::Digits(d) if d == "2" => return Ok(Decision::Declined(None)),
                _ => continue,
            }
        }
        Ok(Decision::Declined(None))
    }

    /// The agent's answer is given: any other given for them from now on is refused, as
    /// is one that came in the same instant as theirs.
    fn refuse_later_answers(&mut self) {
        self.answers.close();
        while let Ok(late) = self.answers.try_recv() {
            let _ = late.reply.send(Err(CommandError::AlreadyAnswered {
                entry: self.entry.clone(),
                agent: self.agent.clone(),
            }));
        }
    }

    /// Renew the offer's decision window; false once the offer is gone (expired, canceled
    /// by its caller, taken back). A Redis error keeps the whisper going: the window still
    /// runs, and the next renewal may get through.
    async fn keep_offer(&self) -> bool {
        let renewed = self
            .store
            .callback_offer_answered(
                &self.queue,
                &self.entry,
                &self.agent,
                self.clock.now(),
                self.line.callback.timings.agent_decision,
            )
            .await;
        match renewed {
            Ok(()) => true,
            Err(e @ (StoreError::Rule(_) | StoreError::UnknownEntry { .. })) => {
                tracing::info!(entry = %self.entry, agent = %self.agent, error = %e,
                    "the callback offer is gone; ending the whisper");
                false
            }
            Err(e) => {
                tracing::warn!(entry = %self.entry, agent = %self.agent, error = %e,
                    "cannot renew the callback's decision window");
                true
            }
        }
    }

    /// Their leg is hung up first: an agent whose leg is left up (the switch out of reach)
    /// stays on it until its end is seen, so they are never booked while still on it.
    async fn decline(&self) -> Result<(), StoreError> {
        let agent_free = self.hang_up_agent().await;
        let now = self.clock.now();
        let declined = retrying(|| {
            self.store.callback_declined(
                &self.queue,
                &self.entry,
                &self.agent,
                now,
                self.decline_hold_off,
                &self.eligible,
                agent_free,
            )
        })
        .await?;
        tracing::info!(entry = %self.entry, agent = %self.agent,
            declined_by_all = declined.declined_by_all, "agent declined the callback");
        Ok(())
    }

    async fn dial_customer(&self, reply: Option<AnswerReply>) -> Result<(), StoreError> {
        let now = self.clock.now();
        let accepted = retrying(|| {
            self.store
                .callback_accepted(&self.queue, &self.entry, &self.agent, now)
        })
        .await;
        if !told(reply, accepted)? {
            return Ok(());
        }
        let mut call = Originate::new(DialString::from_template(
            &self.line.dial_template,
            &self.number,
        ));
        call.caller_id_number = self
            .line
            .outbound_caller_id
            .as_ref()
            .and_then(|n| VarValue::new(n.as_str()).ok());
        call.timeout = Some(self.line.callback.timings.customer_ring);
        call.tags = tags::LegTags {
            role: "customer".into(),
            daemon: self.daemon_id.to_string(),
            queue: self.queue.to_string(),
            entry: self.entry.to_string(),
            agent: self.agent.to_string(),
        }
        .originate_vars();
        let now = self.clock.now();
        retrying(|| {
            self.store
                .callback_dialing(&self.queue, &self.entry, &self.agent, now)
        })
        .await?;
        tracing::info!(entry = %self.entry, agent = %self.agent, number = %self.number.masked(),
            "agent accepted: dialing the customer");
        let ringback = MediaSource::new(RINGBACK).expect("constant");
        let _ = self.switch.start_play(&self.agent_leg, &ringback).await;
        let answered = match self.switch.originate(&call).await {
            Ok(pending) => pending.wait().await,
            Err(e) => Err(e),
        };
        match answered {
            Ok(customer) => self.connect(customer).await,
            Err(e) => self.attempt_failed(&e).await,
        }
    }

    async fn connect(&self, customer: CallId) -> Result<(), crate::store::StoreError> {
        let now = self.clock.now();
        let answered = retrying(|| {
            self.store
                .callback_customer_answered(&self.queue, &self.entry, &self.agent, now)
        })
        .await;
        if let Err(e) = answered {
            let _ = self
                .switch
                .hang_up(&customer, &HangupCause::normal_clearing())
                .await;
            return Err(e);
        }
        let bridged = async {
            self.switch.stop_media(&self.agent_leg).await?;
            self.switch.bridge(&self.agent_leg, &customer).await
        }
        .await;
        if let Err(e) = bridged {
            tracing::warn!(entry = %self.entry, error = %e, "bridging agent and customer failed");
            let _ = self
                .switch
                .hang_up(&customer, &HangupCause::normal_clearing())
                .await;
            self.hang_up_agent().await;
        } else {
            tracing::info!(entry = %self.entry, agent = %self.agent, "callback connected");
        }
        Ok(())
    }

    async fn attempt_failed(&self, error: &SwitchError) -> Result<(), crate::store::StoreError> {
        let cause = match error {
            SwitchError::CallFailed(cause) => cause.clone(),
            other => format!("{other}"),
        };
        let now = self.clock.now();
        let retry_at = self
            .line
            .callback
            .retry
            .next_attempt(&cause, self.attempts, now);
        // The agent is freed only once their leg is gone: one left up (the switch out of
        // reach) frees them when its end is seen, so they are never booked while on it.
        let agent_free = self.hang_up_agent().await;
        retrying(|| {
            self.store.callback_attempt_failed(
                &self.queue,
                &self.entry,
                &self.agent,
                &cause,
                now,
                retry_at,
                agent_free,
            )
        })
        .await?;
        tracing::info!(entry = %self.entry, %cause, retry = retry_at.is_some(),
            "the customer did not answer the callback");
        Ok(())
    }

    /// Whether the agent's leg is hung up (or was gone already).
    async fn hang_up_agent(&self) -> bool {
        match self
            .switch
            .hang_up(&self.agent_leg, &HangupCause::normal_clearing())
            .await
        {
            Err(e) if e.unreachable() => {
                tracing::warn!(leg = %self.agent_leg, error = %e,
                    "cannot hang up the agent's leg; it is hung up when the switch is back");
                self.leg_left_up.store(true, Ordering::Relaxed);
                false
            }
            // Hung up, or gone already.
            _ => true,
        }
    }
}

/// Run a store step again after a Redis error, backing off, for about half a minute (a
/// Redis restart or failover) while the agent hears ringback. A step whose first try was
/// done though its reply was lost is refused the second time (accept, attempt failed),
/// which ends the task as any refusal does, or changes nothing (customer answered); only
/// `dialing_customer` may then be recorded twice.
async fn retrying<T, F, Fut>(mut step: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        match step().await {
            Err(StoreError::Redis(e)) if attempt + 1 < super::ANSWER_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "a callback step failed; trying again");
                tokio::time::sleep(super::store_retry_delay(attempt)).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// Tell the operator who answered for the agent, if one did, how recording the answer went:
/// whether it was recorded, so the task goes on. A failure told to them is theirs to handle;
/// one nobody asked about is the task's error, which it logs.
fn told(reply: Option<AnswerReply>, recorded: Result<(), StoreError>) -> Result<bool, StoreError> {
    let done = recorded.is_ok();
    match reply {
        Some(reply) => {
            let _ = reply.send(recorded.map_err(CommandError::from));
            Ok(done)
        }
        None => recorded.map(|()| true),
    }
}
