//! The public JSON API under `/api/v1` (see API.md). Handlers are thin: they parse,
//! call the services and map results to the contract's statuses. Each handler carries
//! its OpenAPI description (`utoipa::path`), and the router is built from them, so the
//! description served at `/api/v1/openapi.json` lists exactly the routes that exist.

mod doc;

use super::sandbox::LanguageFilter;
pub use doc::{openapi, openapi_json};

use super::auth::Caller;
use super::runs::{NewInput, NewRun, Refused, RunEvent};
use super::sandbox::LANGUAGES;
use super::state::AppState;
use crate::error::AppError;
use crate::model::{
    HistoryPage, LanguageInfo, QuotaInfo, Run, RunStatus, ShareLink, SharedRun, UserInfo,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use futures::stream::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `/api/v1` routes with their description, paths relative to `/api/v1`.
fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(languages))
        .routes(routes!(create_run))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(stop_run))
        .routes(routes!(send_stdin))
        .routes(routes!(share_run))
        .routes(routes!(get_share, revoke_share))
        .routes(routes!(create_user))
        .routes(routes!(create_token))
        .routes(routes!(history))
        .routes(routes!(delete_history))
        .routes(routes!(doc::openapi_document))
}

/// Everything under `/api`: the `/api/v1` routes, and the contract's JSON 404 for any
/// other path there (the API docs page excepted, which main adds as a page).
pub fn routes() -> Router<AppState> {
    let (v1, _) = v1().split_for_parts();
    let v1 = v1
        .fallback(|| async { AppError::NotFound })
        .layer(axum::middleware::from_fn(json_errors));
    Router::new()
        .nest("/api/v1", v1)
        .route("/api", axum::routing::any(|| async { AppError::NotFound }))
        .route("/api/", axum::routing::any(|| async { AppError::NotFound }))
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async { AppError::NotFound }),
        )
        .route("/api/docs", axum::routing::get(doc::docs_page))
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
        // Through a JSON value first: every body of this API is an object, and serde's
        // derive would also take a struct from an array of its fields in order.
        match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(serde_json::Value::Object(fields))) => {
                serde_json::from_value(serde_json::Value::Object(fields))
                    .map(ApiJson)
                    .map_err(|e| {
                        AppError::BadRequest(format!(
                            "The JSON body does not have the expected fields: {e}"
                        ))
                    })
            }
            Ok(Json(_)) => Err(AppError::BadRequest(
                "The JSON body must be an object ({...}).".into(),
            )),
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

/// A path parameter whose rejections speak the API's error format.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(_) => Err(AppError::BadRequest("The path is not valid.".into())),
        }
    }
}

/// Every language the sandbox runs, with its starter template.
#[utoipa::path(get, path = "/languages", tag = "runs",
    responses(
        (status = 200, description = "The languages", body = Vec<LanguageInfo>),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
    ))]
async fn languages(State(state): State<AppState>) -> Json<Vec<LanguageInfo>> {
    let cfg = state.runs.engine().config();
    Json(LANGUAGES.iter().map(|l| l.info(cfg)).collect())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RunQuery {
    /// Wait for the run to finish and answer `200` with the whole run (`true`/`1`, or
    /// empty), or answer `202` at once (`false`/`0`, the default).
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^(true|false|1|0)?$")]
    wait: Option<String>,
}

/// A run accepted and started in the background.
#[derive(Serialize, ToSchema)]
struct RunAccepted {
    id: String,
    status: RunStatus,
}

/// The error object every refusal carries.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: crate::model::PublicError,
}

/// Which limit a response's rate-limit headers describe.
#[derive(Clone, Copy)]
pub struct Policy {
    name: &'static str,
    window: u64,
}

/// A guest's daily quota, or a user's per-minute rate.
pub fn policy(state: &AppState, caller: &Caller) -> Policy {
    if caller.is_guest() {
        Policy {
            name: "guest_runs",
            window: state.config.ip_expiry_seconds,
        }
    } else {
        Policy {
            name: "user_runs",
            window: 60,
        }
    }
}

