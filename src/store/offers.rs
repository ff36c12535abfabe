//! Offers of live entries to agents: book and claim, a miss, an answer, a failed bridge.
//! An offer spans the entry's slot and the agents', so most steps are a script in each.

use std::num::NonZeroU32;
use std::time::Duration;

use super::replies;
use super::scripts::{Invocation, Lua};
use super::{Result, StateSource, Store, StoreError, Timer, OFFER_GRACE};
use crate::config::{HoldOffs, QueueConfig};
use crate::queue::{AgentId, EndedCall, EntryId, Offer, QueueError, QueueName, Timestamp};
use crate::switch::HangupClass;

/// What an agent's answer to a live caller's offer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// The caller is the agent's: bridge them.
    Connected,
    /// The caller asked for a callback while the agent's phone rang: the agent calls the
    /// customer back now, as for any callback they answer.
    NowACallback,
}

/// What became of an attempt to make an offer. Losing a race is normal between daemons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferOutcome {
    /// The agents are booked and the entry is theirs: ring them now.
    Offered,
    /// This agent was no longer free (booked, away, …); nothing was changed.
    AgentNotFree(AgentId),
    /// The entry was no longer waiting (offered by another daemon, closed); nothing changed.
    EntryNotWaiting,
    /// This agent did not take an earlier offer of the entry and is still held off it (the
    /// plan was made from data older than another daemon's update); nothing changed.
    HeldOff(AgentId),
    /// An entry the plan did not know of is now ahead of this one (put back in the queue
    /// since the plan read it); nothing changed.
    EntryNotFirst,
}

/// Why an agent did not take an offer, as recorded in `agent_no_answer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswerCause {
    NoAnswer,
    Busy,
    /// The agent rejected the call on their phone.
    Rejected,
    /// The agent's leg could not be set up (unregistered phone, network).
    Failed,
    /// The offer's timer ran out without any outcome reported.
    Timeout,
}

impl NoAnswerCause {
    fn as_str(self) -> &'static str {
        match self {
            Self::NoAnswer => "no_answer",
            Self::Busy => "busy",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
        }
    }

    /// The cause of an agent leg that ended unanswered with this hangup cause.
    pub fn of_hangup(cause: &str) -> Self {
        match HangupClass::of(cause) {
            HangupClass::NoAnswer => Self::NoAnswer,
            HangupClass::Busy => Self::Busy,
            HangupClass::Rejected => Self::Rejected,
            HangupClass::NoResponse | HangupClass::Normal | HangupClass::Failure => Self::Failed,
        }
    }

    /// Which of a queue's delays holds the agent off the entry after a miss for this cause.
    /// As in mod_callcenter, whatever is neither busy nor a reject counts as no answer.
    pub fn hold_off(self, delays: &HoldOffs) -> Duration {
        match self {
            Self::Busy => delays.busy,
            Self::Rejected => delays.reject,
            Self::NoAnswer | Self::Failed | Self::Timeout => delays.no_answer,
        }
    }
}

/// What a missed offer costs its agent, by the queue's rules. The default costs nothing:
/// for offers that ended through no fault of the agent's (a daemon restarting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MissRules {
    /// The agent is not offered the entry again for this long.
    pub hold_off: Duration,
    /// Set the agent `away` after this many misses in a row.
    pub away_after: Option<NonZeroU32>,
}

impl MissRules {
    /// The rules of `queue` (none for a queue no longer configured) for a miss of `cause`.
    pub fn of(queue: Option<&QueueConfig>, cause: NoAnswerCause) -> Self {
        queue.map_or_else(Self::default, |q| Self {
            hold_off: cause.hold_off(&q.hold_off),
            away_after: q.away_after_missed,
        })
    }
}

/// What a failed offer changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferFailed {
    /// The entry waits again at its position (false while other ring-all agents still ring).
    pub entry_waiting: bool,
    /// The agent reached the queue's missed-offer limit and is now `away`.
    pub agent_set_away: bool,
}

/// How an offer takes its entry.
#[derive(Debug, Clone, Copy)]
pub(super) enum Claim {
    /// Routed: only if no entry the plan did not see is ahead of it.
    InOrder,
    /// An agent took a console line's callback from their console, wherever it stands.
    FromConsole,
}

