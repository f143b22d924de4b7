//! `/healthz` (the process serves) and `/readyz` (its dependencies answer).

use super::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// 200 while the process serves.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 when Docker, Redis and MongoDB answer; 503 naming those that do not. The body
/// names the sandbox's container runtime.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let checks = state.readiness().await;
    let down: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    let body = json!({
        "status": if down.is_empty() { "ready" } else { "unavailable" },
        "sandbox_runtime": state.config.sandbox.runtime,
        "checks": checks.iter().map(|(n, ok)| (n.to_string(), json!(if *ok { "ok" } else { "unavailable" }))).collect::<serde_json::Map<_, _>>(),
    });
    if down.is_empty() {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        let mut body = body;
        body["error"] = json!({
            "code": "dependency_unavailable",
            "message": format!("Not ready: {} not answering.", down.join(", ")),
        });
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "5")],
            Json(body),
        )
            .into_response()
    }
}
