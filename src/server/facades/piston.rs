//! Piston v2's API under `/piston`: `GET /api/v2/runtimes` and `POST /api/v2/execute`,
//! in Piston's shapes (`{"message"}` errors, status 400 for a refused job, 415 for a body
//! that is not JSON). Each execution is one run of the run service, awaited.

use super::{available, caps, new_run, refusal, semver_of, Face, Program, Source};
use crate::model::{Run, SourceFile, Verdict};
use crate::server::auth::Caller;
use crate::server::sandbox::Language;
use crate::server::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

/// The `/piston` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/runtimes", get(runtimes))
        .route("/api/v2/execute", post(execute))
        .fallback(|| async { message(StatusCode::NOT_FOUND, "Not Found") })
}

/// Errors of the shared layers in Piston's shape, `{"message": "..."}`.
pub async fn errors(req: Request, next: Next) -> Response {
    super::rewrite_errors(next.run(req).await, |m| json!({ "message": m })).await
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

fn refused(text: impl Into<String>) -> Response {
    message(StatusCode::BAD_REQUEST, &text.into())
}

async fn runtimes() -> Json<Vec<Value>> {
    Json(
        available()
            .map(|(f, l)| {
                json!({
                    "language": f.piston,
                    "version": semver_of(l.version),
                    "aliases": f.aliases,
                })
            })
            .collect(),
    )
}

/// Whether a version asked for matches ours, as semver ranges of the forms clients use:
/// `*`, `x`, a full version, or a prefix (`3`, `3.11`, `3.x`).
fn version_matches(ours: &str, asked: &str) -> bool {
    let asked = asked.trim();
    if asked == "*" || asked.eq_ignore_ascii_case("x") || asked.is_empty() {
        return true;
    }
    let ours: Vec<&str> = ours.split('.').collect();
    let asked: Vec<&str> = asked.trim_start_matches(['=', 'v']).split('.').collect();
    asked.len() <= ours.len()
        && asked
            .iter()
            .zip(&ours)
            .all(|(a, o)| matches!(*a, "x" | "X" | "*") || a == o)
}

/// The runtime a language name (or alias) and version name.
fn runtime(language: &str, version: &str) -> Option<(&'static Face, &'static Language)> {
    available().find(|(f, l)| {
        (f.piston == language || f.aliases.contains(&language))
            && version_matches(&semver_of(l.version), version)
    })
}

/// A file's text from its encoding (`utf8`, the default, `base64` or `hex`).
fn file_text(file: &Value, i: usize) -> Result<String, String> {
    let content = file.get("content").and_then(Value::as_str).unwrap_or("");
    match file
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("utf8")
    {
        "utf8" => Ok(content.to_string()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("files[{i}].content is not valid base64 of UTF-8 text")),
        "hex" => (0..content.len())
            .step_by(2)
            .map(|j| {
                content
                    .get(j..j + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("files[{i}].content is not valid hex of UTF-8 text")),
        other => Err(format!(
            "files[{i}].encoding \"{other}\" is not one of utf8, base64, hex"
        )),
    }
}

/// Checks a job as Piston's `get_job` does, in its order and words, within our caps.
fn check(
    state: &AppState,
    body: &Value,
) -> Result<(Program, &'static Face, &'static Language), String> {
    let language = match body.get("language") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err(String::from("language is required as a string")),
    };
    let version = match body.get("version") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err(String::from("version is required as a string")),
    };
    let Some(files) = body.get("files").and_then(Value::as_array) else {
        return Err(String::from("files is required as an array"));
    };
    for (i, f) in files.iter().enumerate() {
        if !f.get("content").is_some_and(Value::is_string) {
            return Err(format!("files[{i}].content is required as a string"));
        }
    }
    let Some((face, lang)) = runtime(language, version) else {
        return Err(format!("{language}-{version} runtime is unknown"));
    };
    if !files.iter().any(|f| {
        f.get("encoding")
            .and_then(Value::as_str)
            .is_none_or(|e| e == "utf8")
    }) {
        return Err(String::from(
            "files must include at least one utf8 encoded file",
        ));
    }
    let c = caps(state, lang);
    let memory = c.memory_mb * 1024 * 1024;
    let (mut time_ms, mut memory_mb) = (None::<u64>, None::<u64>);
    for (name, cap) in [
        ("compile_timeout", c.compile_ms),
        ("run_timeout", c.run_ms),
        ("compile_cpu_time", c.compile_ms),
        ("run_cpu_time", c.run_ms),
        ("compile_memory_limit", memory),
        ("run_memory_limit", memory),
    ] {
        let value = match body.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            // Piston skips falsy values (0, "", false) before looking at their type.
            Some(Value::String(s)) if s.is_empty() => continue,
            Some(Value::Bool(false)) => continue,
            Some(_) => return Err(format!("If specified, {name} must be a number")),
        };
        // 0 is "the default" in Piston; -1 is "no limit of my own" (piston-client sends it
        // by default), which here is the configured limit.
        if value == 0.0 || value == -1.0 {
            continue;
        }
        if value > cap as f64 {
            return Err(format!(
                "{name} cannot exceed the configured limit of {cap}"
            ));
        }
        if value < 0.0 {
            return Err(format!("{name} must be non-negative"));
        }
        if value == cap as f64 {
            continue;
        }
        match name {
            "run_timeout" | "run_cpu_time" => {
                let ms = value.ceil() as u64;
                if ms < c.min_run_ms {
                    return Err(format!("{name} must be at least {} on this server", c.min_run_ms));
                }
                // Both bound the run's time here (the engine limits wall-clock time).
                time_ms = Some(time_ms.map_or(ms, |t| t.min(ms)));
            }
            "run_memory_limit" => {
                let mb = (value / (1024.0 * 1024.0)).ceil() as u64;
                if mb < c.min_memory_mb {
                    return Err(format!(
                        "{name} must be at least {} on this server",
                        c.min_memory_mb * 1024 * 1024
                    ));
                }
                memory_mb = Some(mb);
            }
            // Compiling has the server's fixed limits.
            _ => {
                return Err(format!(
                    "{name} below the configured limit of {cap} is not supported on this server: compiling has fixed limits"
                ))
            }
        }
    }
    let args = match body.get("args") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| "args must be an array of strings".to_string())?,
        Some(_) => return Err("args must be an array of strings".into()),
    };
    let stdin = match body.get("stdin") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("stdin must be a string".into()),
    };
    // Piston runs the first file; an unnamed one is `file{i}.code` there, and here the
    // language's source file when it is the first (so that its extension is right).
    let mut files_out = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let name = match f.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ if i == 0 => lang.source_file.to_string(),
            _ => format!("file{i}.code"),
        };
        files_out.push(SourceFile {
            name,
            content: file_text(f, i)?,
        });
    }
    Ok((
        Program {
            language: lang,
            source: Source::Files(files_out),
            args,
            time_ms,
            memory_mb,
            stdin,
        },
        face,
        lang,
    ))
}

