//! Runs as the API sees them: validated, queued, executed in the background, observable
//! while they run (events), stoppable, and kept in Redis so that any app instance can
//! answer for them. REST handlers and server functions both come through here.

use crate::error::AppError;
use crate::model::{Run, RunStatus, Verdict};
use crate::server::redis::Redis;
use crate::server::sandbox::{self, Engine, Event, Outcome, Refusal};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Who a run belongs to: a guest cookie or a user id. Only the owner may see it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Owner {
    Guest(String),
    User(String),
}

/// What a run request carries.
#[derive(Clone, Debug, Deserialize)]
pub struct NewRun {
    pub language: String,
    pub code: String,
    #[serde(default)]
    pub stdin: Option<String>,
}

/// One message of the live event stream of a run.
#[derive(Clone, Debug, PartialEq)]
pub enum RunEvent {
    Status(RunStatus),
    Stdout(String),
    Stderr(String),
    /// The last event: the finished run.
    Result(Box<Run>),
}

/// A run this process is executing or has just finished.
pub struct LiveRun {
    pub owner: Owner,
    run: RwLock<Run>,
    events: broadcast::Sender<RunEvent>,
    cancel: CancellationToken,
    finished: watch::Sender<bool>,
}

impl LiveRun {
    /// The run as it is now.
    pub fn snapshot(&self) -> Run {
        self.run
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Everything that happened so far as events, plus a receiver for what comes next,
    /// taken together so that nothing is missed or repeated.
    pub fn subscribe(&self) -> (Vec<RunEvent>, Option<broadcast::Receiver<RunEvent>>) {
        let run = self.run.read().unwrap_or_else(|p| p.into_inner());
        let mut past = vec![RunEvent::Status(run.status)];
        if run.status == RunStatus::Finished {
            past.push(RunEvent::Result(Box::new(run.clone())));
            return (past, None);
        }
        if !run.stdout.is_empty() {
            past.push(RunEvent::Stdout(run.stdout.clone()));
        }
        if !run.stderr.is_empty() {
            past.push(RunEvent::Stderr(run.stderr.clone()));
        }
        (past, Some(self.events.subscribe()))
    }

    /// Waits until the run has finished and returns it.
    pub async fn wait(&self) -> Run {
        let mut rx = self.finished.subscribe();
        let _ = rx.wait_for(|done| *done).await;
        self.snapshot()
    }

    fn update(&self, f: impl FnOnce(&mut Run) -> Option<RunEvent>) {
        let mut run = self.run.write().unwrap_or_else(|p| p.into_inner());
        if let Some(ev) = f(&mut run) {
            // Sent under the lock so that `subscribe` sees a consistent cut.
            let _ = self.events.send(ev);
        }
    }
}

/// Something to do with a run once it has finished (saving it for a user, say).
pub type FinishHook =
    Arc<dyn Fn(Owner, Run) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// The run service.
pub struct Runs {
    engine: Arc<Engine>,
    redis: Arc<Redis>,
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
    state_ttl: u64,
    on_finish: RwLock<Vec<FinishHook>>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    owner: Owner,
    run: Run,
}

/// How long a finished run stays in process memory (Redis keeps it longer).
const KEEP_FINISHED: Duration = Duration::from_secs(600);

impl Runs {
    pub fn new(engine: Arc<Engine>, redis: Arc<Redis>, state_ttl: u64) -> Arc<Runs> {
        Arc::new(Runs {
            engine,
            redis,
            live: Mutex::new(HashMap::new()),
            state_ttl,
            on_finish: RwLock::new(Vec::new()),
        })
    }

    /// The engine behind the service.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Registers work to do after every finished run.
    pub fn on_finish(&self, hook: FinishHook) {
        if let Ok(mut hooks) = self.on_finish.write() {
            hooks.push(hook);
        }
    }

    /// Checks a request without side effects: language, sizes, empty code.
    pub fn validate(&self, req: &NewRun) -> Result<&'static sandbox::Language, AppError> {
        let cfg = self.engine.config();
        let lang = sandbox::find_language(&req.language).ok_or_else(|| {
            let known: Vec<&str> = sandbox::LANGUAGES.iter().map(|l| l.id).collect();
            AppError::invalid(
                "unknown_language",
                format!(
                    "Unknown language \"{}\". Choose one of: {}.",
                    req.language,
                    known.join(", ")
                ),
            )
        })?;
        if req.code.len() > cfg.max_code_bytes {
            return Err(AppError::PayloadTooLarge(format!(
                "The code is {} bytes; the limit is {} bytes.",
                req.code.len(),
                cfg.max_code_bytes
            )));
        }
        let stdin = req.stdin.as_deref().unwrap_or("");
        if stdin.len() > cfg.max_stdin_bytes {
            return Err(AppError::PayloadTooLarge(format!(
                "The input is {} bytes; the limit is {} bytes.",
                stdin.len(),
                cfg.max_stdin_bytes
            )));
        }
        if req.code.trim().is_empty() {
            return Err(AppError::invalid("empty_code", "There is no code to run."));
        }
        if req.code.contains('\0') {
            return Err(AppError::invalid(
                "invalid_code",
                "The code contains a NUL character.",
            ));
        }
        Ok(lang)
    }

