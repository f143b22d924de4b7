//! The public JSON API under `/api/v1` (see API.md). Handlers are thin: they parse,
//! call the services and map results to the contract's statuses.

use super::auth::Caller;
use super::runs::{NewRun, RunEvent};
use super::sandbox::LANGUAGES;
use super::state::AppState;
use crate::error::AppError;
use crate::model::{LanguageInfo, Run};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::stream::{self, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;

/// The `/api/v1` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/languages", get(languages))
        .route("/runs", post(create_run))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/events", get(run_events))
        .route("/runs/{id}/stop", post(stop_run))
        .fallback(|| async { AppError::NotFound })
}

/// A JSON body whose rejections speak the API's error format.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(AppError::UnsupportedMediaType(
                "Send the body as JSON with Content-Type: application/json.".into(),
            )),
            Err(JsonRejection::BytesRejection(_)) => Err(AppError::PayloadTooLarge(
                "The request body is too large.".into(),
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(AppError::BadRequest(format!(
                "The JSON body does not have the expected fields: {}",
                e.body_text().rsplit(": ").next().unwrap_or("")
            ))),
            Err(_) => Err(AppError::BadRequest("The body is not valid JSON.".into())),
        }
    }
}

async fn languages() -> Json<Vec<LanguageInfo>> {
    Json(LANGUAGES.iter().map(|l| l.info()).collect())
}

#[derive(Deserialize)]
struct RunQuery {
    #[serde(default)]
    wait: Option<String>,
}

async fn create_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<RunQuery>,
    ApiJson(req): ApiJson<NewRun>,
) -> Result<Response, AppError> {
    let wait = matches!(q.wait.as_deref(), Some("true" | "1" | ""));
    let live = state.runs.submit(caller.owner(), req).await?;
    if wait {
        let run = live.wait().await;
        return Ok((StatusCode::OK, Json(run)).into_response());
    }
    let run = live.snapshot();
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": run.id, "status": run.status })),
    )
        .into_response())
}

async fn get_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Run>, AppError> {
    state
        .runs
        .get(&id, &caller.owner())
        .await
        .map(Json)
        .ok_or(AppError::NotFound)
}

async fn stop_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let owner = caller.owner();
    if state.runs.stop(&id, &owner) {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    match state.runs.get(&id, &owner).await {
        Some(_) => Ok(StatusCode::ACCEPTED.into_response()),
        None => Err(AppError::NotFound),
    }
}

fn sse(ev: RunEvent) -> SseEvent {
    match ev {
        RunEvent::Status(s) => SseEvent::default()
            .event("status")
            .json_data(serde_json::json!({ "status": s })),
        RunEvent::Stdout(s) => SseEvent::default()
            .event("stdout")
            .json_data(serde_json::json!({ "data": s })),
        RunEvent::Stderr(s) => SseEvent::default()
            .event("stderr")
            .json_data(serde_json::json!({ "data": s })),
        RunEvent::Result(r) => SseEvent::default().event("result").json_data(&r),
    }
    .unwrap_or_else(|_| {
        SseEvent::default()
            .event("error")
            .data("serialisation failed")
    })
}

async fn run_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, AppError> {
    let owner = caller.owner();
    let stream: futures::stream::BoxStream<'static, RunEvent> = match state.runs.live(&id, &owner) {
        Some(live) => {
            let (past, rx) = live.subscribe();
            let rest = match rx {
                None => stream::empty().boxed(),
                Some(rx) => stream::unfold(rx, |mut rx| async move {
                    loop {
                        match rx.recv().await {
                            Ok(ev) => return Some((ev, rx)),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return None,
                        }
                    }
                })
                .boxed(),
            };
            // End the stream right after the result event.
            stream::iter(past)
                .chain(rest)
                .scan(false, |done, ev| {
                    if *done {
                        return futures::future::ready(None);
                    }
                    *done = matches!(ev, RunEvent::Result(_));
                    futures::future::ready(Some(ev))
                })
                .boxed()
        }
        None => {
            let run = state
                .runs
                .get(&id, &owner)
                .await
                .ok_or(AppError::NotFound)?;
            stream::iter(vec![
                RunEvent::Status(run.status),
                RunEvent::Result(Box::new(run)),
            ])
            .boxed()
        }
    };
    Ok(Sse::new(stream.map(|ev| Ok(sse(ev))))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
