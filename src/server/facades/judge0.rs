//! Judge0 CE 1.13.1's API under `/judge0`: languages, statuses, about, config_info, and
//! submissions (single, batch, wait, base64, fields, delete), in Judge0's field names,
//! units and error shapes. Submissions are runs of the run service; what Judge0 keeps
//! beside a run (its language id, the expected output, the limits asked for) is a small
//! record in Redis under the run's id. Tokens are run ids written as UUIDs.

use super::{available, caps, new_run, refusal, submit_in_turn, Face, Program, Source};
use crate::error::AppError;
use crate::model::{Run, RunStatus, SourceFile, Verdict};
use crate::server::auth::{Caller, Owner};
use crate::server::runs::{is_run_id, LiveRun};
use crate::server::sandbox::{signal_number, Language};
use crate::server::state::AppState;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The Judge0 version whose ids, statuses and fields this face follows.
pub const VERSION: &str = "1.13.1";
/// Judge0's batch size limit (`MAX_SUBMISSION_BATCH_SIZE`).
pub const MAX_BATCH: usize = 20;
/// How long what Judge0 keeps beside a run (expected output, language id) stays in Redis.
const RECORD_TTL: u64 = 7 * 86_400;

/// The `/judge0` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/languages", get(languages))
        .route("/languages/{id}", get(language))
        .route("/statuses", get(statuses))
        .route("/about", get(about))
        .route("/config_info", get(config_info))
        .route("/submissions", axum::routing::post(create))
        .route("/submissions/batch", get(batch_show).post(batch_create))
        .route("/submissions/{token}", get(show).delete(destroy))
        .fallback(|| async { not_found() })
}

/// Errors of the shared layers in Judge0's shape, `{"error": "..."}`.
pub async fn errors(req: Request, next: Next) -> Response {
    super::rewrite_errors(next.run(req).await, |m| json!({ "error": m })).await
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// Judge0's statuses, by id.
pub const STATUSES: &[(u32, &str)] = &[
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

fn status_json(id: u32) -> Value {
    let description = STATUSES
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, d)| *d)
        .unwrap_or("Internal Error");
    json!({ "id": id, "description": description })
}

/// The Judge0 name of a language: its name with our one version.
fn name_of(lang: &Language) -> String {
    format!("{} ({})", lang.name, lang.version)
}

fn by_id(id: u32) -> Option<(&'static Face, &'static Language)> {
    available().find(|(f, _)| f.judge0_ids.contains(&id))
}

async fn languages() -> Json<Vec<Value>> {
    let mut all: Vec<(u32, String)> = available()
        .flat_map(|(f, l)| f.judge0_ids.iter().map(move |id| (*id, name_of(l))))
        .collect();
    all.sort();
    Json(
        all.into_iter()
            .map(|(id, name)| json!({ "id": id, "name": name }))
            .collect(),
    )
}

async fn language(Path(id): Path<String>) -> Response {
    let Some((_, l)) = id.parse::<u32>().ok().and_then(by_id) else {
        return not_found();
    };
    let id: u32 = id.parse().unwrap_or_default();
    Json(json!({
        "id": id,
        "name": name_of(l),
        "is_archived": false,
        "source_file": l.source_file,
        "compile_cmd": l.compile,
        "run_cmd": l.run.join(" "),
    }))
    .into_response()
}

async fn statuses() -> Json<Vec<Value>> {
    Json(STATUSES.iter().map(|(id, _)| status_json(*id)).collect())
}

async fn about() -> Json<Value> {
    Json(json!({
        "version": VERSION,
        "homepage": null,
        "source_code": null,
        "maintainer": "Own-IDE: Judge0 CE 1.13.1's API on the Own-IDE engine",
    }))
}

/// Seconds as Judge0 prints a decimal setting (`5.0`).
fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

async fn config_info(State(state): State<AppState>) -> Json<Value> {
    let cfg = state.engine.config();
    let run = secs(cfg.run_time_limit.as_millis() as u64);
    let memory = cfg.memory_mb * 1024;
    let max_memory = cfg.memory_mb.max(cfg.java_memory_mb) * 1024;
    Json(json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": false,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": true,
        "enable_callbacks": false,
        "callbacks_max_tries": 0,
        "callbacks_timeout": 0.0,
        "enable_additional_files": true,
        "max_queue_size": cfg.queue_size,
        "cpu_time_limit": run,
        "max_cpu_time_limit": run,
        "cpu_extra_time": 0.0,
        "max_cpu_extra_time": 0.0,
        "wall_time_limit": run,
        "max_wall_time_limit": run,
        "memory_limit": memory,
        "max_memory_limit": max_memory,
        "stack_limit": 0,
        "max_stack_limit": 0,
        "max_processes_and_or_threads": cfg.pids,
        "max_max_processes_and_or_threads": cfg.pids,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": false,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": false,
        "max_file_size": cfg.max_output_bytes / 1024,
        "max_max_file_size": cfg.max_output_bytes / 1024,
        "number_of_runs": 1,
        "max_number_of_runs": 1,
        "redirect_stderr_to_stdout": false,
        "max_extract_size": 0,
        "enable_batched_submissions": true,
        "max_submission_batch_size": MAX_BATCH,
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": false,
        "allow_enable_network": false,
        "enable_network": false,
    }))
}

