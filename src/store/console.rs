//! The agents' consoles: callbacks of console lines wait at their place in the queue until
//! an agent takes one (Call) or every eligible agent declined it.
//!
//! Taking is the offer routing makes, to one agent and claimed wherever the entry stands,
//! so the first agent to click wins across daemons and the rest of a callback's life is
//! the one a phone offer leads to.

use std::time::Duration;

use super::entries::Filter;
use super::offers::Claim;
use super::{records, replies, OfferOutcome, Result, Store};
use crate::queue::{AgentId, Entry, EntryId, Offer, QueueName, Timestamp};

/// How many waiting callbacks a console lists per queue.
pub const CONSOLE_LIMIT: usize = 200;

/// A callback waiting in the consoles, with who declined it there.
#[derive(Debug, Clone)]
pub struct ConsoleCallback {
    pub entry: Entry,
    /// Agents who declined it; it no longer shows in their consoles.
    pub declined: Vec<AgentId>,
    /// The caller said their name: a recording of it exists.
    pub has_name: bool,
}

impl Store {
    /// The callbacks waiting in `queue`'s consoles, oldest first (at most
    /// [`CONSOLE_LIMIT`]).
    pub async fn console_callbacks(&self, queue: &QueueName) -> Result<Vec<ConsoleCallback>> {
        let replies = self
            .entry_hashes(
                queue,
                &self.keys.waiting(queue),
                CONSOLE_LIMIT,
                Filter::Console,
            )
            .await?;
        let prefix = self.keys.entry_prefix(queue);
        Ok(records::from_hashes(
            replies,
            &prefix,
            |key, fields| {
                Ok(ConsoleCallback {
                    entry: records::entry_from(key, fields)?,
                    declined: fields
                        .get("declined")
                        .map(|d| d.split(',').filter_map(|a| AgentId::new(a).ok()).collect())
                        .unwrap_or_default(),
                    has_name: fields.get("name_recording").is_some_and(|n| !n.is_empty()),
                })
            },
            |e| self.skip_poison(e),
        ))
    }

    /// `agent` takes callback `entry` from their console: they are booked for it and it is
    /// offered to them alone (event `offered`), or nothing changes and the outcome says
    /// why (another agent took it first: [`OfferOutcome::EntryNotWaiting`]).
    pub async fn take_from_console(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
        ring_time: Duration,
    ) -> Result<OfferOutcome> {
        let offer = Offer {
            entry: entry.clone(),
            queue: queue.clone(),
            agents: vec![agent.clone()],
            ahead: Vec::new(),
        };
        self.offer_to(&offer, now, ring_time, None, Claim::FromConsole)
            .await
    }

    /// `agent` declined callback `entry` in their console (event `declined`): it leaves
    /// their list, and closes (`declined_by_all`) once every agent of `eligible` declined
    /// it; whether it did.
    pub async fn console_declined(
        &self,
        queue: &QueueName,
        entry: &EntryId,
        agent: &AgentId,
        now: Timestamp,
        eligible: &[AgentId],
    ) -> Result<bool> {
        let mut args = vec![agent.as_str()];
        args.extend(eligible.iter().map(AgentId::as_str));
        let reply = self
            .callback_script(
                &self.scripts.console_decline,
                queue,
                entry,
                None,
                now,
                &args,
            )
            .await?;
        match reply {
            replies::ConsoleDecline::Waiting => Ok(false),
            replies::ConsoleDecline::DeclinedByAll => Ok(true),
            replies::ConsoleDecline::Refused(refused) => {
                Err(Self::callback_rule(queue, entry, Some(agent), refused))
            }
        }
    }
}
