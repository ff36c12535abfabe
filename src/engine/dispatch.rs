//! Routing, the loop's side: which free agent is offered which waiting entry, when the
//! queues' heads are read again, and the callers known to be next in line.
//!
//! The store's side of the same round trips (booking, ending calls) is in `booking`, so it
//! can run off the loop.

use std::future::Future;

use super::booking::{self, Booked};
use super::routing_state::AfterCalls;
use super::{AgentLeg, Engine, Report};
use crate::config::Config;
use crate::queue::{Agent, AgentId, EndedCall, Entry, EntryKind, Offer, Timestamp};
use crate::store::{OfferOutcome, StoreError};
use crate::switch::{tags, CallId, Originate, Pbx, PendingCall, SwitchError};

/// At most this many waiting entries per queue routing looks at: the oldest are always
/// among them.
const ROUTING_WINDOW: usize = 64;

/// Routing first reads this many entries per queue beyond one per free agent (room for
/// entries a free agent already missed); only when that leaves a free agent without an
/// offer does it read the whole window. Reading 64 entries per pass was most of its cost.
const ROUTING_SLACK: usize = 4;

impl<P: Pbx> Engine<P> {
    /// A call this daemon followed ended: its agent is freed before the next routing
    /// pass, and their wait for the next ring starts now.
    pub(super) fn call_ended(&mut self, call: EndedCall) {
        self.freed_at
            .insert(call.agent.clone(), std::time::Instant::now());
        self.routing.call_ended(call);
    }

    /// Free the agents of the calls that ended since last time, if any, all at once (one
    /// round trip for a burst), and route them. When the last pass left nobody idle they
    /// are the only free agents worth routing: they are offered the callers known to be
    /// next in line, and freeing, booking and claiming go out together, off the loop, so an
    /// agent waits one round trip and the loop meanwhile takes the next hangups of a burst.
    /// Without callers known, the queue heads are read in the round trip that frees them.
    /// When agents were idle, a full pass routes these with them.
    pub(super) async fn route_freed_agents(&mut self) -> Result<(), StoreError> {
        let Some((ended, route)) = self.routing.take_calls_ended() else {
            return Ok(());
        };
        let now = self.clock.now();
        // Draining, the agents are only freed: the pass that would offer them makes none.
        if route == AfterCalls::WithTheIdle || self.is_draining() {
            let freed = booking::end_calls(&self.store, &self.config, &ended, now).await;
            self.routing.agents_freed(freed.len());
            return Ok(());
        }
        if let AfterCalls::NextInLine(next) = route {
            // An agent who went away meanwhile is not booked, and the claim is withdrawn.
            let freed = self.free_now(
                ended
                    .iter()
                    .filter(|c| booking::wrap_up(&self.config, &c.queue).is_zero())
                    .map(|c| &c.agent),
                now,
            );
            let offers = self.routing.plan(&self.router, &next, &freed, now);
            let unplaced = freed.len() - placed(&offers);
            let entries = self.routing.next_in_line_planned(next, &offers, unplaced);
            let trip = self.routing.round_trip_started(&offers);
            // The booking frees the agents it books; the others' calls end on their own.
            let (booked, ended): (Vec<EndedCall>, Vec<EndedCall>) = ended
                .into_iter()
                .partition(|c| offers.iter().any(|o| o.agents.contains(&c.agent)));
            let (store, config, switch, reports) = (
                self.store.clone(),
                self.config.clone(),
                self.switch.clone(),
                self.reports_tx.clone(),
            );
            let daemon_id = self.options.daemon_id.clone();
            let freed_at: Vec<(AgentId, std::time::Instant)> = (offers.iter())
                .flat_map(|o| &o.agents)
                .filter_map(|agent| Some((agent.clone(), self.freed_at.remove(agent)?)))
                .collect();
            let stats = self.stats.clone();
            // The task rings the agents booked itself: the loop learns of the legs after.
            self.tasks.spawn(async move {
                let (_, made) = tokio::join!(
                    booking::end_calls(&store, &config, &ended, now),
                    booking::book(&store, &config, &offers, Some(&booked), now)
                );
                let (config, daemon_id) = (&*config, daemon_id.as_str());
                let calls: Vec<(Originate, AgentLeg)> =
                    offers
                        .iter()
                        .zip(&made)
                        .filter(|(_, made)| matches!(made, Ok(OfferOutcome::Offered)))
                        .filter_map(|(offer, _)| {
                            let entry = entries.iter().find(|e| e.id == offer.entry)?;
                            Some(offer.agents.iter().filter_map(move |agent| {
                                agent_call(config, daemon_id, entry, agent)
                            }))
                        })
                        .flatten()
                        .collect();
                for (agent, at) in &freed_at {
                    if calls.iter().any(|(_, leg)| leg.agent == *agent) {
                        stats.dispatch_latency.observe(at.elapsed());
                    }
                }
                let placed = futures_util::future::join_all(
                    calls.iter().map(|(call, _)| switch.originate(call)),
                )
                .await;
                let rung = calls
                    .into_iter()
                    .zip(placed)
                    .map(|((call, leg), placed)| (call.id, leg, placed))
                    .collect();
                let _ = reports.send(Report::Booked(Booked {
                    trip,
                    offers,
                    made,
                    rung,
                }));
            });
            return Ok(());
        }
        let read = routing_window(ended.len());
        let (freed, entries) = tokio::join!(
            booking::end_calls(&self.store, &self.config, &ended, now),
            self.waiting_heads(read)
        );
        let freed = self.free_now(&freed, now);
        let entries = entries?;
        let offers = self.routing.plan(&self.router, &entries, &freed, now);
        if placed(&offers) < freed.len() {
            self.routing.changed();
        }
        self.make_offers(&offers, entries, now).await;
        // Those not rung had nobody to take: no wait for a ring starts from their call.
        self.freed_at.clear();
        Ok(())
    }

