//! Picking up after a restart or an event gap: match the store with the channels the
//! switch still has, adopt what was orphaned, close what vanished, finish what was cut off.
//!
//! Only legs marked with this daemon's id are touched, so daemons sharing a switch never
//! take each other's calls.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;

use super::{AgentLeg, Engine, EngineError, Report};
use crate::queue::{
    AgentId, EndedCall, Entry, EntryId, EntryKind, EntryStatus, QueueName, Timestamp,
};
use crate::store::{AgentOnCall, MissRules, NoAnswerCause, Store, StoreError};
use crate::switch::{tags, CallId, CallRow, ParkedCaller, Pbx};

/// How long before an audit's listing of the switch an agent must have answered for that
/// listing to tell whether their call is still up: a leg of another daemon may have been
/// placed and answered while the listing was under way.
const ANSWER_SLACK: Duration = Duration::from_secs(5);

/// What an audit found under way in the store and gone from the switch.
#[derive(Debug)]
pub(super) struct NotOnSwitch {
    /// Agents on calls that ended.
    pub(super) calls: Vec<AgentOnCall>,
    /// Callbacks being dialed whose legs are gone.
    pub(super) dialing: Vec<LostDialing>,
}

/// A callback whose customer was being dialed when its legs vanished (its daemon died, or
/// lost Redis midway).
#[derive(Debug)]
pub(super) struct LostDialing {
    queue: QueueName,
    entry: EntryId,
    agent: AgentId,
}

/// A callback being dialed: its entry, its agent and the agent's leg.
#[derive(Debug, Clone)]
pub(super) struct Dialed {
    pub(super) queue: QueueName,
    pub(super) entry: EntryId,
    pub(super) agent: AgentId,
    pub(super) agent_leg: CallId,
}

/// A leg callbackd placed, as found on the switch after a restart.
#[derive(Debug, Clone)]
struct FoundLeg {
    leg: CallId,
    role: String,
    queue: QueueName,
    entry: EntryId,
    agent: AgentId,
    answered: bool,
}

impl FoundLeg {
    /// The engine's record of this (agent) leg, answered: it was parked or bridged.
    fn answered_agent_leg(&self) -> AgentLeg {
        AgentLeg {
            queue: self.queue.clone(),
            entry: self.entry.clone(),
            agent: self.agent.clone(),
            // Not known here; the leg's hangup reads the entry to end the call.
            caller: None,
            answered: true,
            answers: None,
            from_console: false,
        }
    }
}

