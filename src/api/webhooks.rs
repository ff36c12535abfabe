//! Webhook dead letters: the events a receiver did not take for a whole retry window,
//! listed with why, and replayed once the receiver is fixed.
//!
//! They are read from each webhook's outboxes in Redis, so every daemon shows the same.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::ApiError;
use super::queues::queue_named;
use super::{stream_id, ApiState};
use crate::queue::WebhookName;

/// One event given up after its retry window.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    pub webhook: String,
    pub queue: String,
    /// The event's stream id: with the queue, what a replay names.
    pub id: String,
    pub kind: String,
    /// The callback (or caller) it is about.
    pub callback_id: String,
    pub attempts: u32,
    /// When its first failed delivery was, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failed_at: Option<u64>,
    /// Why the last one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn webhook_named(state: &ApiState, name: &str) -> Result<WebhookName, ApiError> {
    WebhookName::new(name)
        .ok()
        .filter(|w| state.config().webhooks.iter().any(|c| c.name == *w))
        .ok_or_else(|| ApiError::not_found(format!("no webhook {name:?}")))
}

/// Every webhook's dead letters, per webhook and queue, oldest first (admin only: they
/// carry numbers).
#[utoipa::path(get, path = "/v1/webhooks/dead", tag = "webhooks",
    responses((status = 200, body = Vec<DeadLetter>), (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    caller.must_admin("read dead letters")?;
    let mut out = Vec::new();
    for hook in &state.config().webhooks {
        for queue in &state.config().queues {
            for item in state.store.outbox_dead(&hook.name, &queue.name).await? {
                out.push(DeadLetter {
                    webhook: hook.name.to_string(),
                    queue: queue.name.to_string(),
                    callback_id: item.event.field("entry").unwrap_or_default().to_owned(),
                    kind: item.event.kind.as_str().to_owned(),
                    id: item.event.id,
                    attempts: item.attempts,
                    first_failed_at: item.first_failed.map(|t| t.as_millis()),
                    error: item.error,
                });
            }
        }
    }
    Ok(Json(out))
}

/// Send a dead letter again now, with a fresh retry window.
#[utoipa::path(post, path = "/v1/webhooks/{webhook}/dead/{queue}/{id}/replay", tag = "webhooks",
    params(("webhook" = String, Path), ("queue" = String, Path), ("id" = String, Path)),
    responses((status = 202), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<ApiState>,
    caller: Caller,
    Path((webhook, queue, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.must_admin("replay dead letters")?;
    let hook = webhook_named(&state, &webhook)?;
    let queue = queue_named(&state, &queue)?;
    if stream_id(&id).is_none() {
        return Err(ApiError::not_found(format!("no dead letter {id:?}")));
    }
    let now = state.clock.now();
    if !state.store.outbox_replay(&hook, &queue, &id, now).await? {
        return Err(ApiError::not_found(format!("no dead letter {id:?}")));
    }
    Ok(StatusCode::ACCEPTED)
}
