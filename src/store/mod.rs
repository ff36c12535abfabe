//! Redis as the one source of truth for queues, entries, agents, timers and events.
//! Every state change is one Lua script over one hash slot, so daemons sharing a Redis agree.
//!
//! An offer spans two slots (the queue's entry and the agents), which no single script may
//! touch on Redis Cluster. It is two atomic steps instead, agents first: book the agents
//! (all or none, with a lease), then claim the entry; when the claim loses a race, the
//! bookings are released. Each invariant (one booking per agent, one offer per entry) is
//! guarded by a single script, and a daemon dying between the steps leaves only a booking
//! whose lease runs out by itself.
//!
//! `impl Store` is spread over one module per concept: `entries`, `offers`, `callbacks`,
//! `agents`, `timers` and `events`; the scripts are in `lua/`, their replies in `replies`.

mod agents;
mod callbacks;
mod connection;
mod console;
mod entries;
mod events;
mod feed;
mod keys;
pub mod local;
mod media;
mod offers;
mod outbox;
mod records;
mod replies;
mod scripts;
mod timers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::RedisSettings;
use crate::queue::{AgentId, EntryId, QueueError, QueueName};
pub use agents::{AgentOnCall, StateSource};
pub use callbacks::{
    CallbackCreated, CallbackRequested, CallbackStats, CallerCancel, Declined, KeptBy, TodayFigures,
};
use connection::{Backend, Connection};
pub use console::{ConsoleCallback, CONSOLE_LIMIT};
pub use feed::{DomainEvent, EventFeed, EventStream, FeedSinks};
use keys::Keys;
pub use offers::{Answered, MissRules, NoAnswerCause, OfferFailed, OfferOutcome};
pub use outbox::{DeliveryFailed, OutboxItem};
pub use records::{EventKind, StoredEvent, Timer, TimerScope};
use scripts::Scripts;

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

impl StoreError {
    /// Whether Redis could not be reached, or was restarting (loading its data, a cluster
    /// failing over): trying again later may work, unlike a refused password or a bad URL.
    pub fn is_transient(&self) -> bool {
        let (Self::Connect { cause: e, .. } | Self::Redis(e)) = self else {
            return false;
        };
        use redis::{ErrorKind, ServerErrorKind as S};
        e.is_io_error()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || matches!(
                e.kind(),
                ErrorKind::Server(S::BusyLoading | S::TryAgain | S::MasterDown | S::ClusterDown)
            )
    }
}

/// Count and say one unreadable record skipped (see [`Store::poison_records`]).
fn skip_poison(poisoned: &AtomicU64, error: &StoreError) {
    poisoned.fetch_add(1, Ordering::Relaxed);
    tracing::error!(%error, "skipping an unreadable record");
}

/// A handle on the store; clones share one multiplexed, self-reconnecting connection.
#[derive(Clone)]
pub struct Store {
    /// For connections of their own (the event feed's blocking reads). Behind an `Arc`,
    /// as everything big here: every caller's task holds a clone of the store.
    backend: Arc<Backend>,
    conn: Connection,
    keys: Keys,
    scripts: Arc<Scripts>,
    /// Records skipped because they could not be read, since this store was connected.
    poisoned: Arc<AtomicU64>,
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
        let backend = Backend::open(std::slice::from_ref(&settings.url), settings.cluster)
            .map_err(connect_error)?;
        let mut conn = backend.shared().await.map_err(connect_error)?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(connect_error)?;
        Ok(Self {
            backend: Arc::new(backend),
            conn,
            keys: Keys::new(&settings.key_prefix),
            scripts: Arc::new(Scripts::new()),
            poisoned: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many unreadable records (an entry, agent, timer or event that does not parse:
    /// written by hand, by another version, or damaged) were skipped so far.
    pub fn poison_records(&self) -> u64 {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Skip one unreadable record: it is said, with its key, and counted, so that it never
    /// stalls the records read with it.
    fn skip_poison(&self, error: &StoreError) {
        skip_poison(&self.poisoned, error);
    }

    /// Whether Redis answers now.
    pub async fn ping(&self) -> Result<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn())
            .await?;
        Ok(())
    }

    fn conn(&self) -> Connection {
        self.conn.clone()
    }

    /// Every field of the hash at `key`; none for a key that does not exist.
    async fn hash(&self, key: &str) -> Result<HashMap<String, String>> {
        Ok(redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut self.conn())
            .await?)
    }
}
