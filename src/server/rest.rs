//! The public JSON API under `/api/v1` (see API.md). Handlers are thin: they parse,
//! call the services and map results to the contract's statuses.

use super::auth::Caller;
use super::runs::{is_run_id, NewRun, Refused, RunEvent};
use super::sandbox::{find_language, LANGUAGES};
use super::state::AppState;
use super::store::MAX_PER_PAGE;
use crate::error::AppError;
use crate::model::{HistoryPage, LanguageInfo, QuotaInfo, Run, RunStatus};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::HeaderValue;
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
        .route("/users", post(create_user))
        .route("/token", post(create_token))
        .route("/history", get(history))
        .route("/history/{id}", axum::routing::delete(delete_history))
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
    Query(q): Query<RunQuery>,
    ApiJson(req): ApiJson<NewRun>,
) -> Response {
    let wait = matches!(q.wait.as_deref(), Some("true" | "1" | ""));
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
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Response, AppError> {
    let user = state.accounts.register(&c.username, &c.password).await?;
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

fn signed_in(caller: &Caller) -> Result<&str, AppError> {
    match caller {
        Caller::User { id, .. } => Ok(id),
        Caller::Guest { .. } => Err(AppError::Unauthorized(
            "Log in to see your history: send Authorization: Bearer <access token>.".into(),
        )),
    }
}

/// Parses the history query the same way for the API and the pages.
pub fn history_params(
    page: Option<&str>,
    per_page: Option<&str>,
    language: Option<&str>,
) -> Result<(u64, u64, Option<String>), AppError> {
    let number = |v: Option<&str>, default: u64, name: &str, max: u64| match v {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 && n <= max => Ok(n),
            _ => Err(AppError::invalid(
                "invalid_page",
                format!("{name} must be a whole number from 1 to {max}."),
            )),
        },
    };
    let page = number(page, 1, "page", 1_000_000)?;
    let per_page = number(per_page, 20, "per_page", MAX_PER_PAGE)?;
    let language = match language {
        None | Some("") => None,
        Some(l) => match find_language(l) {
            Some(lang) => Some(lang.id.to_string()),
            None => {
                return Err(AppError::invalid(
                    "unknown_language",
                    format!("Unknown language \"{l}\"."),
                ))
            }
        },
    };
    Ok((page, per_page, language))
}

async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryPage>, AppError> {
    let user_id = signed_in(&caller)?;
    let (page, per_page, language) = history_params(
        q.page.as_deref(),
        q.per_page.as_deref(),
        q.language.as_deref(),
    )?;
    let page = state
        .runs
        .store()
        .list(user_id, page, per_page, language.as_deref())
        .await?;
    Ok(Json(page))
}

async fn delete_history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let user_id = signed_in(&caller)?;
    if !is_run_id(&id) {
        return Err(AppError::NotFound);
    }
    if state.runs.store().delete(user_id, &id).await? {
        state.runs.forget(&id, &caller.owner()).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound)
    }
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
    if state.runs.stop(&id, &owner).await {
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

/// How long an events stream waits for a run that executes on another instance.
const EVENTS_WAIT_LIMIT: Duration = Duration::from_secs(120);

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
            // Executing on another instance: its output is not streamed from there, so
            // this one reports the status and then the result once the run's state in
            // Redis says it has finished (checked a few times a second).
            let status = RunEvent::Status(run.status);
            let result = stream::unfold(
                (
                    Some(run),
                    state.runs.clone(),
                    id,
                    owner,
                    std::time::Instant::now(),
                ),
                |(run, runs, id, owner, since)| async move {
                    let mut run = run?;
                    while run.status != RunStatus::Finished && since.elapsed() < EVENTS_WAIT_LIMIT {
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        run = runs.get(&id, &owner).await?;
                    }
                    Some((
                        RunEvent::Result(Box::new(run)),
                        (None, runs, id, owner, since),
                    ))
                },
            );
            stream::once(async move { status }).chain(result).boxed()
        }
    };
    Ok(Sse::new(stream.map(|ev| Ok(sse(ev))))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
