//! The store's side of routing: ending calls and booking offers. These need only a store
//! handle and the config, not the engine, so a routing round trip can run in a task of
//! its own while the engine loop takes signals.

use std::time::Duration;

use super::routing_state::RoundTrip;
use super::AgentLeg;
use crate::config::Config;
use crate::queue::{AgentId, EndedCall, Offer, QueueName, Timestamp};
use crate::store::{OfferOutcome, Store, StoreError};
use crate::switch::{CallId, PendingCall, SwitchError};

/// What a routing round trip off the loop (`trip`) did: booking each of `offers` (`made`),
/// and placing the agent legs of those booked (`rung`: leg, what it is for, the originate).
#[derive(Debug)]
pub(super) struct Booked {
    pub trip: RoundTrip,
    pub offers: Vec<Offer>,
    pub made: Vec<Result<OfferOutcome, StoreError>>,
    pub rung: Vec<(CallId, AgentLeg, Result<PendingCall, SwitchError>)>,
}

/// The wrap-up time of a queue's agents.
pub(super) fn wrap_up(config: &Config, queue: &QueueName) -> Duration {
    config.queue(queue).map_or(Duration::ZERO, |q| q.wrap_up)
}

/// End the calls together: each agent still on their call wraps up, or is available at
/// once without wrap-up. The agents now available.
pub(super) async fn end_calls(
    store: &Store,
    config: &Config,
    ended: &[EndedCall],
    now: Timestamp,
) -> Vec<AgentId> {
    let results = futures_util::future::join_all(
        ended
            .iter()
            .map(|call| end_call(store, call, wrap_up(config, &call.queue), now)),
    )
    .await;
    let mut freed = Vec::new();
    for (call, result) in ended.iter().zip(results) {
        let agent = &call.agent;
        match result {
            Ok(true) => freed.push(agent.clone()),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(%agent, error = %e, "freeing an agent after a call failed")
            }
        }
    }
    freed
}

/// True when the agent is available now.
async fn end_call(
    store: &Store,
    call: &EndedCall,
    wrap_up: Duration,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let ended = store.call_ended(call, wrap_up, now).await?;
    Ok(ended && wrap_up.is_zero())
}

/// Book `offers`, each for its queue's ring time; with `after_calls`, to agents whose call
/// (among those) just ended, who are freed in the same step. The offers share no agent and
/// no entry, so they are made together: a burst of freed agents waits one round trip, not
/// one per agent.
pub(super) async fn book(
    store: &Store,
    config: &Config,
    offers: &[Offer],
    after_calls: Option<&[EndedCall]>,
    now: Timestamp,
) -> Vec<Result<OfferOutcome, StoreError>> {
    futures_util::future::join_all(offers.iter().map(|offer| async move {
        let ring_time = config
            .queue(&offer.queue)
            .map_or(Duration::ZERO, |q| q.ring_time);
        if let Some(ended) = after_calls {
            store.offer_after_call(offer, ended, now, ring_time).await
        } else {
            store.offer(offer, now, ring_time).await
        }
    }))
    .await
}
