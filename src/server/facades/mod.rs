//! Other APIs on the same engine: Judge0 CE under `/judge0` and Piston v2 under `/piston`,
//! so that clients written for them work unchanged. Both are faces only: every run goes
//! through the run service ([`Runs::submit`]) exactly as `/api/v1`'s do, with the same
//! caller identity, guest quota, in-flight caps, history and sandbox.
//!
//! What the faces share lives here: the language catalogue (which of their ids and names
//! each of our languages answers to), the identity rules for clients that keep no cookie,
//! the mapping of a program onto a [`NewRun`], and the error-shape rewriting.

pub mod judge0;
pub mod piston;

use super::auth::{self, Caller};
use super::runs::{program, LiveRun, NewRun, Refused, Runs, Submitted};
use super::sandbox::{self, Language};
use super::state::AppState;
use crate::error::AppError;
use crate::model::{RunStatus, SourceFile};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;

/// How one of our languages is known to the other APIs.
#[derive(Debug)]
pub struct Face {
    /// Our language id (`sandbox::LANGUAGES`).
    pub lang: &'static str,
    /// Judge0 CE 1.13.1's ids of this language (each answered by our one version).
    pub judge0_ids: &'static [u32],
    /// Piston's language name.
    pub piston: &'static str,
    /// Piston's aliases of the language.
    pub aliases: &'static [&'static str],
}

/// Every language the faces can name. Only those the engine runs are offered: a language
/// added to the sandbox appears here by its id, with no other change.
pub static FACES: &[Face] = &[
    Face {
        lang: "c",
        judge0_ids: &[48, 49, 50],
        piston: "c",
        aliases: &["gcc"],
    },
    Face {
        lang: "cpp",
        judge0_ids: &[52, 53, 54],
        piston: "c++",
        aliases: &["cpp", "g++"],
    },
    Face {
        lang: "go",
        judge0_ids: &[60],
        piston: "go",
        aliases: &["golang"],
    },
    Face {
        lang: "java",
        judge0_ids: &[62],
        piston: "java",
        aliases: &[],
    },
    Face {
        lang: "javascript",
        judge0_ids: &[63],
        piston: "javascript",
        aliases: &["node-javascript", "node-js", "javascript", "js"],
    },
    Face {
        lang: "python",
        judge0_ids: &[71],
        piston: "python",
        aliases: &["py", "py3", "python3"],
    },
    Face {
        lang: "rust",
        judge0_ids: &[73],
        piston: "rust",
        aliases: &["rs"],
    },
    Face {
        lang: "typescript",
        judge0_ids: &[74],
        piston: "typescript",
        aliases: &["ts", "node-ts", "tsc"],
    },
];

/// The faces of the languages the engine runs, with their language.
pub fn available() -> impl Iterator<Item = (&'static Face, &'static Language)> {
    FACES
        .iter()
        .filter_map(|f| sandbox::find_language(f.lang).map(|l| (f, l)))
}

/// A program as a face received it, decoded and checked in that face's terms.
pub struct Program {
    pub language: &'static Language,
    /// The program as one file (the language's `source_file`), or several `files`.
    pub source: Source,
    pub args: Vec<String>,
    /// The run's own limits, where the client chose them (else the language's defaults).
    pub time_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub stdin: String,
}

/// What a program is made of.
pub enum Source {
    Code(String),
    /// Files, the entry file first.
    Files(Vec<SourceFile>),
}

/// The run request for a program: the one place where a face's program becomes a run
/// of the run service. It is written as the `/api/v1` request body a client would send,
/// so that a face asks exactly what that API can be asked, and every check of that API
/// (names, sizes, counts, caps) applies to it unchanged.
pub fn new_run(p: Program) -> Result<NewRun, AppError> {
    let mut body = serde_json::json!({
        "language": p.language.id,
        "stdin": p.stdin,
        "args": p.args,
        "limits": { "time_ms": p.time_ms, "memory_mb": p.memory_mb },
    });
    match p.source {
        Source::Code(code) => body["code"] = code.into(),
        Source::Files(files) => {
            body["main"] = files.first().map(|f| f.name.clone()).into();
            body["files"] = serde_json::to_value(files).unwrap_or_default();
        }
    }
    serde_json::from_value(body).map_err(|e| {
        tracing::error!(error = %e, "a face built a run request the run service does not read");
        AppError::Internal
    })
}

/// The limits a face checks per-run limits against: a run may lower its time and memory
/// (down to the run service's least values), never raise them; compile limits are the
/// server's.
pub struct Caps {
    pub run_ms: u64,
    pub min_run_ms: u64,
    pub compile_ms: u64,
    pub memory_mb: u64,
    pub min_memory_mb: u64,
}

/// The limits that apply to runs of `lang`.
pub fn caps(state: &AppState, lang: &Language) -> Caps {
    let cfg = state.engine.config();
    let limits = lang.limits(cfg);
    Caps {
        run_ms: limits.time_ms.max,
        min_run_ms: program::MIN_TIME_MS,
        compile_ms: cfg.compile_time_limit.as_millis() as u64,
        memory_mb: limits.memory_mb.max,
        min_memory_mb: program::MIN_MEMORY_MB,
    }
}

