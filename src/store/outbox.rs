//! Each webhook's outbox, per queue: the events it is to be sent, taken from the queue's
//! event stream behind a cursor, with their attempts, until delivered or given up.
//!
//! The stream is the outbox's source of truth, written in the same script as each
//! transition, so no event is lost between "it happened" and "it is to be sent". Items are
//! claimed for a delivery's length (never by two daemons at once) and only the oldest open
//! item of a callback is handed out, so a receiver gets one callback's events in order.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Result, Store, StoreError};
use crate::queue::{QueueName, Timestamp, WebhookName};
use crate::store::records::event_from;
use crate::store::{EventKind, StoredEvent};

/// Events read from a queue's stream per round trip of [`Store::outbox_ingest`].
const INGEST_BATCH: usize = 2_000;

/// One event to be delivered, as the outbox keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// Where it is kept: the queue, and the event's stream id.
    pub queue: QueueName,
    pub event: StoredEvent,
    /// Deliveries tried so far.
    pub attempts: u32,
    /// When the first of the failed ones was, ms: the retry window counts from it.
    pub first_failed: Option<Timestamp>,
    /// Why the last one failed.
    pub error: Option<String>,
}

/// What a failed delivery made of its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFailed {
    /// It is tried again later.
    Retry,
    /// It failed for the whole retry window: a dead letter now.
    Dead,
    /// Delivered or given up already (by another daemon whose claim ran out first).
    Gone,
}

/// How the outbox stores an item: the stream event's fields as written, and its attempts.
#[derive(Deserialize)]
struct StoredItem {
    event: HashMap<String, String>,
    attempts: u32,
    first_failed: Option<f64>,
    error: Option<String>,
}

impl Store {
    fn outbox_keys(&self, hook: &WebhookName, queue: &QueueName) -> [String; 5] {
        let key = |rest: &str| self.keys.outbox(queue, hook, rest);
        [
            key("items"),
            key("due"),
            key("order"),
            key("dead"),
            key("cursor"),
        ]
    }

    /// Put the events of `kinds` that `queue` recorded since the last call in `hook`'s
    /// outbox; how many. The first call for a hook only marks where it starts: now.
    pub async fn outbox_ingest(
        &self,
        hook: &WebhookName,
        queue: &QueueName,
        kinds: &[EventKind],
        now: Timestamp,
    ) -> Result<usize> {
        let [items, due, order, _, cursor] = self.outbox_keys(hook, queue);
        let mut script = self.scripts.outbox_ingest.prepare_invoke();
        script
            .key(self.keys.events(queue))
            .key(cursor)
            .key(items)
            .key(due)
            .key(order)
            .arg(now.as_millis())
            .arg(INGEST_BATCH);
        for kind in kinds {
            script.arg(kind.as_str());
        }
        script.data(&mut self.conn()).await
    }

    /// Claim up to `limit` items of `hook`'s outbox for `queue` that are due `now`, for a
    /// delivery of at most `hold`: until then no other daemon is handed them.
    pub async fn outbox_claim(
        &self,
        hook: &WebhookName,
        queue: &QueueName,
        now: Timestamp,
        hold: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxItem>> {
        let [items, due, order, ..] = self.outbox_keys(hook, queue);
        let words: Vec<String> = self
            .scripts
            .outbox_claim
            .key(items)
            .key(due)
            .key(order)
            .arg(now.as_millis())
            .arg(now.plus(hold).as_millis())
            .arg(limit)
            .data(&mut self.conn())
            .await?;
        let mut claimed = Vec::with_capacity(words.len() / 2);
        for pair in words.chunks_exact(2) {
            match self.outbox_item(queue, &pair[0], &pair[1]) {
                Ok(item) => claimed.push(item),
                Err(e) => self.skip_poison(&e),
            }
        }
        Ok(claimed)
    }

    fn outbox_item(&self, queue: &QueueName, id: &str, json: &str) -> Result<OutboxItem> {
        let key = self.keys.events(queue);
        let stored: StoredItem = serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
            key: key.clone(),
            reason: format!("outbox item {id}: {e}"),
        })?;
        let event = event_from(&key, id.to_owned(), stored.event)?;
        Ok(OutboxItem {
            queue: queue.clone(),
            event,
            attempts: stored.attempts,
            first_failed: stored
                .first_failed
                .map(|ms| Timestamp::from_millis(ms as u64)),
            error: stored.error,
        })
    }

    /// `item` was delivered: it leaves the outbox, and the next of its callback may go.
    pub async fn outbox_delivered(&self, hook: &WebhookName, item: &OutboxItem) -> Result<()> {
        let [items, due, order, ..] = self.outbox_keys(hook, &item.queue);
        let _: String = self
            .scripts
            .outbox_done
            .key(items)
            .key(due)
            .key(order)
            .arg(&item.event.id)
            .data(&mut self.conn())
            .await?;
        Ok(())
    }

    /// A delivery of `item` failed with `error`: it is tried again at `retry_at`, unless it
    /// has failed for `window` already, when it becomes a dead letter.
    pub async fn outbox_failed(
        &self,
        hook: &WebhookName,
        item: &OutboxItem,
        error: &str,
        now: Timestamp,
        retry_at: Timestamp,
        window: Duration,
    ) -> Result<DeliveryFailed> {
        let [items, due, order, dead, _] = self.outbox_keys(hook, &item.queue);
        let reply: String = self
            .scripts
            .outbox_failed
            .key(items)
            .key(due)
            .key(order)
            .key(dead)
            .arg(&item.event.id)
            .arg(now.as_millis())
            .arg(retry_at.as_millis())
            .arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
            .arg(error)
            .data(&mut self.conn())
            .await?;
        match reply.as_str() {
            "retry" => Ok(DeliveryFailed::Retry),
            "dead" => Ok(DeliveryFailed::Dead),
            "gone" => Ok(DeliveryFailed::Gone),
            _ => Err(StoreError::UnexpectedReply {
                script: "outbox_failed",
                reply,
            }),
        }
    }

    /// `hook`'s dead letters for `queue`, oldest first.
    pub async fn outbox_dead(
        &self,
        hook: &WebhookName,
        queue: &QueueName,
    ) -> Result<Vec<OutboxItem>> {
        let [items, _, _, dead, _] = self.outbox_keys(hook, queue);
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&dead)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let json: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&items)
            .arg(&ids)
            .query_async(&mut self.conn())
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, json) in ids.iter().zip(json) {
            let Some(json) = json else { continue };
            match self.outbox_item(queue, id, &json) {
                Ok(item) => out.push(item),
                Err(e) => self.skip_poison(&e),
            }
        }
        Ok(out)
    }

    /// Send the dead letter `id` of `hook` for `queue` again now; whether there was one.
    pub async fn outbox_replay(
        &self,
        hook: &WebhookName,
        queue: &QueueName,
        id: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let [items, due, order, dead, _] = self.outbox_keys(hook, queue);
        let reply: String = self
            .scripts
            .outbox_replay
            .key(items)
            .key(due)
            .key(order)
            .key(dead)
            .arg(id)
            .arg(now.as_millis())
            .data(&mut self.conn())
            .await?;
        Ok(reply == "ok")
    }
}