/// What Judge0 keeps beside a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    pub language_id: u32,
    pub expected_output: Option<String>,
    /// `additional_files` as sent (base64 of a zip), answered back as Judge0 does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_files: Option<String>,
    pub cpu_time_limit: f64,
    pub wall_time_limit: f64,
    pub memory_limit: u64,
}

fn record_key(id: &str) -> String {
    format!("own-ide:judge0:{id}")
}

async fn save_record(state: &AppState, id: &str, rec: &Record) -> Result<(), AppError> {
    let mut conn = state.redis.conn().await?;
    let json = serde_json::to_string(rec).map_err(|_| AppError::Internal)?;
    conn.set_ex::<_, _, ()>(record_key(id), json, RECORD_TTL)
        .await
        .map_err(crate::server::redis::Redis::failed)
}

/// The record of a run, or the one a run made through another face implies.
async fn load_record(state: &AppState, run: &Run) -> Record {
    if let Ok(mut conn) = state.redis.conn().await {
        let got: Result<Option<String>, _> = conn.get(record_key(&run.id)).await;
        if let Some(rec) = got
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_str::<Record>(&s).ok())
        {
            return rec;
        }
    }
    let lang = crate::server::sandbox::find_language(&run.language);
    let language_id = available()
        .find(|(f, _)| f.lang == run.language)
        .and_then(|(f, _)| f.judge0_ids.last().copied())
        .unwrap_or(0);
    let (cpu, mem) = match lang {
        Some(l) => {
            let c = caps(state, l);
            (secs(c.run_ms), c.memory_mb * 1024)
        }
        None => (0.0, 0),
    };
    Record {
        language_id,
        expected_output: None,
        additional_files: None,
        cpu_time_limit: cpu,
        wall_time_limit: cpu,
        memory_limit: mem,
    }
}

/// A run id from a token: the UUID form (`8-4-4-4-12`) or the bare id.
fn run_id_of(token: &str) -> Option<String> {
    let id: String = token.trim().chars().filter(|c| *c != '-').collect();
    let id = id.to_ascii_lowercase();
    is_run_id(&id).then_some(id)
}

/// The token of a run: its id as a UUID (run ids are v4 UUIDs; the SDK checks the form).
pub fn token_of(id: &str) -> String {
    if id.len() != 32 {
        return id.to_string();
    }
    format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    )
}

/// Judge0's comparison of the output with the expected output: each line without its
/// trailing whitespace, and the whole without trailing whitespace (Ruby's `rstrip`).
fn strip(text: &str) -> String {
    let rstrip = |s: &str| {
        s.trim_end_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r', '\0'])
            .to_string()
    };
    let lines: Vec<String> = text.split('\n').map(rstrip).collect();
    rstrip(&lines.join("\n"))
}

/// The status id of a run: queued, processing, or the verdict in Judge0's terms, with
/// the expected output judged as Judge0 judges it. Judge0 keeps an empty output as
/// null, and null equals no expected output only: an expected `""` with no output is a
/// Wrong Answer there, and here.
pub fn status_id(run: &Run, expected: Option<&str>) -> u32 {
    match run.status {
        RunStatus::Queued => return 1,
        RunStatus::Running => return 2,
        RunStatus::Finished => {}
    }
    match run.verdict {
        Some(Verdict::Ok) => {
            let stdout = (!run.stdout.is_empty()).then(|| strip(&run.stdout));
            match expected {
                None => 3,
                Some(e) if Some(strip(e)) == stdout => 3,
                Some(_) => 4,
            }
        }
        Some(Verdict::TimeLimit) => 5,
        Some(Verdict::CompileError) => 6,
        Some(Verdict::RuntimeError) => match run.signal.as_deref() {
            None => 11,
            Some("SIGSEGV") => 7,
            Some("SIGXFSZ") => 8,
            Some("SIGFPE") => 9,
            Some("SIGABRT") => 10,
            Some(_) => 12,
        },
        // Judge0 has no status of its own for these: a program ended by its memory limit
        // is a runtime error there; an output over the limit is a file-size signal.
        Some(Verdict::MemoryLimit) => 12,
        Some(Verdict::OutputLimit) => 8,
        Some(Verdict::Stopped)
        | Some(Verdict::InternalError)
        | Some(Verdict::ExecutorLost)
        | None => 13,
    }
}

