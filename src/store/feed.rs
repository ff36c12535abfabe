//! The domain event feed: every event the transitions append to the Redis streams, this
//! daemon's and every other daemon's, read with a blocking `XREAD` and handed on in order.
//!
//! The streams are the one record of what happened, so reading them back (rather than
//! publishing from the code that called a script) gives every subscriber the same events
//! with the same ids, whichever daemon wrote them; an id doubles as a resume point.
//! The engine itself needs only the agents' stream and the queues' withdrawals (offers that
//! ended while phones rang), which are few; the queues' own streams, several events per
//! call, are read only while the bus has subscribers. The engine gets its events on a
//! channel of its own that holds the feed back when full, so it never lags and misses
//! one, and the bus (which keeps its last events in memory) costs nothing while unheard.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use tokio::sync::{broadcast, mpsc};

use super::connection::{Backend, Connection};
use super::{records, Result, Store, StoreError};
use crate::queue::QueueName;

/// How long one `XREAD` waits for new events before it asks again, and so how long a new
/// subscriber may wait before the queues' streams are read for them.
const BLOCK: Duration = Duration::from_secs(2);
/// When the queues' streams start being read for a new subscriber, they are read from this
/// long ago, so that what was written since it subscribed is in its feed (with perhaps a
/// little from just before).
const CATCH_UP: Duration = Duration::from_secs(5);
/// At most this many events per stream per read.
const READ_COUNT: usize = 512;
/// After a read that found events, the next waits this long, so that a busy switch's
/// events come in batches: every call changes its agent's state twice, and a read per
/// event would cost Redis and the daemon a round trip each. Subscribers (an API, metrics,
/// the engine's own agent changes and withdrawals) hear of an event at most this much
/// later; the engine used to poll the agents' stream at the same pace.
const GATHER: Duration = Duration::from_millis(200);
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
    /// A queue's withdrawals: `offer_withdrawn` with the `entry` and the `agents` still
    /// ringing when its offer ended (closed, or connected to another agent), so that every
    /// daemon stops the phones it rings for it. Not a happening of its own: the queue's
    /// stream has the event that ended the offer.
    Withdrawals(QueueName),
}

/// One event of the streams, as every subscriber sees it.
#[derive(Debug, Clone)]
pub struct DomainEvent {
    pub stream: EventStream,
    pub event: records::StoredEvent,
}

/// Reads the agents' stream and the queues' withdrawals, and their own streams while
/// somebody other than the engine listens, on connections of its own (a blocking read
/// would hold up every command sharing one).
pub struct EventFeed {
    backend: Arc<Backend>,
    /// The store's count of unreadable records.
    poisoned: Arc<AtomicU64>,
    /// The streams, in groups that one `XREAD` each reads: all of them on one Redis, one
    /// group per hash tag (the agents', each queue's) on a cluster, where one command may
    /// name the keys of one slot only.
    groups: Vec<Group>,
}

/// Streams read together, on one connection.
struct Group {
    /// Always read, for the engine and the bus: the agents' stream, queues' withdrawals.
    always: Vec<Followed>,
    /// The queues' own streams, read only while the bus has subscribers.
    queues: Vec<Followed>,
    /// Whether the queues' streams are being read (their `after` is current).
    wide: bool,
}

/// Where the feed sends what it reads.
pub struct FeedSinks {
    /// The engine: the always-read streams' events.
    pub engine: mpsc::Sender<DomainEvent>,
    /// Everyone else: every event, while anyone subscribes.
    pub bus: broadcast::Sender<DomainEvent>,
}

/// One stream followed, with the last id read: where the next read starts.
struct Followed {
    key: String,
    stream: EventStream,
    after: String,
}

impl Store {
    /// A feed of the agents' events and of `queues`' withdrawals that come after the newest
    /// each stream holds now: whatever is written once this returns is in it.
    pub async fn feed(&self, queues: &[QueueName]) -> Result<EventFeed> {
        let after = |key: String, stream: EventStream| async move {
            // An empty or missing stream: everything it will get is new.
            let newest = self.newest_id(&key).await?;
            let after = newest.unwrap_or_else(|| "0-0".to_owned());
            Ok::<_, StoreError>(Followed { key, stream, after })
        };
        let agents = after(self.keys.agent_events(), EventStream::Agents).await?;
        let mut groups = vec![Group::new(vec![agents], Vec::new())];
        for q in queues {
            let withdrawals = after(
                self.keys.withdrawals(q),
                EventStream::Withdrawals(q.clone()),
            )
            .await?;
            let events = Followed {
                key: self.keys.events(q),
                stream: EventStream::Queue(q.clone()),
                after: String::new(),
            };
            if self.backend.is_cluster() {
                groups.push(Group::new(vec![withdrawals], vec![events]));
            } else {
                groups[0].always.push(withdrawals);
                groups[0].queues.push(events);
            }
        }
        Ok(EventFeed {
            backend: self.backend.clone(),
            poisoned: self.poisoned.clone(),
            groups,
        })
    }
}

