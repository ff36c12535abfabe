//! Webhooks: every event a `[[webhooks]]` entry asks for, delivered to its URL from the
//! queues' outboxes in Redis, signed, retried with backoff for its retry window (a day),
//! then kept as a dead letter to be replayed.
//!
//! Each daemon runs a deliverer per webhook and queue; they share the outboxes, which hand
//! an event to one of them at a time, so deliveries are at least once (a daemon killed
//! mid-delivery leaves the event to another) and never two at once. The receiver drops
//! repeats by the payload's idempotency key.

mod payload;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use payload::{Payload, SCHEMA};

use crate::config::{Config, WebhookConfig};
use crate::latency::{LatencyHistogram, DELIVERY_BUCKETS};
use crate::queue::{Clock, EntryId, LineName, QueueName};
use crate::store::{DeliveryFailed, OutboxItem, Store, StoreError};

/// The first retry's delay; each failure doubles it, up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60 * 60);
/// Deliveries one deliverer has under way at once (each of a different callback).
const IN_FLIGHT: usize = 32;
/// How often an idle deliverer looks at its outbox.
const POLL: Duration = Duration::from_millis(200);
/// A claim outlasts the delivery's timeout by this much, so that only a dead daemon's
/// claim runs out while its request could still arrive.
const CLAIM_SLACK: Duration = Duration::from_secs(5);

/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "x-callbackd-signature";

/// What the deliverers count, for `/metrics`.
#[derive(Debug)]
pub struct WebhookStats {
    pub delivered: AtomicU64,
    /// Deliveries that failed (each attempt).
    pub failed: AtomicU64,
    /// Events given up after the retry window.
    pub dead: AtomicU64,
    pub latency: LatencyHistogram,
}

impl Default for WebhookStats {
    fn default() -> Self {
        Self {
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            latency: LatencyHistogram::new(DELIVERY_BUCKETS),
        }
    }
}

/// The `t=…,v1=…` signature of `body` sent at `unix_secs` with `secret`.
pub fn signature(secret: &str, unix_secs: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(unix_secs.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_secs},v1={hex}")
}

/// How long after its `failures`-th failure in a row an event is tried again: doubling
/// from a second to an hour, spread ±20 % so that a receiver back from an outage is not
/// hit by every retry in the same instant.
pub fn retry_delay(failures: u32) -> Duration {
    let base = FIRST_RETRY_DELAY
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_RETRY_DELAY);
    base.mul_f64(0.8 + 0.4 * fastrand::f64())
}

/// Deliver every webhook's outbox of every queue until `shutdown` turns true.
pub async fn run(
    store: Store,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    stats: Arc<WebhookStats>,
    shutdown: watch::Receiver<bool>,
) {
    let http = match reqwest::Client::builder()
        .user_agent(concat!("callbackd/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client: webhooks are not delivered");
            return;
        }
    };
    let mut deliverers = tokio::task::JoinSet::new();
    for hook in &config.webhooks {
        for queue in &config.queues {
            let deliverer = Deliverer {
                store: store.clone(),
                config: config.clone(),
                clock: clock.clone(),
                stats: stats.clone(),
                http: http.clone(),
                hook: hook.clone(),
                queue: queue.name.clone(),
            };
            deliverers.spawn(deliverer.run(shutdown.clone()));
        }
    }
    while deliverers.join_next().await.is_some() {}
}

/// One webhook's deliveries of one queue's events.
struct Deliverer {
    store: Store,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    stats: Arc<WebhookStats>,
    http: reqwest::Client,
    hook: WebhookConfig,
    queue: QueueName,
}

