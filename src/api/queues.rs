//! The queues and the agents as they are now: each queue's live list in order, and the
//! agents with their states, which an admin or the agent themselves may set.
//!
//! Reads come from Redis, so they show every daemon's callers; state changes go through
//! the engine handle, by the same rules as the phone's feature codes.

use axum::extract::{Path, State};
use axum::Json;

use super::auth::Caller;
use super::error::ApiError;
use super::views::{AgentView, EntryView, NewAgentState, QueueSummary, QueueView, StateChanged};
use super::{ApiJson, ApiState};
use crate::queue::{AgentId, AgentState, EntryStatus, QueueName, PACE_SAMPLES};
use crate::store::StateSource;

pub(super) fn queue_named(state: &ApiState, name: &str) -> Result<QueueName, ApiError> {
    QueueName::new(name)
        .ok()
        .filter(|q| state.config.queue(q).is_some())
        .ok_or_else(|| ApiError::not_found(format!("no queue {name:?}")))
}

pub(super) fn agent_named(state: &ApiState, id: &str) -> Result<AgentId, ApiError> {
    AgentId::new(id)
        .ok()
        .filter(|a| state.config.agents.iter().any(|c| c.id == *a))
        .ok_or_else(|| ApiError::not_found(format!("no agent {id:?}")))
}

/// Every queue with its counts.
#[utoipa::path(get, path = "/v1/queues", tag = "queues",
    responses((status = 200, body = Vec<QueueSummary>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Result<Json<Vec<QueueSummary>>, ApiError> {
    let mut out = Vec::with_capacity(state.config.queues.len());
    for q in &state.config.queues {
        let stats = state.store.callback_stats(&q.name).await?;
        out.push(QueueSummary {
            name: q.name.to_string(),
            waiting: state.store.waiting_count(&q.name).await?,
            callbacks_in_queue: stats.in_queue,
            callbacks_total: stats.total,
            average_callback_wait_ms: stats
                .average_wait
                .map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX)),
        });
    }
    Ok(Json(out))
}

/// One queue live: its open entries in order and the agents who serve it.
#[utoipa::path(get, path = "/v1/queues/{queue}", tag = "queues",
    params(("queue" = String, Path)),
    responses((status = 200, body = QueueView), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<QueueView>, ApiError> {
    let queue = queue_named(&state, &name)?;
    let now = state.clock.now();
    let (entries, pace) = tokio::try_join!(
        state.store.open_entries(&queue),
        state.store.recent_pace(&queue, PACE_SAMPLES)
    )?;
    let mut place = 0;
    let entries = entries
        .iter()
        .map(|e| {
            let position = matches!(e.status, EntryStatus::Waiting).then(|| {
                place += 1;
                place
            });
            EntryView::of(e, position, pace, now, &caller.0)
        })
        .collect();
    let agents = state
        .store
        .agents(now)
        .await?
        .iter()
        .filter(|a| a.serves.iter().any(|s| s.queue == queue))
        .map(AgentView::of)
        .collect();
    Ok(Json(QueueView {
        name: queue.to_string(),
        entries,
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
    let agents = state.store.agents(state.clock.now()).await?;
    Ok(Json(agents.iter().map(AgentView::of).collect()))
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
    Ok(Json(AgentView::of(&agent)))
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