/// Adds the rate-limit headers to a response that counted (or was refused by) a guest's
/// quota or a user's rate: `X-RateLimit-Limit`, `-Remaining`, `-Reset` as clients know
/// them, and the IETF draft fields (draft-ietf-httpapi-ratelimit-headers)
/// `RateLimit-Policy: "guest_runs";q=5;w=86400` and `RateLimit: "guest_runs";r=4;t=86400`.
pub fn with_quota_headers(mut res: Response, quota: Option<QuotaInfo>, policy: Policy) -> Response {
    if let Some(q) = quota {
        let h = res.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", q.limit as u64),
            ("x-ratelimit-remaining", q.remaining as u64),
            ("x-ratelimit-reset", q.reset_seconds),
        ] {
            h.insert(name, HeaderValue::from(value));
        }
        let fields = [
            (
                "ratelimit-policy",
                format!("\"{}\";q={};w={}", policy.name, q.limit, policy.window),
            ),
            (
                "ratelimit",
                format!(
                    "\"{}\";r={};t={}",
                    policy.name, q.remaining, q.reset_seconds
                ),
            ),
        ];
        for (name, value) in fields {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
    }
    res
}

/// Starts a run. Guests' runs count against their daily quota, users' against their
/// per-minute rate; a refused run costs nothing.
#[utoipa::path(post, path = "/runs", tag = "runs", params(RunQuery),
    request_body(content = NewRun, content_type = "application/json"),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "With `wait=true`: the finished run", body = Run, headers(
            ("X-RateLimit-Limit" = u64, description = "Runs allowed in the window (guests: per day, users: per minute)"),
            ("X-RateLimit-Remaining" = u64, description = "Runs left in the window"),
            ("X-RateLimit-Reset" = u64, description = "Seconds until the window ends"),
            ("RateLimit-Policy" = String, description = "IETF draft: the policy, e.g. `\"guest_runs\";q=5;w=86400`"),
            ("RateLimit" = String, description = "IETF draft: what is left, e.g. `\"guest_runs\";r=4;t=86400`"),
        )),
        (status = 202, description = "Accepted; follow it with `/runs/{id}/events` or `GET /runs/{id}`", body = RunAccepted, headers(
            ("X-RateLimit-Limit" = u64, description = "Runs allowed in the window"),
            ("X-RateLimit-Remaining" = u64, description = "Runs left in the window"),
            ("X-RateLimit-Reset" = u64, description = "Seconds until the window ends"),
            ("RateLimit-Policy" = String, description = "IETF draft policy field"),
            ("RateLimit" = String, description = "IETF draft remaining field"),
        )),
        (status = 400, description = "Malformed JSON, or a malformed or repeated query parameter (`bad_request`)", body = ErrorBody),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
        (status = 403, description = "A browser request from another site (`cross_site`)", body = ErrorBody),
        (status = 413, description = "Code or input over its size limit, or a body over 1 MiB (`payload_too_large`)", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json`", body = ErrorBody),
        (status = 422, description = "A bad value: `unknown_language`, `empty_code`, `invalid_code`, `invalid_wait`", body = ErrorBody),
        (status = 429, description = "`quota_exhausted` (guests), `rate_limited` (users), `too_many_runs` (runs in flight)", body = ErrorBody, headers(
            ("Retry-After" = u64, description = "Seconds to wait"),
            ("X-RateLimit-Limit" = u64, description = "With quota_exhausted and rate_limited"),
            ("X-RateLimit-Remaining" = u64, description = "With quota_exhausted and rate_limited"),
            ("X-RateLimit-Reset" = u64, description = "With quota_exhausted and rate_limited"),
            ("RateLimit-Policy" = String, description = "With quota_exhausted and rate_limited"),
            ("RateLimit" = String, description = "With quota_exhausted and rate_limited"),
        )),
        (status = 503, description = "`queue_full`, `docker_unavailable`, `redis_unavailable` (guests), `shutting_down`", body = ErrorBody, headers(
            ("Retry-After" = u64, description = "Seconds to wait"),
        )),
    ))]
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
    let policy = policy(&state, &caller);
    let submitted = match state.runs.submit(&caller, req).await {
        Ok(s) => s,
        Err(Refused { error, quota }) => {
            return with_quota_headers(error.into_response(), quota, policy)
        }
    };
    let res = if wait {
        let run = submitted.live.wait().await;
        (StatusCode::OK, Json(run)).into_response()
    } else {
        let run = submitted.live.snapshot();
        (
            StatusCode::ACCEPTED,
            Json(RunAccepted {
                id: run.id,
                status: run.status,
            }),
        )
            .into_response()
    };
    with_quota_headers(res, submitted.quota, policy)
}

/// A new account's name and password.
#[derive(Deserialize, ToSchema)]
struct NewUser {
    /// 3 to 32 of `[A-Za-z0-9_.-]`.
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]+$")]
    username: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

/// A log-in (OAuth2 password flow).
#[derive(Deserialize, ToSchema)]
struct Credentials {
    username: String,
    password: String,
}

/// Creates an account.
#[utoipa::path(post, path = "/users", tag = "accounts",
    request_body(content = NewUser, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = UserInfo),
        (status = 400, description = "Malformed JSON or missing fields", body = ErrorBody),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
        (status = 403, description = "A browser request from another site (`cross_site`)", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json`", body = ErrorBody),
        (status = 422, description = "A name or password outside the rules", body = ErrorBody),
        (status = 429, description = "`too_many_registrations` from this client IP", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "MongoDB is unavailable, or password hashing is saturated (`busy`)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
async fn create_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(c): ApiJson<NewUser>,
) -> Result<Response, AppError> {
    let user = state
        .accounts
        .register(&c.username, &c.password, caller.ip())
        .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// An access token.
#[derive(Serialize, ToSchema)]
struct Token {
    access_token: String,
    /// Always `bearer`.
    token_type: String,
    /// Seconds the token stays valid.
    expires_in: u64,
}

/// `POST /token`: the OAuth2 password flow (form) or the same fields as JSON.
#[utoipa::path(post, path = "/token", tag = "accounts",
    request_body(content(
        (Credentials = "application/x-www-form-urlencoded"),
        (Credentials = "application/json"),
    )),
    responses(
        (status = 200, description = "A bearer token", body = Token),
        (status = 400, description = "Malformed JSON or form, or missing fields", body = ErrorBody),
        (status = 401, description = "Wrong name or password (the same answer either way)", body = ErrorBody),
        (status = 403, description = "A browser request from another site (`cross_site`)", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Neither a form nor JSON", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` for this name or client IP", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "MongoDB is unavailable, or password checking is saturated (`busy`)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
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
            .map_err(|e| match e {
                axum::extract::rejection::FormRejection::BytesRejection(_) => {
                    AppError::PayloadTooLarge("The request body is too large.".into())
                }
                _ => {
                    AppError::BadRequest("The form needs the fields username and password.".into())
                }
            })?;
        c
    } else {
        ApiJson::<Credentials>::from_request(req, &state).await?.0
    };
    let user = state
        .accounts
        .login(&c.username, &c.password, caller.ip())
        .await?;
    let (token, expires_in) = state.accounts.issue_token(&user)?;
    Ok(Json(Token {
        access_token: token,
        token_type: "bearer".into(),
        expires_in,
    })
    .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// The page, from 1 (empty or absent: 1).
    #[param(value_type = Option<String>, pattern = "^([1-9][0-9]{0,5}|1000000)?$")]
    page: Option<String>,
    /// Runs per page, 1 to 100 (empty or absent: 20).
    #[param(value_type = Option<String>, pattern = "^([1-9][0-9]?|100)?$")]
    per_page: Option<String>,
    /// Only runs in this language (empty: all).
    #[param(value_type = Option<LanguageFilter>, inline)]
    language: Option<String>,
}

/// The signed-in user's runs, newest first.
#[utoipa::path(get, path = "/history", tag = "history", params(HistoryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of runs", body = HistoryPage),
        (status = 400, description = "A malformed or repeated query parameter", body = ErrorBody),
        (status = 401, description = "Not signed in, or a bad token", body = ErrorBody),
        (status = 422, description = "`invalid_page` or `unknown_language`", body = ErrorBody),
        (status = 503, description = "MongoDB is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
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

/// Deletes one of the signed-in user's runs (a run in progress is stopped). Its shares
/// stay.
#[utoipa::path(delete, path = "/history/{id}", tag = "history",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in, or a bad token", body = ErrorBody),
        (status = 403, description = "A browser request from another site (`cross_site`)", body = ErrorBody),
        (status = 404, description = "No such run of this user's", body = ErrorBody),
        (status = 503, description = "MongoDB is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
async fn delete_history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    state.runs.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A run the caller may see: a guest only runs made with its cookie, a user only its own.
#[utoipa::path(get, path = "/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
        (status = 404, description = "No such run, or not the caller's", body = ErrorBody),
    ))]
async fn get_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Run>, AppError> {
    state
        .runs
        .get(&id, &caller.owner())
        .await
        .map(Json)
        .ok_or(AppError::NotFound)
}

/// Stops a queued or running run at once; it finishes with verdict `stopped`.
#[utoipa::path(post, path = "/runs/{id}/stop", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Stopping (a finished run stays as it was)"),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
        (status = 403, description = "A browser request from another site (`cross_site`)", body = ErrorBody),
        (status = 404, description = "No such run, or not the caller's", body = ErrorBody),
    ))]