/// Submits a run of a batch. A caller at its cap of runs in flight waits for one of its
/// earlier runs of the same batch to finish and tries again, so that a batch larger than
/// the cap is accepted as places free up (the faces' clients expect a batch to queue).
pub async fn submit_in_turn(
    runs: &Arc<Runs>,
    caller: &Caller,
    req: NewRun,
    earlier: &[Arc<LiveRun>],
) -> Result<Submitted, Refused> {
    loop {
        match runs.submit(caller, req.clone()).await {
            Err(r) if r.error.code() == "too_many_runs" => {
                let pending = earlier
                    .iter()
                    .find(|l| l.snapshot().status != RunStatus::Finished);
                match pending {
                    Some(l) => {
                        l.wait().await;
                    }
                    None => return Err(r),
                }
            }
            other => return other,
        }
    }
}

/// The faces' routes, each with its own error shape, behind the same identity and
/// cross-site rules as `/api/v1`, but without browser sessions: these clients keep no
/// cookie, so a guest is known by its address (see [`auth::ip_guest_id`]).
pub fn routes(state: &AppState) -> Router<AppState> {
    let face = |r: Router<AppState>| {
        r.layer(axum::middleware::from_fn(guest_by_ip))
            .layer(axum::middleware::from_fn_with_state(
                super::identify_state(state),
                auth::identify,
            ))
            // A batch of 20 programs of 64 KiB each, base64-encoded.
            .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                super::csrf::refuse_cross_site,
            ))
            .layer(axum::middleware::from_fn(x_auth_token))
    };
    Router::new()
        .nest(
            "/judge0",
            face(judge0::routes()).layer(axum::middleware::from_fn(judge0::errors)),
        )
        .nest(
            "/piston",
            face(piston::routes()).layer(axum::middleware::from_fn(piston::errors)),
        )
}

/// Judge0 clients send our API token as `X-Auth-Token` (Judge0's authentication header):
/// it counts as `Authorization: Bearer <token>`, for identity and for the cross-site rule
/// alike (a browser cannot send it cross-site either).
async fn x_auth_token(mut req: Request, next: Next) -> Response {
    if !req.headers().contains_key(header::AUTHORIZATION) {
        let token = req
            .headers()
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok());
        if let Some(v) = token {
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
    }
    next.run(req).await
}

/// A guest of the faces is its address block: the same client finds its submissions
/// again without a cookie, and is counted where every guest is counted.
async fn guest_by_ip(mut req: Request, next: Next) -> Response {
    if let Some(Caller::Guest { ip, .. }) = req.extensions().get::<Caller>().cloned() {
        req.extensions_mut().insert(Caller::Guest {
            guest_id: auth::ip_guest_id(ip),
            ip,
        });
    }
    next.run(req).await
}

/// Rewrites an error answer of the shared layers (the `/api/v1` shape
/// `{"error":{"code","message"}}`, or an empty body) into a face's shape, keeping the
/// status and headers. Answers already in the face's shape pass unchanged.
async fn rewrite_errors(res: Response, shape: fn(&str) -> serde_json::Value) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (
            status,
            axum::Json(shape("The request could not be answered.")),
        )
            .into_response();
    };
    let value: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let message = match &value {
        Some(v) => match v.get("error").and_then(|e| e.get("message")) {
            Some(m) => m.as_str().unwrap_or_default().to_string(),
            // Already the face's own shape.
            None => {
                return Response::from_parts(parts, Body::from(bytes));
            }
        },
        None if bytes.is_empty() => status
            .canonical_reason()
            .unwrap_or("The request could not be answered.")
            .to_string(),
        None => String::from_utf8_lossy(&bytes).trim().to_string(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let body = serde_json::to_vec(&shape(&message)).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

/// A face's error answer from the run service's error, keeping its status and the
/// `Retry-After` and rate-limit headers.
fn refusal(
    r: Refused,
    policy: super::rest::Policy,
    shape: impl Fn(&str) -> serde_json::Value,
) -> Response {
    let status =
        StatusCode::from_u16(r.error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, axum::Json(shape(&r.error.to_string()))).into_response();
    if let Some(secs) = r.error.retry_after() {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    super::rest::with_quota_headers(res, r.quota, policy)
}

/// A semantic version for a language's version text ("3.11" → "3.11.0", "GCC 12 (C++17)"
/// → "12.0.0"): Piston clients match versions as semver.
pub fn semver_of(version: &str) -> String {
    let start = version.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
    let digits: String = version[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts: Vec<&str> = digits.split('.').filter(|p| !p.is_empty()).collect();
    parts.truncate(3);
    while parts.len() < 3 {
        parts.push("0");
    }
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_become_semver() {
        assert_eq!(semver_of("3.11"), "3.11.0");
        assert_eq!(semver_of("GCC 12 (C++17)"), "12.0.0");
        assert_eq!(semver_of("OpenJDK 17"), "17.0.0");
        assert_eq!(semver_of("Node.js 18"), "18.0.0");
        assert_eq!(semver_of("rustc 1.63.0"), "1.63.0");
    }

    #[test]
    fn judge0_ids_are_unique() {
        let mut ids: Vec<u32> = FACES
            .iter()
            .flat_map(|f| f.judge0_ids.iter().copied())
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
