//! The live event stream: Server-Sent Events of the domain events, one queue's or all of
//! them, resumable with `Last-Event-ID` (the Redis stream id of the last event seen).
//!
//! A client first gets what the streams hold after its resume point, then the bus; it
//! subscribes to the bus before reading back, and skips what it was sent already, so
//! nothing falls between the two. One that lags behind the bus is read back again.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::ApiError;
use super::queues::queue_named;
use super::views::EventView;
use super::{stream_id, ApiState};
use crate::config::ApiRole;
use crate::queue::QueueName;
use crate::store::{EventStream, Store, StoredEvent};

/// Events read back per round trip.
const REPLAY_BATCH: usize = 500;
/// Events queued for one client before the reader waits for it.
const CLIENT_QUEUE: usize = 256;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsFilter {
    /// Only this queue's events (else every queue's and the agents').
    queue: Option<String>,
    /// Resume after this stream id; the `Last-Event-ID` header does the same.
    after: Option<String>,
}

/// One stream a client follows, by the name it shows in events.
#[derive(Clone)]
struct Followed {
    name: String,
    queue: Option<QueueName>,
}

/// Domain events as they happen (`text/event-stream`): `event` is the kind, `id` the
/// stream id, `data` the event as JSON.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventsFilter),
    responses((status = 200, content_type = "text/event-stream", body = EventView)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    filter: Result<Query<EventsFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(filter) = filter?;
    let followed: Vec<Followed> = match &filter.queue {
        Some(q) => {
            let queue = queue_named(&state, q)?;
            vec![Followed {
                name: format!("queue:{queue}"),
                queue: Some(queue),
            }]
        }
        None => state
            .config()
            .queues
            .iter()
            .map(|q| Followed {
                name: format!("queue:{}", q.name),
                queue: Some(q.name.clone()),
            })
            .chain([Followed {
                name: "agents".into(),
                queue: None,
            }])
            .collect(),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(filter.after);
    if resume.as_deref().is_some_and(|id| stream_id(id).is_none()) {
        return Err(ApiError::invalid("Last-Event-ID: not a stream id"));
    }
    // Subscribed before anything is read back, so nothing falls in between.
    let bus = state.handle.subscribe();
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    tokio::spawn(follow(
        state.store.clone(),
        caller.0,
        followed,
        resume,
        bus,
        tx,
    ));
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Send `followed`'s events after `resume` (or from now), then the bus's, until the client
/// is gone.
async fn follow(
    store: Store,
    role: ApiRole,
    followed: Vec<Followed>,
    resume: Option<String>,
    mut bus: broadcast::Receiver<crate::store::DomainEvent>,
    tx: mpsc::Sender<Event>,
) {
    let mut last: HashMap<String, String> = HashMap::new();
    if let Some(id) = &resume {
        for f in &followed {
            last.insert(f.name.clone(), id.clone());
        }
        if replay(&store, &role, &followed, &mut last, &tx)
            .await
            .is_err()
        {
            return;
        }
    }
    loop {
        match bus.recv().await {
            Ok(domain) => {
                let name = match &domain.stream {
                    EventStream::Queue(q) => format!("queue:{q}"),
                    EventStream::Agents => "agents".to_owned(),
                    EventStream::Withdrawals(_) => continue,
                };
                if !followed.iter().any(|f| f.name == name) {
                    continue;
                }
                if send(&role, &name, &domain.event, &mut last, &tx)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if replay(&store, &role, &followed, &mut last, &tx)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Read back every followed stream after its last id sent.
async fn replay(
    store: &Store,
    role: &ApiRole,
    followed: &[Followed],
    last: &mut HashMap<String, String>,
    tx: &mpsc::Sender<Event>,
) -> Result<(), ()> {
    for f in followed {
        loop {
            let after = last.get(&f.name).cloned();
            let Ok(events) = store
                .events(f.queue.as_ref(), after.as_deref(), REPLAY_BATCH)
                .await
            else {
                // Redis is away: the bus goes on, and a later lag reads back again.
                break;
            };
            for e in &events {
                send(role, &f.name, e, last, tx).await?;
            }
            if events.len() < REPLAY_BATCH {
                break;
            }
        }
    }
    Ok(())
}

fn newer(id: &str, than: Option<&String>) -> bool {
    than.is_none_or(|t| stream_id(id) > stream_id(t))
}

/// Send one event unless this client had it; `Err` once the client is gone.
async fn send(
    role: &ApiRole,
    stream: &str,
    event: &StoredEvent,
    last: &mut HashMap<String, String>,
    tx: &mpsc::Sender<Event>,
) -> Result<(), ()> {
    if !newer(&event.id, last.get(stream)) {
        return Ok(());
    }
    last.insert(stream.to_owned(), event.id.clone());
    let view = EventView::of(stream.to_owned(), event, role);
    let sse = Event::default()
        .id(&event.id)
        .event(event.kind.as_str())
        .json_data(&view)
        .map_err(drop)?;
    tx.send(sse).await.map_err(drop)
}
