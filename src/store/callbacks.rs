//! A callback's life: requested, offered, accepted or declined, dialed, answered or retried,
//! closed; and a repeat caller's choice. These scripts share one key layout (`callback_script`).

use std::collections::HashMap;
use std::time::Duration;

use super::replies::{self, Refusal, Refused, Reply};
use super::scripts::Lua;
use super::{records, Result, Store, StoreError, CLOSED_RETENTION_SECS, OFFER_GRACE};
use crate::queue::{
    AgentId, CloseReason, Entry, EntryId, EntryKind, EntryStatus, QueueError, QueueName, Timestamp,
};
use crate::switch::PhoneNumber;

/// What became of a caller's request to be called back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackRequested {
    /// The entry is now a callback with the same id and position.
    Requested,
    /// The number already has an open callback in this queue: the caller's entry was
    /// closed (`duplicate_ignored`) and `existing` keeps its place.
    Duplicate { existing: EntryId },
}

/// What became of an operator's request for a callback ([`Store::create_callback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackCreated {
    /// The new entry is in the queue.
    Created,
    /// The number already has an open callback in this queue, `existing`: nothing was
    /// created, so it keeps its place and the customer is called once.
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

impl Store {
    /// Run a callback script with the key layout they share (see `scripts::CALLBACK`).
    /// `number` is read from the entry when not given: it never changes once set, so
    /// reading it before the script is safe, and the script checks the key it names.
    pub(super) async fn callback_script<R: Reply>(
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
    /// the same queue (its KEYS[9]).
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
            .key(self.keys.callback_number(queue, number.or(stored.as_ref())))
            .key(self.keys.withdrawals(queue))
            .key(self.keys.requests(queue));
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
    pub(super) fn callback_rule(
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
            (Refusal::NotConsole, _) => status("a callback of a console line"),
            (Refusal::NotWaiting, _) => status("waiting"),
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

    /// The caller of a waiting (or ringing) live entry asked to be called back at `number`
    /// (event `requested`): the entry becomes a callback with the same id and position,
    /// max wait no longer applies, and it expires at `expires_at` unless accepted first.
    /// When the number already has an open callback in this queue, the caller's entry is
    /// closed instead (event `duplicate_ignored`); agents ringing for it are stopped by the
    /// daemons ringing them, which follow its withdrawal.
    /// Repeating a request that succeeded changes nothing. A callback `in_console` waits
    /// for an agent to take it from their console instead of being routed.
    pub async fn request_callback(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        number: &PhoneNumber,
        now: Timestamp,
        expires_at: Timestamp,
        in_console: bool,
    ) -> Result<CallbackRequested> {
        let expires = expires_at.as_millis().to_string();
        let reply = self
            .callback_script(
                &self.scripts.callback_request,
                queue,
                entry,
                Some(number),
                now,
                &[number.as_str(), &expires, console_flag(in_console)],
            )
            .await?;
        match reply {
            replies::CallbackRequest::Requested => Ok(CallbackRequested::Requested),
            replies::CallbackRequest::Duplicate(existing) => {
                Ok(CallbackRequested::Duplicate { existing })
            }
            replies::CallbackRequest::Refused(refused) => {
                Err(Self::callback_rule(queue, entry, None, refused))
            }
        }
    }

    /// An operator's tool asked for the callback `entry` (built with [`Entry::callback`]),
    /// with no call in the queue (event `requested`, `source` `api`): it joins the queue at
    /// its position and expires at `expires_at` unless accepted first. With `not_before` it
    /// is not offered before then: it waits as a failed attempt waits for its retry
    /// ([`EntryStatus::RetryWait`]), and [`Store::callback_retry_due`] puts it in the
    /// waiting set at that time. When the number already has an open callback in this
    /// queue (what [`Store::pending_callback`] reads), nothing is created; the check and the
    /// creation are one step, so daemons asked at once create one callback between them.
    /// One `in_console` waits for an agent to take it from their console.
    pub async fn create_callback(
        &self,
        entry: &Entry,
        now: Timestamp,
        expires_at: Timestamp,
        not_before: Option<Timestamp>,
        in_console: bool,
    ) -> Result<CallbackCreated> {
        let EntryKind::Callback(request) = &entry.kind else {
            return Err(QueueError::EntryStatus {
                entry: entry.id.clone(),
                expected: "a callback",
            }
            .into());
        };
        let expires = expires_at.as_millis().to_string();
        let not_before = not_before.map_or_else(String::new, |t| t.as_millis().to_string());
        let fields = records::entry_fields(entry);
        let mut args = vec![expires.as_str(), not_before.as_str()];
        for (field, value) in &fields {
            args.push(field);
            args.push(value);
        }
        if in_console {
            args.extend(["console", console_flag(true)]);
        }
        let reply = self
            .callback_script(
                &self.scripts.callback_create,
                &entry.queue,
                &entry.id,
                Some(&request.number),
                now,
                &args,
            )
            .await?;
        match reply {
            replies::CallbackCreate::Created => Ok(CallbackCreated::Created),
            replies::CallbackCreate::Duplicate(existing) => {
                Ok(CallbackCreated::Duplicate { existing })
            }
            replies::CallbackCreate::Exists => Err(StoreError::EntryExists(entry.id.clone())),
        }
    }

    /// Whether `agent` may answer the offer of callback `entry` now: it rings them or they
    /// hear its whisper. A read only, refused with the rule the agent's own steps
    /// ([`Store::callback_accepted`], [`Store::callback_declined`]) would be refused with,
    /// for a caller that must know why before it can act.
    pub async fn callback_offered_to(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
    ) -> Result<()> {
        let found = self.entry(queue, entry).await?;
        match offer_refusal(found.as_ref(), agent) {
            None => Ok(()),
            Some(refusal) => Err(Self::callback_rule(
                queue,
                entry,
                Some(agent),
                Refused {
                    script: "callback_offered_to",
                    refusal,
                },
            )),
        }
    }

    /// `agent` answered the offer of a callback, heard it and declined (event `declined`):
    /// they are not offered it again for `hold_off`; the callback waits again at its
    /// position, or is closed (`declined_by_all`) once every agent of `eligible` declined
    /// it. Agents who only missed its ring have not declined. With `agent_free` (their leg
    /// is hung up) they are free; else their leg's end frees them ([`Store::call_ended`]).
    // Each argument is one fact of the decline, as the script takes them.
    #[allow(clippy::too_many_arguments)]
    pub async fn callback_declined(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
        hold_off: Duration,
        eligible: &[AgentId],
        agent_free: bool,
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
            replies::CallbackDecline::DeclinedByAll => true,
            replies::CallbackDecline::Waiting | replies::CallbackDecline::Ringing(_) => false,
            replies::CallbackDecline::Refused(refused) => {
                return Err(Self::callback_rule(queue, entry, Some(agent), refused))
            }
        };
        if agent_free {
            self.agent_released(agent, queue, entry, now).await?;
        }
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
        self.agent_step::<()>(
            &self.scripts.callback_offer_answered,
            queue,
            entry,
            agent,
            now,
            &[&until],
        )
        .await?;
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
        let () = self
            .agent_step(&self.scripts.callback_accept, queue, entry, agent, now, &[])
            .await?;
        self.agent_answered(queue, entry, agent, now).await
    }

    /// Run a callback script whose own ARGV is `agent` (then `more`) and that answers `ok`
    /// (with `T`) or a refusal, which becomes the rule it broke.
    async fn agent_step<T>(
        &self,
        script: &Lua,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
        more: &[&str],
    ) -> Result<T>
    where
        std::result::Result<T, Refused>: Reply,
    {
        let mut args = vec![agent.as_str()];
        args.extend_from_slice(more);
        let reply: std::result::Result<T, Refused> = self
            .callback_script(script, queue, entry, None, now, &args)
            .await?;
        reply.map_err(|refused| Self::callback_rule(queue, entry, Some(agent), refused))
    }

    /// The customer leg of an accepted callback is being dialed (event `dialing_customer`).
    pub async fn callback_dialing(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
    ) -> Result<()> {
        self.agent_step(
            &self.scripts.callback_dialing,
            queue,
            entry,
            agent,
            now,
            &[],
        )
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
        self.agent_step(
            &self.scripts.callback_answered,
            queue,
            entry,
            agent,
            now,
            &[],
        )
        .await
    }

    /// The customer leg failed with `cause` (event `attempt_failed`, a ticket); with
    /// `agent_free` (their leg is hung up) `agent` is `available` again, else their leg's
    /// end frees them ([`Store::call_ended`]). With `retry_at` the callback waits for that
    /// time and then for an agent again at its position ([`Store::callback_retry_due`]);
    /// without, it is closed.
    // Each argument is one fact of the failed attempt, as the script takes them.
    #[allow(clippy::too_many_arguments)]
    pub async fn callback_attempt_failed(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        cause: &str,
        now: Timestamp,
        retry_at: Option<Timestamp>,
        agent_free: bool,
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
            replies::AttemptFailed::Retry | replies::AttemptFailed::Closed if agent_free => {
                self.agent_released(agent, queue, entry, now).await
            }
            replies::AttemptFailed::Retry | replies::AttemptFailed::Closed => Ok(()),
            replies::AttemptFailed::Refused(refused) => {
                Err(Self::callback_rule(queue, entry, Some(agent), refused))
            }
        }
    }

