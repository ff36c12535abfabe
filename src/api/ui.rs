//! The dashboard: a static page, script and style embedded in the binary, that reads the
//! API with the token the supervisor gives (so the page itself needs none to load).
//!
//! No build step: plain HTML, CSS and a script the browser runs as it is.

use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;

use super::ApiState;

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// The page's routes: `/ui/` and its two files, and `/` leading there.
pub(super) fn routes() -> Router<ApiState> {
    let file = |content_type: &'static str, body: &'static str| {
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, "no-cache"),
                    // Only its own script and style run: nothing injected can.
                    (header::CONTENT_SECURITY_POLICY, "default-src 'self'"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                body,
            )
                .into_response()
        })
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", file("text/html; charset=utf-8", INDEX))
        .route("/ui/app.js", file("text/javascript; charset=utf-8", SCRIPT))
        .route("/ui/app.css", file("text/css; charset=utf-8", STYLE))
}