/// Judge0's `message` (isolate's words) for a finished run.
fn message_of(run: &Run) -> Option<String> {
    if run.status != RunStatus::Finished {
        return None;
    }
    let signal = run.signal.as_deref().and_then(signal_number);
    Some(match run.verdict? {
        Verdict::Ok | Verdict::CompileError => return None,
        Verdict::TimeLimit => "Time limit exceeded".into(),
        Verdict::MemoryLimit => "Memory limit exceeded".into(),
        Verdict::OutputLimit => "Output limit exceeded".into(),
        Verdict::Stopped => "Stopped before it finished".into(),
        Verdict::InternalError => "Internal error of the sandbox".into(),
        Verdict::ExecutorLost => "The machine running the program stopped answering".into(),
        Verdict::RuntimeError => match (signal, run.exit_code) {
            (Some(n), _) => format!("Caught fatal signal {n}"),
            (None, Some(c)) => format!("Exited with error status {c}"),
            (None, None) => "Runtime error".into(),
        },
    })
}

/// Every field of a submission, in Judge0's serializer order.
pub const FIELDS: &[&str] = &[
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// The fields answered when none are asked for.
pub const DEFAULT_FIELDS: &[&str] = &[
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

/// The fields a `fields=` parameter asks for, or Judge0's 400 naming the unknown ones.
fn requested_fields(param: Option<&str>) -> Result<Vec<&'static str>, String> {
    let asked: Vec<&str> = param
        .unwrap_or("")
        .split(',')
        .filter(|f| !f.is_empty())
        .collect();
    let invalid: Vec<&str> = asked
        .iter()
        .copied()
        .filter(|f| *f != "*" && !FIELDS.contains(f))
        .collect();
    if !invalid.is_empty() {
        return Err(format!("invalid fields: [{}]", invalid.join(", ")));
    }
    if asked.contains(&"*") {
        return Ok(FIELDS.to_vec());
    }
    let chosen: Vec<&'static str> = FIELDS
        .iter()
        .copied()
        .filter(|f| asked.contains(f))
        .collect();
    Ok(if chosen.is_empty() {
        DEFAULT_FIELDS.to_vec()
    } else {
        chosen
    })
}

/// Base64 as Ruby's `Base64.encode64` writes it (what Judge0 answers): lines of 60
/// characters, each ending in a newline.
pub fn encode64(text: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut out = String::with_capacity(b64.len() + b64.len() / 60 + 1);
    for chunk in b64.as_bytes().chunks(60) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// Decodes a base64 field as Judge0 receives it (line breaks and spaces allowed, padding
/// optional); the text must be UTF-8, as every program and input here is.
fn decode64(value: &str) -> Result<String, &'static str> {
    let bytes = decode64_bytes(value)?;
    String::from_utf8(bytes).map_err(|_| "is not valid UTF-8 once decoded from base64")
}

/// The bytes of a base64 field (line breaks and spaces allowed, padding optional).
fn decode64_bytes(value: &str) -> Result<Vec<u8>, &'static str> {
    let clean: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(clean.as_bytes())
        .map_err(|_| "is not valid base64")
}

/// Judge0's decimal text of seconds (`"0.012"`).
fn seconds_text(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// A limit as Ruby prints a decimal (`5.0`, `2.5`).
fn decimal_text(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Judge0's time format: RFC 3339 with milliseconds and `Z`.
fn judge0_time(rfc3339: &str) -> Value {
    use time::format_description::well_known::Rfc3339;
    match time::OffsetDateTime::parse(rfc3339, &Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            Value::String(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            ))
        }
        Err(_) => Value::Null,
    }
}

