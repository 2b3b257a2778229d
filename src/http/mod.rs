//! The HTTP surface: REST under `/v1`, the WebSocket upgrade, operator
//! endpoints, and problem+json for every error (including unknown routes).

pub mod error;
pub mod extract;
mod frames;
pub mod gate;
pub mod joining;
pub mod limits;
pub mod ops;
pub mod server;
pub mod sessions;
pub mod sockets;
pub mod tracks;
pub mod users;
pub mod web;
pub mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use sqlx::PgPool;

use crate::config::Config;
use crate::error::Error;
use crate::hub::Hub;
use crate::metrics::{HttpLabels, Metrics, RouteLabels};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub metrics: Arc<Metrics>,
    pub hub: Hub,
    pub gate: Arc<gate::Gate>,
    pub limits: Arc<limits::Limits>,
    pub sockets: Arc<sockets::Sockets>,
    pub config: Arc<Config>,
}

/// The whole router, separate from serving so tests and `App` share it.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/users", post(users::register))
        .route("/auth/token", post(users::login))
        .route("/auth/logout", post(users::logout))
        .route("/auth/logout-all", post(users::logout_all))
        .route("/auth/guest", post(joining::guest))
        .route("/auth/claim", post(joining::claim))
        .route("/join/{code}", get(joining::lookup))
        .route("/me", get(users::me))
        .route("/me/preferences", put(users::put_preferences))
        .route("/tracks", post(tracks::upsert).get(tracks::search))
        .route("/sessions", post(sessions::create).get(sessions::list))
        .route("/sessions/{id}", get(sessions::get))
        .route("/sessions/{id}/end", post(sessions::end))
        .route("/sessions/{id}/updates", get(sessions::updates))
        .route("/sessions/{id}/suggestions", get(sessions::suggestions))
        .route("/sessions/{id}/code", get(joining::session_code))
        .route("/ws", get(ws::upgrade));
    Router::new()
        .nest("/v1", api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(web::routes())
        .fallback(|| async { Error::NotFound("route") })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(256 * 1024))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Count and time every request by its route template (never the raw path,
/// which would carry ids into label values).
async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let res = next.run(req).await;
    let status = res.status().as_u16();
    st.metrics
        .http_latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    st.metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    tracing::debug!(%method, %route, status, elapsed_ms = start.elapsed().as_millis() as u64, "request");
    res
}