    /// A failed callback's retry time came, or a created one's earliest time: it waits at
    /// its position (`true`), or, when its window has passed meanwhile, it is closed
    /// (`expired`) and this answers `false`, as it does for an entry no longer waiting for
    /// a retry.
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
        self.leave_callback(
            &self.scripts.callback_kept,
            queue,
            entry,
            Some(number),
            now,
            &[number.as_str(), how.as_str()],
        )
        .await
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
            replies::CanceledByCaller::Canceled(ringing) => Ok(CallerCancel::Canceled { ringing }),
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

    /// Run a callback script that takes `entry` out of the queue and answers the agents
    /// still ringing for it. Returns those agents, whose legs the caller stops; each stays
    /// booked until its leg is gone.
    async fn leave_callback(
        &self,
        script: &Lua,
        queue: &QueueName,
        entry: &EntryId,
        number: Option<&PhoneNumber>,
        now: Timestamp,
        args: &[&str],
    ) -> Result<Vec<AgentId>> {
        let reply: replies::WithAgents = self
            .callback_script(script, queue, entry, number, now, args)
            .await?;
        reply.map_err(|refused| Self::callback_rule(queue, entry, None, refused))
    }

    async fn close_callback(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        reason: CloseReason,
        now: Timestamp,
    ) -> Result<Vec<AgentId>> {
        let reason = [reason.as_str()];
        self.leave_callback(
            &self.scripts.callback_close,
            queue,
            entry,
            None,
            now,
            &reason,
        )
        .await
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
        self.agent_step(
            &self.scripts.callback_completed,
            queue,
            entry,
            agent,
            now,
            &[],
        )
        .await
    }

