//! The dashboard and the agent console: static pages, scripts and a style embedded in the
//! binary, that read the API with the token the person gives (so the pages need none).
//!
//! No build step: plain HTML, CSS and a script the browser runs as it is.

use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;

use super::ApiState;

const INDEX: &str = include_str!("ui/index.html");
const CONSOLE: &str = include_str!("ui/console.html");
const COMMON: &str = include_str!("ui/common.js");
const SCRIPT: &str = include_str!("ui/app.js");
const CONSOLE_SCRIPT: &str = include_str!("ui/console.js");
const STYLE: &str = include_str!("ui/app.css");

/// The pages' routes: `/ui/` (the dashboard), `/ui/console`, their files, and `/` leading
/// to the dashboard.
pub(super) fn routes() -> Router<ApiState> {
    let file = |content_type: &'static str, body: &'static str| {
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, "no-cache"),
                    // Only its own scripts and style run: nothing injected can. A recorded
                    // name plays from a blob the console fetched with its token.
                    (
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'self'; media-src 'self' blob:",
                    ),
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
        .route("/ui/console", file("text/html; charset=utf-8", CONSOLE))
        .route(
            "/ui/common.js",
            file("text/javascript; charset=utf-8", COMMON),
        )
        .route("/ui/app.js", file("text/javascript; charset=utf-8", SCRIPT))
        .route(
            "/ui/console.js",
            file("text/javascript; charset=utf-8", CONSOLE_SCRIPT),
        )
        .route("/ui/app.css", file("text/css; charset=utf-8", STYLE))
}