    /// The config's agents among `ids`, as they are once freed `now`: what routing needs
    /// of them, without reading them back.
    fn free_now<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a AgentId>,
        now: Timestamp,
    ) -> Vec<Agent> {
        ids.into_iter()
            .filter_map(|id| self.config.agent(id))
            .map(|a| Agent::freed_now(a.id.clone(), a.queues.clone(), now))
            .collect()
    }

    /// The first `window` waiting entries of every queue, read together: one round trip
    /// on the shared connection.
    async fn waiting_heads(&self, window: usize) -> Result<Vec<Entry>, StoreError> {
        let reads = self
            .config
            .queues
            .iter()
            .map(|q| self.store.waiting_entries(&q.name, window));
        Ok(futures_util::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Make every offer that can be made now. When this daemon just freed `freed` agents,
    /// the free agents and the entries are read together; otherwise the entries are read
    /// only once an agent turns out to be free, which is the common case under load, or
    /// when few callers are known to be next in line.
    pub(super) async fn dispatch(&mut self, freed: usize) -> Result<(), StoreError> {
        // A draining daemon makes no new offers: the daemons staying do. Nor does one cut
        // off from the switch: its phones cannot ring, and the resync when the switch is
        // back routes again.
        if self.is_draining() || !*self.switch_up.borrow() {
            return Ok(());
        }
        let now = self.clock.now();
        let refill = self.routing.next_in_line_short();
        let free_agents = self.store.free_agents(&self.agent_ids, now);
        let (agents, mut entries, mut read) = if freed > 0 || refill {
            let read = if refill {
                ROUTING_WINDOW
            } else {
                routing_window(freed)
            };
            let (agents, entries) = tokio::try_join!(free_agents, self.waiting_heads(read))?;
            (agents, entries, read)
        } else {
            let agents = free_agents.await?;
            if agents.is_empty() {
                self.routing.pass_finished(false);
                self.freed_at.clear();
                return Ok(());
            }
            let read = routing_window(agents.len());
            (agents, self.waiting_heads(read).await?, read)
        };
        let mut offers = self.routing.plan(&self.router, &entries, &agents, now);
        if placed(&offers) < agents.len()
            && read < ROUTING_WINDOW
            && self.some_queue_full(&entries, read)
        {
            read = ROUTING_WINDOW;
            entries = self.waiting_heads(read).await?;
            offers = self.routing.plan(&self.router, &entries, &agents, now);
        }
        self.routing.pass_finished(placed(&offers) < agents.len());
        self.make_offers(&offers, entries, now).await;
        self.freed_at.clear();
        Ok(())
    }

    /// Book and ring `offers`, planned from `entries`; what is left of those is next in line.
    async fn make_offers(&mut self, offers: &[Offer], entries: Vec<Entry>, now: Timestamp) {
        let made = booking::book(&self.store, &self.config, offers, None, now).await;
        if self.ring_booked(offers, &entries, made) {
            self.routing.keep_next_in_line(entries, offers);
        }
    }

    /// Ring the offers that were booked. False when some could not be made: the plan's
    /// view of the queues was out of date, so nobody is known to be next in line.
    fn ring_booked(
        &mut self,
        offers: &[Offer],
        entries: &[Entry],
        made: Vec<Result<OfferOutcome, StoreError>>,
    ) -> bool {
        let made = self.settle(offers, made);
        for offer in &made {
            if let Some(entry) = entries.iter().find(|e| e.id == offer.entry) {
                self.ring(entry, offer);
            }
        }
        made.len() == offers.len()
    }

    /// The offers that were made; for the others (a race lost with another daemon or a
    /// state change) routing looks again, without what it knew of the queues.
    pub(super) fn settle<'a>(
        &mut self,
        offers: &'a [Offer],
        made: Vec<Result<OfferOutcome, StoreError>>,
    ) -> Vec<&'a Offer> {
        let mut rung = Vec::new();
        for (offer, outcome) in offers.iter().zip(made) {
            match outcome {
                Ok(OfferOutcome::Offered) => {
                    rung.push(offer);
                    continue;
                }
                Ok(
                    OfferOutcome::AgentNotFree(_)
                    | OfferOutcome::EntryNotWaiting
                    | OfferOutcome::EntryNotFirst
                    | OfferOutcome::HeldOff(_),
                ) => {}
                // An offer booked but never rung comes back when its booking lease or its
                // offer timer runs out.
                Err(e) => tracing::warn!(entry = %offer.entry, error = %e, "offer failed"),
            }
            self.routing.queues_changed();
        }
        rung
    }

    /// Whether some queue had `read` entries or more waiting: then more wait beyond them.
    fn some_queue_full(&self, entries: &[Entry], read: usize) -> bool {
        self.config
            .queues
            .iter()
            .any(|q| entries.iter().filter(|e| e.queue == q.name).count() >= read)
    }

    /// Ring the offer's agents, each on a leg of its own.
    pub(super) fn ring(&mut self, entry: &Entry, offer: &Offer) {
        for agent in &offer.agents {
            let Some((call, leg)) =
                agent_call(&self.config, self.options.daemon_id.as_str(), entry, agent)
            else {
                continue;
            };
            if let Some(at) = self.freed_at.remove(agent) {
                self.stats.dispatch_latency.observe(at.elapsed());
            }
            let switch = self.switch.clone();
            let uuid = call.id.clone();
            self.track_leg(uuid, leg, async move { switch.originate(&call).await });
        }
    }

    /// Remember an agent leg being placed, and report how its originate ends.
    pub(super) fn track_leg(
        &mut self,
        uuid: CallId,
        leg: AgentLeg,
        placed: impl Future<Output = Result<PendingCall, SwitchError>> + Send + 'static,
    ) {
        tracing::info!(entry = %leg.entry, agent = %leg.agent, leg = %uuid, "offering to agent");
        self.legs.insert(uuid.clone(), leg.clone());
        let reports = self.reports_tx.clone();
        self.tasks.spawn(async move {
            let result = match placed.await {
                Ok(pending) => pending.wait().await,
                Err(e) => Err(e),
            };
            let _ = reports.send(Report::AgentLeg {
                queue: leg.queue,
                entry: leg.entry,
                agent: leg.agent,
                leg: uuid,
                result,
            });
        });
    }
}