    /// The queue's callback figures. They are counters the event scripts keep next to the
    /// stream, not a scan of it: reading them costs the same however long the stream is, and
    /// they cannot disagree with the events, which are written in the same atomic step.
    pub async fn callback_stats(&self, queue: &QueueName) -> Result<CallbackStats> {
        let key = self.keys.callback_stats(queue);
        let fields = self.hash(&key).await?;
        let count = |name: &str| counter(&key, &fields, name);
        let answered = count("answered")?;
        let wait_ms = count("answered_wait_ms")?;
        Ok(CallbackStats {
            in_queue: count("in_queue")?,
            total: count("total")?,
            average_wait: (answered > 0).then(|| Duration::from_millis(wait_ms / answered)),
        })
    }
}

/// What a queue counted today (the UTC day): the dashboard's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TodayFigures {
    /// Callbacks requested.
    pub requested: u64,
    /// Callbacks whose customer answered.
    pub connected: u64,
    /// Callbacks closed without connecting (expired, declined by all, canceled, failed).
    pub ended_unconnected: u64,
    /// Live callers who hung up while waiting.
    pub abandoned: u64,
    /// Mean time from request to the customer answering, over today's connected.
    pub average_wait: Option<Duration>,
}

impl TodayFigures {
    /// The share of today's callbacks that ended connected, of those that ended.
    pub fn connected_share(&self) -> Option<f64> {
        let ended = self.connected + self.ended_unconnected;
        (ended > 0).then(|| self.connected as f64 / ended as f64)
    }
}

