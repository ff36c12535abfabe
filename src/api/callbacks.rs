//! Callbacks: listed with filters and a cursor, shown with every event of their life,
//! created (by the phone menu's number rules) and canceled through the engine handle.
//!
//! The list walks the queues' request streams (one `requested` record per callback) back
//! from the cursor and reads each callback's entry, so it shows closed callbacks too while
//! Redis keeps them (a day), and a page costs a few reads however busy the queues are. A
//! page asked again within a moment is answered from the first read (see `fresh`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::ApiError;
use super::queues::queue_named;
use super::views::{state_name, CallbackPage, CallbackView, Created, EventView, NewCallback};
use super::{stream_id, ApiJson, ApiState};
use crate::config::ApiRole;
use crate::queue::{Entry, EntryId, EntryKind, LineName, QueueName, Timestamp};
use crate::store::{EventKind, StoredEvent};

/// The latest pages asked, as JSON, by whether numbers are masked and the query string.
pub type ListCache = super::fresh::FreshCache<(bool, String), Bytes>;

/// At most this many callbacks per page.
const MAX_PAGE: usize = 100;
/// Events read from a stream per round trip while a page is filled.
const READ_BATCH: usize = 500;
/// Round trips one page may take before it answers with what it found (and a cursor).
const MAX_READS: usize = 20;
/// How far before its entry's arrival a callback's history is looked for: Redis's clock
/// (the stream ids) and the daemon's may differ.
const CLOCK_SLACK_MS: u64 = 10 * 60 * 1000;
/// Events of one queue read for one callback's history, at most.
const MAX_HISTORY_SCAN: usize = 20_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListFilter {
    /// Only this queue.
    queue: Option<String>,
    /// `waiting`, `offered`, `dialing`, `retry_wait`, `connected` or `closed`.
    state: Option<String>,
    /// Only callbacks ringing, dialed by or connected to this agent.
    agent: Option<String>,
    /// Only callbacks to this number (as stored, E.164).
    number: Option<String>,
    /// Requested at or after this time, ms since the epoch.
    since: Option<u64>,
    /// Requested before this time, ms since the epoch.
    until: Option<u64>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
    /// Callbacks per page (default 50, at most 100).
    limit: Option<usize>,
}

/// Callbacks, newest request first.
#[utoipa::path(get, path = "/v1/callbacks", tag = "callbacks", params(ListFilter),
    responses((status = 200, body = CallbackPage), (status = 400, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    filter: Result<Query<ListFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(filter) = filter?;
    // The same page asked again at once (a dashboard, a CRM polling) is the same answer.
    let key = (caller.0 == ApiRole::Read, query.unwrap_or_default());
    let page = match state.lists.fresh(&key) {
        Some(page) => page,
        None => {
            let page =
                serde_json::to_vec(&list_page(&state, &caller, filter).await?).map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                })?;
            let page = Arc::new(Bytes::from(page));
            state.lists.keep(key, page.clone());
            page
        }
    };
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        (*page).clone(),
    )
        .into_response())
}

/// The page of callbacks `filter` asks for, read from the store.
async fn list_page(
    state: &ApiState,
    caller: &Caller,
    filter: ListFilter,
) -> Result<CallbackPage, ApiError> {
    let limit = filter.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!("limit: 1 to {MAX_PAGE}")));
    }
    let queues: Vec<QueueName> = match &filter.queue {
        Some(q) => vec![queue_named(state, q)?],
        None => state
            .config()
            .queues
            .iter()
            .map(|q| q.name.clone())
            .collect(),
    };
    if let Some(cursor) = &filter.cursor {
        stream_id(cursor).ok_or_else(|| ApiError::invalid("cursor: not one this API gave"))?;
    }
    // The newest id to read before: the cursor, or the end of the time range.
    let mut before = filter
        .cursor
        .clone()
        .or(filter.until.map(|t| format!("{t}-0")));
    let since = filter.since.unwrap_or(0);
    let mut found = Vec::new();
    let mut exhausted = false;
    for _ in 0..MAX_READS {
        // The newest `requested` events across the queues before `before`.
        let mut batch: Vec<(QueueName, StoredEvent)> = Vec::new();
        for q in &queues {
            let events = state
                .store
                .requests_before(q, before.as_deref(), READ_BATCH)
                .await?;
            batch.extend(events.into_iter().map(|e| (q.clone(), e)));
        }
        if batch.is_empty() {
            exhausted = true;
            break;
        }
        batch.sort_by_key(|(_, e)| std::cmp::Reverse(stream_id(&e.id)));
        // Only as far as every queue's batch reaches, so none is skipped.
        let reach = queues
            .iter()
            .filter_map(|q| {
                let of_q: Vec<_> = batch.iter().filter(|(bq, _)| bq == q).collect();
                (of_q.len() == READ_BATCH).then(|| of_q.last().map(|(_, e)| stream_id(&e.id)))
            })
            .flatten()
            .max();
        let mut last = None;
        for (q, event) in &batch {
            if reach.is_some_and(|r| stream_id(&event.id) < r) {
                break;
            }
            last = Some(event.id.clone());
            if stream_id(&event.id).is_some_and(|(ms, _)| ms < since) {
                exhausted = true;
                break;
            }
            if event.kind != EventKind::Requested {
                continue;
            }
            let Some(id) = event.field("entry").and_then(|e| EntryId::new(e).ok()) else {
                continue;
            };
            let Some(entry) = state.store.entry(q, &id).await? else {
                continue;
            };
            if matches(&entry, &filter) {
                if let Some(view) = CallbackView::of(&entry, &caller.0) {
                    found.push((event.id.clone(), view));
                }
            }
            if found.len() == limit {
                break;
            }
        }
        before = last;
        if found.len() == limit || exhausted || before.is_none() {
            break;
        }
    }
    let next_cursor = if exhausted && found.len() < limit {
        None
    } else {
        found.last().map(|(id, _)| id.clone()).or(before)
    };
    Ok(CallbackPage {
        callbacks: found.into_iter().map(|(_, v)| v).collect(),
        next_cursor,
    })
}