/// A submission as Judge0 serialises it: the requested fields, text fields base64-encoded
/// when asked.
pub fn view(run: &Run, rec: &Record, base64: bool, fields: &[&str]) -> Value {
    let text = |s: Option<&str>| -> Value {
        match s {
            None => Value::Null,
            Some(s) if base64 => Value::String(encode64(s)),
            Some(s) => Value::String(s.to_string()),
        }
    };
    let nonempty = |s: &str| (!s.is_empty()).then_some(s.to_string());
    let finished = run.status == RunStatus::Finished;
    let compiled_out = run.verdict == Some(Verdict::CompileError);
    let status = status_id(run, rec.expected_output.as_deref());
    let ran = finished && !compiled_out;
    let language = available()
        .find(|(f, _)| f.judge0_ids.contains(&rec.language_id))
        .map(|(_, l)| json!({ "id": rec.language_id, "name": name_of(l) }))
        .unwrap_or(Value::Null);
    let mut out = Map::new();
    for field in fields {
        let v = match *field {
            "source_code" => text(run.code.as_deref().or_else(|| {
                let files = run.files.as_deref()?;
                let main = run.main.as_deref();
                files
                    .iter()
                    .find(|f| Some(f.name.as_str()) == main)
                    .or(files.first())
                    .map(|f| f.content.as_str())
            })),
            "additional_files" => rec
                .additional_files
                .clone()
                .map_or(Value::Null, Value::String),
            "language_id" => json!(rec.language_id),
            "stdin" => text(run.stdin.as_deref().and_then(nonempty).as_deref()),
            "expected_output" => text(rec.expected_output.as_deref()),
            "stdout" => text(nonempty(&run.stdout).as_deref()),
            "stderr" => text(nonempty(&run.stderr).as_deref()),
            "compile_output" => text(nonempty(&run.compile_output).as_deref()),
            "message" => text(message_of(run).as_deref()),
            "status_id" => json!(status),
            "status" => status_json(status),
            "language" => language.clone(),
            "created_at" => judge0_time(&run.created_at),
            "finished_at" => run
                .finished_at
                .as_deref()
                .map(judge0_time)
                .unwrap_or(Value::Null),
            "time" => match (ran, run.cpu_time_ms.or(run.time_ms)) {
                (true, Some(ms)) => json!(seconds_text(ms)),
                _ => Value::Null,
            },
            "wall_time" => match (ran, run.time_ms) {
                (true, Some(ms)) => json!(seconds_text(ms)),
                _ => Value::Null,
            },
            "memory" => match (ran, run.memory_kb) {
                (true, Some(kb)) => json!(kb),
                _ => Value::Null,
            },
            "token" => json!(token_of(&run.id)),
            "number_of_runs" => json!(1),
            "cpu_time_limit" => json!(decimal_text(rec.cpu_time_limit)),
            "cpu_extra_time" => json!("0.0"),
            "wall_time_limit" => json!(decimal_text(rec.wall_time_limit)),
            "memory_limit" => json!(rec.memory_limit),
            // Judge0 reads isolate's exit code, 0 when the program did not exit itself
            // (killed by a signal or a limit).
            "exit_code" => match ran {
                true => json!(run.exit_code.unwrap_or(0)),
                false => Value::Null,
            },
            "exit_signal" => match ran {
                true => run
                    .signal
                    .as_deref()
                    .and_then(signal_number)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                false => Value::Null,
            },
            "enable_per_process_and_thread_time_limit"
            | "enable_per_process_and_thread_memory_limit"
            | "redirect_stderr_to_stdout"
            | "enable_network" => json!(false),
            _ => Value::Null,
        };
        out.insert((*field).to_string(), v);
    }
    Value::Object(out)
}

/// The query parameters Judge0's submission routes read.
#[derive(Deserialize, Default)]
struct SubmissionQuery {
    base64_encoded: Option<String>,
    wait: Option<String>,
    fields: Option<String>,
    tokens: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref() == Some("true")
}

/// Field errors in Judge0's 422 shape: `{"field": ["message", ..]}`.
#[derive(Default)]
struct Invalid(Map<String, Value>);

impl Invalid {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        let list = self
            .0
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(a) = list {
            a.push(Value::String(message.into()));
        }
    }
}

/// A number as Rails reads a parameter: a JSON number or numeric text; `None` when absent
/// or null, `Err` when it is something else.
fn number(body: &Value, field: &str) -> Result<Option<f64>, ()> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// A text parameter; numbers and booleans as their text, like Rails.
fn text_param(body: &Value, field: &str) -> Option<String> {
    match body.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn truthy(body: &Value, field: &str) -> bool {
    match body.get(field) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1" | "t"),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        _ => false,
    }
}

/// A checked submission: the program to run and what Judge0 keeps beside it.
struct Checked {
    program: Program,
    record: Record,
}

