//! The agent console's side of the API: the callbacks waiting for an agent to click Call
//! or Decline (console lines), those clicks, and a caller's recorded name to play.
//!
//! Every route acts as one agent: their own token, or an admin's. Reads come from Redis (so
//! a console shows what every daemon did); clicks go through the engine handle, whose
//! store step decides which click won.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::queues::{agent_named, queue_named};
use super::views::AgentView;
use super::ApiState;
use crate::config::ApiRole;
use crate::queue::{EntryId, EntryKind};

/// Who a token is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `admin`, `read` or `agent`.
    pub role: String,
    /// The agent an agent's token acts as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// Who the token is: what a console needs to know whose callbacks to show.
#[utoipa::path(get, path = "/v1/me", tag = "agents",
    responses((status = 200, body = Me)), security(("bearer" = [])))]
pub async fn me(caller: Caller) -> Json<Me> {
    let (role, agent) = match caller.0 {
        ApiRole::Admin => ("admin", None),
        ApiRole::Read => ("read", None),
        ApiRole::Agent(id) => ("agent", Some(id.to_string())),
    };
    Json(Me {
        role: role.to_owned(),
        agent,
    })
}

/// What one agent's console shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleView {
    pub agent: AgentView,
    pub display_name: String,
    /// The callbacks they may take, oldest first over their queues; those they declined
    /// are left out.
    pub callbacks: Vec<ConsoleEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleEntry {
    pub id: String,
    pub queue: String,
    pub line: String,
    /// The number to be called back, in full (the agent calls it).
    pub number: String,
    /// Its place in the queue, ms since the epoch: older is first.
    pub position: u64,
    /// How long since it took that place, ms (on the daemon's clock).
    pub waited_ms: u64,
    pub requested_at: u64,
    /// Customer-leg attempts so far.
    pub attempts: u32,
    /// The caller recorded their name: `GET .../name` plays it.
    pub has_name: bool,
}

/// What Decline did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleDeclined {
    /// Every eligible agent has declined it: it is closed (`declined_by_all`).
    pub declined_by_all: bool,
}

/// The callbacks waiting in an agent's console.
#[utoipa::path(get, path = "/v1/agents/{agent}/console", tag = "agents",
    params(("agent" = String, Path)),
    responses((status = 200, body = ConsoleView), (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConsoleView>, ApiError> {
    let id = agent_named(&state, &id)?;
    caller.must_act_as(&id)?;
    let in_force = state.config();
    let config = in_force.agent(&id).expect("agent_named found it");
    let agent = state
        .store
        .agent(&id, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent {id} is not registered")))?;
    let now = state.clock.now().as_millis();
    let reads = config
        .queues
        .iter()
        .map(|served| state.store.console_callbacks(&served.queue));
    let mut callbacks: Vec<ConsoleEntry> = futures_util::future::try_join_all(reads)
        .await?
        .into_iter()
        .flatten()
        .filter(|c| !c.declined.contains(&id))
        .filter_map(|c| {
            let EntryKind::Callback(request) = &c.entry.kind else {
                return None;
            };
            Some(ConsoleEntry {
                id: c.entry.id.to_string(),
                queue: c.entry.queue.to_string(),
                line: c.entry.line.to_string(),
                number: request.number.to_string(),
                position: c.entry.position.as_millis(),
                waited_ms: now.saturating_sub(c.entry.position.as_millis()),
                requested_at: request.requested_at.as_millis(),
                attempts: request.attempts,
                has_name: c.has_name,
            })
        })
        .collect();
    callbacks.sort_by_key(|c| c.position);
    Ok(Json(ConsoleView {
        agent: AgentView::of(&agent, state.clock.now()),
        display_name: config.display_name.clone(),
        callbacks,
    }))
}

/// Call: the agent takes the callback. The first agent to click wins; their phone rings,
/// and the customer is dialed once they answer. 409 `taken` when another agent was first.
#[utoipa::path(post, path = "/v1/agents/{agent}/console/{queue}/{entry}/call", tag = "agents",
    params(("agent" = String, Path), ("queue" = String, Path), ("entry" = String, Path)),
    responses((status = 204), (status = 409, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn call(
    State(state): State<ApiState>,
    caller: Caller,
    Path((agent, queue, entry)): Path<(String, String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    let agent = agent_named(&state, &agent)?;
    caller.must_act_as(&agent)?;
    let queue = queue_named(&state, &queue)?;
    let entry = entry_named(&entry)?;
    state.handle.take_from_console(queue, entry, agent).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Decline: the callback leaves this agent's console; once every eligible agent declined
/// it, it closes as `declined_by_all`.
#[utoipa::path(post, path = "/v1/agents/{agent}/console/{queue}/{entry}/decline",
    tag = "agents",
    params(("agent" = String, Path), ("queue" = String, Path), ("entry" = String, Path)),
    responses((status = 200, body = ConsoleDeclined), (status = 409, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn decline(
    State(state): State<ApiState>,
    caller: Caller,
    Path((agent, queue, entry)): Path<(String, String, String)>,
) -> Result<Json<ConsoleDeclined>, ApiError> {
    let agent = agent_named(&state, &agent)?;
    caller.must_act_as(&agent)?;
    let queue = queue_named(&state, &queue)?;
    let entry = entry_named(&entry)?;
    let declined_by_all = state.handle.decline_in_console(queue, entry, agent).await?;
    Ok(Json(ConsoleDeclined { declined_by_all }))
}

/// The caller saying their name (WAV), for an agent of its queue or an admin. Served when
/// the daemon shares the recordings directory with FreeSWITCH; 404 otherwise.
#[utoipa::path(get, path = "/v1/agents/{agent}/console/{queue}/{entry}/name", tag = "agents",
    params(("agent" = String, Path), ("queue" = String, Path), ("entry" = String, Path)),
    responses((status = 200, content_type = "audio/wav"), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn name(
    State(state): State<ApiState>,
    caller: Caller,
    Path((agent, queue, entry)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let agent = agent_named(&state, &agent)?;
    caller.must_act_as(&agent)?;
    let queue = queue_named(&state, &queue)?;
    let serves = state
        .config()
        .agent(&agent)
        .is_some_and(|a| a.queues.iter().any(|s| s.queue == queue));
    if !serves {
        return Err(ApiError::forbidden(&format!(
            "hear callers of queue {queue}"
        )));
    }
    let entry = entry_named(&entry)?;
    let no_name = || ApiError::not_found(format!("no recorded name for {entry}"));
    let path = state
        .store
        .caller_name(&queue, &entry)
        .await?
        .ok_or_else(no_name)?;
    // Only the file the daemon itself names for this entry is ever read: a path in Redis
    // is not trusted to point anywhere else.
    let path = std::path::PathBuf::from(path);
    if path.file_name() != Some(std::ffi::OsStr::new(&format!("callbackd-{entry}.wav"))) {
        return Err(no_name());
    }
    let audio = tokio::fs::read(&path).await.map_err(|_| no_name())?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        Body::from(audio),
    )
        .into_response())
}

fn entry_named(id: &str) -> Result<EntryId, ApiError> {
    EntryId::new(id).map_err(|_| ApiError::not_found(format!("no callback {id:?}")))
}