fn matches(entry: &Entry, filter: &ListFilter) -> bool {
    let EntryKind::Callback(request) = &entry.kind else {
        return false;
    };
    let state_ok = filter
        .state
        .as_deref()
        .is_none_or(|s| s == state_name(&entry.status));
    let number_ok = filter
        .number
        .as_deref()
        .is_none_or(|n| n == request.number.as_str());
    let agent_ok = filter.agent.as_deref().is_none_or(|a| {
        super::views::agents_of(&entry.status)
            .iter()
            .any(|x| x == a)
    });
    let until_ok = filter
        .until
        .is_none_or(|t| request.requested_at.as_millis() < t);
    state_ok && number_ok && agent_ok && until_ok
}

/// The entry `id` in whichever configured queue holds it.
async fn find(state: &ApiState, id: &str) -> Result<Entry, ApiError> {
    let missing = || ApiError::not_found(format!("no callback {id:?}"));
    let entry_id = EntryId::new(id).map_err(|_| missing())?;
    for q in &state.config().queues {
        if let Some(entry) = state.store.entry(&q.name, &entry_id).await? {
            if matches!(entry.kind, EntryKind::Callback(_)) {
                return Ok(entry);
            }
        }
    }
    Err(missing())
}

/// One callback with every event of its life.
#[utoipa::path(get, path = "/v1/callbacks/{id}", tag = "callbacks",
    params(("id" = String, Path)),
    responses((status = 200, body = CallbackView), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CallbackView>, ApiError> {
    let entry = find(&state, &id).await?;
    let mut view = CallbackView::of(&entry, &caller.0).ok_or_else(|| ApiError::not_found(&id))?;
    // Its events start with its entry's arrival (a live caller's, before the request);
    // stream ids are Redis's clock, which may be a little off the daemon's.
    let from = entry.position.as_millis().saturating_sub(CLOCK_SLACK_MS);
    let mut after = Some(format!("{from}-0"));
    let mut history = Vec::new();
    let stream = format!("queue:{}", entry.queue);
    let mut scanned = 0;
    while scanned < MAX_HISTORY_SCAN {
        let events = state
            .store
            .events(Some(&entry.queue), after.as_deref(), READ_BATCH)
            .await?;
        scanned += events.len();
        let Some(last) = events.last() else { break };
        after = Some(last.id.clone());
        history.extend(
            events
                .iter()
                .filter(|e| e.field("entry") == Some(entry.id.as_str()))
                .map(|e| EventView::of(stream.clone(), e, &caller.0)),
        );
        if events.len() < READ_BATCH {
            break;
        }
    }
    view.history = Some(history);
    Ok(Json(view))
}

/// Ask for a callback with no call in the queue (a CRM's): the number is judged by the
/// line's rules, as one keyed on the phone is; one already pending is `duplicate`.
#[utoipa::path(post, path = "/v1/callbacks", tag = "callbacks", request_body = NewCallback,
    responses((status = 201, body = Created), (status = 409, body = super::error::ErrorBody),
        (status = 422, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewCallback>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    caller.must_admin("create callbacks")?;
    let queue = queue_named(&state, &body.queue)?;
    let line = LineName::new(&body.line)
        .map_err(|_| ApiError::not_found(format!("no line {:?}", body.line)))?;
    if body.number.len() > 32 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_number",
            "number: at most 32 characters",
        ));
    }
    let earliest = body.earliest.map(Timestamp::from_millis);
    let id = state
        .handle
        .create_callback(queue, line, &body.number, earliest)
        .await?;
    Ok((StatusCode::CREATED, Json(Created { id: id.to_string() })))
}

/// Withdraw a callback not being dialed yet; the phones ringing for it stop, on whichever
/// daemon rings them.
#[utoipa::path(delete, path = "/v1/callbacks/{id}", tag = "callbacks",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.must_admin("cancel callbacks")?;
    let entry = find(&state, &id).await?;
    state.handle.cancel_callback(entry.queue, entry.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