/// Checks one submission as Judge0's model validates it, within our caps; Judge0's 422
/// body when it is refused.
fn check(state: &AppState, body: &Value, base64: bool) -> Result<Checked, Value> {
    let mut bad = Invalid::default();
    let decoded = |field: &str, bad: &mut Invalid| -> Option<String> {
        let raw = text_param(body, field)?;
        if !base64 {
            return Some(raw);
        }
        match decode64(&raw) {
            Ok(s) => Some(s),
            Err(m) => {
                bad.add(field, m);
                None
            }
        }
    };
    let source = decoded("source_code", &mut bad);
    let stdin = decoded("stdin", &mut bad);
    let expected = decoded("expected_output", &mut bad);
    if source.as_deref().is_none_or(|s| s.trim().is_empty()) && !bad.0.contains_key("source_code") {
        bad.add("source_code", "can't be blank");
    }
    let lang = match number(body, "language_id") {
        Ok(None) => {
            bad.add("language_id", "can't be blank");
            None
        }
        Ok(Some(id)) => match (id.fract() == 0.0 && id >= 0.0)
            .then(|| by_id(id as u32))
            .flatten()
        {
            Some((_, l)) => Some((id as u32, l)),
            None => {
                bad.add(
                    "language_id",
                    format!(
                        "language with id {} doesn't exist",
                        text_param(body, "language_id").unwrap_or_default()
                    ),
                );
                None
            }
        },
        Err(()) => {
            bad.add("language_id", "is not a number");
            None
        }
    };
    // Features this server does not offer, refused with Judge0's own words for a Judge0
    // configured without them.
    let blank = |f: &str| text_param(body, f).is_none_or(|s| s.trim().is_empty());
    if !blank("compiler_options") {
        bad.add(
            "compiler_options",
            "setting compiler options is not allowed",
        );
    }
    let args = command_line(text_param(body, "command_line_arguments").as_deref());
    let args = match args {
        Ok(a) => a,
        Err(m) => {
            bad.add("command_line_arguments", m);
            vec![]
        }
    };
    if !blank("callback_url") {
        bad.add("callback_url", "setting callback is not allowed");
    }
    let zipped = text_param(body, "additional_files").filter(|s| !s.trim().is_empty());
    if truthy(body, "enable_network") {
        bad.add("enable_network", "enabling network is not allowed");
    }
    for f in [
        "enable_per_process_and_thread_time_limit",
        "enable_per_process_and_thread_memory_limit",
        "redirect_stderr_to_stdout",
    ] {
        if truthy(body, f) {
            bad.add(f, "this option cannot be enabled");
        }
    }
    for f in [
        "cpu_extra_time",
        "stack_limit",
        "max_processes_and_or_threads",
        "max_file_size",
    ] {
        match number(body, f) {
            Ok(None) => {}
            Ok(Some(_)) => bad.add(f, "setting this limit is not supported on this server"),
            Err(()) => bad.add(f, "is not a number"),
        }
    }
    match number(body, "number_of_runs") {
        Ok(None) => {}
        Ok(Some(n)) if n > 1.0 => bad.add("number_of_runs", "must be less than or equal to 1"),
        Ok(Some(n)) if n <= 0.0 => bad.add("number_of_runs", "must be greater than 0"),
        Ok(Some(_)) => {}
        Err(()) => bad.add("number_of_runs", "is not a number"),
    }
    // Limits: from the run service's least values up to the caps. Judge0's CPU and wall
    // time limits both bound the run's time here (the engine limits wall-clock time):
    // the smaller one applies.
    let mut record = Record::default();
    let (mut time_ms, mut memory_mb) = (None, None);
    if let Some((id, l)) = lang {
        let c = caps(state, l);
        record.language_id = id;
        record.cpu_time_limit = secs(c.run_ms);
        record.wall_time_limit = secs(c.run_ms);
        record.memory_limit = c.memory_mb * 1024;
        for (f, min, max) in [
            ("cpu_time_limit", secs(c.min_run_ms), secs(c.run_ms)),
            ("wall_time_limit", secs(c.min_run_ms), secs(c.run_ms)),
            (
                "memory_limit",
                (c.min_memory_mb * 1024) as f64,
                (c.memory_mb * 1024) as f64,
            ),
        ] {
            match number(body, f) {
                Ok(None) => {}
                Ok(Some(v)) if v > max => bad.add(
                    f,
                    format!("must be less than or equal to {}", ruby_number(max)),
                ),
                Ok(Some(v)) if v < min => bad.add(
                    f,
                    format!("must be greater than or equal to {}", ruby_number(min)),
                ),
                Ok(Some(v)) => match f {
                    "memory_limit" => {
                        record.memory_limit = v.ceil() as u64;
                        memory_mb = Some((v / 1024.0).ceil() as u64);
                    }
                    _ => {
                        if f == "cpu_time_limit" {
                            record.cpu_time_limit = v;
                        } else {
                            record.wall_time_limit = v;
                        }
                        let ms = (v * 1000.0).ceil() as u64;
                        time_ms = Some(time_ms.map_or(ms, |t: u64| t.min(ms)));
                    }
                },
                Err(()) => bad.add(f, "is not a number"),
            }
        }
    }
    if !bad.0.is_empty() {
        return Err(Value::Object(bad.0));
    }
    let (Some(code), Some((_, language))) = (source, lang) else {
        return Err(json!({ "source_code": ["can't be blank"] }));
    };
    let source = match &zipped {
        None => Source::Code(code),
        Some(zip) => {
            let budget = state
                .engine
                .config()
                .max_code_bytes
                .saturating_sub(code.len());
            let extra = unzip(zip, language.source_file, budget)
                .map_err(|m| json!({ "additional_files": [m] }))?;
            let mut files = vec![SourceFile {
                name: language.source_file.to_string(),
                content: code,
            }];
            files.extend(extra);
            Source::Files(files)
        }
    };
    record.additional_files = zipped;
    record.expected_output = expected;
    Ok(Checked {
        program: Program {
            language,
            source,
            args,
            time_ms,
            memory_mb,
            stdin: stdin.unwrap_or_default(),
        },
        record,
    })
}