async fn stop_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, AppError> {
    if state.runs.stop(&id, &caller.owner()).await {
        Ok(StatusCode::ACCEPTED.into_response())
    } else {
        Err(AppError::NotFound)
    }
}

/// Input typed into an interactive run (`"interactive": true`) while it is queued or
/// running, by its owner: `data`, then the end of input when `eof`.
#[utoipa::path(post, path = "/runs/{id}/stdin", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    request_body = NewInput,
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Taken: delivered to the program in order"),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
        (status = 403, description = "A browser request from another site (`cross_site`)", body = ErrorBody),
        (status = 404, description = "No such run, or not the caller's", body = ErrorBody),
        (status = 409, description = "`run_not_running`: the run has finished, takes no typed input, or its input has ended", body = ErrorBody),
        (status = 413, description = "The run's typed input would pass its limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field of the wrong type", body = ErrorBody),
    ))]
async fn send_stdin(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<NewInput>,
) -> Result<StatusCode, AppError> {
    state.runs.send_input(&id, &caller.owner(), input).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The link to a share: `PUBLIC_URL` when set, else the request's own host (`http`, or
/// `https` when the session cookie is marked secure). A `Host` that is not a host name
/// leaves the link relative.
fn share_url(state: &AppState, headers: &axum::http::HeaderMap, slug: &str) -> String {
    if let Some(base) = &state.config.public_url {
        return format!("{base}/s/{slug}");
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok());
    match host {
        Some(host) => {
            let scheme = if state.config.cookie_secure {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}/s/{slug}")
        }
        None => format!("/s/{slug}"),
    }
}

/// Shares a finished run the caller can see: an immutable public snapshot (code, input,
/// output, verdict, figures; never the owner), kept apart from the history, so deleting
/// the run keeps the link. Counts like a run: against a guest's daily quota, a user's
/// per-minute rate.
#[utoipa::path(post, path = "/runs/{id}/share", tag = "shares",
    params(("id" = String, Path, description = "The run's id")),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Shared", body = ShareLink, headers(
            ("Location" = String, description = "The share in the API: `/api/v1/shares/{slug}`"),
            ("X-RateLimit-Limit" = u64, description = "Runs and shares allowed in the window"),
            ("X-RateLimit-Remaining" = u64, description = "Left in the window"),
            ("X-RateLimit-Reset" = u64, description = "Seconds until the window ends"),
            ("RateLimit-Policy" = String, description = "IETF draft policy field"),
            ("RateLimit" = String, description = "IETF draft remaining field"),
        )),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
        (status = 403, description = "A browser request from another site (`cross_site`)", body = ErrorBody),
        (status = 404, description = "No such run, or not the caller's", body = ErrorBody),
        (status = 409, description = "The run has not finished yet", body = ErrorBody),
        (status = 429, description = "`quota_exhausted` (guests) or `rate_limited` (users)", body = ErrorBody, headers(
            ("Retry-After" = u64, description = "Seconds to wait"),
            ("X-RateLimit-Limit" = u64, description = "Allowed in the window"),
            ("X-RateLimit-Remaining" = u64, description = "0"),
            ("X-RateLimit-Reset" = u64, description = "Seconds until the window ends"),
            ("RateLimit-Policy" = String, description = "IETF draft policy field"),
            ("RateLimit" = String, description = "IETF draft remaining field"),
        )),
        (status = 503, description = "MongoDB (`mongodb_unavailable`) or, for guests, Redis is unavailable; nothing is stored or counted", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
async fn share_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let policy = policy(&state, &caller);
    match state.shares.create(&caller, &id).await {
        Ok(created) => {
            let slug = created.share.slug;
            let link = ShareLink {
                url: share_url(&state, &headers, &slug),
                slug: slug.clone(),
            };
            let mut res = (StatusCode::CREATED, Json(link)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/shares/{slug}")) {
                res.headers_mut().insert(axum::http::header::LOCATION, v);
            }
            with_quota_headers(res, created.quota, policy)
        }
        Err(Refused { error, quota }) => with_quota_headers(error.into_response(), quota, policy),
    }
}

