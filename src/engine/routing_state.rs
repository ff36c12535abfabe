//! What the engine loop remembers between routing passes, and the rules that keep it true,
//! apart from the store and the switch so each rule holds in one place and is tested alone.

use std::collections::{HashMap, HashSet};

use crate::queue::{
    Agent, EndedCall, Entry, EntryId, EntryStatus, Offer, QueueName, Router, Timestamp,
};

/// A full routing pass waits while signals are queued (they may free agents, whose offers
/// come first), but only this many times in a row.
const MAX_DEFERRED_PASSES: usize = 8;

/// Below this many callers known to be next in line, a routing pass reads the queues'
/// heads again (off the path of a freed agent, who is offered one of those known).
const NEXT_IN_LINE_MIN: usize = 16;

/// The engine's routing memory. Each method is an event the loop went through or a question
/// it asks; the fields change only through them.
pub(super) struct RoutingState {
    /// Something changed that may make an offer possible.
    dirty: bool,
    /// Agents this daemon made available since the last routing pass: that pass reads
    /// the entries for them at once, without first asking Redis whether anyone is free.
    agents_freed: usize,
    /// The last routing pass left free agents without an offer (or none ran yet): only
    /// then can a new caller be offered at once, so only then does an arrival route.
    idle_agents_seen: bool,
    /// Calls that ended since the last routing pass: their agents are freed together
    /// before it.
    calls_ended: Vec<EndedCall>,
    /// The waiting entries the last routing pass read and did not offer, oldest first per
    /// queue: the callers next in line. An agent freed by the end of a call is offered one
    /// of them in the very round trip that frees them. `None` once an entry may have gone
    /// back ahead of them; a claim checks the order anyway (see [`Offer::ahead`]).
    next_in_line: Option<Vec<Entry>>,
    /// Full routing passes put off in a row while signals were queued.
    passes_deferred: usize,
    /// Entries being claimed by routing round trips under way, with their queue and trip:
    /// no other plan takes them, and claims behind them count them as known.
    claiming: HashMap<EntryId, Claim>,
    /// Routing round trips under way off the loop. The full pass waits for them: what it
    /// reads could be a step behind what they write.
    under_way: HashSet<u64>,
    /// Round trips are numbered, so one given up for lost is told from those after it.
    next_trip: u64,
}

/// An entry's claim: its queue (for the claims behind it) and the round trip making it, so
/// a trip given up for lost cannot release the claims of a later one when it reports.
struct Claim {
    queue: QueueName,
    trip: u64,
}

/// A routing round trip under way off the loop, handed back when it reports. Neither
/// `Clone` nor `Copy`: each trip ends once.
#[derive(Debug)]
#[must_use = "the full pass waits until the round trip is booked or lost"]
pub(super) struct RoundTrip(u64);

/// How the agents of the calls that just ended are routed.
#[derive(Debug, PartialEq)]
pub(super) enum AfterCalls {
    /// The last pass left agents idle: a full pass routes the freed agents with them.
    WithTheIdle,
    /// Nobody was left idle, and these callers are known to be next in line: the freed
    /// agents are offered them in the round trip that frees them.
    NextInLine(Vec<Entry>),
    /// Nobody was left idle and nobody is known to be next in line: the queues' heads are
    /// read in the round trip that frees them.
    ReadHeads,
}

impl RoutingState {
    /// Before the first pass: one is due, and agents may be idle.
    pub(super) fn new() -> Self {
        Self {
            dirty: true,
            agents_freed: 0,
            idle_agents_seen: true,
            calls_ended: Vec::new(),
            next_in_line: None,
            passes_deferred: 0,
            claiming: HashMap::new(),
            under_way: HashSet::new(),
            next_trip: 0,
        }
    }

    /// Something changed that may make an offer possible (an agent's state, an offer's
    /// outcome, a timer, a pass that failed): a full pass looks.
    pub(super) fn changed(&mut self) {
        self.dirty = true;
    }

    /// The queues changed in a way not known here (a task wrote to the store, an entry left
    /// or an offer could not be made): an entry may have gone ahead of those known next in
    /// line, and an offer may be possible.
    pub(super) fn queues_changed(&mut self) {
        self.forget_next_in_line();
        self.changed();
    }

    /// An entry may have gone back ahead of the callers known to be next in line.
    pub(super) fn forget_next_in_line(&mut self) {
        self.next_in_line = None;
    }