impl EventFeed {
    /// Send every new event on until the engine is gone. A lost connection is retried
    /// with backoff and resumes after the last event sent, so subscribers miss only what
    /// was trimmed from a stream meanwhile.
    pub async fn run(self, sinks: FeedSinks) {
        let (backend, poisoned, sinks) = (&*self.backend, &*self.poisoned, &sinks);
        let reads = self
            .groups
            .into_iter()
            .map(|group| group.run(backend, poisoned, sinks));
        futures_util::future::join_all(reads).await;
    }
}

impl Group {
    fn new(always: Vec<Followed>, queues: Vec<Followed>) -> Self {
        Self {
            always,
            queues,
            wide: false,
        }
    }

    async fn run(mut self, backend: &Backend, poisoned: &AtomicU64, sinks: &FeedSinks) {
        let mut retry = FIRST_RETRY;
        while !sinks.engine.is_closed() {
            match self.follow(backend, poisoned, sinks, &mut retry).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the event streams failed; retrying");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// Read until the engine is gone (`Ok`) or Redis fails. A connection made resets
    /// `retry`.
    async fn follow(
        &mut self,
        backend: &Backend,
        poisoned: &AtomicU64,
        sinks: &FeedSinks,
        retry: &mut Duration,
    ) -> Result<()> {
        let mut conn = backend.blocking(BLOCK).await?;
        *retry = FIRST_RETRY;
        let options = StreamReadOptions::default()
            .block(BLOCK.as_millis() as usize)
            .count(READ_COUNT);
        while !sinks.engine.is_closed() {
            let wide = sinks.bus.receiver_count() > 0;
            if wide && !self.wide {
                let since = catch_up_from(&mut conn).await?;
                for q in &mut self.queues {
                    q.after.clone_from(&since);
                }
            }
            self.wide = wide;
            let read: Vec<&Followed> = if wide {
                self.always.iter().chain(&self.queues).collect()
            } else {
                self.always.iter().collect()
            };
            let keys: Vec<&str> = read.iter().map(|f| f.key.as_str()).collect();
            let after: Vec<&str> = read.iter().map(|f| f.after.as_str()).collect();
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg(&options)
                .arg("STREAMS")
                .arg(&keys)
                .arg(&after)
                .query_async(&mut conn)
                .await?;
            let reads = reply.map(|r| r.keys).unwrap_or_default();
            let found = !reads.is_empty();
            for read in reads {
                let (followed, for_engine) =
                    match self.always.iter_mut().find(|f| f.key == read.key) {
                        Some(f) => (f, true),
                        None => match self.queues.iter_mut().find(|f| f.key == read.key) {
                            Some(f) => (f, false),
                            None => continue,
                        },
                    };
                for sid in read.ids {
                    followed.after.clone_from(&sid.id);
                    match stored_event(&read.key, &sid) {
                        Ok(event) => {
                            let event = DomainEvent {
                                stream: followed.stream.clone(),
                                event,
                            };
                            if !for_engine {
                                let _ = sinks.bus.send(event);
                                continue;
                            }
                            if sinks.bus.receiver_count() > 0 {
                                let _ = sinks.bus.send(event.clone());
                            }
                            if sinks.engine.send(event).await.is_err() {
                                return Ok(());
                            }
                        }
                        // One bad record must not stop the feed: it is skipped, and said.
                        Err(e) => super::skip_poison(poisoned, &e),
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

/// The stream id [`CATCH_UP`] before Redis's own clock (stream ids are its milliseconds).
async fn catch_up_from(conn: &mut Connection) -> Result<String> {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    let ms = (secs * 1000 + micros / 1000).saturating_sub(CATCH_UP.as_millis() as u64);
    Ok(format!("{ms}-0"))
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
