//! Redis as the one source of truth for queues, entries, agents, timers and events.
//! Every state change is one Lua script over one hash slot, so daemons sharing a Redis agree.
//!
//! An offer spans two slots (the queue's entry and the agents), which no single script may
//! touch on Redis Cluster. It is two atomic steps instead, agents first: book the agents
//! (all or none, with a lease), then claim the entry; when the claim loses a race, the
//! bookings are released. Each invariant (one booking per agent, one offer per entry) is
//! guarded by a single script, and a daemon dying between the steps leaves only a booking
//! whose lease runs out by itself.

mod keys;
pub mod local;
mod records;
mod replies;
mod scripts;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamRangeReply;

use crate::config::{AgentConfig, HoldOffs, QueueConfig, RedisSettings};
use crate::queue::{
    Agent, AgentId, AgentState, CloseReason, Entry, EntryId, EntryKind, EntryStatus, Offer,
    QueueError, QueueName, Timestamp,
};
use crate::switch::PhoneNumber;
use keys::Keys;
pub use records::{EventKind, StoredEvent, Timer, TimerScope};
use replies::{Refusal, Refused, Reply};
use scripts::{Invocation, Lua, Scripts};

/// How long past its ring time an offer's bookings and timeout wait: a daemon normally
/// reports the outcome well before, this only catches one that died.
const OFFER_GRACE: Duration = Duration::from_secs(10);
/// Connected and closed entries stay readable this long (reports, late events), then expire.
const CLOSED_RETENTION_SECS: u64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cause is part of the message, not a `source`, so that error chains print it once.
    #[error("cannot connect to Redis at {url}: {cause}")]
    Connect {
        url: String,
        cause: redis::RedisError,
    },
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("entry {0} is already in the store")]
    EntryExists(EntryId),
    #[error("entry {entry} is not in queue {queue}")]
    UnknownEntry { queue: QueueName, entry: EntryId },
    #[error("agent {0} is not registered in the store")]
    UnknownAgent(AgentId),
    /// The change breaks a queue rule given what Redis holds now.
    #[error(transparent)]
    Rule(#[from] QueueError),
    #[error("unreadable record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// A script answered what it never answers: it and the daemon are out of step.
    #[error("unexpected reply {reply:?} from script {script}")]
    UnexpectedReply { script: &'static str, reply: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
        match cause {
            "NO_ANSWER" | "ORIGINATOR_CANCEL" => Self::NoAnswer,
            "USER_BUSY" => Self::Busy,
            // The agent pressed reject (or declined the call) on their phone.
            "CALL_REJECTED" => Self::Rejected,
            _ => Self::Failed,
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

/// Who changed an agent's state, as recorded in `agent_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSource {
    Cli,
    Phone,
    Daemon,
}

impl StateSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Phone => "phone",
            Self::Daemon => "daemon",
        }
    }
}

/// What became of a caller's request to be called back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackRequested {
    /// The entry is now a callback with the same id and position.
    Requested,
    /// The number already has an open callback in this queue: the caller's entry was
    /// closed (`duplicate_ignored`) and `existing` keeps its place.
    Duplicate { existing: EntryId },
}

/// How a repeat caller's pending callback came to be kept, as recorded in `callback_kept`
/// (its `choice` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptBy {
    /// The caller pressed 1.
    Choice,
    /// No valid key within the tries: nothing the caller did not ask for is undone.
    NoChoice,
    /// An agent had accepted it and its customer was being dialed: it can no longer go.
    BeingDialed,
}

impl KeptBy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Choice => "keep",
            Self::NoChoice => "no_choice",
            Self::BeingDialed => "being_dialed",
        }
    }
}

/// What became of a repeat caller's wish to cancel their pending callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerCancel {
    /// The callback is closed and the caller's entry has its place; the agents that were
    /// ringing for the callback are released: stop their legs.
    Canceled { ringing: Vec<AgentId> },
    /// An agent accepted it and its customer is being dialed: it stands.
    BeingDialed,
}

/// What an agent's decline changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declined {
    /// Every eligible agent has declined, so the callback was closed (`declined_by_all`).
    pub declined_by_all: bool,
}

/// A queue's callback figures, as the event scripts count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackStats {
    /// Callbacks open now (waiting, ringing, dialing or waiting for a retry).
    pub in_queue: u64,
    /// Callbacks ever requested (duplicates not counted).
    pub total: u64,
    /// Mean time from request to the customer answering, over answered callbacks.
    pub average_wait: Option<Duration>,
}

/// A handle on the store; clones share one multiplexed, self-reconnecting connection.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    keys: Keys,
    scripts: Arc<Scripts>,
}

/// The timer members an entry drops when it leaves the queue (connected or closed).
fn leaving_timers(queue: &QueueName, entry: &EntryId) -> (String, String) {
    let timer = |t: Timer| t.member();
    (
        timer(Timer::OfferTimeout {
            queue: queue.clone(),
            entry: entry.clone(),
        }),
        timer(Timer::MaxWait {
            queue: queue.clone(),
            entry: entry.clone(),
        }),
    )
}