    /// Accepts a run and starts it in the background; returns at once.
    pub async fn submit(
        self: &Arc<Self>,
        owner: Owner,
        req: NewRun,
    ) -> Result<Arc<LiveRun>, AppError> {
        let lang = self.validate(&req)?;
        let ticket = self.engine.admit().await.map_err(|r| match r {
            Refusal::Busy => AppError::unavailable("queue_full", r.to_string(), 5),
            Refusal::DockerDown => AppError::unavailable("docker_unavailable", r.to_string(), 10),
        })?;
        let run = Run {
            id: uuid::Uuid::new_v4().simple().to_string(),
            language: lang.id.to_string(),
            status: RunStatus::Queued,
            verdict: None,
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            compile_output: String::new(),
            time_ms: None,
            memory_kb: None,
            truncated: false,
            created_at: now_rfc3339(),
            finished_at: None,
        };
        let (events, _) = broadcast::channel(1024);
        let (finished, _) = watch::channel(false);
        let live = Arc::new(LiveRun {
            owner,
            run: RwLock::new(run.clone()),
            events,
            cancel: CancellationToken::new(),
            finished,
        });
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run.id.clone(), live.clone());
        self.persist(&live.owner, &run).await;

        let this = self.clone();
        let task_live = live.clone();
        let stdin = req.stdin.unwrap_or_default();
        tokio::spawn(async move {
            let on_event = |ev: Event| match ev {
                Event::Started => task_live.update(|r| {
                    r.status = RunStatus::Running;
                    Some(RunEvent::Status(RunStatus::Running))
                }),
                Event::Stdout(s) => task_live.update(|r| {
                    r.stdout.push_str(&s);
                    Some(RunEvent::Stdout(s))
                }),
                Event::Stderr(s) => task_live.update(|r| {
                    r.stderr.push_str(&s);
                    Some(RunEvent::Stderr(s))
                }),
            };
            // A panic inside the engine must still finish the run (as internal_error).
            let exec = std::panic::AssertUnwindSafe(this.engine.execute(
                ticket,
                lang,
                &req.code,
                &stdin,
                &on_event,
                &task_live.cancel,
            ));
            let outcome = futures::FutureExt::catch_unwind(exec)
                .await
                .unwrap_or_else(|_| {
                    tracing::error!("the engine panicked during a run");
                    Outcome {
                        verdict: Verdict::InternalError,
                        exit_code: None,
                        signal: None,
                        stdout: String::new(),
                        stderr: String::new(),
                        compile_output: String::new(),
                        time_ms: 0,
                        memory_kb: None,
                        truncated: false,
                    }
                });
            this.finish(&task_live, outcome).await;
        });
        Ok(live)
    }

    async fn finish(self: &Arc<Self>, live: &Arc<LiveRun>, o: Outcome) {
        let mut done = None;
        live.update(|r| {
            r.status = RunStatus::Finished;
            r.verdict = Some(o.verdict);
            r.exit_code = o.exit_code;
            r.signal = o.signal;
            r.stdout = o.stdout;
            r.stderr = o.stderr;
            r.compile_output = o.compile_output;
            r.time_ms = Some(o.time_ms);
            r.memory_kb = o.memory_kb;
            r.truncated = o.truncated;
            r.finished_at = Some(now_rfc3339());
            done = Some(r.clone());
            None
        });
        let Some(run) = done else { return };
        self.persist(&live.owner, &run).await;
        let hooks: Vec<FinishHook> = self.on_finish.read().map(|h| h.clone()).unwrap_or_default();
        for hook in hooks {
            hook(live.owner.clone(), run.clone()).await;
        }
        live.update(|_| Some(RunEvent::Result(Box::new(run.clone()))));
        let _ = live.finished.send(true);
        let this = self.clone();
        let id = run.id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_FINISHED).await;
            this.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
    }

    /// Writes the run's state to Redis. Best effort: a down Redis must not stop runs
    /// (users keep working); the in-process copy still answers.
    async fn persist(&self, owner: &Owner, run: &Run) {
        let Ok(mut conn) = self.redis.conn().await else {
            return;
        };
        let Ok(json) = serde_json::to_string(&Stored {
            owner: owner.clone(),
            run: run.clone(),
        }) else {
            return;
        };
        let res: Result<(), _> = conn.set_ex(state_key(&run.id), json, self.state_ttl).await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not store run state in Redis");
        }
    }

    /// The live run, if this process has it and `viewer` owns it.
    pub fn live(&self, id: &str, viewer: &Owner) -> Option<Arc<LiveRun>> {
        let map = self.live.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|l| &l.owner == viewer).cloned()
    }

    /// A run `viewer` owns, from this process or from Redis; `None` for anything else.
    pub async fn get(&self, id: &str, viewer: &Owner) -> Option<Run> {
        if let Some(l) = self.live(id, viewer) {
            return Some(l.snapshot());
        }
        if !is_run_id(id) {
            return None;
        }
        let mut conn = self.redis.conn().await.ok()?;
        let json: Option<String> = conn.get(state_key(id)).await.ok()?;
        let stored: Stored = serde_json::from_str(&json?).ok()?;
        (&stored.owner == viewer).then_some(stored.run)
    }

    /// Stops a queued or running run of `viewer`'s. Returns false when there is no such
    /// run here. A finished run stays as it was.
    pub fn stop(&self, id: &str, viewer: &Owner) -> bool {
        match self.live(id, viewer) {
            Some(l) => {
                l.cancel.cancel();
                true
            }
            None => false,
        }
    }
}

fn state_key(id: &str) -> String {
    format!("own-ide:run:{id}")
}

/// Run ids are 32 lowercase hex digits; anything else is not looked up anywhere.
pub fn is_run_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The current time as RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_checked() {
        assert!(is_run_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_run_id("../etc/passwd"));
        assert!(!is_run_id("0123456789ABCDEF0123456789abcdef"));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert!(
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).is_ok(),
            "{t}"
        );
    }
}
