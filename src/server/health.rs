//! `/healthz` (the process serves), `/readyz` (its dependencies answer) and `/metrics`
//! (a few gauges in the Prometheus text format).

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

/// A few gauges in the Prometheus text format: the node's role, the runs its engine has
/// admitted and not ended, its slots, and the runs it holds in memory.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let role = match state.config.role {
        super::config::Role::All => "all",
        super::config::Role::Web => "web",
        super::config::Role::Executor => "executor",
    };
    let body = format!(
        "# HELP own_ide_role The role of this node.\n# TYPE own_ide_role gauge\nown_ide_role{{role=\"{role}\"}} 1\n\
         # HELP own_ide_runs_in_progress Runs this node's engine admitted and has not ended.\n# TYPE own_ide_runs_in_progress gauge\nown_ide_runs_in_progress {}\n\
         # HELP own_ide_run_slots Runs this node's engine executes at once.\n# TYPE own_ide_run_slots gauge\nown_ide_run_slots {}\n\
         # HELP own_ide_live_runs Runs this node holds in memory (executing, followed or recently ended).\n# TYPE own_ide_live_runs gauge\nown_ide_live_runs {}\n",
        if state.config.role.executes() { state.engine.runs_in_progress() } else { 0 },
        if state.config.role.executes() { state.config.sandbox.max_concurrent_runs } else { 0 },
        state.runs.live_count(),
    );
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}