impl Deliverer {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut failing = false;
        while !*shutdown.borrow() {
            let busy = match self.round().await {
                Ok(busy) => {
                    failing = false;
                    busy
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(webhook = %self.hook.name, queue = %self.queue,
                            error = %e, "webhook outbox unreachable; trying again");
                    }
                    failing = true;
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// Take new events in, then deliver what is due; whether there may be more to do now.
    async fn round(&self) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let taken = (self.store)
            .outbox_ingest(&self.hook.name, &self.queue, &self.hook.events, now)
            .await?;
        let hold = self.hook.timeout + CLAIM_SLACK;
        let claimed = (self.store)
            .outbox_claim(&self.hook.name, &self.queue, now, hold, IN_FLIGHT)
            .await?;
        let delivered =
            futures_util::future::join_all(claimed.iter().map(|item| self.deliver(item))).await;
        for (item, outcome) in claimed.iter().zip(delivered) {
            self.settle(item, outcome).await?;
        }
        Ok(taken > 0 || claimed.len() == IN_FLIGHT)
    }

    /// Send `item` once: `Err` says why it did not arrive.
    async fn deliver(&self, item: &OutboxItem) -> Result<(), String> {
        let payload = self.payload(item).await;
        let body = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
        let unix = self.clock.now().as_millis() / 1000;
        let started = std::time::Instant::now();
        let sent = (self.http)
            .post(self.hook.url.clone())
            .timeout(self.hook.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", &payload.idempotency_key)
            .header("x-callbackd-event", item.event.kind.as_str())
            .header(SIGNATURE_HEADER, signature(&self.hook.secret, unix, &body))
            .body(body)
            .send()
            .await;
        self.stats.latency.observe(started.elapsed());
        match sent {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!("answered {}", resp.status())),
            Err(e) if e.is_timeout() => Err(format!("no answer within {:?}", self.hook.timeout)),
            Err(e) => Err(format!("not delivered: {e}")),
        }
    }

    /// The payload of `item`, with the caller's recorded name when they left one.
    async fn payload(&self, item: &OutboxItem) -> Payload {
        let entry = item.event.field("entry").and_then(|e| EntryId::new(e).ok());
        let name = match entry {
            Some(entry) => (self.store.caller_name(&self.queue, &entry).await).unwrap_or(None),
            None => None,
        };
        let line = (item.event.field("line"))
            .and_then(|l| LineName::new(l).ok())
            .and_then(|l| self.config.line(&l));
        let language = line.map_or("en", |l| l.language.as_str());
        Payload::of(item, name, language)
    }

    async fn settle(
        &self,
        item: &OutboxItem,
        outcome: Result<(), String>,
    ) -> Result<(), StoreError> {
        let error = match outcome {
            Ok(()) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                return self.store.outbox_delivered(&self.hook.name, item).await;
            }
            Err(error) => error,
        };
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let retry_at = now.plus(retry_delay(item.attempts + 1));
        let failed = (self.store)
            .outbox_failed(
                &self.hook.name,
                item,
                &error,
                now,
                retry_at,
                self.hook.retry_window,
            )
            .await?;
        match failed {
            DeliveryFailed::Dead => {
                self.stats.dead.fetch_add(1, Ordering::Relaxed);
                tracing::error!(webhook = %self.hook.name, queue = %self.queue,
                    event = %item.event.id, %error, "webhook delivery given up: a dead letter now");
            }
            DeliveryFailed::Retry => {
                tracing::warn!(webhook = %self.hook.name, queue = %self.queue,
                    event = %item.event.id, attempt = item.attempts + 1, %error,
                    "webhook delivery failed; trying again");
            }
            DeliveryFailed::Gone => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_time_and_the_body() {
        // RFC 4231 test case 2's key and data, split as "<t>.<body>" would be.
        let sig = signature("Jefe", 0, b"what do ya want for nothing?");
        let expected = {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
            let tag = ring::hmac::sign(&key, b"0.what do ya want for nothing?");
            tag.as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(sig, format!("t=0,v1={expected}"));
        assert_ne!(sig, signature("Jefe", 1, b"what do ya want for nothing?"));
    }

    #[test]
    fn retries_back_off_from_a_second_to_an_hour() {
        for _ in 0..50 {
            let first = retry_delay(1);
            assert!(first >= Duration::from_millis(800) && first <= Duration::from_millis(1200));
            let fourth = retry_delay(4);
            assert!(fourth >= Duration::from_millis(6400) && fourth <= Duration::from_millis(9600));
            assert!(retry_delay(40) <= Duration::from_secs(4320));
        }
    }
}