    /// A caller gave up waiting: those behind them keep their order.
    pub(super) fn entry_abandoned(&mut self, entry: &EntryId) {
        if let Some(next) = &mut self.next_in_line {
            next.retain(|e| e.id != *entry);
        }
    }

    /// A caller entered a queue: only an idle agent can take them before the next change.
    pub(super) fn caller_arrived(&mut self) {
        self.dirty |= self.idle_agents_seen;
    }

    /// This daemon made `count` agents available: the next pass routes them.
    pub(super) fn agents_freed(&mut self, count: usize) {
        self.agents_freed += count;
        self.changed();
    }

    /// A connected call ended: its agent is freed before the next routing pass, together
    /// with every other agent whose call ended in the same burst of signals.
    pub(super) fn call_ended(&mut self, call: EndedCall) {
        self.calls_ended.push(call);
    }

    /// The calls that ended since they were last taken, and how their agents are routed;
    /// `None` when none did. When the last pass left nobody idle the freed are the only
    /// free agents worth routing, so they get the callers known to be next in line.
    pub(super) fn take_calls_ended(&mut self) -> Option<(Vec<EndedCall>, AfterCalls)> {
        if self.calls_ended.is_empty() {
            return None;
        }
        let ended = std::mem::take(&mut self.calls_ended);
        let route = if self.idle_agents_seen {
            AfterCalls::WithTheIdle
        } else {
            match self.next_in_line.take().filter(|n| !n.is_empty()) {
                Some(next) => AfterCalls::NextInLine(next),
                None => AfterCalls::ReadHeads,
            }
        };
        Some((ended, route))
    }

    /// `offers` were planned from `next` (see [`AfterCalls::NextInLine`]) for agents freed
    /// by calls that ended, `unplaced` of whom got none; the entries offered. When every
    /// freed agent got an offer, those not offered stay next in line (a pass reads more once
    /// few are left); otherwise the next pass routes the unplaced, reading the queues' heads.
    pub(super) fn next_in_line_planned(
        &mut self,
        next: Vec<Entry>,
        offers: &[Offer],
        unplaced: usize,
    ) -> Vec<Entry> {
        let (offered, rest): (Vec<Entry>, Vec<Entry>) = next
            .into_iter()
            .partition(|e| offers.iter().any(|o| o.entry == e.id));
        if unplaced == 0 {
            self.dirty |= rest.len() < NEXT_IN_LINE_MIN;
            self.next_in_line = Some(rest);
        } else {
            self.agents_freed(unplaced);
        }
        offered
    }

    /// The router's plan for `entries` and `agents` `now`, around the entries being claimed
    /// by round trips under way: those are nobody else's, and are known to be ahead.
    pub(super) fn plan(
        &self,
        router: &Router,
        entries: &[Entry],
        agents: &[Agent],
        now: Timestamp,
    ) -> Vec<Offer> {
        let mut offers = if self.claiming.is_empty() {
            router.plan(entries, agents, now)
        } else {
            let free: Vec<Entry> = entries
                .iter()
                .filter(|e| !self.claiming.contains_key(&e.id))
                .cloned()
                .collect();
            router.plan(&free, agents, now)
        };
        for offer in &mut offers {
            offer.ahead.extend(
                self.claiming
                    .iter()
                    .filter(|(_, c)| c.queue == offer.queue)
                    .map(|(e, _)| e.clone()),
            );
        }
        offers
    }

    /// A round trip off the loop starts claiming `offers` (planned by [`Self::plan`], so
    /// none is claimed already): they are nobody else's until it is booked or lost.
    pub(super) fn round_trip_started(&mut self, offers: &[Offer]) -> RoundTrip {
        let trip = self.next_trip;
        self.next_trip += 1;
        for offer in offers {
            let claim = Claim {
                queue: offer.queue.clone(),
                trip,
            };
            let earlier = self.claiming.insert(offer.entry.clone(), claim);
            debug_assert!(earlier.is_none(), "{} planned twice", offer.entry);
        }
        self.under_way.insert(trip);
        RoundTrip(trip)
    }

    /// Whether a round trip under way is claiming `entry` (and may be ringing for it).
    pub(super) fn is_claiming(&self, entry: &EntryId) -> bool {
        self.claiming.contains_key(entry)
    }

    /// A round trip reported its bookings: its claims are over. One given up for lost
    /// meanwhile changes nothing, so a later trip keeps its own claims.
    pub(super) fn round_trip_booked(&mut self, trip: RoundTrip) {
        if self.under_way.remove(&trip.0) {
            self.claiming.retain(|_, c| c.trip != trip.0);
        }
    }

