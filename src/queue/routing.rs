//! Who gets which entry: the longest-idle free agent takes the oldest entry of the queues
//! they serve, in their priority order; ring-all queues ring every free agent at once. An
//! agent held off an entry (they did not take an earlier offer of it) skips it until their
//! delay is over.

use std::collections::{HashMap, HashSet};

use super::{Agent, AgentId, Entry, EntryId, EntryStatus, QueueName, Strategy, Timestamp};

/// One offer to make: ring `agents` for `entry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub entry: EntryId,
    pub queue: QueueName,
    /// One agent, or every eligible free agent of a ring-all queue (longest idle first).
    pub agents: Vec<AgentId>,
    /// The waiting entries of the same queue the plan saw ahead of this one (given to other
    /// agents, or not for these): the entry is claimed only if nothing else is ahead of it
    /// by then, so a plan made from entries read earlier still keeps the queue's order.
    pub ahead: Vec<EntryId>,
}

/// The queues' strategies; everything else routing needs travels with entries and agents.
#[derive(Debug, Clone, Default)]
pub struct Router {
    strategies: HashMap<QueueName, Strategy>,
}

impl Router {
    pub fn new(strategies: impl IntoIterator<Item = (QueueName, Strategy)>) -> Self {
        Self {
            strategies: strategies.into_iter().collect(),
        }
    }

    fn strategy(&self, queue: &QueueName) -> Strategy {
        self.strategies.get(queue).copied().unwrap_or_default()
    }

    /// The one offer to make next, if any, `now`: entries not waiting and agents not free
    /// are ignored, so callers may pass everything they loaded.
    pub fn next_offer(&self, entries: &[Entry], agents: &[Agent], now: Timestamp) -> Option<Offer> {
        self.next_offer_but(entries, agents, &HashSet::new(), &HashSet::new(), now)
    }

    /// The next offer for entries and agents not already `used` by others of a plan.
    fn next_offer_but(
        &self,
        entries: &[Entry],
        agents: &[Agent],
        used_entries: &HashSet<EntryId>,
        used_agents: &HashSet<AgentId>,
        now: Timestamp,
    ) -> Option<Offer> {
        let mut free: Vec<&Agent> = agents
            .iter()
            .filter(|a| a.is_free() && !used_agents.contains(&a.id))
            .collect();
        free.sort_by(|a, b| (a.idle_since, &a.id).cmp(&(b.idle_since, &b.id)));
        let waiting = || entries.iter().filter(|e| e.status == EntryStatus::Waiting);
        for agent in &free {
            let best = waiting()
                .filter(|e| !used_entries.contains(&e.id) && !e.holds_off(&agent.id, now))
                .filter_map(|e| agent.priority_for(&e.queue).map(|p| (p, e)))
                .min_by(|(pa, a), (pb, b)| (pa, a.position, &a.id).cmp(&(pb, b.position, &b.id)));
            let Some((_, entry)) = best else { continue };
            let agents = match self.strategy(&entry.queue) {
                Strategy::LongestIdle => vec![agent.id.clone()],
                Strategy::RingAll => free
                    .iter()
                    .filter(|a| a.priority_for(&entry.queue).is_some())
                    .filter(|a| !entry.holds_off(&a.id, now))
                    .map(|a| a.id.clone())
                    .collect(),
            };
            let ahead = waiting()
                .filter(|e| e.queue == entry.queue)
                .filter(|e| (e.position, &e.id) < (entry.position, &entry.id))
                .map(|e| e.id.clone())
                .collect();
            return Some(Offer {
                entry: entry.id.clone(),
                queue: entry.queue.clone(),
                agents,
                ahead,
            });
        }
        None
    }