/// Judge0's `additional_files`: base64 of a zip whose files are put beside the source
/// file (`main_name`). Read with bounds the archive cannot stretch: at most
/// `MAX_FILES - 1` files, at most `budget` bytes unpacked in all (counted while
/// inflating, whatever the archive claims), names by the run API's rules (one directory
/// level, no `..`, no absolute paths), no links, text only. Directory entries are
/// skipped. The message says what is wrong, in Judge0's error shape.
fn unzip(b64: &str, main_name: &str, budget: usize) -> Result<Vec<SourceFile>, String> {
    use std::io::Read;
    let bytes = decode64_bytes(b64)?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|_| "is not a zip archive".to_string())?;
    let most = crate::server::runs::program::MAX_FILES - 1;
    if archive.len() > most * 4 {
        return Err(format!(
            "has {} entries; at most {most} files are allowed",
            archive.len()
        ));
    }
    let mut files: Vec<SourceFile> = Vec::new();
    let mut used = 0usize;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("has an entry that cannot be read ({e})"))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        if entry.is_symlink() {
            return Err(format!(
                "contains \"{name}\", a link (only files are allowed)"
            ));
        }
        if let Some(problem) = crate::model::file_name_problem(&name) {
            return Err(format!(
                "contains \"{name}\", which is not allowed: {problem}"
            ));
        }
        if name == main_name {
            return Err(format!("contains \"{name}\", the name of the source file"));
        }
        if files.len() == most {
            return Err(format!("has more than {most} files"));
        }
        let mut content = Vec::new();
        let left = budget - used;
        (&mut entry)
            .take(left as u64 + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("has an entry that cannot be read ({e})"))?;
        if content.len() > left {
            return Err(format!(
                "unpacks to more than {budget} bytes (with the source code, a program has at most MAX_CODE_BYTES)"
            ));
        }
        used += content.len();
        let content = String::from_utf8(content).map_err(|_| {
            format!("contains \"{name}\", which is not text (only text files are allowed)")
        })?;
        files.push(SourceFile { name, content });
    }
    Ok(files)
}

/// Judge0's `command_line_arguments` as the program's arguments. Judge0 strips the text,
/// deletes `$ & ; < > | \``, and lets bash split the rest after the run command; here the
/// same text is split into words as a shell splits them (quotes and backslashes), with
/// no expansion (no globs, braces or `~`).
fn command_line(text: Option<&str>) -> Result<Vec<String>, &'static str> {
    let Some(text) = text else { return Ok(vec![]) };
    if text.chars().count() > 512 {
        return Err("is too long (maximum is 512 characters)");
    }
    let kept: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, '$' | '&' | ';' | '<' | '>' | '|' | '`'))
        .collect();
    crate::model::split_args(&kept).ok_or("has a quote that is not closed")
}

/// A number as Rails prints it in a validation message (`15`, `2.5`).
fn ruby_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn unprocessable(v: Value) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(v)).into_response()
}