impl<P: Pbx> Engine<P> {
    /// After a (re)connect or an event gap: match the store's open entries with the
    /// channels FreeSWITCH has now, close the vanished, adopt the orphaned, pick up callers
    /// who parked while nobody listened.
    pub(super) async fn resync(&mut self) -> Result<(), EngineError> {
        self.routing.forget_next_in_line();
        let listed_at = self.clock.now();
        let channels = match self.switch.calls().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list channels; resync postponed");
                return Ok(());
            }
        };
        let live: HashMap<String, &CallRow> = channels
            .iter()
            .map(|c| (c.id.as_str().to_owned(), c))
            .collect();
        self.end_vanished_calls(&live).await?;
        let mut hung_up = HashSet::new();
        for leg in std::mem::take(&mut self.hang_up_when_back) {
            if live.contains_key(leg.as_str()) {
                tracing::info!(%leg, "hanging up a leg left up while the switch was out of reach");
                self.kill(leg.clone());
                hung_up.insert(leg.as_str().to_owned());
            }
        }
        // A leg stopped earlier that is still up is hung up (again: a hangup may have come
        // before its originate reached the switch); its end frees its agent.
        let (up, gone): (Vec<CallId>, Vec<CallId>) =
            (self.legs_ending.keys().cloned()).partition(|leg| live.contains_key(leg.as_str()));
        for leg in up {
            if hung_up.insert(leg.as_str().to_owned()) {
                self.kill(leg);
            }
        }
        for leg in gone {
            self.leg_gone(&leg).await?;
        }
        let mut known = HashSet::new();
        let mut unlisted = Vec::new();
        self.refresh_callbacks_open().await?;
        for queue in self.config.queues.clone() {
            let mut waiting = Vec::new();
            for entry in self.store.open_entries(&queue.name).await? {
                let EntryKind::LiveCaller { channel } = &entry.kind else {
                    continue;
                };
                known.insert(channel.to_string());
                if !live.contains_key(channel.as_str()) {
                    unlisted.push(entry);
                } else if entry.status == EntryStatus::Waiting {
                    // Media the outage failed starts again, where it was, if the lease
                    // on it is still this daemon's (take_over asks the store): another
                    // daemon's is theirs to play.
                    if self.callers.get(channel).is_some_and(|m| !m.is_running()) {
                        tracing::info!(%channel, "a waiting caller's media stopped");
                        self.callers.remove(channel);
                    }
                    waiting.push(entry);
                }
            }
            // Only the callers nobody else plays to: another daemon's stay theirs.
            self.take_over(&queue.name, waiting).await?;
        }
        self.close_vanished(unlisted).await;
        known.extend(hung_up);
        let found = self.find_our_legs(&channels, &known);
        self.recover_legs(found).await?;
        self.audit_agent_calls(listed_at, Some(channels.clone()));
        // Parked calls nobody holds may be callers who parked while no daemon listened;
        // their queue tags are read off the loop, and those who have one are taken in.
        let unknown: Vec<CallRow> = channels
            .into_iter()
            .filter(|row| {
                row.parked
                    && row.leg.is_none()
                    && !known.contains(row.id.as_str())
                    && !self.legs.contains_key(&row.id)
                    && !self.callers.contains_key(&row.id)
            })
            .collect();
        if !unknown.is_empty() {
            let (switch, reports) = (self.switch.clone(), self.reports_tx.clone());
            self.tasks
                .spawn(find_parked_callers(switch, unknown, reports));
        }
        self.routing.changed();
        Ok(())
    }

    /// Close the callers of `unlisted`, open entries not in the switch's listing, that are
    /// gone. A caller another daemon parked after the listing is in the queue but not in
    /// it: only a listing taken after the queue was read tells, since every caller the
    /// queue holds was on the switch before.
    async fn close_vanished(&mut self, unlisted: Vec<Entry>) {
        if unlisted.is_empty() {
            return;
        }
        let listed: HashSet<CallId> = match self.switch.calls().await {
            Ok(rows) => rows.into_iter().map(|row| row.id).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list channels; callers gone are closed at the next resync");
                return;
            }
        };
        for entry in unlisted {
            let EntryKind::LiveCaller { channel } = &entry.kind else {
                continue;
            };
            if !listed.contains(channel) {
                self.caller_vanished(&entry).await;
            }
        }
    }

    /// End what this daemon holds in memory that the switch no longer has: calls that
    /// ended while the socket was down, whose hangups nobody heard. Left alone, a bridged
    /// agent would stay on a call forever.
    async fn end_vanished_calls(
        &mut self,
        live: &HashMap<String, &CallRow>,
    ) -> Result<(), StoreError> {
        let gone = |id: &CallId| !live.contains_key(id.as_str());
        // A leg not answered yet may not be on the switch yet: its originate reports it.
        let legs: Vec<CallId> = self
            .legs
            .iter()
            .filter(|(leg, info)| info.answered && gone(leg))
            .map(|(leg, _)| leg.clone())
            .collect();
        for leg in legs {
            tracing::info!(%leg, "an agent's call ended while the switch was out of reach");
            self.on_leg_hangup(leg, "NORMAL_CLEARING").await?;
        }
        let customers: Vec<CallId> = self
            .orphaned_customers
            .keys()
            .filter(|c| gone(c))
            .cloned()
            .collect();
        for customer in customers {
            self.on_leg_hangup(customer, "DAEMON_RESTART").await?;
        }
        let callers: Vec<(CallId, String)> = self
            .callers
            .iter()
            .filter(|(channel, _)| gone(channel))
            .map(|(channel, media)| (channel.clone(), media.queue.to_string()))
            .collect();
        for (channel, queue) in callers {
            tracing::info!(%channel, %queue, "a caller hung up while the switch was out of reach");
            self.on_caller_hangup(channel, &queue).await?;
        }
        Ok(())
    }

    /// Look, off the loop, for agents the store has on a call of which the switch has no
    /// channel left (see [`find_calls_not_on_switch`]); each one found is ended. A listing
    /// taken at `listed_at` is used as it is; without one, the task lists the switch.
    pub(super) fn audit_agent_calls(
        &mut self,
        listed_at: Timestamp,
        listing: Option<Vec<CallRow>>,
    ) {
        self.audited = std::time::Instant::now();
        let agents: Vec<AgentId> = self.config.agents.iter().map(|a| a.id.clone()).collect();
        let queues: Vec<QueueName> = self.config.queues.iter().map(|q| q.name.clone()).collect();
        let (switch, store) = (self.switch.clone(), self.store.clone());
        self.tasks.spawn(find_calls_not_on_switch(
            switch,
            store,
            agents,
            queues,
            listed_at,
            listing,
            self.reports_tx.clone(),
        ));
    }

    /// Calls of agents that ended while no daemon listened, and callbacks whose customer
    /// was being dialed when their legs vanished: the store learns it now.
    pub(super) async fn end_calls_not_on_switch(
        &mut self,
        gone: NotOnSwitch,
    ) -> Result<(), StoreError> {
        for call in gone.calls {
            tracing::info!(
                agent = %call.agent,
                entry = %call.entry,
                "an agent's call ended while no daemon listened"
            );
            self.agent_call_over(EndedCall {
                queue: call.queue,
                agent: call.agent,
                entry: call.entry,
            })
            .await?;
        }
        for lost in gone.dialing {
            // Nobody bridged the customer: the attempt counts, the request waits again at
            // its place, and its agent is freed if still on it.
            tracing::info!(agent = %lost.agent, entry = %lost.entry,
                "a callback's legs vanished while its customer was dialed");
            let now = self.clock.now();
            self.store
                .callback_attempt_failed(
                    &lost.queue,
                    &lost.entry,
                    &lost.agent,
                    "DAEMON_LOST",
                    now,
                    Some(now),
                    true,
                )
                .await?;
            self.routing.changed();
        }
        Ok(())
    }

    /// The legs this daemon placed in an earlier life (same daemon id) that it does not
    /// drive now; legs of other daemons are theirs.
    fn find_our_legs(&self, channels: &[CallRow], known: &HashSet<String>) -> Vec<FoundLeg> {
        channels
            .iter()
            .filter(|row| {
                !known.contains(row.id.as_str())
                    && !self.legs.contains_key(&row.id)
                    && !self.legs_ending.contains_key(&row.id)
                    && !self.orphaned_customers.contains_key(&row.id)
            })
            .filter_map(|row| {
                let tags = row.leg.as_ref()?;
                if tags.daemon != self.options.daemon_id.as_str() {
                    return None;
                }
                Some(FoundLeg {
                    leg: row.id.clone(),
                    role: tags.role.clone(),
                    queue: QueueName::new(&tags.queue).ok()?,
                    entry: EntryId::new(&tags.entry).ok()?,
                    agent: AgentId::new(&tags.agent).ok()?,
                    answered: row.parked,
                })
            })
            .collect()
    }

    /// Pick up what a restart interrupted, so that no callback is dialed twice at once and
    /// none is left hanging: a bridged call is followed to its end, a dialed customer is
    /// still bridged when they answer, and a whisper or ring in progress is ended and the
    /// entry waits again at its place.
    async fn recover_legs(&mut self, found: Vec<FoundLeg>) -> Result<(), StoreError> {
        let now = self.clock.now();
        let customer_of = |entry: &EntryId| {
            found
                .iter()
                .find(|l| l.role == "customer" && &l.entry == entry)
                .cloned()
        };
        for leg in found.iter().filter(|l| l.role == "agent") {
            let status = self
                .store
                .entry(&leg.queue, &leg.entry)
                .await?
                .map(|e| e.status);
            match status {
                Some(EntryStatus::Connected { agent, .. }) if agent == leg.agent => {
                    tracing::info!(leg = %leg.leg, entry = %leg.entry, "following a call bridged before the restart");
                    self.legs.insert(leg.leg.clone(), leg.answered_agent_leg());
                }
                Some(EntryStatus::Dialing { agent, .. }) if agent == leg.agent => {
                    let dialed = Dialed {
                        queue: leg.queue.clone(),
                        entry: leg.entry.clone(),
                        agent: leg.agent.clone(),
                        agent_leg: leg.leg.clone(),
                    };
                    self.legs.insert(leg.leg.clone(), leg.answered_agent_leg());
                    match customer_of(&leg.entry) {
                        Some(customer) if customer.answered => {
                            self.connect_recovered(&dialed, customer.leg).await?;
                        }
                        Some(customer) => {
                            tracing::info!(entry = %leg.entry, "a customer dialed before the restart is still ringing");
                            self.orphaned_customers.insert(customer.leg, dialed);
                        }
                        None => {
                            // The attempt ended while nobody watched: it did not reach the
                            // customer, so the request waits again at its place.
                            self.legs.remove(&leg.leg);
                            self.store
                                .callback_attempt_failed(
                                    &leg.queue,
                                    &leg.entry,
                                    &leg.agent,
                                    "DAEMON_RESTART",
                                    now,
                                    Some(now),
                                    true,
                                )
                                .await?;
                            self.kill(leg.leg.clone());
                        }
                    }
                }
                Some(EntryStatus::Offered { agents, .. }) if agents.contains(&leg.agent) => {
                    tracing::info!(entry = %leg.entry, agent = %leg.agent, "ending an offer interrupted by the restart");
                    self.kill(leg.leg.clone());
                    let _ = self
                        .store
                        .offer_failed(
                            &leg.queue,
                            &leg.entry,
                            &leg.agent,
                            NoAnswerCause::Failed,
                            now,
                            // The restart, not the agent, ended the offer: no hold-off.
                            MissRules::default(),
                        )
                        .await;
                }
                _ => self.kill(leg.leg.clone()),
            }
        }
        // A customer leg whose agent leg is gone has nobody to talk to.
        for customer in found.iter().filter(|l| l.role == "customer") {
            let has_agent = found
                .iter()
                .any(|l| l.role == "agent" && l.entry == customer.entry);
            if !has_agent {
                self.kill(customer.leg.clone());
            }
        }
        self.routing.changed();
        Ok(())
    }

    /// Bridge a customer dialed before a restart to their agent, as the callback task would.
    pub(super) async fn connect_recovered(
        &mut self,
        dialed: &Dialed,
        customer: CallId,
    ) -> Result<(), StoreError> {
        self.store
            .callback_customer_answered(
                &dialed.queue,
                &dialed.entry,
                &dialed.agent,
                self.clock.now(),
            )
            .await?;
        let bridged = async {
            self.switch.stop_media(&dialed.agent_leg).await?;
            self.switch.bridge(&dialed.agent_leg, &customer).await
        }
        .await;
        if let Err(e) = bridged {
            tracing::warn!(entry = %dialed.entry, error = %e, "bridging a recovered callback failed");
            self.kill(customer);
            self.kill(dialed.agent_leg.clone());
        }
        Ok(())
    }
}