/// Piston's stage result of a run.
fn stage(run: &Run) -> Value {
    let code = match run.verdict {
        Some(Verdict::Ok | Verdict::RuntimeError) => run.exit_code.map(Value::from),
        _ => None,
    };
    // Piston kills a program over its time or output limit with SIGKILL.
    let signal = match run.verdict {
        Some(Verdict::TimeLimit | Verdict::OutputLimit | Verdict::MemoryLimit) => {
            Some("SIGKILL".to_string())
        }
        _ => run.signal.clone(),
    };
    let (status, text) = match run.verdict {
        Some(Verdict::Ok) => (None, None),
        Some(Verdict::TimeLimit) => (Some("TO"), Some("Time limit exceeded")),
        Some(Verdict::OutputLimit) => (Some("OL"), Some("stdout length exceeded")),
        Some(Verdict::MemoryLimit) => (Some("SG"), Some("Memory limit exceeded")),
        Some(Verdict::RuntimeError) if signal.is_some() => (Some("SG"), None),
        Some(Verdict::RuntimeError) => (Some("RE"), None),
        _ => (Some("XX"), Some("Internal error of the sandbox")),
    };
    let message = text
        .map(String::from)
        .or_else(|| match (status, &signal, run.exit_code) {
            (Some("SG"), Some(s), _) => Some(format!("Caught fatal signal {s}")),
            (Some("RE"), _, Some(c)) => Some(format!("Exited with error status {c}")),
            _ => None,
        });
    json!({
        "stdout": run.stdout,
        "stderr": run.stderr,
        "code": code,
        "signal": signal,
        "output": format!("{}{}", run.stdout, run.stderr),
        "memory": run.memory_kb.map(|kb| kb * 1024),
        "message": message,
        "status": status,
        "cpu_time": run.cpu_time_ms.or(run.time_ms),
        "wall_time": run.time_ms,
    })
}

