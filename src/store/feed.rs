//! The domain event feed: every event the transitions append to the Redis streams, this
//! daemon's and every other daemon's, read with a blocking `XREAD` and handed on in order.
//!
//! The streams are the one record of what happened, so reading them back (rather than
//! publishing from the code that called a script) gives every subscriber the same events
//! with the same ids, whichever daemon wrote them; an id doubles as a resume point.

use std::time::Duration;

use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncConnectionConfig;
use tokio::sync::broadcast;

use super::{records, Result, Store, StoreError};
use crate::queue::QueueName;

/// How long one `XREAD` waits for new events before it asks again.
const BLOCK: Duration = Duration::from_secs(2);
/// At most this many events per stream per read.
const READ_COUNT: usize = 512;
/// After a read that found events, the next waits this long, so that a busy switch's
/// events come in batches: a read per event would cost Redis and the daemon a round trip
/// each. Subscribers (an API, metrics, the engine's own agent changes) hear of an event
/// at most this much later.
const GATHER: Duration = Duration::from_millis(50);
/// The first wait after a failed read; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Which stream an event was appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStream {
    /// A queue's: its entries' and callbacks' lives.
    Queue(QueueName),
    /// The agents': their state changes.
    Agents,
}

/// One event of the streams, as every subscriber sees it.
#[derive(Debug, Clone)]
pub struct DomainEvent {
    pub stream: EventStream,
    pub event: records::StoredEvent,
}

/// Reads the streams of some queues and the agents' from a given point, on a connection
/// of its own (a blocking read would hold up every command sharing one).
pub struct EventFeed {
    client: redis::Client,
    streams: Vec<(String, EventStream)>,
    /// Each stream's last id read: where the next read starts.
    after: Vec<String>,
}

impl Store {
    /// A feed of the events of `queues` and of the agents that come after the newest
    /// each stream holds now: whatever is written once this returns is in it.
    pub async fn feed(&self, queues: &[QueueName]) -> Result<EventFeed> {
        let streams: Vec<(String, EventStream)> = queues
            .iter()
            .map(|q| (self.keys.events(q), EventStream::Queue(q.clone())))
            .chain([(self.keys.agent_events(), EventStream::Agents)])
            .collect();
        // The newest id of each stream, in the order of `streams` (the agents' last).
        let newest = futures_util::future::try_join_all(
            queues
                .iter()
                .map(Some)
                .chain([None])
                .map(|q| self.last_event_id(q)),
        )
        .await?;
        let after = newest
            .into_iter()
            // An empty or missing stream: everything it will get is new.
            .map(|id| id.unwrap_or_else(|| "0-0".to_owned()))
            .collect();
        Ok(EventFeed {
            client: self.client.clone(),
            streams,
            after,
        })
    }
}

impl EventFeed {
    /// Send every new event to `bus` until nobody listens any more. A lost connection is
    /// retried with backoff and resumes after the last event sent, so subscribers miss
    /// only what was trimmed from a stream meanwhile.
    pub async fn run(mut self, bus: broadcast::Sender<DomainEvent>) {
        let mut retry = FIRST_RETRY;
        while bus.receiver_count() > 0 {
            match self.follow(&bus, &mut retry).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the event streams failed; retrying");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// Read until nobody listens (`Ok`) or Redis fails. A connection made resets `retry`.
    async fn follow(
        &mut self,
        bus: &broadcast::Sender<DomainEvent>,
        retry: &mut Duration,
    ) -> Result<()> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(BLOCK + Duration::from_secs(5)));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *retry = FIRST_RETRY;
        let keys: Vec<&str> = self.streams.iter().map(|(k, _)| k.as_str()).collect();
        let options = StreamReadOptions::default()
            .block(BLOCK.as_millis() as usize)
            .count(READ_COUNT);
        while bus.receiver_count() > 0 {
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg(&options)
                .arg("STREAMS")
                .arg(&keys)
                .arg(&self.after)
                .query_async(&mut conn)
                .await?;
            let reads = reply.map(|r| r.keys).unwrap_or_default();
            let found = !reads.is_empty();
            for read in reads {
                let Some(i) = keys.iter().position(|k| *k == read.key) else {
                    continue;
                };
                for sid in read.ids {
                    self.after[i].clone_from(&sid.id);
                    match stored_event(&read.key, &sid) {
                        Ok(event) => {
                            let _ = bus.send(DomainEvent {
                                stream: self.streams[i].1.clone(),
                                event,
                            });
                        }
                        // One bad record must not stop the feed: it is skipped, and said.
                        Err(e) => tracing::warn!(error = %e, "skipping an unreadable event"),
                    }
                }
            }
            if found {
                tokio::time::sleep(GATHER).await;
            }
        }
        Ok(())
    }
}

/// One stream entry as a typed event; an entry that is not one is `Corrupt`.
pub(super) fn stored_event(key: &str, sid: &StreamId) -> Result<records::StoredEvent> {
    let fields = sid
        .map
        .iter()
        .map(|(k, v)| {
            redis::from_redis_value_ref::<String>(v)
                .map(|v| (k.clone(), v))
                .map_err(|e| StoreError::Corrupt {
                    key: key.to_owned(),
                    reason: format!("event {} field {k}: {e}", sid.id),
                })
        })
        .collect::<Result<_>>()?;
    records::event_from(key, sid.id.clone(), fields)
}