/// How many agents `offers` ring.
pub(super) fn placed(offers: &[Offer]) -> usize {
    offers.iter().map(|o| o.agents.len()).sum()
}

/// How many waiting entries per queue a pass first reads for `free` agents.
fn routing_window(free: usize) -> usize {
    (free + ROUTING_SLACK).min(ROUTING_WINDOW)
}

/// The call that rings `agent` for `entry`, and the leg the engine tracks for it.
fn agent_call(
    config: &Config,
    daemon_id: &str,
    entry: &Entry,
    agent: &AgentId,
) -> Option<(Originate, AgentLeg)> {
    let contact = &config.agent(agent)?.contact;
    let mut call = Originate::new(contact.clone());
    call.timeout = Some(config.queue(&entry.queue)?.ring_time);
    call.caller_id_number = entry.caller_id.clone();
    call.tags = tags::LegTags {
        role: "agent".into(),
        daemon: daemon_id.to_owned(),
        queue: entry.queue.to_string(),
        entry: entry.id.to_string(),
        agent: agent.to_string(),
    }
    .originate_vars();
    let leg = AgentLeg {
        queue: entry.queue.clone(),
        entry: entry.id.clone(),
        agent: agent.clone(),
        caller: match &entry.kind {
            EntryKind::LiveCaller { channel } => Some(channel.clone()),
            EntryKind::Callback(_) => None,
        },
        answered: false,
        answers: None,
        from_console: false,
    };
    Some((call, leg))
}