    /// A task panicked and may have been a round trip, whose report will never come: stop
    /// waiting for any, and release their claims.
    pub(super) fn round_trips_lost(&mut self) {
        self.under_way.clear();
        self.claiming.clear();
    }

    /// Whether a full pass runs now, given whether signals are queued: with the agents freed
    /// since the last one, which it routes. It waits while round trips are under way, and
    /// while signals are queued (up to [`MAX_DEFERRED_PASSES`] times in a row).
    pub(super) fn start_pass(&mut self, signals_queued: bool) -> Option<usize> {
        if !self.under_way.is_empty() {
            return None;
        }
        if self.dirty && signals_queued && self.passes_deferred < MAX_DEFERRED_PASSES {
            self.passes_deferred += 1;
            return None;
        }
        self.passes_deferred = 0;
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        Some(std::mem::take(&mut self.agents_freed))
    }

    /// No routing round trip is under way: nothing this daemon started can still book.
    pub(super) fn round_trips_done(&self) -> bool {
        self.under_way.is_empty()
    }

    /// Few callers or none are known to be next in line: the pass reads the whole window.
    pub(super) fn next_in_line_short(&self) -> bool {
        self.next_in_line
            .as_ref()
            .is_none_or(|n| n.len() < NEXT_IN_LINE_MIN)
    }

    /// A full pass found free agents, and left some without an offer or not.
    pub(super) fn pass_finished(&mut self, agents_left_idle: bool) {
        self.idle_agents_seen = agents_left_idle;
    }