    /// Every offer that can be made `now`, each entry and agent used at most once: what
    /// to do when several agents become free together or after a restart.
    pub fn plan(&self, entries: &[Entry], agents: &[Agent], now: Timestamp) -> Vec<Offer> {
        let mut offers = Vec::new();
        let mut used_entries = HashSet::new();
        let mut used_agents = HashSet::new();
        while let Some(offer) =
            self.next_offer_but(entries, agents, &used_entries, &used_agents, now)
        {
            used_entries.insert(offer.entry.clone());
            used_agents.extend(offer.agents.iter().cloned());
            offers.push(offer);
        }
        offers
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{AgentState, Clock, LineName, ManualClock, ServedQueue, Timestamp};
    use super::*;
    use crate::values::CallId;

    fn q(s: &str) -> QueueName {
        QueueName::new(s).unwrap()
    }

    fn entry(queue: &str, clock: &ManualClock) -> Entry {
        let e = Entry::live_caller(
            q(queue),
            LineName::new("main").unwrap(),
            CallId::random(),
            None,
            clock,
        );
        clock.advance(Duration::from_secs(1));
        e
    }

    /// An available agent serving `queues` (name, priority), idle since `idle_ms`.
    fn agent(id: &str, queues: &[(&str, u8)], idle_ms: u64) -> Agent {
        Agent {
            id: AgentId::new(id).unwrap(),
            state: AgentState::Available,
            idle_since: Timestamp::from_millis(idle_ms),
            state_since: Timestamp::from_millis(idle_ms),
            serves: queues
                .iter()
                .map(|(name, priority)| ServedQueue {
                    queue: q(name),
                    priority: *priority,
                })
                .collect(),
            booked: None,
            missed_in_a_row: 0,
        }
    }

    fn router() -> Router {
        Router::new([
            (q("support"), Strategy::LongestIdle),
            (q("sales"), Strategy::LongestIdle),
            (q("vip"), Strategy::RingAll),
        ])
    }

    #[test]
    fn oldest_entry_goes_to_longest_idle_agent() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let first = entry("support", &clock);
        let second = entry("support", &clock);
        let agents = [
            agent("recent", &[("support", 1)], 900),
            agent("idle", &[("support", 1)], 100),
        ];
        let offer = router()
            .next_offer(&[second.clone(), first.clone()], &agents, clock.now())
            .unwrap();
        assert_eq!(offer.entry, first.id);
        assert_eq!(offer.agents, vec![AgentId::new("idle").unwrap()]);

        let plan = router().plan(&[first.clone(), second.clone()], &agents, clock.now());
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[1].entry, second.id);
        assert_eq!(plan[1].agents, vec![AgentId::new("recent").unwrap()]);
    }

    #[test]
    fn fifo_holds_across_the_queues_an_agent_serves() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let sales = entry("sales", &clock);
        let support = entry("support", &clock);
        let agents = [agent("a", &[("support", 1), ("sales", 1)], 0)];
        let offer = router()
            .next_offer(&[support, sales.clone()], &agents, clock.now())
            .unwrap();
        assert_eq!(offer.entry, sales.id);
    }

    #[test]
    fn priority_queue_is_served_before_older_entries_elsewhere() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let sales = entry("sales", &clock);
        let support = entry("support", &clock);
        let agents = [agent("a", &[("support", 1), ("sales", 2)], 0)];
        let offer = router()
            .next_offer(&[sales, support.clone()], &agents, clock.now())
            .unwrap();
        assert_eq!(offer.entry, support.id);
    }

    #[test]
    fn agents_not_free_or_not_serving_are_skipped() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let e = entry("support", &clock);
        let mut away = agent("away", &[("support", 1)], 0);
        away.state = AgentState::Away;
        let mut ringing = agent("ringing", &[("support", 1)], 1);
        ringing.booked = Some(EntryId::random());
        let mut transfers = agent("transfers", &[("support", 1)], 2);
        transfers.state = AgentState::TransfersOnly;
        let other = agent("other", &[("sales", 1)], 3);
        let free = agent("free", &[("support", 1)], 4);
        let all = [away, ringing, transfers, other, free];
        let offer = router()
            .next_offer(std::slice::from_ref(&e), &all, clock.now())
            .unwrap();
        assert_eq!(offer.agents, vec![AgentId::new("free").unwrap()]);
        assert_eq!(router().next_offer(&[e], &all[..4], clock.now()), None);
    }

    #[test]
    fn agents_held_off_are_skipped_and_the_entry_keeps_its_place() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let mut first = entry("support", &clock);
        let second = entry("support", &clock);
        let a = AgentId::new("a").unwrap();
        // `a` did not take an earlier offer of `first`, which waits again.
        first
            .held_off
            .insert(a.clone(), clock.now().plus(Duration::from_secs(30)));
        let agents = [
            agent("a", &[("support", 1)], 0),
            agent("b", &[("support", 1)], 5),
        ];
        let plan = router().plan(&[first.clone(), second.clone()], &agents, clock.now());
        // `a` skips the entry it missed and takes the next; `b` gets the oldest.
        assert_eq!(plan.len(), 2);
        assert_eq!(
            (plan[0].entry.clone(), plan[0].agents.clone()),
            (second.id, vec![a])
        );
        assert_eq!(plan[1].entry, first.id);
        // Each offer names what the plan saw ahead of its entry, for the claim to check.
        assert_eq!(plan[0].ahead, vec![first.id.clone()]);
        assert!(plan[1].ahead.is_empty());
    }

    #[test]
    fn a_held_off_agent_is_offered_the_entry_again_once_their_delay_is_over() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let mut e = entry("support", &clock);
        let a = AgentId::new("a").unwrap();
        let until = clock.now().plus(Duration::from_secs(30));
        e.held_off.insert(a.clone(), until);
        let agents = [agent("a", &[("support", 1)], 0)];
        let entries = std::slice::from_ref(&e);
        let just_before = Timestamp::from_millis(until.as_millis() - 1);
        assert_eq!(router().next_offer(entries, &agents, just_before), None);
        let offer = router().next_offer(entries, &agents, until).unwrap();
        assert_eq!((offer.entry, offer.agents), (e.id.clone(), vec![a]));
    }

    #[test]
    fn ring_all_rings_every_free_eligible_agent() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let mut e = entry("vip", &clock);
        let later = clock.now().plus(Duration::from_secs(1));
        e.held_off.insert(AgentId::new("held").unwrap(), later);
        // A hold-off already over holds nobody off.
        e.held_off.insert(AgentId::new("b").unwrap(), clock.now());
        let agents = [
            agent("b", &[("vip", 1)], 20),
            agent("a", &[("vip", 2)], 10),
            agent("held", &[("vip", 1)], 0),
            agent("sales-only", &[("sales", 1)], 0),
        ];
        let offer = router().next_offer(&[e], &agents, clock.now()).unwrap();
        let ids: Vec<&str> = offer.agents.iter().map(AgentId::as_str).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn offered_entries_are_not_offered_again() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let mut e = entry("support", &clock);
        e.status = EntryStatus::Offered {
            agents: vec![AgentId::new("x").unwrap()],
            since: clock.now(),
        };
        let agents = [agent("a", &[("support", 1)], 0)];
        assert_eq!(router().next_offer(&[e], &agents, clock.now()), None);
    }

    mod properties {
        use proptest::prelude::{any, prop, prop_assert, prop_assert_eq, proptest};

        use super::*;

        const QUEUES: [&str; 3] = ["support", "sales", "vip"];

        /// When the plans are made.
        const NOW: Timestamp = Timestamp::from_millis(1_000);

        /// Queue index, arrival ms, indexes of the agents held off with their ends (ms).
        type RawEntry = (usize, u64, Vec<(usize, u64)>);
        /// (Queue index, priority) served, idle ms, state index, booked.
        type RawAgent = (Vec<(usize, u8)>, u64, usize, bool);

        fn scenario() -> impl proptest::strategy::Strategy<Value = (Vec<RawEntry>, Vec<RawAgent>)> {
            (
                prop::collection::vec(
                    (
                        0..3usize,
                        0..1_000u64,
                        prop::collection::vec((0..6usize, 0..2_000u64), 0..3),
                    ),
                    0..12,
                ),
                prop::collection::vec(
                    (
                        prop::collection::vec((0..3usize, 1..4u8), 0..3),
                        0..1_000u64,
                        0..6usize,
                        any::<bool>(),
                    ),
                    0..6,
                ),
            )
        }

        fn build(raw_entries: &[RawEntry], raw_agents: &[RawAgent]) -> (Vec<Entry>, Vec<Agent>) {
            let clock = ManualClock::new(Timestamp::from_millis(0));
            let entries = raw_entries
                .iter()
                .map(|(queue, at, held)| {
                    let mut e = entry(QUEUES[*queue], &clock);
                    e.position = Timestamp::from_millis(*at);
                    e.held_off = held
                        .iter()
                        .map(|(i, until)| {
                            (
                                AgentId::new(&format!("a{i}")).unwrap(),
                                Timestamp::from_millis(*until),
                            )
                        })
                        .collect();
                    e
                })
                .collect();
            let agents = raw_agents
                .iter()
                .enumerate()
                .map(|(i, (serves, idle, state, booked))| {
                    let mut served: Vec<(&str, u8)> = Vec::new();
                    for (queue, priority) in serves {
                        if !served.iter().any(|(q, _)| *q == QUEUES[*queue]) {
                            served.push((QUEUES[*queue], *priority));
                        }
                    }
                    let mut a = agent(&format!("a{i}"), &served, *idle);
                    a.state = AgentState::ALL[*state];
                    a.booked = booked.then(EntryId::random);
                    a
                })
                .collect();
            (entries, agents)
        }

        proptest! {
            #[test]
            fn plans_respect_every_routing_rule((raw_entries, raw_agents) in scenario()) {
                let (entries, agents) = build(&raw_entries, &raw_agents);
                let plan = router().plan(&entries, &agents, NOW);
                let mut used_agents = HashSet::new();
                let mut used_entries = HashSet::new();
                for offer in &plan {
                    prop_assert!(used_entries.insert(offer.entry.clone()), "entry offered twice");
                    let e = entries.iter().find(|e| e.id == offer.entry).unwrap();
                    prop_assert_eq!(&offer.queue, &e.queue);
                    prop_assert!(!offer.agents.is_empty());
                    if router().strategy(&e.queue) == super::Strategy::LongestIdle {
                        prop_assert_eq!(offer.agents.len(), 1);
                    }
                    for id in &offer.agents {
                        prop_assert!(used_agents.insert(id.clone()), "agent booked twice");
                        let a = agents.iter().find(|a| &a.id == id).unwrap();
                        prop_assert!(a.is_free());
                        prop_assert!(a.priority_for(&e.queue).is_some());
                        prop_assert!(!e.holds_off(id, NOW));
                    }
                }
                // Nothing is left that could still be offered.
                let rest_entries: Vec<Entry> = entries
                    .iter()
                    .filter(|e| !used_entries.contains(&e.id))
                    .cloned()
                    .collect();
                let rest_agents: Vec<Agent> = agents
                    .iter()
                    .filter(|a| !used_agents.contains(&a.id))
                    .cloned()
                    .collect();
                for a in rest_agents.iter().filter(|a| a.is_free()) {
                    for e in &rest_entries {
                        prop_assert!(
                            a.priority_for(&e.queue).is_none() || e.holds_off(&a.id, NOW),
                            "{} left idle while {} waits", a.id, e.id
                        );
                    }
                }
            }
        }
    }
}
