//! The queues and the agents as they are now: each queue's live list in order, and the
//! agents with their states, which an admin or the agent themselves may set.
//!
//! Reads come from Redis, so they show every daemon's callers; state changes go through
//! the engine handle, by the same rules as the phone's feature codes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::ApiError;
use super::views::{
    AgentView, EntryView, NewAgentState, QueueSummary, QueueView, StateChanged, TodayView,
};
use super::{ApiJson, ApiState};
use crate::queue::{Agent, AgentId, AgentState, Entry, EntryStatus, QueueName, PACE_SAMPLES};
use crate::store::StateSource;

pub(super) fn queue_named(state: &ApiState, name: &str) -> Result<QueueName, ApiError> {
    QueueName::new(name)
        .ok()
        .filter(|q| state.config().queue(q).is_some())
        .ok_or_else(|| ApiError::not_found(format!("no queue {name:?}")))
}

pub(super) fn agent_named(state: &ApiState, id: &str) -> Result<AgentId, ApiError> {
    AgentId::new(id)
        .ok()
        .filter(|a| state.config().agents.iter().any(|c| c.id == *a))
        .ok_or_else(|| ApiError::not_found(format!("no agent {id:?}")))
}

/// Every queue with its counts.
#[utoipa::path(get, path = "/v1/queues", tag = "queues",
    responses((status = 200, body = Vec<QueueSummary>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Result<Json<Vec<QueueSummary>>, ApiError> {
    let mut out = Vec::with_capacity(state.config().queues.len());
    let now = state.clock.now();
    for q in &state.config().queues {
        let stats = state.store.callback_stats(&q.name).await?;
        let today = state.store.today_figures(&q.name, now).await?;
        out.push(QueueSummary {
            name: q.name.to_string(),
            waiting: state.store.waiting_count(&q.name).await?,
            callbacks_in_queue: stats.in_queue,
            callbacks_total: stats.total,
            average_callback_wait_ms: stats.average_wait.map(millis),
            today: TodayView {
                callbacks_requested: today.requested,
                callbacks_connected: today.connected,
                connected_percent: today.connected_share().map(|s| (s * 100.0).round() as u8),
                abandoned: today.abandoned,
                average_callback_wait_ms: today.average_wait.map(millis),
            },
        });
    }
    Ok(Json(out))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One read of a queue for its views, shared by those asked within [`super::fresh::FRESH`].
pub struct QueueRead {
    entries: Vec<Entry>,
    open_total: u64,
    pace: Option<Duration>,
    agents: Vec<Agent>,
}

/// The latest read per queue and view size.
pub type ViewCache = super::fresh::FreshCache<(QueueName, usize), QueueRead>;

/// Entries one queue view shows by default, and at most.
const VIEW_DEFAULT: usize = 100;
const VIEW_MAX: usize = 1_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ViewParams {
    /// How many of the first open entries to show (default 100, at most 1000): a long
    /// queue's tail costs a read per entry, and nobody reads 2,000 rows.
    limit: Option<usize>,
}

/// One queue live: its first open entries in order and the agents who serve it.
#[utoipa::path(get, path = "/v1/queues/{queue}", tag = "queues",
    params(("queue" = String, Path), ViewParams),
    responses((status = 200, body = QueueView), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    params: Result<Query<ViewParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<QueueView>, ApiError> {
    let Query(params) = params?;
    let queue = queue_named(&state, &name)?;
    let limit = params.limit.unwrap_or(VIEW_DEFAULT);
    if !(1..=VIEW_MAX).contains(&limit) {
        return Err(ApiError::invalid(format!("limit: 1 to {VIEW_MAX}")));
    }
    let now = state.clock.now();
    let key = (queue.clone(), limit);
    let read = match state.views.fresh(&key) {
        Some(read) => read,
        None => {
            let ((entries, open_total), pace, agents) = tokio::try_join!(
                state.store.first_open_entries(&queue, limit),
                state.store.recent_pace(&queue, PACE_SAMPLES),
                state.store.agents(now),
            )?;
            let read = Arc::new(QueueRead {
                entries,
                open_total,
                pace,
                agents,
            });
            state.views.keep(key, read.clone());
            read
        }
    };
    let mut place = 0;
    let entries = read
        .entries
        .iter()
        .map(|e| {
            let position = matches!(e.status, EntryStatus::Waiting).then(|| {
                place += 1;
                place
            });
            EntryView::of(e, position, read.pace, now, &caller.0)
        })
        .collect();
    let agents = (read.agents.iter())
        .filter(|a| a.serves.iter().any(|s| s.queue == queue))
        .map(|a| AgentView::of(a, now))
        .collect();
    Ok(Json(QueueView {
        name: queue.to_string(),
        entries,
        open_total: read.open_total,
        agents,
    }))
}

/// Every agent with their state.
#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentView>)), security(("bearer" = [])))]
pub async fn agents(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    let now = state.clock.now();
    let agents = state.store.agents(now).await?;
    Ok(Json(agents.iter().map(|a| AgentView::of(a, now)).collect()))
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{agent}", tag = "agents",
    params(("agent" = String, Path)),
    responses((status = 200, body = AgentView), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn agent(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let id = agent_named(&state, &id)?;
    let agent = state.store.agent(&id, state.clock.now()).await?;
    let agent =
        agent.ok_or_else(|| ApiError::not_found(format!("agent {id} is not registered")))?;
    Ok(Json(AgentView::of(&agent, state.clock.now())))
}

/// Set an agent's state (an admin, or the agent's own token), as the phone's feature codes
/// do: `on_call` and `wrap_up` are the daemon's to set.
#[utoipa::path(put, path = "/v1/agents/{agent}/state", tag = "agents",
    params(("agent" = String, Path)), request_body = NewAgentState,
    responses((status = 200, body = StateChanged), (status = 409, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_state(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewAgentState>,
) -> Result<Json<StateChanged>, ApiError> {
    let id = agent_named(&state, &id)?;
    caller.must_act_as(&id)?;
    let to = AgentState::ALL
        .into_iter()
        .filter(|s| s.is_chosen_by_people())
        .find(|s| s.as_str() == body.state)
        .ok_or_else(|| ApiError::invalid("state: available, away, transfers_only or offline"))?;
    let previous = state
        .handle
        .set_agent_state(id, to, StateSource::Api)
        .await?;
    Ok(Json(StateChanged {
        previous: previous.as_str().to_owned(),
        state: to.as_str().to_owned(),
    }))
}