impl Store {
    /// Book the offer's agents and claim its entry (event `offered`), or change nothing.
    /// `ring_time` is the queue's: bookings and the offer-timeout timer last that long
    /// plus a grace period. The booking and the claim live in different slots; they are
    /// sent together (one round trip, what an agent waits for) and whichever half succeeds
    /// alone is undone.
    pub async fn offer(
        &self,
        offer: &Offer,
        now: Timestamp,
        ring_time: Duration,
    ) -> Result<OfferOutcome> {
        self.offer_to(offer, now, ring_time, None, Claim::InOrder)
            .await
    }

    /// [`Store::offer`] to agents whose call just ended (among `ended`): those still on
    /// that call are made available (event `agent_state`) in the step that books them,
    /// even when the offer is not made. An agent who went away meanwhile stays away, and
    /// one on another call by now stays on it.
    pub async fn offer_after_call(
        &self,
        offer: &Offer,
        ended: &[EndedCall],
        now: Timestamp,
        ring_time: Duration,
    ) -> Result<OfferOutcome> {
        self.offer_to(offer, now, ring_time, Some(ended), Claim::InOrder)
            .await
    }

    pub(super) async fn offer_to(
        &self,
        offer: &Offer,
        now: Timestamp,
        ring_time: Duration,
        calls_ending: Option<&[EndedCall]>,
        claim: Claim,
    ) -> Result<OfferOutcome> {
        let until = now.plus(ring_time + OFFER_GRACE);
        let timeout = Timer::OfferTimeout {
            queue: offer.queue.clone(),
            entry: offer.entry.clone(),
        };
        let (booked, claimed) = tokio::join!(
            self.book_agents(offer, now, until, calls_ending),
            self.claim_entry(offer, &timeout, now, until, claim)
        );
        let (booked, claimed) = (booked?, claimed?);
        match (booked, claimed) {
            (replies::BookAgents::Booked, None) => Ok(OfferOutcome::Offered),
            (replies::BookAgents::Booked, Some(refused)) => {
                self.release_agents(&offer.entry, &offer.agents).await?;
                Ok(refused)
            }
            // The entry's refusal says more: it is what no other agent could change.
            (_, Some(refused)) => Ok(refused),
            (refused, None) => {
                self.withdraw_offer(offer, &timeout, now).await?;
                match refused {
                    replies::BookAgents::Busy(agent) => Ok(OfferOutcome::AgentNotFree(agent)),
                    _ => Err(StoreError::UnknownAgent(
                        self.first_unknown_agent(&offer.agents).await?,
                    )),
                }
            }
        }
    }

    /// Book every agent of `offer` or none.
    async fn book_agents(
        &self,
        offer: &Offer,
        now: Timestamp,
        until: Timestamp,
        calls_ending: Option<&[EndedCall]>,
    ) -> Result<replies::BookAgents> {
        let mut book = self.scripts.book_agents.prepare_invoke();
        book.key(self.keys.agent_events());
        for agent in &offer.agents {
            book.key(self.keys.agent(agent));
        }
        book.arg(offer.entry.as_str())
            .arg(offer.queue.as_str())
            .arg(now.as_millis())
            .arg(until.as_millis())
            .arg(if calls_ending.is_some() { "1" } else { "0" })
            .arg(StateSource::Daemon.as_str());
        if let Some(ended) = calls_ending {
            // An agent of the offer whose call did not end is not freed here ('').
            for agent in &offer.agents {
                let call = ended.iter().find(|c| c.agent == *agent);
                book.arg(call.map_or("", |c| c.entry.as_str()));
            }
        }
        book.reply(&mut self.conn()).await
    }

    /// Take `offer`'s entry out of the waiting set. None when claimed; otherwise why not.
    async fn claim_entry(
        &self,
        offer: &Offer,
        timeout: &Timer,
        now: Timestamp,
        until: Timestamp,
        how: Claim,
    ) -> Result<Option<OfferOutcome>> {
        let known = match how {
            Claim::InOrder => offer
                .ahead
                .iter()
                .map(EntryId::as_str)
                .collect::<Vec<_>>()
                .join(","),
            Claim::FromConsole => "*".to_owned(),
        };
        let mut claim = self.offer_script(&self.scripts.claim_entry, offer, timeout, now);
        claim.arg(until.as_millis()).arg(known);
        for agent in &offer.agents {
            claim.arg(agent.as_str());
        }
        Ok(match claim.reply(&mut self.conn()).await? {
            replies::ClaimEntry::Claimed => None,
            replies::ClaimEntry::NotWaiting => Some(OfferOutcome::EntryNotWaiting),
            replies::ClaimEntry::NotFirst => Some(OfferOutcome::EntryNotFirst),
            replies::ClaimEntry::HeldOff(agent) => Some(OfferOutcome::HeldOff(agent)),
        })
    }

