//! Operator endpoints: liveness, readiness (database reachable), metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::error::Error;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// How long `/readyz` waits for Postgres (pool checkout included), so it
/// answers within a second in every state.
const READY_WAIT: Duration = Duration::from_millis(800);

/// `GET /readyz`: Postgres answers within [`READY_WAIT`] (and, in cluster
/// mode, NATS is connected).
pub async fn readyz(State(st): State<AppState>) -> Result<impl IntoResponse, Error> {
    if st.hub.cluster().is_some_and(|c| !c.is_connected()) {
        tracing::warn!("readiness check failed: NATS is not connected");
        return Err(Error::Unavailable);
    }
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&st.db);
    match tokio::time::timeout(READY_WAIT, ping).await {
        Ok(Ok(_)) => Ok(Json(json!({ "status": "ready" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(Error::Unavailable)
        }
        Err(_) => Err(Error::Unavailable),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    st.metrics.pool_connections.set(st.db.size() as i64);
    st.metrics.pool_idle.set(st.db.num_idle() as i64);
    st.metrics.http_connections.set(st.gate.len() as i64);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
}