/// How many parked calls a resync asks about at once.
const TAG_READS_AT_ONCE: usize = 8;

/// Read the queue tags of `rows` (a few at a time, so a busy switch is not flooded) and
/// hand the engine each one that is a queue call.
async fn find_parked_callers<P: Pbx>(
    switch: P,
    rows: Vec<CallRow>,
    reports: tokio::sync::mpsc::UnboundedSender<Report>,
) {
    let read = |row: CallRow| {
        let switch = switch.clone();
        async move {
            let queue = switch
                .tag(&row.id, &tags::name(tags::QUEUE))
                .await
                .ok()
                .flatten()?;
            let line = switch
                .tag(&row.id, &tags::name(tags::LINE))
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            Some(ParkedCaller {
                channel: row.id,
                queue,
                line,
                caller_id_number: row.caller_id_number,
                sip_from_user: None,
                arrived: row.created,
            })
        }
    };
    let mut found = futures_util::stream::iter(rows)
        .map(read)
        .buffer_unordered(TAG_READS_AT_ONCE);
    while let Some(parked) = found.next().await {
        if let Some(parked) = parked {
            if reports.send(Report::FoundParked(parked)).is_err() {
                return;
            }
        }
    }
}

/// The agents the store has on a call of which the switch has no channel left, and the
/// callbacks it has dialing whose legs are all gone: the call ended while the daemon that
/// placed it was dead or cut off, and no daemon heard its end (that daemon may never come
/// back). Any daemon may end such a call; the end frees an
/// agent only while they are still on that call, so two daemons ending it free them once.
/// One listing (`listing`, or one taken here) and one read, whatever the number of
/// channels. `now` is taken before the listing; calls answered shortly before it are left
/// for the next audit, since another daemon's leg may have answered after the listing.
async fn find_calls_not_on_switch<P: Pbx>(
    switch: P,
    store: Store,
    agents: Vec<AgentId>,
    queues: Vec<QueueName>,
    now: Timestamp,
    listing: Option<Vec<CallRow>>,
    reports: tokio::sync::mpsc::UnboundedSender<Report>,
) {
    let channels = match listing {
        Some(rows) => rows,
        None => match switch.calls().await {
            Ok(rows) => rows,
            Err(_) => return,
        },
    };
    let read = async {
        let calls = store.agents_on_calls(&agents).await?;
        let mut held = Vec::new();
        for queue in &queues {
            held.extend(store.held_entries(queue).await?);
        }
        Ok::<_, StoreError>((calls, held))
    };
    let (on_calls, held) = match read.await {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!(error = %e, "reading the calls under way failed; auditing later");
            return;
        }
    };
    // Channels are the entry's caller, or legs tagged with it.
    let on_switch = |entry: &EntryId, agent: Option<&AgentId>| {
        channels.iter().any(|row| {
            row.id.as_str() == entry.as_str()
                || row.leg.as_ref().is_some_and(|tags| {
                    tags.entry == entry.as_str() && agent.is_none_or(|a| tags.agent == a.as_str())
                })
        })
    };
    let dialing: Vec<(Entry, AgentId, Timestamp)> = held
        .into_iter()
        .filter_map(|entry| match (&entry.kind, &entry.status) {
            (EntryKind::Callback(_), EntryStatus::Dialing { agent, since }) => {
                let (agent, since) = (agent.clone(), *since);
                Some((entry, agent, since))
            }
            _ => None,
        })
        .collect();
    // A dialing callback's agent is on its call: the callback's audit below settles both.
    let calls: Vec<AgentOnCall> = on_calls
        .into_iter()
        .filter(|call| {
            call.since.plus(ANSWER_SLACK) <= now
                && !on_switch(&call.entry, Some(&call.agent))
                && !dialing.iter().any(|(e, _, _)| e.id == call.entry)
        })
        .collect();
    let dialing: Vec<LostDialing> = dialing
        .into_iter()
        .filter(|(entry, _, since)| since.plus(ANSWER_SLACK) <= now && !on_switch(&entry.id, None))
        .map(|(entry, agent, _)| LostDialing {
            queue: entry.queue,
            entry: entry.id,
            agent,
        })
        .collect();
    if !calls.is_empty() || !dialing.is_empty() {
        let _ = reports.send(Report::CallsNotOnSwitch(NotOnSwitch { calls, dialing }));
    }
}