    /// Put back an entry claimed for agents who could not be booked (event
    /// `offer_withdrawn`). An entry that moved on meanwhile (its caller hung up) is left.
    async fn withdraw_offer(&self, offer: &Offer, timeout: &Timer, now: Timestamp) -> Result<()> {
        let agents: Vec<&str> = offer.agents.iter().map(AgentId::as_str).collect();
        // An entry that moved on is left as it is.
        let _: replies::WithdrawOffer = self
            .offer_script(&self.scripts.withdraw_offer, offer, timeout, now)
            .arg(agents.join(","))
            .reply(&mut self.conn())
            .await?;
        Ok(())
    }

    /// A call of a script that takes or gives back an offer's entry, with what they share:
    /// KEYS entry, waiting, timers, events; ARGV id, now, offer timer.
    fn offer_script<'a>(
        &self,
        script: &'a Lua,
        offer: &Offer,
        timeout: &Timer,
        now: Timestamp,
    ) -> Invocation<'a> {
        let q = &offer.queue;
        let (timers, _) = self.keys.timers(q);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.keys.entry(q, &offer.entry))
            .key(self.keys.waiting(q))
            .key(timers)
            .key(self.keys.events(q))
            .arg(offer.entry.as_str())
            .arg(now.as_millis())
            .arg(timeout.member());
        invocation
    }

    async fn first_unknown_agent(&self, agents: &[AgentId]) -> Result<AgentId> {
        for agent in agents {
            let exists: bool = redis::cmd("EXISTS")
                .arg(self.keys.agent(agent))
                .query_async(&mut self.conn())
                .await?;
            if !exists {
                return Ok(agent.clone());
            }
        }
        // Every agent exists again (registered meanwhile): the booking's reply stands alone.
        Err(StoreError::UnexpectedReply {
            script: "book_agents",
            reply: "unknown".into(),
        })
    }

    /// The entry's half of [`Store::offer_failed`]: `agent`'s ring for it is over (event
    /// `agent_no_answer`) and it waits again once no other agent rings for it; whether it
    /// does. The agent is left as they are: booked, when their leg's fate is not known (the
    /// switch went out of reach as it rang), until the leg is found gone.
    pub async fn offer_given_up(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        cause: NoAnswerCause,
        now: Timestamp,
        rules: MissRules,
    ) -> Result<bool> {
        let (timers, _) = self.keys.timers(queue);
        let timeout = Timer::OfferTimeout {
            queue: queue.clone(),
            entry: entry.clone(),
        };
        let hold_off_end = Self::hold_off_end(queue, entry, agent);
        let reply = self
            .scripts
            .offer_failed
            .key(self.keys.entry(queue, entry))
            .key(self.keys.waiting(queue))
            .key(timers)
            .key(self.keys.events(queue))
            .arg(entry.as_str())
            .arg(agent.as_str())
            .arg(now.as_millis())
            .arg(cause.as_str())
            .arg(timeout.member())
            .arg(now.plus(rules.hold_off).as_millis())
            .arg(hold_off_end.member())
            .reply(&mut self.conn())
            .await?;
        match reply {
            replies::OfferFailed::Waiting => Ok(true),
            replies::OfferFailed::Ringing => Ok(false),
            replies::OfferFailed::Refused(refused) => {
                Err(self.entry_rule(queue, entry, Some(agent), refused).await)
            }
        }
    }

    /// `agent` did not take the offer of `entry` (event `agent_no_answer`): the entry waits
    /// again at its position and is not offered to this agent again for the rules'
    /// hold-off (a [`Timer::HoldOffEnd`] then makes routing look again); the agent is free,
    /// or `away` after the rules' misses in a row. When the entry was closed meanwhile
    /// (the caller hung up while the phone rang) this is a [`QueueError::EntryStatus`]:
    /// the ring is over all the same, so the agent's booking for it ends, and no miss is
    /// counted.
    pub async fn offer_failed(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        cause: NoAnswerCause,
        now: Timestamp,
        rules: MissRules,
    ) -> Result<OfferFailed> {
        let entry_waiting = match self
            .offer_given_up(queue, entry, agent, cause, now, rules)
            .await
        {
            Ok(waiting) => waiting,
            Err(e @ StoreError::Rule(_)) => {
                self.release_agents(entry, std::slice::from_ref(agent))
                    .await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let missed = self
            .scripts
            .agent_missed
            .key(self.keys.agent(agent))
            .key(self.keys.agent_events())
            .arg(entry.as_str())
            .arg(rules.away_after.map_or(0, NonZeroU32::get))
            .arg(now.as_millis())
            .arg(queue.as_str())
            .reply(&mut self.conn())
            .await?;
        let agent_set_away = match missed {
            replies::AgentMissed::Away => true,
            // The booking lapsed and may now belong to another offer.
            replies::AgentMissed::Released | replies::AgentMissed::NotBooked => false,
            replies::AgentMissed::UnknownAgent => {
                return Err(StoreError::UnknownAgent(agent.clone()))
            }
        };
        Ok(OfferFailed {
            entry_waiting,
            agent_set_away,
        })
    }

    /// The timer ending `agent`'s hold-off from `entry`, which the scripts schedule.
    pub(super) fn hold_off_end(queue: &QueueName, entry: &EntryId, agent: &AgentId) -> Timer {
        Timer::HoldOffEnd {
            queue: queue.clone(),
            entry: entry.clone(),
            agent: agent.clone(),
        }
    }

    /// `agent` answered the offer of the live caller `entry` (event `connected`): the entry
    /// leaves the queue and the agent is `on_call`; other agents of a ring-all offer stay
    /// booked until their legs are gone. Of two agents answering a ring-all offer together,
    /// the second gets [`QueueError::NotOfferedTo`]: hang up their leg. Repeating the call
    /// for the same agent is harmless, so it may be retried after a Redis error.
    pub async fn connected(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<Answered> {
        // Other agents of a ring-all offer are stopped by this daemon, which rang them all.
        match self
            .leave(&self.scripts.connect, queue, entry, agent.as_str(), now)
            .await?
        {
            Ok(_) => {}
            Err(refused) if refused.refusal == replies::Refusal::NotLive => {
                return Ok(Answered::NowACallback)
            }
            Err(refused) => return Err(self.entry_rule(queue, entry, Some(agent), refused).await),
        };
        self.agent_answered(queue, entry, agent, now)
            .await
            .map(|()| Answered::Connected)
    }

    /// The caller could not be bridged to the agent who answered (their leg vanished): the
    /// entry waits again at its position (event `agent_no_answer`, cause `bridge_failed`).
    /// The agent's state is the caller's to set.
    pub async fn bridge_failed(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<()> {
        let reply = self
            .scripts
            .bridge_failed
            .key(self.keys.entry(queue, entry))
            .key(self.keys.waiting(queue))
            .key(self.keys.open(queue))
            .key(self.keys.events(queue))
            .arg(entry.as_str())
            .arg(agent.as_str())
            .arg(now.as_millis())
            .reply(&mut self.conn())
            .await?;
        match reply {
            replies::BridgeFailed::Waiting => Ok(()),
            replies::BridgeFailed::NotConnected => {
                Err(StoreError::Rule(QueueError::NotOfferedTo {
                    entry: entry.clone(),
                    agent: agent.clone(),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hangup_cause_holds_the_agent_off_for_its_delay() {
        let delays = HoldOffs {
            no_answer: Duration::from_secs(1),
            busy: Duration::from_secs(2),
            reject: Duration::from_secs(3),
            decline: Duration::from_secs(4),
        };
        for (hangup, cause, delay) in [
            ("NO_ANSWER", NoAnswerCause::NoAnswer, 1),
            ("ORIGINATOR_CANCEL", NoAnswerCause::NoAnswer, 1),
            ("USER_BUSY", NoAnswerCause::Busy, 2),
            ("CALL_REJECTED", NoAnswerCause::Rejected, 3),
            ("USER_NOT_REGISTERED", NoAnswerCause::Failed, 1),
        ] {
            assert_eq!(NoAnswerCause::of_hangup(hangup), cause, "{hangup}");
            assert_eq!(
                cause.hold_off(&delays),
                Duration::from_secs(delay),
                "{hangup}"
            );
        }
        assert_eq!(
            NoAnswerCause::Timeout.hold_off(&delays),
            Duration::from_secs(1)
        );
    }
}