/// A shared run, for anyone with its slug (no credentials needed).
#[utoipa::path(get, path = "/shares/{slug}", tag = "shares",
    params(("slug" = String, Path, description = "The share's slug")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The snapshot", body = SharedRun),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
        (status = 404, description = "No such share (never made, revoked or expired)", body = ErrorBody),
        (status = 503, description = "MongoDB is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
async fn get_share(
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<SharedRun>, AppError> {
    state
        .shares
        .get(&slug)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound)
}

/// Revokes a share; only its creator (the same user, or the same guest cookie) can.
#[utoipa::path(delete, path = "/shares/{slug}", tag = "shares",
    params(("slug" = String, Path, description = "The share's slug")),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Revoked: the link no longer works"),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
        (status = 403, description = "A browser request from another site (`cross_site`)", body = ErrorBody),
        (status = 404, description = "No such share of the caller's", body = ErrorBody),
        (status = 503, description = "MongoDB is unavailable", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
async fn revoke_share(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(slug): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    state.shares.revoke(&caller, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One server-sent event of `GET /runs/{id}/events`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct RunEventMessage {
    #[schema(pattern = "^(status|stdout|stderr|result)$")]
    event: String,
    /// JSON: `{"status"}` for `status`, `{"data"}` for `stdout` and `stderr`, the whole
    /// run for `result`.
    data: String,
}

/// One run event as SSE, with its number as the event id (for `Last-Event-ID`).
fn sse((n, ev): (u64, RunEvent)) -> SseEvent {
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
    .map(|e| e.id(n.to_string()))
    .unwrap_or_else(|_| {
        SseEvent::default()
            .event("error")
            .data("serialisation failed")
    })
}

/// The run's live events (server-sent events): `status` (`{"status"}`), `stdout` and
/// `stderr` (`{"data"}`, chunks as produced), and a final `result` with the whole run.
/// Every event carries its number as its id: a client that reconnects sends
/// `Last-Event-ID` and gets only what came after, from any node.
#[utoipa::path(get, path = "/runs/{id}/events", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "An event stream; each event is described by `RunEventMessage`", content_type = "text/event-stream", body = RunEventMessage),
        (status = 401, description = "An `Authorization` header that is not a valid bearer token", body = ErrorBody),
        (status = 404, description = "No such run, or not the caller's", body = ErrorBody),
    ))]
async fn run_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    headers: axum::http::HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, AppError> {
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(v) => match v.to_str().ok().map(str::trim) {
            Some("") => 0,
            Some(v) => v.parse::<u64>().map_err(|_| {
                AppError::invalid(
                    "invalid_last_event_id",
                    "Last-Event-ID must be the id of an event of this run (a whole number).",
                )
            })?,
            None => {
                return Err(AppError::invalid(
                    "invalid_last_event_id",
                    "Last-Event-ID must be the id of an event of this run (a whole number).",
                ))
            }
        },
    };
    let events = state.runs.events(&id, &caller.owner(), after).await?;
    Ok(Sse::new(events.map(|ev| Ok(sse(ev))))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
