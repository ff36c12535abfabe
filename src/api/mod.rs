//! The HTTP API the daemon serves (`[http]` in the config): queues, callbacks, agents, a
//! live event stream and health, with its OpenAPI document built from the same code.
//!
//! Handlers are thin: reads come from the store, every change goes through the engine
//! handle (which alone knows the legs ringing), and every answer that is not a success is
//! one [`error::ApiError`] shape. Each module is one resource: `queues` (and agents),
//! `callbacks`, `console` (an agent's Call and Decline), `events`; `auth` says who asks, `views` what is answered.

pub mod auth;
mod callbacks;
mod console;
pub mod error;
mod events;
mod fresh;
pub mod metrics;
mod queues;
mod ui;
pub mod views;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::engine::EngineHandle;
use crate::queue::Clock;
use crate::store::Store;
use auth::Caller;
use error::ApiError;
use views::Readiness;

/// Request bodies are small JSON objects; anything bigger is refused unread.
const MAX_BODY: usize = 16 * 1024;
/// How long readiness waits for Redis to answer.
const REDIS_CHECK: Duration = Duration::from_secs(1);

/// A Redis stream id, `<ms>-<seq>`, as the pair it orders by: what the callback list's
/// cursor and the event stream's resume point are.
pub(crate) fn stream_id(text: &str) -> Option<(u64, u64)> {
    let (ms, seq) = text.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// What every handler may use.
#[derive(Clone)]
pub struct ApiState {
    pub handle: EngineHandle,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// The daemon's config file, which `POST /v1/reload` reads again; none for a daemon
    /// not run from one (the demo, tests).
    pub config_file: Option<std::path::PathBuf>,
    /// Fed from the event bus by [`metrics::Metrics::follow`].
    pub metrics: Arc<metrics::Metrics>,
    /// The latest read behind each queue view, shared by views asked close together.
    views: Arc<queues::ViewCache>,
    /// The latest page of each callback list asked (by masking and query), likewise.
    lists: Arc<callbacks::ListCache>,
}

impl ApiState {
    pub fn new(
        handle: EngineHandle,
        store: Store,
        clock: Arc<dyn Clock>,
        webhooks: Arc<crate::webhooks::WebhookStats>,
    ) -> Self {
        Self {
            metrics: Arc::new(metrics::Metrics::new(handle.stats(), webhooks)),
            views: Arc::default(),
            lists: Arc::default(),
            handle,
            store,
            clock,
            config_file: None,
        }
    }

    /// The config in force: the engine's, which a reload replaces.
    pub fn config(&self) -> Arc<Config> {
        self.handle.config()
    }
}

/// A JSON body whose every refusal (not JSON, unknown or missing fields, too big) is an
/// [`ApiError`].
#[derive(FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

#[derive(OpenApi)]
#[openapi(
    info(title = "callbackd", description = "Queue callbacks for FreeSWITCH: see and steer them."),
    modifiers(&BearerAuth),
    tags(
        (name = "queues"), (name = "callbacks"), (name = "agents"), (name = "events"),
        (name = "health"), (name = "webhooks")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The routes with their document; the document is built from the routes themselves, so
/// neither can name what the other lacks.
pub fn router(state: ApiState) -> Router {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(reload))
        .routes(routes!(queues::list))
        .routes(routes!(queues::show))
        .routes(routes!(queues::agents))
        .routes(routes!(queues::agent))
        .routes(routes!(queues::set_state))
        .routes(routes!(console::me))
        .routes(routes!(console::show))
        .routes(routes!(console::call))
        .routes(routes!(console::decline))
        .routes(routes!(console::name))
        .routes(routes!(callbacks::list, callbacks::create))
        .routes(routes!(callbacks::show, callbacks::cancel))
        .routes(routes!(events::stream))
        .routes(routes!(metrics::metrics))
        .routes(routes!(webhooks::dead))
        .routes(routes!(webhooks::replay))
        .split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .merge(ui::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Serve the API on `listener` until `shutdown` turns true; the metrics count the event
/// bus meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let counting = tokio::spawn(state.metrics.clone().follow(state.handle.subscribe()));
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
    counting.abort();
    served
}

/// Read the daemon's config file again and take it in, as SIGHUP does (admins only): a
/// file that does not load, or a change the engine refuses, leaves the config in force
/// (422, saying why).
#[utoipa::path(post, path = "/v1/reload", tag = "health",
    responses((status = 204), (status = 422, body = error::ErrorBody)),
    security(("bearer" = [])))]
async fn reload(State(state): State<ApiState>, caller: Caller) -> Result<StatusCode, ApiError> {
    caller.must_admin("reload the config")?;
    let file = state.config_file.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "this daemon was not started from a config file",
        )
    })?;
    let config = Config::load(file).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            e.to_string(),
        )
    })?;
    state.handle.reload(Arc::new(config)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The API served on a runtime and thread of its own (see [`serve_apart`]).
pub struct ApiThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiThread {
    /// Stop serving at once (open event streams included) and wait for the thread.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ApiThread {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Serve the API on `runtime`, run by a thread of its own, until `shutdown` turns true or
/// the [`ApiThread`] is stopped: however many requests come, they never take the engine's
/// worker threads from routing (on two cores, serving dashboards on the engine's runtime
/// doubled the p99 from an agent's hangup to their next ring).
pub fn serve_apart(
    listener: std::net::TcpListener,
    state: ApiState,
    shutdown: watch::Receiver<bool>,
    runtime: tokio::runtime::Runtime,
) -> std::io::Result<ApiThread> {
    listener.set_nonblocking(true)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("callbackd-api".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return tracing::error!(error = %e, "the HTTP API cannot listen"),
                };
                tokio::select! {
                    served = serve(listener, state, shutdown) => {
                        if let Err(e) = served {
                            tracing::error!(error = %e, "the HTTP API stopped");
                        }
                    }
                    _ = stopped => {}
                }
            });
            // Dropping the runtime ends what is left: open event streams.
            drop(runtime);
        })?;
    Ok(ApiThread {
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// The process answers (no token needed: it says nothing else).
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200)))]
async fn live() -> StatusCode {
    StatusCode::OK
}

/// Whether this daemon can take calls: Redis answers, the switch is connected, and it is
/// not draining. 503 when not.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)),
    security(("bearer" = [])))]
async fn ready(State(state): State<ApiState>, _caller: Caller) -> (StatusCode, Json<Readiness>) {
    let redis = tokio::time::timeout(REDIS_CHECK, state.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let freeswitch = state.handle.switch_connected();
    let draining = state.handle.is_draining();
    let ready = redis && freeswitch && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            redis,
            freeswitch,
            draining,
        }),
    )
}