/// Piston's result: `compile` for compiled languages, and `run` (the compile stage again
/// when compiling failed, as Piston answers).
fn result(run: &Run, face: &Face, lang: &Language) -> Value {
    let compile = lang.compile.map(|_| {
        let failed = run.verdict == Some(Verdict::CompileError);
        json!({
            "stdout": "",
            "stderr": run.compile_output,
            "code": if failed { 1 } else { 0 },
            "signal": null,
            "output": run.compile_output,
            "memory": null,
            "message": if failed { Some("Exited with error status 1") } else { None },
            "status": if failed { Some("RE") } else { None },
            "cpu_time": null,
            "wall_time": null,
        })
    });
    let run_stage = match (&compile, run.verdict) {
        (Some(c), Some(Verdict::CompileError)) => c.clone(),
        _ => stage(run),
    };
    let mut out = json!({
        "language": face.piston,
        "version": semver_of(lang.version),
        "run": run_stage,
    });
    if let (Some(c), Some(o)) = (compile, out.as_object_mut()) {
        o.insert("compile".into(), c);
    }
    out
}

async fn execute(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let policy = crate::server::rest::policy(&state, &caller);
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // piston-client (npm) posts its JSON without a content type (fetch sends it as
    // text/plain): a body that is a JSON object is taken whatever its type says.
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        _ if !is_json => {
            return message(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "requests must be of type application/json",
            )
        }
        _ => return refused("the body is not a JSON object"),
    };
    let (program, face, lang) = match check(&state, &body) {
        Ok(p) => p,
        Err(m) => return refused(m),
    };
    let req = match new_run(program) {
        Ok(r) => r,
        Err(e) => return refusal(e.into(), policy, |m| json!({ "message": m })),
    };
    let submitted = match state.runs.submit(&caller, req).await {
        Ok(s) => s,
        Err(r) => return refusal(r, policy, |m| json!({ "message": m })),
    };
    let run = submitted.live.wait().await;
    crate::server::rest::with_quota_headers(
        Json(result(&run, face, lang)).into_response(),
        submitted.quota,
        policy,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_as_clients_ask() {
        for asked in ["*", "x", "3", "3.11", "3.11.0", "3.x", "3.11.x", "=3.11.0"] {
            assert!(version_matches("3.11.0", asked), "{asked}");
        }
        for asked in ["2", "3.10", "3.11.1", "4.x", "3.11.0.1"] {
            assert!(!version_matches("3.11.0", asked), "{asked}");
        }
    }

    #[test]
    fn a_run_becomes_piston_stages() {
        let run = Run {
            status: crate::model::RunStatus::Finished,
            verdict: Some(Verdict::TimeLimit),
            signal: Some("SIGKILL".into()),
            stdout: "a".into(),
            stderr: "b".into(),
            time_ms: Some(5000),
            memory_kb: Some(2),
            ..Run::new("x", "python", "")
        };
        let s = stage(&run);
        assert_eq!(s["signal"], "SIGKILL");
        assert_eq!(s["status"], "TO");
        assert_eq!(s["output"], "ab");
        assert_eq!(s["code"], Value::Null);
        assert_eq!(s["memory"], 2048);
    }
}