/// A counter of a stats hash; none counted yet is 0.
fn counter(key: &str, fields: &HashMap<String, String>, name: &str) -> Result<u64> {
    fields.get(name).map_or(Ok(0), |v| {
        // A counter brought below zero by hand reads as none left.
        v.parse::<i64>()
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| StoreError::Corrupt {
                key: key.to_owned(),
                reason: format!("{name} = {v:?}: {e}"),
            })
    })
}

impl Store {
    /// What `queue` counted on the UTC day of `now` (all zero before its first count).
    pub async fn today_figures(&self, queue: &QueueName, now: Timestamp) -> Result<TodayFigures> {
        let key = self.keys.callback_stats(queue);
        let fields = self.hash(&key).await?;
        let today = (now.as_millis() / 86_400_000).to_string();
        if fields.get("day") != Some(&today) {
            return Ok(TodayFigures::default());
        }
        let count = |name: &str| counter(&key, &fields, name);
        let connected = count("today_connected")?;
        let wait_ms = count("today_wait_ms")?;
        Ok(TodayFigures {
            requested: count("today_requested")?,
            connected,
            ended_unconnected: count("today_ended")?,
            abandoned: count("today_abandoned")?,
            average_wait: (connected > 0).then(|| Duration::from_millis(wait_ms / connected)),
        })
    }
}

/// Why `agent` cannot answer the offer of `entry` as it is now, in the words of the callback
/// scripts' refusals (`callback_decline`'s order); `None` when they can.
fn offer_refusal(entry: Option<&Entry>, agent: &AgentId) -> Option<Refusal> {
    let Some(entry) = entry else {
        return Some(Refusal::UnknownEntry);
    };
    if !matches!(entry.kind, EntryKind::Callback(_)) {
        return Some(Refusal::NotCallback);
    }
    match &entry.status {
        EntryStatus::Offered { agents, .. } if agents.contains(agent) => None,
        EntryStatus::Offered { .. } => Some(Refusal::NotOfferedTo),
        _ => Some(Refusal::NotOffered),
    }
}

/// The `console` field of a callback: '1' when agents take it from their consoles.
fn console_flag(in_console: bool) -> &'static str {
    if in_console {
        "1"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Clock, LineName, ManualClock};

    #[test]
    fn only_an_agent_a_callback_is_offered_to_may_answer_it() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let (alice, bob) = (AgentId::new("alice").unwrap(), AgentId::new("bob").unwrap());
        let mut callback = Entry::callback(
            QueueName::new("support").unwrap(),
            LineName::new("main").unwrap(),
            PhoneNumber::new("+4930222").unwrap(),
            clock.now(),
            clock.now(),
        );
        assert_eq!(offer_refusal(None, &alice), Some(Refusal::UnknownEntry));
        assert_eq!(
            offer_refusal(Some(&callback), &alice),
            Some(Refusal::NotOffered)
        );
        callback.status = EntryStatus::Offered {
            agents: vec![alice.clone()],
            since: clock.now(),
        };
        assert_eq!(offer_refusal(Some(&callback), &alice), None);
        assert_eq!(
            offer_refusal(Some(&callback), &bob),
            Some(Refusal::NotOfferedTo)
        );
        callback.kind = EntryKind::LiveCaller {
            channel: crate::switch::CallId::random(),
        };
        assert_eq!(
            offer_refusal(Some(&callback), &alice),
            Some(Refusal::NotCallback)
        );
    }
}
