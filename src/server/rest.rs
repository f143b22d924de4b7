//! The public JSON API under `/api/v1` (see API.md). Handlers are thin: they parse,
//! call the services and map results to the contract's statuses.

use super::auth::Caller;
use super::runs::{NewRun, Refused, RunEvent};
use super::sandbox::LANGUAGES;
use super::state::AppState;
use crate::error::AppError;
use crate::model::{HistoryPage, LanguageInfo, QuotaInfo, Run};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::stream::{Stream, StreamExt};
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
        .route("/users", post(create_user))
        .route("/token", post(create_token))
        .route("/history", get(history))
        .route("/history/{id}", axum::routing::delete(delete_history))
        .fallback(|| async { AppError::NotFound })
        .layer(axum::middleware::from_fn(json_errors))
}

/// Every error under `/api/v1` is the contract's JSON object, whichever layer or
/// extractor refused the request (a wrong method, a body over the size limit, a path
/// that does not decode): a plain-text or empty error body is replaced, keeping the
/// status and its headers (`Allow`, `Retry-After`).
async fn json_errors(req: Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (code, message) = match status.as_u16() {
        400 => ("bad_request", "The request is not valid."),
        404 => ("not_found", "Not found."),
        405 => ("method_not_allowed", "This method is not allowed here."),
        413 => ("payload_too_large", "The request body is too large."),
        415 => (
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        ),
        422 => (
            "invalid_request",
            "The request has a value that is not valid.",
        ),
        s if s < 500 => ("bad_request", "The request is not valid."),
        503 => (
            "unavailable",
            "The service is not available right now. Please try again shortly.",
        ),
        _ => (
            "internal_error",
            "Something went wrong on our side. Please try again.",
        ),
    };
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    let mut res = (status, Json(body)).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE {
            res.headers_mut().insert(name.clone(), value.clone());
        }
    }
    res
}

/// A query string whose rejections speak the API's error format.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(AppError::BadRequest(format!(
                "The query string is not valid: {}.",
                e.body_text()
                    .rsplit(": ")
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('.')
            ))),
        }
    }
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

async fn languages(State(state): State<AppState>) -> Json<Vec<LanguageInfo>> {
    let cfg = state.runs.engine().config();
    Json(LANGUAGES.iter().map(|l| l.info(cfg)).collect())
}

#[derive(Deserialize)]
struct RunQuery {
    #[serde(default)]
    wait: Option<String>,
}

/// Adds `X-RateLimit-*` to a guest's run response.
fn with_quota_headers(mut res: Response, quota: Option<QuotaInfo>) -> Response {
    if let Some(q) = quota {
        let h = res.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", q.limit as u64),
            ("x-ratelimit-remaining", q.remaining as u64),
            ("x-ratelimit-reset", q.reset_seconds),
        ] {
            h.insert(name, HeaderValue::from(value));
        }
    }
    res
}

async fn create_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<RunQuery>,
    ApiJson(req): ApiJson<NewRun>,
) -> Response {
    let wait = match q.wait.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(other) => {
            return AppError::invalid(
                "invalid_wait",
                format!("wait must be true or false (or 1 or 0), not \"{other}\"."),
            )
            .into_response()
        }
    };
    let submitted = match state.runs.submit(&caller, req).await {
        Ok(s) => s,
        Err(Refused { error, quota }) => return with_quota_headers(error.into_response(), quota),
    };
    let res = if wait {
        let run = submitted.live.wait().await;
        (StatusCode::OK, Json(run)).into_response()
    } else {
        let run = submitted.live.snapshot();
        (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "id": run.id, "status": run.status })),
        )
            .into_response()
    };
    with_quota_headers(res, submitted.quota)
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn create_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Response, AppError> {
    let user = state
        .accounts
        .register(&c.username, &c.password, caller.ip())
        .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `POST /token`: the OAuth2 password flow (form) or the same fields as JSON.
async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Result<Response, AppError> {
    let is_form = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let c: Credentials = if is_form {
        let axum::Form(c) = axum::Form::<Credentials>::from_request(req, &state)
            .await
            .map_err(|_| {
                AppError::BadRequest("The form needs the fields username and password.".into())
            })?;
        c
    } else {
        ApiJson::<Credentials>::from_request(req, &state).await?.0
    };
    let ip = match &caller {
        Caller::Guest { ip, .. } | Caller::User { ip, .. } => *ip,
    };
    let user = state.accounts.login(&c.username, &c.password, ip).await?;
    let (token, expires_in) = state.accounts.issue_token(&user)?;
    Ok(Json(serde_json::json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": expires_in,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct HistoryQuery {
    page: Option<String>,
    per_page: Option<String>,
    language: Option<String>,
}

async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, AppError> {
    let page = state
        .runs
        .history(
            &caller,
            q.page.as_deref(),
            q.per_page.as_deref(),
            q.language.as_deref(),
        )
        .await?;
    Ok(Json(page))
}

async fn delete_history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state.runs.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    if state.runs.stop(&id, &caller.owner()).await {
        Ok(StatusCode::ACCEPTED.into_response())
    } else {
        Err(AppError::NotFound)
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
    let events = state.runs.events(&id, &caller.owner()).await?;
    Ok(Sse::new(events.map(|ev| Ok(sse(ev))))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