/// The JSON body of a request, or Judge0's answer to one that is not JSON.
fn body_json(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, (StatusCode, &'static str)> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err((StatusCode::BAD_REQUEST, "the body is not a JSON object")),
    }
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<SubmissionQuery>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let policy = crate::server::rest::policy(&state, &caller);
    let fields = match requested_fields(q.fields.as_deref()) {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let base64 = flag(&q.base64_encoded);
    let body = match body_json(&headers, &bytes) {
        Ok(b) => b,
        Err((status, m)) => return error(status, m),
    };
    let checked = match check(&state, &body, base64) {
        Ok(c) => c,
        Err(v) => return unprocessable(v),
    };
    let req = match new_run(checked.program) {
        Ok(r) => r,
        Err(e) => return refusal(e.into(), policy, |m| json!({ "error": m })),
    };
    let submitted = match state.runs.submit(&caller, req).await {
        Ok(s) => s,
        Err(r) => return refusal(r, policy, |m| json!({ "error": m })),
    };
    let id = submitted.live.snapshot().id;
    if let Err(e) = save_record(&state, &id, &checked.record).await {
        // Without its record the run could not be judged as asked: it is not run at all.
        state.runs.stop(&id, &caller.owner()).await;
        return refusal(e.into(), policy, |m| json!({ "error": m }));
    }
    let res = if flag(&q.wait) {
        let run = submitted.live.wait().await;
        (
            StatusCode::CREATED,
            Json(view(&run, &checked.record, base64, &fields)),
        )
            .into_response()
    } else {
        (StatusCode::CREATED, Json(json!({ "token": token_of(&id) }))).into_response()
    };
    crate::server::rest::with_quota_headers(res, submitted.quota, policy)
}

/// The run behind a token, if the caller owns it.
async fn find(state: &AppState, owner: &Owner, token: &str) -> Option<Run> {
    let id = run_id_of(token)?;
    state.runs.get(&id, owner).await
}

async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(token): Path<String>,
    Query(q): Query<SubmissionQuery>,
) -> Response {
    let fields = match requested_fields(q.fields.as_deref()) {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let Some(run) = find(&state, &caller.owner(), &token).await else {
        return not_found();
    };
    let rec = load_record(&state, &run).await;
    Json(view(&run, &rec, flag(&q.base64_encoded), &fields)).into_response()
}

async fn destroy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(token): Path<String>,
    Query(q): Query<SubmissionQuery>,
) -> Response {
    let policy = crate::server::rest::policy(&state, &caller);
    let fields = match requested_fields(q.fields.as_deref()) {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let Some(run) = find(&state, &caller.owner(), &token).await else {
        return not_found();
    };
    if caller.is_guest() {
        return error(
            StatusCode::BAD_REQUEST,
            "delete not allowed: a guest's submissions expire on their own; sign in (X-Auth-Token) to keep and delete submissions",
        );
    }
    let status = status_id(&run, None);
    if status <= 2 {
        let (_, name) = STATUSES[(status - 1) as usize];
        return error(
            StatusCode::BAD_REQUEST,
            &format!("submission cannot be deleted because its status is {status} ({name})"),
        );
    }
    let rec = load_record(&state, &run).await;
    if let Err(e) = state.runs.delete(&caller, &run.id).await {
        return refusal(e.into(), policy, |m| json!({ "error": m }));
    }
    if let Ok(mut conn) = state.redis.conn().await {
        let _: Result<(), _> = conn.del(record_key(&run.id)).await;
    }
    // Judge0 answers a deletion in base64, whatever was asked, so that any output can be
    // returned.
    Json(view(&run, &rec, true, &fields)).into_response()
}

/// Judge0's refusal of a batch (of submissions or of tokens) of `n`, if it is one.
fn batch_size_refused(n: usize) -> Option<Response> {
    if n > MAX_BATCH {
        return Some(error(
            StatusCode::BAD_REQUEST,
            &format!(
                "number of submissions in a batch should be less than or equal to {MAX_BATCH}"
            ),
        ));
    }
    (n == 0).then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "there should be at least one submission in a batch",
        )
    })
}

async fn batch_create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<SubmissionQuery>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let policy = crate::server::rest::policy(&state, &caller);
    let base64 = flag(&q.base64_encoded);
    let body = match body_json(&headers, &bytes) {
        Ok(b) => b,
        Err((status, m)) => return error(status, m),
    };
    let items = body
        .get("submissions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(refused) = batch_size_refused(items.len()) {
        return refused;
    }
    let mut answers = Vec::with_capacity(items.len());
    let mut accepted: Vec<Arc<LiveRun>> = Vec::new();
    let mut quota = None;
    for item in &items {
        let checked = match check(&state, item, base64) {
            Ok(c) => c,
            Err(v) => {
                answers.push(v);
                continue;
            }
        };
        let req = match new_run(checked.program) {
            Ok(r) => r,
            Err(e) => {
                answers.push(json!({ "error": e.to_string() }));
                continue;
            }
        };
        match submit_in_turn(&state.runs, &caller, req, &accepted).await {
            Ok(s) => {
                let id = s.live.snapshot().id;
                if let Err(e) = save_record(&state, &id, &checked.record).await {
                    state.runs.stop(&id, &caller.owner()).await;
                    answers.push(json!({ "error": e.to_string() }));
                    continue;
                }
                quota = s.quota.or(quota);
                answers.push(json!({ "token": token_of(&id) }));
                accepted.push(s.live);
            }
            // Nothing accepted yet: the refusal (quota, queue full) is the answer.
            Err(r) if accepted.is_empty() => return refusal(r, policy, |m| json!({ "error": m })),
            Err(r) => {
                quota = r.quota.or(quota);
                answers.push(json!({ "error": r.error.to_string() }));
            }
        }
    }
    let status = if accepted.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::CREATED
    };
    crate::server::rest::with_quota_headers((status, Json(answers)).into_response(), quota, policy)
}

