//! `/metrics` in the Prometheus text format: counters and histograms of what the queues'
//! event streams say happened, gauges read from Redis at each scrape, and this daemon's
//! own health.
//!
//! The streams are shared, so every daemon counts every daemon's events: the queue
//! figures of two daemons are the same series (aggregate them with `max`, not `sum`). They
//! count from the daemon's start, as Prometheus counters do.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::{
    text::encode, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::broadcast;

use super::auth::Caller;
use super::error::ApiError;
use super::ApiState;
use crate::engine::EngineStats;
use crate::latency::LatencyHistogram;
use crate::queue::AgentState;
use crate::store::{DomainEvent, EventKind, EventStream, StoredEvent};
use crate::webhooks::WebhookStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLine {
    queue: String,
    line: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    queue: String,
    line: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeOnly {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabel {
    agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// Wait buckets, seconds: from a quick answer to an hour-long callback window.
const WAIT_BUCKETS: [f64; 12] = [
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 2700.0, 3600.0, 7200.0,
];

fn wait_histogram() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

/// A histogram another part counts in its own buckets (see [`LatencyHistogram`]), read
/// at each scrape: the engine's agent-free→originate latencies, webhook deliveries.
#[derive(Debug)]
struct LatencyMetric<S>(Arc<S>, fn(&S) -> &LatencyHistogram);

impl<S: std::fmt::Debug + Send + Sync> EncodeMetric for LatencyMetric<S> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let snap = (self.1)(&self.0).snapshot();
        encoder.encode_histogram::<NoLabelSet>(snap.sum_seconds, snap.count, &snap.buckets, None)
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// Every series, registered once.
pub struct Metrics {
    registry: Registry,
    callbacks: Family<Outcome, Counter>,
    callback_wait: Family<QueueLine, Histogram, fn() -> Histogram>,
    caller_wait: Family<Outcome, Histogram, fn() -> Histogram>,
    offers: Family<AgentLabel, Counter>,
    declines: Family<AgentLabel, Counter>,
    misses: Family<AgentLabel, Counter>,
    callbacks_in_queue: Family<QueueLabel, Gauge>,
    callers_waiting: Family<QueueLabel, Gauge>,
    agents: Family<StateLabel, Gauge>,
    freeswitch_up: Gauge,
    redis_up: Gauge,
    poison_records: Gauge,
    events_read: Counter,
    switch_lost: Counter,
    resyncs: Counter,
    switch_events: Counter,
    event_gaps: Counter,
    loop_lag: prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
    webhooks: Arc<WebhookStats>,
    webhook_deliveries: Family<OutcomeOnly, Counter>,
    webhook_retries: Counter,
    webhook_dead: Counter,
    /// Held while the engine's counts are carried over, so two scrapes at once add once.
    carrying: std::sync::Mutex<()>,
}

impl Metrics {
    /// The series, with the engine's and the webhook deliverers' own counts read from
    /// `engine` and `webhooks`.
    pub fn new(engine: Arc<EngineStats>, webhooks: Arc<WebhookStats>) -> Self {
        let mut registry = Registry::with_prefix("callbackd");
        registry.register(
            "dispatch_latency_seconds",
            "From the end of an agent's call to the originate of their next ring, when it came in the routing that followed",
            LatencyMetric(engine, |e| &e.dispatch_latency),
        );
        registry.register(
            "webhook_delivery_seconds",
            "How long webhook deliveries took, whatever their outcome",
            LatencyMetric(webhooks.clone(), |w| &w.latency),
        );
        let webhook_deliveries = Family::<OutcomeOnly, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by outcome: delivered, failed (each failed attempt)",
            webhook_deliveries.clone(),
        );
        let webhook_retries = Counter::default();
        registry.register(
            "webhook_retries",
            "Failed webhook deliveries that are tried again",
            webhook_retries.clone(),
        );
        let webhook_dead = Counter::default();
        registry.register(
            "webhook_dead_letters",
            "Webhook events given up after the retry window (replayable)",
            webhook_dead.clone(),
        );
        let callbacks = Family::<Outcome, Counter>::default();
        registry.register(
            "callbacks",
            "Callback outcomes: requested, accepted, completed, expired, declined_by_all, attempt_failed, duplicate_ignored, canceled",
            callbacks.clone(),
        );
        let callback_wait: Family<QueueLine, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(wait_histogram);
        registry.register(
            "callback_wait_seconds",
            "From a callback's request to its customer answering",
            callback_wait.clone(),
        );
        let caller_wait: Family<Outcome, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(wait_histogram);
        registry.register(
            "caller_wait_seconds",
            "How long live callers waited, by how it ended: connected, abandoned, max_wait_exit",
            caller_wait.clone(),
        );
        let offers = Family::<AgentLabel, Counter>::default();
        registry.register("agent_offers", "Offers that rang an agent", offers.clone());
        let declines = Family::<AgentLabel, Counter>::default();
        registry.register(
            "agent_declines",
            "Callbacks an agent declined",
            declines.clone(),
        );
        let misses = Family::<AgentLabel, Counter>::default();
        registry.register(
            "agent_misses",
            "Offers an agent did not take (no answer, busy, rejected)",
            misses.clone(),
        );
        let callbacks_in_queue = Family::<QueueLabel, Gauge>::default();
        registry.register(
            "callbacks_in_queue",
            "Callbacks open in a queue now",
            callbacks_in_queue.clone(),
        );
        let callers_waiting = Family::<QueueLabel, Gauge>::default();
        registry.register(
            "waiting",
            "Entries (callers and callbacks) waiting for an agent now",
            callers_waiting.clone(),
        );
        let agents = Family::<StateLabel, Gauge>::default();
        registry.register("agents", "Agents in each state now", agents.clone());
        let freeswitch_up = Gauge::default();
        registry.register(
            "freeswitch_up",
            "1 while this daemon's event socket is connected",
            freeswitch_up.clone(),
        );
        let redis_up = Gauge::default();
        registry.register("redis_up", "1 while Redis answers", redis_up.clone());
        let poison_records = Gauge::default();
        registry.register(
            "poison_records",
            "Unreadable records skipped since this daemon started",
            poison_records.clone(),
        );
        let events_read = Counter::default();
        registry.register(
            "events_read",
            "Domain events read from the streams since this daemon started",
            events_read.clone(),
        );
        let switch_lost = Counter::default();
        registry.register(
            "switch_disconnects",
            "Times this daemon's event socket dropped",
            switch_lost.clone(),
        );
        let resyncs = Counter::default();
        registry.register(
            "resyncs",
            "Resyncs with the switch: after a (re)connect or an event gap",
            resyncs.clone(),
        );
        let event_gaps = Counter::default();
        registry.register(
            "event_gaps",
            "Times switch events were lost with the connection up (each one resyncs)",
            event_gaps.clone(),
        );
        let switch_events = Counter::default();
        registry.register(
            "switch_events",
            "Events read from the switch's event socket",
            switch_events.clone(),
        );
        let loop_lag = prometheus_client::metrics::gauge::Gauge::<f64, _>::default();
        registry.register(
            "engine_loop_lag_seconds",
            "How late the engine loop's last timer tick ran",
            loop_lag.clone(),
        );
        Self {
            registry,
            webhooks,
            webhook_deliveries,
            webhook_retries,
            webhook_dead,
            switch_lost,
            resyncs,
            switch_events,
            event_gaps,
            loop_lag,
            carrying: std::sync::Mutex::new(()),
            callbacks,
            callback_wait,
            caller_wait,
            offers,
            declines,
            misses,
            callbacks_in_queue,
            callers_waiting,
            agents,
            freeswitch_up,
            redis_up,
            poison_records,
            events_read,
        }
    }
}

fn seconds(event: &StoredEvent, field: &str) -> Option<f64> {
    event
        .field(field)
        .and_then(|ms| ms.parse::<f64>().ok())
        .map(|ms| ms / 1000.0)
}

impl Metrics {
    /// Count one domain event.
    pub fn observe(&self, domain: &DomainEvent) {
        if !matches!(domain.stream, EventStream::Queue(_) | EventStream::Agents) {
            return;
        }
        self.events_read.inc();
        let e = &domain.event;
        let field = |name: &str| e.field(name).unwrap_or_default().to_owned();
        let queue_line = || QueueLine {
            queue: field("queue"),
            line: field("line"),
        };
        let outcome = |outcome: &str| Outcome {
            queue: field("queue"),
            line: field("line"),
            outcome: outcome.to_owned(),
        };
        let agent = |name: String| AgentLabel { agent: name };
        match e.kind {
            EventKind::Requested
            | EventKind::Accepted
            | EventKind::Completed
            | EventKind::Expired
            | EventKind::DeclinedByAll
            | EventKind::AttemptFailed
            | EventKind::DuplicateIgnored
            | EventKind::Canceled => {
                self.callbacks
                    .get_or_create(&outcome(e.kind.as_str()))
                    .inc();
            }
            EventKind::CustomerAnswered => {
                if let Some(wait) = seconds(e, "callback_wait_ms") {
                    self.callback_wait
                        .get_or_create(&queue_line())
                        .observe(wait);
                }
            }
            EventKind::Connected if e.field("kind") != Some("callback") => {
                if let Some(wait) = seconds(e, "waited_ms") {
                    self.caller_wait
                        .get_or_create(&outcome("connected"))
                        .observe(wait);
                }
            }
            EventKind::Abandoned | EventKind::MaxWaitExit => {
                if let Some(wait) = seconds(e, "waited_ms") {
                    self.caller_wait
                        .get_or_create(&outcome(e.kind.as_str()))
                        .observe(wait);
                }
            }
            EventKind::Offered => {
                for a in field("agents").split(',').filter(|a| !a.is_empty()) {
                    self.offers.get_or_create(&agent(a.to_owned())).inc();
                }
            }
            EventKind::Declined => {
                self.declines.get_or_create(&agent(field("agent"))).inc();
            }
            EventKind::AgentNoAnswer => {
                self.misses.get_or_create(&agent(field("agent"))).inc();
            }
            _ => {}
        }
    }

    /// Count the bus's events until the engine is gone.
    pub async fn follow(self: Arc<Self>, mut bus: broadcast::Receiver<DomainEvent>) {
        loop {
            match bus.recv().await {
                Ok(event) => self.observe(&event),
                // Counters under-count what a lag skipped; nothing else is wrong.
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "metrics fell behind the event bus");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Prometheus text exposition (any token's role may scrape).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain")), security(("bearer" = [])))]
pub async fn metrics(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let m = &state.metrics;
    m.freeswitch_up
        .set(i64::from(state.handle.switch_connected()));
    let stats = state.handle.stats();
    let carrying = m
        .carrying
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let catch_up = |counter: &Counter, now: u64| {
        counter.inc_by(now.saturating_sub(counter.get()));
    };
    let read = |count: &AtomicU64| count.load(Ordering::Relaxed);
    catch_up(&m.switch_lost, read(&stats.switch_lost));
    catch_up(&m.resyncs, read(&stats.resyncs));
    catch_up(&m.switch_events, read(&stats.switch_events));
    catch_up(&m.event_gaps, read(&stats.event_gaps));
    let hooks = &m.webhooks;
    for (outcome, count) in [("delivered", &hooks.delivered), ("failed", &hooks.failed)] {
        catch_up(
            &m.webhook_deliveries.get_or_create(&OutcomeOnly {
                outcome: outcome.into(),
            }),
            read(count),
        );
    }
    let retried = read(&hooks.failed).saturating_sub(read(&hooks.dead));
    catch_up(&m.webhook_retries, retried);
    catch_up(&m.webhook_dead, read(&hooks.dead));
    drop(carrying);
    let lag_us = read(&stats.loop_lag_us);
    m.loop_lag.set(lag_us as f64 / 1e6);
    m.poison_records
        .set(gauge_value(state.store.poison_records()));
    let read = async {
        for q in &state.config().queues {
            let label = QueueLabel {
                queue: q.name.to_string(),
            };
            let stats = state.store.callback_stats(&q.name).await?;
            m.callbacks_in_queue
                .get_or_create(&label)
                .set(gauge_value(stats.in_queue));
            let waiting = state.store.waiting_count(&q.name).await?;
            m.callers_waiting
                .get_or_create(&label)
                .set(gauge_value(waiting));
        }
        let agents = state.store.agents(state.clock.now()).await?;
        for s in AgentState::ALL {
            let n = agents.iter().filter(|a| a.state == s).count();
            m.agents
                .get_or_create(&StateLabel {
                    state: s.as_str().to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok::<_, crate::store::StoreError>(())
    };
    // A Redis outage is a figure (`redis_up 0`), not a failed scrape.
    let redis_up = read.await.is_ok();
    m.redis_up.set(i64::from(redis_up));
    let mut text = m.encode().map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            e.to_string(),
        )
    })?;
    let _ = writeln!(text);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}