    /// Keep what a routing pass read and did not offer as the callers next in line.
    pub(super) fn keep_next_in_line(&mut self, mut entries: Vec<Entry>, offers: &[Offer]) {
        entries.retain(|e| {
            e.status == EntryStatus::Waiting
                && !offers.iter().any(|o| o.entry == e.id)
                && !self.claiming.contains_key(&e.id)
        });
        self.next_in_line = Some(entries);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::queue::{AgentId, Clock, LineName, ManualClock, ServedQueue};
    use crate::values::CallId;

    fn q(s: &str) -> QueueName {
        QueueName::new(s).unwrap()
    }

    /// The call of `agent` in `queue`, to their entry `call-<agent>`, ended.
    fn ended_call(queue: &str, agent: &str) -> EndedCall {
        EndedCall {
            queue: q(queue),
            agent: a(agent),
            entry: EntryId::new(&format!("call-{agent}")).unwrap(),
        }
    }

    fn a(s: &str) -> AgentId {
        AgentId::new(s).unwrap()
    }

    /// `count` callers waiting in `queue`, oldest first.
    fn callers(queue: &str, count: usize, clock: &ManualClock) -> Vec<Entry> {
        (0..count)
            .map(|_| {
                let line = LineName::new("main").unwrap();
                let e = Entry::live_caller(q(queue), line, CallId::random(), None, clock);
                clock.advance(Duration::from_secs(1));
                e
            })
            .collect()
    }

    /// Agents freed now, serving `queue`.
    fn agents(queue: &str, ids: &[&str], now: Timestamp) -> Vec<Agent> {
        let serves = vec![ServedQueue {
            queue: q(queue),
            priority: 1,
        }];
        ids.iter()
            .map(|id| Agent::freed_now(a(id), serves.clone(), now))
            .collect()
    }

    fn clock() -> ManualClock {
        ManualClock::new(Timestamp::from_millis(0))
    }

    /// A state whose last pass left nobody idle and kept `next` as next in line.
    fn busy(next: Vec<Entry>) -> RoutingState {
        let mut routing = RoutingState::new();
        assert_eq!(routing.start_pass(false), Some(0));
        routing.pass_finished(false);
        routing.keep_next_in_line(next, &[]);
        routing
    }

    #[test]
    fn the_first_pass_runs_at_once_and_arrivals_route_until_nobody_is_idle() {
        let mut routing = RoutingState::new();
        assert_eq!(routing.start_pass(false), Some(0));
        assert_eq!(routing.start_pass(false), None, "nothing changed since");
        routing.caller_arrived();
        assert_eq!(
            routing.start_pass(false),
            Some(0),
            "an idle agent may take them"
        );
        routing.pass_finished(false);
        routing.caller_arrived();
        assert_eq!(routing.start_pass(false), None, "nobody could take them");
    }

    #[test]
    fn freed_agents_are_counted_for_the_next_pass_only() {
        let mut routing = busy(Vec::new());
        routing.agents_freed(2);
        routing.agents_freed(1);
        assert_eq!(routing.start_pass(false), Some(3));
        routing.changed();
        assert_eq!(routing.start_pass(false), Some(0));
    }

    #[test]
    fn a_pass_is_deferred_while_signals_are_queued_but_only_so_many_times() {
        let mut routing = busy(Vec::new());
        routing.agents_freed(1);
        for _ in 0..MAX_DEFERRED_PASSES {
            assert_eq!(routing.start_pass(true), None);
        }
        assert_eq!(routing.start_pass(true), Some(1), "deferred long enough");
        routing.changed();
        assert_eq!(routing.start_pass(true), None, "the count starts again");
    }

    #[test]
    fn signals_queued_with_nothing_changed_restart_the_deferral_count() {
        let mut routing = busy(Vec::new());
        routing.changed();
        for _ in 0..MAX_DEFERRED_PASSES - 1 {
            assert_eq!(routing.start_pass(true), None);
        }
        assert_eq!(routing.start_pass(false), Some(0));
        assert_eq!(routing.start_pass(true), None, "nothing to run");
        routing.changed();
        for _ in 0..MAX_DEFERRED_PASSES {
            assert_eq!(routing.start_pass(true), None);
        }
        assert_eq!(routing.start_pass(true), Some(0));
    }

    #[test]
    fn a_full_pass_waits_for_every_round_trip_under_way() {
        let clock = clock();
        let next = callers("support", 2, &clock);
        let mut routing = busy(next.clone());
        let offers = routing.plan(
            &Router::default(),
            &next,
            &agents("support", &["ann", "bob"], clock.now()),
            clock.now(),
        );
        let first = routing.round_trip_started(&offers[..1]);
        let second = routing.round_trip_started(&offers[1..]);
        routing.changed();
        assert_eq!(routing.start_pass(false), None);
        routing.round_trip_booked(first);
        assert_eq!(routing.start_pass(false), None, "one is still under way");
        routing.round_trip_booked(second);
        assert_eq!(routing.start_pass(false), Some(0));
    }

    #[test]
    fn a_round_trip_without_offers_is_waited_for_too() {
        let mut routing = busy(Vec::new());
        let trip = routing.round_trip_started(&[]);
        routing.changed();
        assert_eq!(routing.start_pass(false), None);
        routing.round_trip_booked(trip);
        assert_eq!(routing.start_pass(false), Some(0));
    }

    #[test]
    fn an_entry_being_claimed_is_not_planned_again_and_counts_as_ahead() {
        let clock = clock();
        let support = callers("support", 2, &clock);
        let sales = callers("sales", 1, &clock);
        let mut routing = busy(Vec::new());
        let router = Router::default();
        let now = clock.now();
        let claimed = routing.plan(&router, &support, &agents("support", &["ann"], now), now);
        assert_eq!(claimed[0].entry, support[0].id);
        let trip = routing.round_trip_started(&claimed);

        let all: Vec<Entry> = support.iter().chain(&sales).cloned().collect();
        let mut free = agents("support", &["bob", "cy"], now);
        free.extend(agents("sales", &["dee"], now));
        let offers = routing.plan(&router, &all, &free, now);
        assert!(offers.iter().all(|o| o.entry != support[0].id));
        let behind = offers.iter().find(|o| o.entry == support[1].id).unwrap();
        assert_eq!(behind.ahead, vec![support[0].id.clone()]);
        let other_queue = offers.iter().find(|o| o.entry == sales[0].id).unwrap();
        assert!(
            other_queue.ahead.is_empty(),
            "a claim is ahead in its own queue only"
        );

        routing.round_trip_booked(trip);
        let offers = routing.plan(&router, &support, &agents("support", &["bob"], now), now);
        assert_eq!(offers[0].entry, support[0].id, "free again once booked");
    }

    #[test]
    #[should_panic(expected = "planned twice")]
    #[cfg(debug_assertions)]
    fn claiming_an_entry_twice_is_a_bug() {
        let clock = clock();
        let next = callers("support", 1, &clock);
        let mut routing = busy(Vec::new());
        let now = clock.now();
        let offers = routing.plan(
            &Router::default(),
            &next,
            &agents("support", &["ann"], now),
            now,
        );
        let _first = routing.round_trip_started(&offers);
        let _second = routing.round_trip_started(&offers);
    }

    #[test]
    fn a_panic_releases_every_claim_and_a_late_report_changes_nothing() {
        let clock = clock();
        let next = callers("support", 1, &clock);
        let mut routing = busy(Vec::new());
        let (router, now) = (Router::default(), clock.now());
        let ann = agents("support", &["ann"], now);
        let lost = routing.round_trip_started(&routing.plan(&router, &next, &ann, now));
        routing.round_trips_lost();
        routing.changed();
        assert_eq!(
            routing.start_pass(false),
            Some(0),
            "nothing left to wait for"
        );

        let offers = routing.plan(&router, &next, &ann, now);
        assert_eq!(offers.len(), 1, "the lost trip's claim is released");
        let later = routing.round_trip_started(&offers);
        routing.round_trip_booked(lost);
        assert!(
            routing.plan(&router, &next, &ann, now).is_empty(),
            "the later trip keeps its claim"
        );
        routing.changed();
        assert_eq!(routing.start_pass(false), None, "and is still waited for");
        routing.round_trip_booked(later);
        assert_eq!(routing.start_pass(false), Some(0));
    }

    #[test]
    fn next_in_line_keeps_only_waiting_entries_nobody_is_offered_or_claiming() {
        let clock = clock();
        let mut read = callers("support", 4, &clock);
        read[3].status = EntryStatus::RetryWait { due: clock.now() };
        let mut routing = busy(Vec::new());
        let now = clock.now();
        let claimed = routing.plan(
            &Router::default(),
            &read[..1],
            &agents("support", &["ann"], now),
            now,
        );
        let _trip = routing.round_trip_started(&claimed);
        let offers = routing.plan(
            &Router::default(),
            &read,
            &agents("support", &["bob"], now),
            now,
        );
        assert_eq!(offers[0].entry, read[1].id);
        routing.keep_next_in_line(read.clone(), &offers);
        routing.call_ended(ended_call("support", "cy"));
        let (_, route) = routing.take_calls_ended().unwrap();
        assert_eq!(route, AfterCalls::NextInLine(vec![read[2].clone()]));
    }

    #[test]
    fn ended_calls_join_the_idle_agents_in_a_full_pass() {
        let clock = clock();
        let mut routing = RoutingState::new();
        assert_eq!(routing.start_pass(false), Some(0));
        routing.pass_finished(true);
        routing.keep_next_in_line(callers("support", 3, &clock), &[]);
        assert!(routing.take_calls_ended().is_none());
        routing.call_ended(ended_call("support", "ann"));
        let (ended, route) = routing.take_calls_ended().unwrap();
        assert_eq!(ended, vec![ended_call("support", "ann")]);
        assert_eq!(route, AfterCalls::WithTheIdle);
        assert!(routing.take_calls_ended().is_none(), "taken once");
        routing.agents_freed(1);
        assert_eq!(routing.start_pass(false), Some(1));
        routing.pass_finished(false);
        routing.call_ended(ended_call("support", "ann"));
        let (_, route) = routing.take_calls_ended().unwrap();
        assert!(
            matches!(route, AfterCalls::NextInLine(n) if n.len() == 3),
            "still known"
        );
    }

    #[test]
    fn with_nobody_known_next_in_line_the_heads_are_read() {
        let mut routing = busy(Vec::new());
        routing.call_ended(ended_call("support", "ann"));
        assert_eq!(routing.take_calls_ended().unwrap().1, AfterCalls::ReadHeads);
        let clock = clock();
        let mut routing = busy(callers("support", 3, &clock));
        routing.forget_next_in_line();
        assert!(routing.next_in_line_short());
        routing.call_ended(ended_call("support", "ann"));
        assert_eq!(routing.take_calls_ended().unwrap().1, AfterCalls::ReadHeads);
    }

    #[test]
    fn a_burst_of_hangups_is_routed_from_next_in_line_in_one_round_trip() {
        let clock = clock();
        let next = callers("support", NEXT_IN_LINE_MIN + 3, &clock);
        let mut routing = busy(next.clone());
        assert!(!routing.next_in_line_short());
        for agent in ["ann", "bob", "cy"] {
            routing.call_ended(ended_call("support", agent));
        }
        let (ended, route) = routing.take_calls_ended().unwrap();
        assert_eq!(ended.len(), 3);
        let AfterCalls::NextInLine(known) = route else {
            panic!("expected callers next in line, got {route:?}");
        };
        let now = clock.now();
        let freed = agents("support", &["ann", "bob", "cy"], now);
        let offers = routing.plan(&Router::default(), &known, &freed, now);
        let offered = routing.next_in_line_planned(known, &offers, 0);
        assert_eq!(
            offered,
            next[..3].to_vec(),
            "the oldest, for the booking task"
        );
        let trip = routing.round_trip_started(&offers);
        assert_eq!(
            routing.start_pass(false),
            None,
            "enough left: no pass is needed"
        );

        // The next hangup of the burst, while the first round trip is under way.
        routing.call_ended(ended_call("support", "dee"));
        let (_, route) = routing.take_calls_ended().unwrap();
        let AfterCalls::NextInLine(known) = route else {
            panic!("expected callers next in line, got {route:?}");
        };
        assert_eq!(
            known[0].id, next[3].id,
            "the callers claimed are not known again"
        );
        let offers = routing.plan(
            &Router::default(),
            &known,
            &agents("support", &["dee"], now),
            now,
        );
        assert_eq!(
            offers[0].ahead.len(),
            3,
            "the claims under way are ahead of it"
        );
        routing.next_in_line_planned(known, &offers, 0);
        let second = routing.round_trip_started(&offers);
        assert_eq!(
            routing.start_pass(false),
            None,
            "few left, but trips are under way"
        );
        routing.round_trip_booked(trip);
        routing.round_trip_booked(second);
        assert!(routing.next_in_line_short());
        assert_eq!(
            routing.start_pass(false),
            Some(0),
            "few left: the heads are read again"
        );
    }

    #[test]
    fn an_agent_freed_without_an_offer_is_routed_by_a_full_pass() {
        let clock = clock();
        let next = callers("support", NEXT_IN_LINE_MIN + 1, &clock);
        let mut routing = busy(next.clone());
        routing.call_ended(ended_call("support", "ann"));
        routing.call_ended(ended_call("sales", "bob"));
        let Some((_, AfterCalls::NextInLine(known))) = routing.take_calls_ended() else {
            panic!("expected callers next in line");
        };
        let now = clock.now();
        let mut freed = agents("support", &["ann"], now);
        freed.extend(agents("sales", &["bob"], now));
        let offers = routing.plan(&Router::default(), &known, &freed, now);
        assert_eq!(offers.len(), 1, "nobody waits for sales");
        assert_eq!(routing.next_in_line_planned(known, &offers, 1).len(), 1);
        let trip = routing.round_trip_started(&offers);
        routing.round_trip_booked(trip);
        assert!(
            routing.next_in_line_short(),
            "the pass reads the whole window"
        );
        assert_eq!(routing.start_pass(false), Some(1));
    }

    #[test]
    fn a_booking_report_with_a_claim_failed_forgets_next_in_line() {
        let clock = clock();
        let next = callers("support", NEXT_IN_LINE_MIN + 2, &clock);
        let mut routing = busy(next);
        routing.call_ended(ended_call("support", "ann"));
        let Some((_, AfterCalls::NextInLine(known))) = routing.take_calls_ended() else {
            panic!("expected callers next in line");
        };
        let now = clock.now();
        let offers = routing.plan(
            &Router::default(),
            &known,
            &agents("support", &["ann"], now),
            now,
        );
        routing.next_in_line_planned(known, &offers, 0);
        let trip = routing.round_trip_started(&offers);
        // The report: the claim found another entry ahead (a callback due again, say).
        routing.round_trip_booked(trip);
        routing.queues_changed();
        assert!(routing.next_in_line_short());
        routing.call_ended(ended_call("support", "bob"));
        assert_eq!(routing.take_calls_ended().unwrap().1, AfterCalls::ReadHeads);
        assert_eq!(routing.start_pass(false), Some(0));
    }

    #[test]
    fn an_entry_leaving_forgets_next_in_line_but_an_abandoned_one_keeps_the_order() {
        let clock = clock();
        let next = callers("support", 3, &clock);
        let mut routing = busy(next.clone());
        routing.entry_abandoned(&next[1].id);
        routing.call_ended(ended_call("support", "ann"));
        let (_, route) = routing.take_calls_ended().unwrap();
        assert_eq!(
            route,
            AfterCalls::NextInLine(vec![next[0].clone(), next[2].clone()])
        );

        let mut routing = busy(next);
        routing.queues_changed();
        assert_eq!(routing.start_pass(false), Some(0));
        routing.call_ended(ended_call("support", "ann"));
        assert_eq!(routing.take_calls_ended().unwrap().1, AfterCalls::ReadHeads);
    }
}