async fn batch_show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<SubmissionQuery>,
    headers: HeaderMap,
) -> Response {
    let fields = match requested_fields(q.fields.as_deref()) {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let tokens = headers
        .get("tokens")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(q.tokens.clone())
        .unwrap_or_default();
    let tokens: Vec<&str> = tokens.trim().split(',').filter(|t| !t.is_empty()).collect();
    if let Some(refused) = batch_size_refused(tokens.len()) {
        return refused;
    }
    let owner = caller.owner();
    let base64 = flag(&q.base64_encoded);
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        match find(&state, &owner, t).await {
            Some(run) => {
                let rec = load_record(&state, &run).await;
                out.push(view(&run, &rec, base64, &fields));
            }
            None => out.push(Value::Null),
        }
    }
    Json(json!({ "submissions": out })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(verdict: Verdict, stdout: &str, signal: Option<&str>) -> Run {
        Run {
            status: RunStatus::Finished,
            verdict: Some(verdict),
            stdout: stdout.into(),
            signal: signal.map(String::from),
            exit_code: Some(0),
            ..Run::new("0123456789abcdef0123456789abcdef", "python", "")
        }
    }

    #[test]
    fn outputs_are_compared_as_judge0_compares_them() {
        let run = finished(Verdict::Ok, "Hello, Bob!  \n\n", None);
        assert_eq!(status_id(&run, None), 3);
        assert_eq!(status_id(&run, Some("Hello, Bob!")), 3);
        assert_eq!(status_id(&run, Some("Hello, Bob!\t\n")), 3);
        assert_eq!(status_id(&run, Some("Hello, Bob")), 4);
        // Leading whitespace counts.
        assert_eq!(status_id(&run, Some(" Hello, Bob!")), 4);
        // Trailing spaces of every line are ignored, not inner ones.
        let run = finished(Verdict::Ok, "a  \nb\n", None);
        assert_eq!(status_id(&run, Some("a\nb")), 3);
        assert_eq!(status_id(&run, Some("a\n\nb")), 4);
        // No output is null in Judge0: only "no expected output" matches it.
        let run = finished(Verdict::Ok, "", None);
        assert_eq!(status_id(&run, Some("")), 4);
        assert_eq!(status_id(&run, None), 3);
    }

    #[test]
    fn verdicts_map_to_judge0_statuses() {
        let mut run = Run::new("x", "python", "");
        assert_eq!(status_id(&run, None), 1);
        run.status = RunStatus::Running;
        assert_eq!(status_id(&run, None), 2);
        for (v, sig, id) in [
            (Verdict::TimeLimit, Some("SIGKILL"), 5),
            (Verdict::CompileError, None, 6),
            (Verdict::RuntimeError, Some("SIGSEGV"), 7),
            (Verdict::RuntimeError, Some("SIGXFSZ"), 8),
            (Verdict::RuntimeError, Some("SIGFPE"), 9),
            (Verdict::RuntimeError, Some("SIGABRT"), 10),
            (Verdict::RuntimeError, None, 11),
            (Verdict::RuntimeError, Some("SIGKILL"), 12),
            (Verdict::MemoryLimit, Some("SIGKILL"), 12),
            (Verdict::OutputLimit, None, 8),
            (Verdict::InternalError, None, 13),
            (Verdict::Stopped, None, 13),
        ] {
            assert_eq!(
                status_id(&finished(v, "", sig), Some("x")),
                id,
                "{v:?} {sig:?}"
            );
        }
    }

    #[test]
    fn base64_is_written_as_ruby_writes_it_and_read_leniently() {
        assert_eq!(encode64("hello"), "aGVsbG8=\n");
        let long = "x".repeat(50);
        let enc = encode64(&long);
        assert_eq!(enc.lines().next().map(str::len), Some(60));
        assert!(enc.ends_with('\n'));
        assert_eq!(decode64(&enc).as_deref(), Ok(long.as_str()));
        assert_eq!(decode64("aGVsbG8").as_deref(), Ok("hello"));
        assert!(decode64("not base64!").is_err());
        assert!(decode64("/w==").is_err(), "0xff is not UTF-8");
    }

    #[test]
    fn fields_are_chosen_as_judge0_chooses_them() {
        assert_eq!(requested_fields(None).ok(), Some(DEFAULT_FIELDS.to_vec()));
        assert_eq!(
            requested_fields(Some("*")).ok().map(|f| f.len()),
            Some(FIELDS.len())
        );
        assert_eq!(
            requested_fields(Some("stdout,token")).ok(),
            Some(vec!["stdout", "token"])
        );
        assert!(requested_fields(Some("stdout,nope")).is_err());
    }

    #[test]
    fn tokens_are_uuids_of_run_ids() {
        let id = "0123456789ab4def8123456789abcdef";
        let t = token_of(id);
        assert_eq!(t, "01234567-89ab-4def-8123-456789abcdef");
        assert_eq!(run_id_of(&t).as_deref(), Some(id));
        assert_eq!(run_id_of(id).as_deref(), Some(id));
        assert_eq!(run_id_of("../x"), None);
    }

    #[test]
    fn units_are_judge0_units() {
        assert_eq!(seconds_text(12), "0.012");
        assert_eq!(seconds_text(1500), "1.500");
        assert_eq!(decimal_text(5.0), "5.0");
        assert_eq!(decimal_text(2.5), "2.5");
        assert_eq!(
            judge0_time("2026-11-26T21:45:46Z"),
            json!("2026-11-26T21:45:46.000Z")
        );
    }
}