impl Store {
    /// Connect and check that Redis answers.
    pub async fn connect(settings: &RedisSettings) -> Result<Self> {
        let url = settings.redacted_url();
        let connect_error = |cause| StoreError::Connect {
            url: url.clone(),
            cause,
        };
        if settings.url.starts_with("rediss://") {
            // rustls needs one process-wide crypto provider; another part of the process
            // may have installed one already, which is just as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = redis::Client::open(settings.url.as_str()).map_err(connect_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(connect_error)?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(connect_error)?;
        Ok(Self {
            conn,
            keys: Keys::new(&settings.key_prefix),
            scripts: Arc::new(Scripts::new()),
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Write the configured agents: id, name, contact and queues are the config's; a new
    /// agent starts `offline`, a known one keeps its state.
    pub async fn register_agents(&self, agents: &[AgentConfig], now: Timestamp) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for a in agents {
            let key = self.keys.agent(&a.id);
            pipe.hset_multiple(
                &key,
                &[
                    ("id", a.id.to_string()),
                    ("display_name", a.display_name.clone()),
                    ("contact", a.contact.to_string()),
                    ("serves", records::encode_serves(&a.queues)),
                ],
            )
            .ignore()
            .hset_nx(&key, "state", AgentState::Offline.as_str())
            .ignore()
            .hset_nx(&key, "idle_since", now.to_string())
            .ignore()
            .sadd(self.keys.agent_ids(), a.id.as_str())
            .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    /// Put a new entry in its queue (event `entered`), with its max-wait timer when due.
    pub async fn enqueue(&self, entry: &Entry, max_wait_due: Option<Timestamp>) -> Result<()> {
        let q = &entry.queue;
        let (timers, _) = self.keys.timers(q);
        let max_wait = max_wait_due.filter(|_| entry.max_wait_applies());
        let mut inv = self.scripts.enqueue.prepare_invoke();
        inv.key(self.keys.entry(q, &entry.id))
            .key(self.keys.waiting(q))
            .key(self.keys.open(q))
            .key(timers)
            .key(self.keys.events(q))
            .arg(entry.id.as_str())
            .arg(entry.position.as_millis());
        match max_wait {
            Some(due) => inv
                .arg(self.max_wait_timer(entry).member())
                .arg(due.as_millis()),
            None => inv.arg("").arg(0),
        };
        for (field, value) in records::entry_fields(entry) {
            inv.arg(field).arg(value);
        }
        match inv.reply(&mut self.conn()).await? {
            replies::Enqueue::Added => Ok(()),
            replies::Enqueue::Exists => Err(StoreError::EntryExists(entry.id.clone())),
        }
    }

    fn max_wait_timer(&self, entry: &Entry) -> Timer {
        Timer::MaxWait {
            queue: entry.queue.clone(),
            entry: entry.id.clone(),
        }
    }

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
        self.offer_to(offer, now, ring_time, false).await
    }

    /// [`Store::offer`] to agents whose call just ended: those still `on_call` are made
    /// available (event `agent_state`) in the step that books them, even when the offer
    /// is not made. An agent who went away meanwhile stays away.
    pub async fn offer_after_call(
        &self,
        offer: &Offer,
        now: Timestamp,
        ring_time: Duration,
    ) -> Result<OfferOutcome> {
        self.offer_to(offer, now, ring_time, true).await
    }

    async fn offer_to(
        &self,
        offer: &Offer,
        now: Timestamp,
        ring_time: Duration,
        calls_ending: bool,
    ) -> Result<OfferOutcome> {
        let until = now.plus(ring_time + OFFER_GRACE);
        let timeout = Timer::OfferTimeout {
            queue: offer.queue.clone(),
            entry: offer.entry.clone(),
        };
        let (booked, claimed) = tokio::join!(
            self.book_agents(offer, now, until, calls_ending),
            self.claim_entry(offer, &timeout, now, until)
        );
        let (booked, claimed) = (booked?, claimed?);
        match (booked, claimed) {
            (replies::BookAgents::Booked, None) => Ok(OfferOutcome::Offered),
            (replies::BookAgents::Booked, Some(refused)) => {
                self.release_agents(&offer.entry, &offer.agents).await?;
                Ok(refused)
            }
            (refused, claim) => {
                if claim.is_none() {
                    self.withdraw_offer(offer, &timeout, now).await?;
                }
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
        calls_ending: bool,
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
            .arg(if calls_ending { "1" } else { "0" })
            .arg(StateSource::Daemon.as_str());
        book.reply(&mut self.conn()).await
    }

    /// Take `offer`'s entry out of the waiting set. None when claimed; otherwise why not.
    async fn claim_entry(
        &self,
        offer: &Offer,
        timeout: &Timer,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<OfferOutcome>> {
        let known: Vec<&str> = offer.ahead.iter().map(EntryId::as_str).collect();
        let mut claim = self.offer_script(&self.scripts.claim_entry, offer, timeout, now);
        claim.arg(until.as_millis()).arg(known.join(","));
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

    /// Drop the bookings that still name `entry`.
    async fn release_agents(&self, entry: &EntryId, agents: &[AgentId]) -> Result<()> {
        if agents.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.release_agents.prepare_invoke();
        for agent in agents {
            inv.key(self.keys.agent(agent));
        }
        inv.arg(entry.as_str());
        let replies::Done = inv.reply(&mut self.conn()).await?;
        Ok(())
    }

    /// `agent` did not take the offer of `entry` (event `agent_no_answer`): the entry waits
    /// again at its position and is not offered to this agent again for the rules'
    /// hold-off (a [`Timer::HoldOffEnd`] then makes routing look again); the agent is free,
    /// or `away` after the rules' misses in a row. When the entry was closed meanwhile
    /// (the caller hung up while the phone rang) this is a [`QueueError::EntryStatus`] and
    /// changes nothing: [`Store::close`] already released the agent.
    pub async fn offer_failed(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        cause: NoAnswerCause,
        now: Timestamp,
        rules: MissRules,
    ) -> Result<OfferFailed> {
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
        let entry_waiting = match reply {
            replies::OfferFailed::Waiting => true,
            replies::OfferFailed::Ringing => false,
            replies::OfferFailed::Refused(refused) => {
                return Err(self.entry_rule(queue, entry, Some(agent), refused).await)
            }
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
    fn hold_off_end(queue: &QueueName, entry: &EntryId, agent: &AgentId) -> Timer {
        Timer::HoldOffEnd {
            queue: queue.clone(),
            entry: entry.clone(),
            agent: agent.clone(),
        }
    }

    /// Turn a script's refusal about an entry into the rule it broke.
    async fn entry_rule(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: Option<&AgentId>,
        refused: Refused,
    ) -> StoreError {
        match self.entry(queue, entry).await {
            Ok(None) => StoreError::UnknownEntry {
                queue: queue.clone(),
                entry: entry.clone(),
            },
            Err(e) => e,
            Ok(Some(_)) => match refused.refusal {
                Refusal::IsCallback => QueueError::CallbackNotCut(entry.clone()).into(),
                Refusal::NotLive => QueueError::NowACallback(entry.clone()).into(),
                _ => Self::callback_rule(queue, entry, agent, refused),
            },
        }
    }

    /// `agent` answered the offer of `entry` (event `connected`): the entry leaves the
    /// queue, the agent is `on_call`, and other agents of a ring-all offer are released.
    /// Of two agents answering a ring-all offer together, the second gets
    /// [`QueueError::NotOfferedTo`]: hang up their leg. Repeating the call for the same
    /// agent is harmless, so it may be retried after a Redis error.
    pub async fn connected(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<()> {
        let (timers, _) = self.keys.timers(queue);
        let (offer_timer, max_wait_timer) = leaving_timers(queue, entry);
        let reply = self
            .scripts
            .connect
            .key(self.keys.entry(queue, entry))
            .key(self.keys.open(queue))
            .key(timers)
            .key(self.keys.events(queue))
            .arg(entry.as_str())
            .arg(agent.as_str())
            .arg(now.as_millis())
            .arg(&offer_timer)
            .arg(&max_wait_timer)
            .arg(CLOSED_RETENTION_SECS)
            .reply(&mut self.conn())
            .await?;
        match reply {
            replies::WithAgents::Done(others) => {
                self.agent_answered(queue, entry, agent, &others, now).await
            }
            replies::WithAgents::Refused(refused) => {
                Err(self.entry_rule(queue, entry, Some(agent), refused).await)
            }
        }
    }

    /// `agent` answered for `entry` and is on the call; `others` (of a ring-all offer) are
    /// no longer booked for it.
    async fn agent_answered(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        others: &[AgentId],
        now: Timestamp,
    ) -> Result<()> {
        let mut answered = self.scripts.agent_answered.prepare_invoke();
        answered
            .key(self.keys.agent(agent))
            .key(self.keys.agent_events());
        for other in others {
            answered.key(self.keys.agent(other));
        }
        answered
            .arg(entry.as_str())
            .arg(now.as_millis())
            .arg(queue.as_str());
        match answered.reply(&mut self.conn()).await? {
            replies::AgentChanged::Done => Ok(()),
            replies::AgentChanged::UnknownAgent => Err(StoreError::UnknownAgent(agent.clone())),
        }
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

    /// The entry leaves the queue unconnected (event `abandoned` or `max_wait_exit`, with
    /// the wait). A callback is refused with [`QueueError::CallbackNotCut`]: the hangup of
    /// a caller who just asked for one must not cancel it, and its own methods close it. Returns the agents that were ringing for it, now released: stop their legs.
    /// Closing again for the same reason changes and records nothing and returns no agents.
    pub async fn close(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        reason: CloseReason,
        now: Timestamp,
    ) -> Result<Vec<AgentId>> {
        let (timers, _) = self.keys.timers(queue);
        let (offer_timer, max_wait_timer) = leaving_timers(queue, entry);
        let reply = self
            .scripts
            .close
            .key(self.keys.entry(queue, entry))
            .key(self.keys.waiting(queue))
            .key(self.keys.open(queue))
            .key(timers)
            .key(self.keys.events(queue))
            .arg(entry.as_str())
            .arg(reason.as_str())
            .arg(now.as_millis())
            .arg(&offer_timer)
            .arg(&max_wait_timer)
            .arg(CLOSED_RETENTION_SECS)
            .reply(&mut self.conn())
            .await?;
        match reply {
            replies::WithAgents::Done(ringing) => {
                self.release_agents(entry, &ringing).await?;
                Ok(ringing)
            }
            replies::WithAgents::Refused(refused) => {
                Err(self.entry_rule(queue, entry, None, refused).await)
            }
        }
    }

    /// Run a callback script with the key layout they share (see `scripts::CALLBACK`).
    /// `number` is read from the entry when not given: it never changes once set, so
    /// reading it before the script is safe, and the script checks the key it names.
    async fn callback_script<R: Reply>(
        &self,
        script: &Lua,
        queue: &QueueName,
        entry: &EntryId,
        number: Option<&PhoneNumber>,
        now: Timestamp,
        args: &[&str],
    ) -> Result<R> {
        self.callback_script_also(script, queue, entry, None, number, now, args)
            .await
    }

    /// [`Store::callback_script`] for a script that also touches `also`, another entry of
    /// the same queue (its KEYS[8]).
    #[allow(clippy::too_many_arguments)]
    async fn callback_script_also<R: Reply>(
        &self,
        script: &Lua,
        queue: &QueueName,
        entry: &EntryId,
        also: Option<&EntryId>,
        number: Option<&PhoneNumber>,
        now: Timestamp,
        args: &[&str],
    ) -> Result<R> {
        let stored = match number {
            Some(_) => None,
            None => {
                let raw: Option<String> = redis::cmd("HGET")
                    .arg(self.keys.entry(queue, entry))
                    .arg("number")
                    .query_async(&mut self.conn())
                    .await?;
                raw.and_then(|n| PhoneNumber::new(&n).ok())
            }
        };
        let (timers, _) = self.keys.timers(queue);
        let mut inv = script.prepare_invoke();
        inv.key(self.keys.entry(queue, entry))
            .key(self.keys.waiting(queue))
            .key(self.keys.open(queue))
            .key(timers)
            .key(self.keys.events(queue))
            .key(self.keys.callback_stats(queue))
            .key(self.keys.callback_number(queue, number.or(stored.as_ref())));
        if let Some(also) = also {
            inv.key(self.keys.entry(queue, also));
        }
        inv.arg(entry.as_str())
            .arg(now.as_millis())
            .arg(CLOSED_RETENTION_SECS);
        for arg in args {
            inv.arg(*arg);
        }
        inv.reply(&mut self.conn()).await
    }

    /// Turn a callback script's refusal into the rule it broke.
    fn callback_rule(
        queue: &QueueName,
        entry: &EntryId,
        agent: Option<&AgentId>,
        refused: Refused,
    ) -> StoreError {
        let status = |expected| {
            StoreError::Rule(QueueError::EntryStatus {
                entry: entry.clone(),
                expected,
            })
        };
        match (refused.refusal, agent) {
            (Refusal::UnknownEntry, _) => StoreError::UnknownEntry {
                queue: queue.clone(),
                entry: entry.clone(),
            },
            (Refusal::NotCallback, _) => status("a callback"),
            (Refusal::NotLive, _) => status("a live caller"),
            (Refusal::NotOpen, _) => status("waiting or offered"),
            (Refusal::NotOffered, _) => status("offered"),
            (Refusal::NotDialing, _) => status("dialing"),
            (Refusal::NotConnected, _) => status("connected"),
            (Refusal::NoCallback, _) => {
                StoreError::Rule(QueueError::NoCallbackPending(entry.clone()))
            }
            (Refusal::NotOfferedTo, Some(agent)) => QueueError::NotOfferedTo {
                entry: entry.clone(),
                agent: agent.clone(),
            }
            .into(),
            (Refusal::IsCallback, _) => QueueError::CallbackNotCut(entry.clone()).into(),
            (Refusal::NotOfferedTo, None) => refused.unexpected(),
        }
    }

    /// Free an agent a callback no longer needs (agents' slot): their booking for `entry`
    /// ends, and `on_call` becomes `available`.
    async fn agent_released(
        &self,
        agent: &AgentId,
        queue: &QueueName,
        entry: &EntryId,
        now: Timestamp,
    ) -> Result<()> {
        let reply = self
            .scripts
            .agent_released
            .key(self.keys.agent(agent))
            .key(self.keys.agent_events())
            .arg(entry.as_str())
            .arg(now.as_millis())
            .arg(queue.as_str())
            .reply(&mut self.conn())
            .await?;
        match reply {
            replies::AgentChanged::Done => Ok(()),
            replies::AgentChanged::UnknownAgent => Err(StoreError::UnknownAgent(agent.clone())),
        }
    }

    /// The caller of a waiting (or ringing) live entry asked to be called back at `number`
    /// (event `requested`): the entry becomes a callback with the same id and position,
    /// max wait no longer applies, and it expires at `expires_at` unless accepted first.
    /// When the number already has an open callback in this queue, the caller's entry is
    /// closed instead (event `duplicate_ignored`); agents ringing for it are released.
    /// Repeating a request that succeeded changes nothing.
    pub async fn request_callback(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        number: &PhoneNumber,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<CallbackRequested> {
        let expires = expires_at.as_millis().to_string();
        let reply = self
            .callback_script(
                &self.scripts.callback_request,
                queue,
                entry,
                Some(number),
                now,
                &[number.as_str(), &expires],
            )
            .await?;
        match reply {
            replies::CallbackRequest::Requested => Ok(CallbackRequested::Requested),
            replies::CallbackRequest::Duplicate { existing, ringing } => {
                self.release_agents(entry, &ringing).await?;
                Ok(CallbackRequested::Duplicate { existing })
            }
            replies::CallbackRequest::Refused(refused) => {
                Err(Self::callback_rule(queue, entry, None, refused))
            }
        }
    }

    /// `agent` answered the offer of a callback, heard it and declined (event `declined`):
    /// they are free, and not offered it again for `hold_off`; the callback waits again at
    /// its position, or is closed (`declined_by_all`) once every agent of `eligible`
    /// declined it. Agents who only missed its ring have not declined.
    pub async fn callback_declined(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
        hold_off: Duration,
        eligible: &[AgentId],
    ) -> Result<Declined> {
        let until = now.plus(hold_off).as_millis().to_string();
        let timer = Self::hold_off_end(queue, entry, agent).member();
        let mut args = vec![agent.as_str(), &until, &timer];
        args.extend(eligible.iter().map(AgentId::as_str));
        let reply = self
            .callback_script(
                &self.scripts.callback_decline,
                queue,
                entry,
                None,
                now,
                &args,
            )
            .await?;
        let declined_by_all = match reply {
            replies::CallbackDecline::DeclinedByAll(ringing) => {
                self.release_agents(entry, &ringing).await?;
                true
            }
            replies::CallbackDecline::Waiting | replies::CallbackDecline::Ringing(_) => false,
            replies::CallbackDecline::Refused(refused) => {
                return Err(Self::callback_rule(queue, entry, Some(agent), refused))
            }
        };
        self.agent_released(agent, queue, entry, now).await?;
        Ok(Declined { declined_by_all })
    }

    /// `agent` answered the offer of a callback and hears whom they would call back; they
    /// decide within `decide_within` ([`Store::callback_accepted`] or
    /// [`Store::callback_declined`]). Until then the entry stays offered to them, their
    /// booking holds and the offer's timeout waits, so nobody else is offered either of
    /// them. The agent is not `on_call` yet: only accepting makes them so.
    pub async fn callback_offer_answered(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
        decide_within: Duration,
    ) -> Result<()> {
        let until = now
            .plus(decide_within + OFFER_GRACE)
            .as_millis()
            .to_string();
        let reply = self
            .callback_script(
                &self.scripts.callback_offer_answered,
                queue,
                entry,
                None,
                now,
                &[agent.as_str(), &until],
            )
            .await?;
        if let replies::Step::Refused(refused) = reply {
            return Err(Self::callback_rule(queue, entry, Some(agent), refused));
        }
        // A booking that lapsed before the answer stays lapsed: the entry's timeout still
        // moved, and the agent's decision settles it.
        let _: replies::ExtendBooking = self
            .scripts
            .extend_booking
            .key(self.keys.agent(agent))
            .arg(entry.as_str())
            .arg(&until)
            .reply(&mut self.conn())
            .await?;
        Ok(())
    }

    /// `agent` accepted the callback they were offered (event `accepted`, a ticket): it is
    /// theirs to dial (status `dialing`), offered to nobody else, and no longer expires;
    /// the agent is `on_call`. Repeating it for the same agent changes nothing.
    pub async fn callback_accepted(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<()> {
        let reply = self
            .callback_script(
                &self.scripts.callback_accept,
                queue,
                entry,
                None,
                now,
                &[agent.as_str()],
            )
            .await?;
        match reply {
            replies::WithAgents::Done(others) => {
                self.agent_answered(queue, entry, agent, &others, now).await
            }
            replies::WithAgents::Refused(refused) => {
                Err(Self::callback_rule(queue, entry, Some(agent), refused))
            }
        }
    }

    /// Run a callback script that takes only the agent and answers `ok` or a rule's name.
    async fn agent_step(
        &self,
        script: &Lua,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<()> {
        match self
            .callback_script(script, queue, entry, None, now, &[agent.as_str()])
            .await?
        {
            replies::Step::Done => Ok(()),
            replies::Step::Refused(refused) => {
                Err(Self::callback_rule(queue, entry, Some(agent), refused))
            }
        }
    }

    /// The customer leg of an accepted callback is being dialed (event `dialing_customer`).
    pub async fn callback_dialing(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<()> {
        self.agent_step(&self.scripts.callback_dialing, queue, entry, agent, now)
            .await
    }

    /// The customer answered (events `customer_answered` with `callback_wait_ms`, then
    /// `connected`): the callback is connected to `agent` and leaves the queue. Repeating it
    /// for the same agent changes nothing.
    pub async fn callback_customer_answered(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<()> {
        self.agent_step(&self.scripts.callback_answered, queue, entry, agent, now)
            .await
    }

    /// The customer leg failed with `cause` (event `attempt_failed`, a ticket); `agent` is
    /// `available` again. With `retry_at` the callback waits for that time and then for an
    /// agent again at its position ([`Store::callback_retry_due`]); without, it is closed.
    pub async fn callback_attempt_failed(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        cause: &str,
        now: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> Result<()> {
        let retry = retry_at.map_or_else(String::new, |t| t.as_millis().to_string());
        let reply = self
            .callback_script(
                &self.scripts.callback_attempt_failed,
                queue,
                entry,
                None,
                now,
                &[agent.as_str(), cause, &retry],
            )
            .await?;
        match reply {
            replies::AttemptFailed::Retry | replies::AttemptFailed::Closed => {
                self.agent_released(agent, queue, entry, now).await
            }
            replies::AttemptFailed::Refused(refused) => {
                Err(Self::callback_rule(queue, entry, Some(agent), refused))
            }
        }
    }

    /// A failed callback's retry time came: it waits again at its position (`true`), or,
    /// when its window from the request has passed meanwhile, it is closed (`expired`) and
    /// this answers `false`, as it does for an entry no longer waiting for a retry.
    pub async fn callback_retry_due(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        now: Timestamp,
    ) -> Result<bool> {
        let reply = self
            .callback_script(
                &self.scripts.callback_retry_due,
                queue,
                entry,
                None,
                now,
                &[],
            )
            .await?;
        Ok(match reply {
            replies::RetryDue::Waiting => true,
            replies::RetryDue::Expired | replies::RetryDue::NotRetryWait => false,
        })
    }

    /// A callback's window ran out (event `expired`, a ticket): one not yet accepted is
    /// closed. Returns the agents that were ringing for it, now released: stop their legs.
    /// An entry accepted, connected or gone meanwhile is left alone and answers no agents.
    pub async fn callback_expire(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        now: Timestamp,
    ) -> Result<Vec<AgentId>> {
        match self
            .close_callback(queue, entry, CloseReason::Expired, now)
            .await
        {
            Err(StoreError::Rule(_) | StoreError::UnknownEntry { .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// An operator withdraws a callback not yet accepted (event `canceled`). Returns the
    /// agents that were ringing for it, now released: stop their legs.
    pub async fn callback_cancel(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        now: Timestamp,
    ) -> Result<Vec<AgentId>> {
        self.close_callback(queue, entry, CloseReason::Canceled, now)
            .await
    }

    /// The open callback `number` has in `queue` (waiting, ringing, being dialed or waiting
    /// for a retry), if any: what a caller calling again from that number is asked about.
    /// A read only: the transitions that act on the answer check it again.
    pub async fn pending_callback(
        &self,
        queue: &QueueName,
        number: &PhoneNumber,
    ) -> Result<Option<Entry>> {
        let key = self.keys.callback_number(queue, Some(number));
        let id: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut self.conn())
            .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        let id = EntryId::new(&id).map_err(|e| StoreError::Corrupt {
            key,
            reason: e.to_string(),
        })?;
        Ok(self.entry(queue, &id).await?.filter(|e| {
            matches!(e.kind, EntryKind::Callback(_))
                && matches!(
                    e.status,
                    EntryStatus::Waiting
                        | EntryStatus::Offered { .. }
                        | EntryStatus::Dialing { .. }
                        | EntryStatus::RetryWait { .. }
                )
        }))
    }

    /// The caller of live entry `entry`, calling from `number`, keeps the callback that
    /// number has open in this queue (event `callback_kept` with the callback as
    /// `existing` and `choice`): their live entry leaves the queue (not abandoned) and the
    /// callback keeps its place. Returns the agents that were ringing for the live entry,
    /// now released: stop their legs. Refused with [`QueueError::NoCallbackPending`] when
    /// the number has no open callback any more.
    pub async fn callback_kept(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        number: &PhoneNumber,
        how: KeptBy,
        now: Timestamp,
    ) -> Result<Vec<AgentId>> {
        let reply = self
            .callback_script(
                &self.scripts.callback_kept,
                queue,
                entry,
                Some(number),
                now,
                &[number.as_str(), how.as_str()],
            )
            .await?;
        self.release_ringing(queue, entry, reply).await
    }

    /// The caller of live entry `caller`, calling again, cancels their pending `callback`
    /// to wait on the line (event `callback_canceled_by_caller`, naming `live_entry`): the
    /// callback is closed and the live entry takes the earlier of the two positions. An
    /// accepted callback (being dialed) stands. Refused with a rule when the callback is no
    /// longer open, or the live entry no longer waiting (the caller left, or was connected).
    pub async fn callback_canceled_by_caller(
        &self,
        queue: &QueueName,
        callback: &EntryId,
        caller: &EntryId,
        now: Timestamp,
    ) -> Result<CallerCancel> {
        let reply = self
            .callback_script_also(
                &self.scripts.callback_canceled_by_caller,
                queue,
                callback,
                Some(caller),
                None,
                now,
                &[caller.as_str()],
            )
            .await?;
        match reply {
            replies::CanceledByCaller::Canceled(ringing) => {
                self.release_agents(callback, &ringing).await?;
                Ok(CallerCancel::Canceled { ringing })
            }
            replies::CanceledByCaller::Dialing => Ok(CallerCancel::BeingDialed),
            replies::CanceledByCaller::CallerGone => Err(QueueError::EntryStatus {
                entry: caller.clone(),
                expected: "waiting or offered",
            }
            .into()),
            replies::CanceledByCaller::Refused(refused) => {
                Err(Self::callback_rule(queue, callback, None, refused))
            }
        }
    }

    /// Act on the reply of a script that took `entry` out of the queue: `ok` followed by
    /// the agents still ringing for it, whose bookings are released here. Returns those
    /// agents, whose legs the caller stops.
    async fn release_ringing(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        reply: replies::WithAgents,
    ) -> Result<Vec<AgentId>> {
        match reply {
            replies::WithAgents::Done(ringing) => {
                self.release_agents(entry, &ringing).await?;
                Ok(ringing)
            }
            replies::WithAgents::Refused(refused) => {
                Err(Self::callback_rule(queue, entry, None, refused))
            }
        }
    }

    async fn close_callback(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        reason: CloseReason,
        now: Timestamp,
    ) -> Result<Vec<AgentId>> {
        let reply = self
            .callback_script(
                &self.scripts.callback_close,
                queue,
                entry,
                None,
                now,
                &[reason.as_str()],
            )
            .await?;
        self.release_ringing(queue, entry, reply).await
    }

    /// The conversation of a connected callback ended (event `completed`, with `talk_ms`).
    /// The agent's state after the call is the caller's to set, as for live calls.
    pub async fn callback_completed(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<()> {
        let reply = self
            .callback_script(
                &self.scripts.callback_completed,
                queue,
                entry,
                None,
                now,
                &[agent.as_str()],
            )
            .await?;
        match reply {
            replies::Step::Done => Ok(()),
            replies::Step::Refused(refused) => {
                Err(Self::callback_rule(queue, entry, Some(agent), refused))
            }
        }
    }

    /// The queue's callback figures. They are counters the event scripts keep next to the
    /// stream, not a scan of it: reading them costs the same however long the stream is, and
    /// they cannot disagree with the events, which are written in the same atomic step.
    pub async fn callback_stats(&self, queue: &QueueName) -> Result<CallbackStats> {
        let key = self.keys.callback_stats(queue);
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await?;
        let count = |name: &str| -> Result<u64> {
            fields.get(name).map_or(Ok(0), |v| {
                // A counter brought below zero by hand reads as none left.
                v.parse::<i64>()
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .map_err(|e| StoreError::Corrupt {
                        key: key.clone(),
                        reason: format!("{name} = {v:?}: {e}"),
                    })
            })
        };
        let answered = count("answered")?;
        let wait_ms = count("answered_wait_ms")?;
        Ok(CallbackStats {
            in_queue: count("in_queue")?,
            total: count("total")?,
            average_wait: (answered > 0).then(|| Duration::from_millis(wait_ms / answered)),
        })
    }

    /// Change an agent's state if the transition is allowed from the state Redis holds now
    /// (event `agent_state`). Returns the previous state; setting the current state again
    /// changes and records nothing.
    pub async fn set_agent_state(
        &self,
        agent: &AgentId,
        to: AgentState,
        now: Timestamp,
        source: StateSource,
    ) -> Result<AgentState> {
        self.set_agent_state_from(agent, &AgentState::allowed_from(to), to, now, source)
            .await
    }

    /// [`Store::set_agent_state`], only from the states in `from` (those the domain does
    /// not allow still refuse): one round trip where reading the state first would be two.
    pub async fn set_agent_state_from(
        &self,
        agent: &AgentId,
        from: &[AgentState],
        to: AgentState,
        now: Timestamp,
        source: StateSource,
    ) -> Result<AgentState> {
        let mut inv = self.scripts.set_agent_state.prepare_invoke();
        inv.key(self.keys.agent(agent))
            .key(self.keys.agent_events())
            .arg(to.as_str())
            .arg(now.as_millis())
            .arg(source.as_str());
        for from in from.iter().filter(|f| f.can_change_to(to)) {
            inv.arg(from.as_str());
        }
        match inv.reply(&mut self.conn()).await? {
            replies::SetAgentState::Changed(previous) | replies::SetAgentState::Same(previous) => {
                Ok(previous)
            }
            replies::SetAgentState::Refused(from) => Err(QueueError::AgentTransition {
                agent: agent.clone(),
                from,
                to,
            }
            .into()),
            replies::SetAgentState::UnknownAgent => Err(StoreError::UnknownAgent(agent.clone())),
        }
    }

    /// One entry, whatever its status, while it is retained.
    pub async fn entry(&self, queue: &QueueName, id: &EntryId) -> Result<Option<Entry>> {
        let key = self.keys.entry(queue, id);
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        records::entry_from(&key, &fields).map(Some)
    }

    /// The first `limit` waiting entries of a queue, oldest first: what routing reads.
    pub async fn waiting_entries(&self, queue: &QueueName, limit: usize) -> Result<Vec<Entry>> {
        self.entries_in(queue, &self.keys.waiting(queue), limit)
            .await
    }

    /// How many entries wait in a queue (not counting those ringing an agent).
    pub async fn waiting_count(&self, queue: &QueueName) -> Result<u64> {
        Ok(redis::cmd("ZCARD")
            .arg(self.keys.waiting(queue))
            .query_async(&mut self.conn())
            .await?)
    }

    /// The queue's recent pace: the mean time between its last `samples` connections, or
    /// `None` before there are two. A caller's wait is estimated from it.
    pub async fn recent_pace(&self, queue: &QueueName, samples: usize) -> Result<Option<Duration>> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.keys.events(queue))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(samples.saturating_mul(10).max(100))
            .query_async(&mut self.conn())
            .await?;
        let times: Vec<u64> = reply
            .ids
            .iter()
            .filter(|e| {
                e.map
                    .get("event")
                    .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                    .as_deref()
                    == Some("connected")
            })
            .filter_map(|e| e.map.get("at"))
            .filter_map(|v| redis::from_redis_value_ref::<String>(v).ok())
            .filter_map(|at| at.parse().ok())
            .take(samples)
            .collect();
        let (Some(newest), Some(oldest)) = (times.first(), times.last()) else {
            return Ok(None);
        };
        if times.len() < 2 {
            return Ok(None);
        }
        let span = newest.saturating_sub(*oldest);
        Ok(Some(Duration::from_millis(span / (times.len() as u64 - 1))))
    }

    /// Remember the recording of the caller saying their name, for the agent's whisper.
    pub async fn set_caller_name(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        recording: &str,
    ) -> Result<()> {
        redis::cmd("HSET")
            .arg(self.keys.entry(queue, entry))
            .arg("name_recording")
            .arg(recording)
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The recording set with [`Store::set_caller_name`], if any.
    pub async fn caller_name(&self, queue: &QueueName, entry: &EntryId) -> Result<Option<String>> {
        Ok(redis::cmd("HGET")
            .arg(self.keys.entry(queue, entry))
            .arg("name_recording")
            .query_async(&mut self.conn())
            .await?)
    }

    /// 1-based place of a waiting entry among those still waiting in its queue, or `None`
    /// when it is not waiting (ringing, connected, gone).
    pub async fn waiting_position(
        &self,
        queue: &QueueName,
        entry: &EntryId,
    ) -> Result<Option<u64>> {
        let rank: Option<u64> = redis::cmd("ZRANK")
            .arg(self.keys.waiting(queue))
            .arg(entry.as_str())
            .query_async(&mut self.conn())
            .await?;
        Ok(rank.map(|r| r + 1))
    }

    /// Every open entry (waiting or ringing an agent), oldest first: what a restarted daemon
    /// reconciles with the channels FreeSWITCH still has.
    pub async fn open_entries(&self, queue: &QueueName) -> Result<Vec<Entry>> {
        self.entries_in(queue, &self.keys.open(queue), usize::MAX)
            .await
    }

    /// The first `limit` entries of one of a queue's sorted sets of entry ids, in one
    /// round trip.
    async fn entries_in(&self, queue: &QueueName, set: &str, limit: usize) -> Result<Vec<Entry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = self.keys.entry_prefix(queue);
        let replies: Vec<Vec<String>> = self
            .scripts
            .entries_in
            .key(set)
            .arg(&prefix)
            .arg(isize::try_from(limit - 1).unwrap_or(-1))
            .data(&mut self.conn())
            .await?;
        // An id whose hash expired is a leftover, not an entry.
        let replies = replies.into_iter().filter(|flat| !flat.is_empty());
        records::from_hashes(replies, &prefix, records::entry_from)
    }

    /// Every registered agent; bookings whose lease ended before `now` read as none.
    pub async fn agents(&self, now: Timestamp) -> Result<Vec<Agent>> {
        let mut ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.agent_ids())
            .query_async(&mut self.conn())
            .await?;
        ids.sort();
        let ids = ids
            .iter()
            .map(|id| {
                AgentId::new(id).map_err(|e| StoreError::Corrupt {
                    key: self.keys.agent_ids(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.agents_named(&ids, now).await
    }

    /// Those of the named agents that are free to be offered an entry now (what routing
    /// needs), in one round trip.
    pub async fn free_agents(&self, ids: &[AgentId], now: Timestamp) -> Result<Vec<Agent>> {
        let mut inv = self.scripts.free_agents.prepare_invoke();
        for id in ids {
            inv.key(self.keys.agent(id));
        }
        inv.arg(now.as_millis());
        let replies: Vec<Vec<String>> = inv.data(&mut self.conn()).await?;
        records::from_hashes(replies, &self.keys.agent_prefix(), |key, fields| {
            records::agent_from(key, fields, now)
        })
    }

    /// The named agents that are registered, in one round trip: a daemon reads the agents
    /// of its config this way, since it can only ring those.
    pub async fn agents_named(&self, ids: &[AgentId], now: Timestamp) -> Result<Vec<Agent>> {
        // An empty pipeline is refused by the client.
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = Vec::with_capacity(ids.len());
        let mut pipe = redis::pipe();
        for id in ids {
            let key = self.keys.agent(id);
            pipe.hgetall(&key);
            keys.push(key);
        }
        let all: Vec<HashMap<String, String>> = pipe.query_async(&mut self.conn()).await?;
        keys.iter()
            .zip(&all)
            .filter(|(_, fields)| !fields.is_empty())
            .map(|(key, fields)| records::agent_from(key, fields, now))
            .collect()
    }

    /// The state of each named agent (`None` for one not registered), in one round trip
    /// whose reply stays small: what tells a daemon whether a queue can offer callbacks.
    pub async fn agent_states(&self, ids: &[AgentId]) -> Result<Vec<Option<AgentState>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(self.keys.agent(id), "state");
        }
        let states: Vec<Option<String>> = pipe.query_async(&mut self.conn()).await?;
        ids.iter()
            .zip(states)
            .map(|(id, state)| {
                state
                    .map(|s| {
                        s.parse::<AgentState>().map_err(|e| StoreError::Corrupt {
                            key: self.keys.agent(id),
                            reason: e.to_string(),
                        })
                    })
                    .transpose()
            })
            .collect()
    }

    pub async fn agent(&self, id: &AgentId, now: Timestamp) -> Result<Option<Agent>> {
        let key = self.keys.agent(id);
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        records::agent_from(&key, &fields, now).map(Some)
    }

    fn timer_keys(&self, scope: &TimerScope) -> (String, String) {
        match scope {
            TimerScope::Queue(queue) => self.keys.timers(queue),
            TimerScope::Agents => self.keys.agent_timers(),
        }
    }

    /// Set (or move) a durable timer.
    pub async fn schedule(&self, timer: &Timer, due: Timestamp) -> Result<()> {
        let (timers, leases) = self.timer_keys(&timer.scope());
        let member = timer.member();
        redis::pipe()
            .atomic()
            .zadd(&timers, &member, due.as_millis())
            .ignore()
            .hdel(&leases, &member)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Lease up to `limit` timers of `scope` due by `now` to `owner` until `now + lease`.
    /// A timer not completed by then comes due again for any daemon.
    pub async fn claim_due_timers(
        &self,
        scope: &TimerScope,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Timer>> {
        let (timers, leases) = self.timer_keys(scope);
        let members: Vec<String> = self
            .scripts
            .claim_timers
            .key(&timers)
            .key(leases)
            .arg(now.as_millis())
            .arg(now.plus(lease).as_millis())
            .arg(owner)
            .arg(limit)
            .data(&mut self.conn())
            .await?;
        members
            .iter()
            .map(|m| {
                Timer::from_member(scope, m).ok_or_else(|| StoreError::Corrupt {
                    key: timers.clone(),
                    reason: format!("timer {m:?}"),
                })
            })
            .collect()
    }

    /// Remove a handled timer; `false` when `owner` no longer holds its lease (it expired
    /// and another daemon claimed it).
    pub async fn complete_timer(&self, timer: &Timer, owner: &str) -> Result<bool> {
        let (timers, leases) = self.timer_keys(&timer.scope());
        let done: i64 = self
            .scripts
            .complete_timer
            .key(timers)
            .key(leases)
            .arg(timer.member())
            .arg(owner)
            .data(&mut self.conn())
            .await?;
        Ok(done == 1)
    }

    /// Up to `count` events of a queue's stream (or the agents' with `None`) after the
    /// stream id `after` (`None` for the start).
    /// Trim the event streams of `queues` and the agents' to about `keep` events each.
    /// `~` lets Redis drop whole nodes only, which keeps trimming cheap.
    pub async fn trim_events(&self, queues: &[QueueName], keep: u64) -> Result<()> {
        let mut pipe = redis::pipe();
        let streams = queues
            .iter()
            .map(|q| self.keys.events(q))
            .chain([self.keys.agent_events()]);
        for stream in streams {
            pipe.cmd("XTRIM")
                .arg(stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(keep)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    /// The id of the newest event of a queue's stream (the agents' when `queue` is None):
    /// enough to tell that something happened since an id seen before.
    pub async fn last_event_id(&self, queue: Option<&QueueName>) -> Result<Option<String>> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.events_key(queue))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn())
            .await?;
        Ok(reply.ids.into_iter().next().map(|e| e.id))
    }

    fn events_key(&self, queue: Option<&QueueName>) -> String {
        match queue {
            Some(q) => self.keys.events(q),
            None => self.keys.agent_events(),
        }
    }

    pub async fn events(
        &self,
        queue: Option<&QueueName>,
        after: Option<&str>,
        count: usize,
    ) -> Result<Vec<StoredEvent>> {
        let key = self.events_key(queue);
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await?;
        reply
            .ids
            .into_iter()
            .map(|sid| {
                let fields = sid
                    .map
                    .iter()
                    .map(|(k, v)| {
                        redis::from_redis_value_ref::<String>(v)
                            .map(|v| (k.clone(), v))
                            .map_err(|e| StoreError::Corrupt {
                                key: key.clone(),
                                reason: format!("event {} field {k}: {e}", sid.id),
                            })
                    })
                    .collect::<Result<HashMap<_, _>>>()?;
                records::event_from(&key, sid.id, fields)
            })
            .collect()
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
