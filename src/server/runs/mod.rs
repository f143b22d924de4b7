//! Runs as the API sees them: validated, queued, executed in the background, observable
//! while they run (events), stoppable, and kept in Redis so that any app instance can
//! answer for them. REST handlers and server functions both come through here.

use crate::error::AppError;
use crate::model::{QuotaInfo, Run, RunStatus, Verdict};
use crate::server::auth::Caller;
use crate::server::quota::{self, Quota};
use crate::server::redis::Redis;
use crate::server::sandbox::{self, Engine, Event, Outcome, Refusal};
use crate::server::store::RunStore;
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

/// The run service.
pub struct Runs {
    engine: Arc<Engine>,
    redis: Arc<Redis>,
    quota: Arc<Quota>,
    store: Arc<RunStore>,
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
    state_ttl: u64,
}

/// An accepted run, with the guest's quota after counting it (`None` for users).
pub struct Submitted {
    pub live: Arc<LiveRun>,
    pub quota: Option<QuotaInfo>,
}

/// A refused run, with the guest's quota where it is known (for the rate-limit headers).
#[derive(Debug)]
pub struct Refused {
    pub error: AppError,
    pub quota: Option<QuotaInfo>,
}

impl From<AppError> for Refused {
    fn from(error: AppError) -> Refused {
        Refused { error, quota: None }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    owner: Owner,
    run: Run,
}

/// How long a finished run stays in process memory (Redis keeps it longer).
const KEEP_FINISHED: Duration = Duration::from_secs(600);

impl Runs {
    pub fn new(
        engine: Arc<Engine>,
        redis: Arc<Redis>,
        quota: Arc<Quota>,
        store: Arc<RunStore>,
        state_ttl: u64,
    ) -> Arc<Runs> {
        let runs = Arc::new(Runs {
            engine,
            redis,
            quota,
            store,
            live: Mutex::new(HashMap::new()),
            state_ttl,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(listen_for_stops(Arc::downgrade(&runs)));
        }
        runs
    }

    /// The engine behind the service.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The guest quota.
    pub fn quota(&self) -> &Arc<Quota> {
        &self.quota
    }

    /// The history store.
    pub fn store(&self) -> &Arc<RunStore> {
        &self.store
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

    /// Accepts a run and starts it in the background; returns at once. In order: the
    /// request is checked, a place in the queue is reserved, and only then is a guest's
    /// quota counted, so that a refused run never costs the guest anything.
    pub async fn submit(
        self: &Arc<Self>,
        caller: &Caller,
        req: NewRun,
    ) -> Result<Submitted, Refused> {
        let lang = self.validate(&req)?;
        let ticket = self.engine.admit().await.map_err(|r| match r {
            Refusal::Busy => AppError::unavailable("queue_full", r.to_string(), 5),
            Refusal::DockerDown => AppError::unavailable("docker_unavailable", r.to_string(), 10),
        })?;
        let quota = match caller {
            Caller::Guest { guest_id, ip } => {
                let d = self.quota.take(guest_id, *ip).await?;
                if !d.allowed {
                    return Err(Refused {
                        error: quota::exhausted(&d.info),
                        quota: Some(d.info),
                    });
                }
                Some(d.info)
            }
            Caller::User { .. } => None,
        };
        let owner = caller.owner();
        let is_user = matches!(owner, Owner::User(_));
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
            code: is_user.then(|| req.code.clone()),
            stdin: is_user.then(|| req.stdin.clone().unwrap_or_default()),
            saved: None,
        };
        let (events, _) = broadcast::channel(1024);
        let (finished, _) = watch::channel(false);
        let live = Arc::new(LiveRun {
            owner: owner.clone(),
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
        // A user's run is in the history from the start; the final state replaces it.
        let first_save = match &owner {
            Owner::User(user_id) => {
                let (store, user_id, run) = (self.store.clone(), user_id.clone(), run.clone());
                Some(tokio::spawn(
                    async move { store.save(&user_id, &run).await },
                ))
            }
            Owner::Guest(_) => None,
        };
        tokio::spawn(async move {
            // "running" goes to Redis too (for other instances), from its own task, which
            // is awaited before the final state is written so that it cannot land after.
            let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Run>();
            let started_tx = Mutex::new(Some(started_tx));
            let persist_running = tokio::spawn({
                let (this, owner) = (this.clone(), task_live.owner.clone());
                async move {
                    if let Ok(run) = started_rx.await {
                        this.persist(&owner, &run).await;
                    }
                }
            });
            let on_event = |ev: Event| match ev {
                Event::Started => task_live.update(|r| {
                    r.status = RunStatus::Running;
                    if let Some(tx) = started_tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        let _ = tx.send(r.clone());
                    }
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
                    Outcome::bare(Verdict::InternalError)
                });
            drop(started_tx);
            let _ = persist_running.await;
            // Whether the run is in the history already decides how the final state is
            // written: over the first copy only (a run deleted while it ran stays
            // deleted), or from scratch when the first write did not get through.
            let first_saved = match first_save {
                Some(first) => matches!(first.await, Ok(Ok(()))),
                None => false,
            };
            this.finish(&task_live, outcome, first_saved).await;
        });
        Ok(Submitted { live, quota })
    }

    async fn finish(self: &Arc<Self>, live: &Arc<LiveRun>, o: Outcome, first_saved: bool) {
        let mut run = live.snapshot();
        run.status = RunStatus::Finished;
        run.verdict = Some(o.verdict);
        run.exit_code = o.exit_code;
        run.signal = o.signal;
        run.stdout = o.stdout;
        run.stderr = o.stderr;
        run.compile_output = o.compile_output;
        run.time_ms = Some(o.time_ms);
        run.memory_kb = o.memory_kb;
        run.truncated = o.truncated;
        run.finished_at = Some(now_rfc3339());
        let mut deleted = false;
        if let Owner::User(user_id) = &live.owner {
            // A run that cannot be kept is reported as such, never dropped silently.
            let written = if first_saved {
                self.store.save_existing(user_id, &run).await
            } else {
                self.store.save(user_id, &run).await.map(|()| true)
            };
            run.saved = Some(matches!(written, Ok(true)));
            match written {
                Ok(true) => {}
                // Its owner deleted it while it ran: nothing here brings it back.
                Ok(false) => deleted = true,
                Err(_) => {
                    tracing::error!(run = %run.id, user = %user_id, "could not save a finished run to the history (MongoDB unavailable)");
                }
            }
        }
        live.update(|r| {
            *r = run.clone();
            None
        });
        if !deleted {
            self.persist(&live.owner, &run).await;
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

    /// A run `viewer` owns, from this process, from Redis, or (a user's, once Redis has
    /// let it go) from the history; `None` for anything else.
    pub async fn get(&self, id: &str, viewer: &Owner) -> Option<Run> {
        if let Some(l) = self.live(id, viewer) {
            return Some(l.snapshot());
        }
        if !is_run_id(id) {
            return None;
        }
        if let Some(stored) = self.stored_in_redis(id).await {
            if &stored.owner == viewer {
                return Some(stored.run);
            }
            return None;
        }
        match viewer {
            Owner::User(user_id) => self.store.get(user_id, id).await.ok().flatten(),
            Owner::Guest(_) => None,
        }
    }

    /// Forgets a run of `viewer`'s everywhere but the history (after it was deleted there).
    /// A run still in progress here is stopped: its owner threw it away.
    pub async fn forget(&self, id: &str, viewer: &Owner) {
        {
            let mut map = self.live.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(id).is_some_and(|l| &l.owner == viewer) {
                if let Some(l) = map.remove(id) {
                    l.cancel.cancel();
                }
            }
        }
        if self
            .stored_in_redis(id)
            .await
            .is_some_and(|s| &s.owner == viewer)
        {
            if let Ok(mut conn) = self.redis.conn().await {
                let _: Result<(), _> = conn.del(state_key(id)).await;
            }
        }
    }

    async fn stored_in_redis(&self, id: &str) -> Option<Stored> {
        let mut conn = self.redis.conn().await.ok()?;
        let json: Option<String> = conn.get(state_key(id)).await.ok()?;
        serde_json::from_str(&json?).ok()
    }

    /// Stops a queued or running run of `viewer`'s, here or on another instance (asked
    /// through Redis). Returns false when `viewer` has no such run. A finished run stays
    /// as it was.
    pub async fn stop(&self, id: &str, viewer: &Owner) -> bool {
        if let Some(l) = self.live(id, viewer) {
            l.cancel.cancel();
            return true;
        }
        // Not executing here: its state in Redis says whose it is and whether it ended.
        match self.stored_in_redis(id).await {
            Some(s) if &s.owner == viewer => {
                if s.run.status != RunStatus::Finished {
                    if let Ok(mut conn) = self.redis.conn().await {
                        let sent: Result<u64, _> = conn.publish(STOP_CHANNEL, id).await;
                        if let Err(e) = sent {
                            tracing::warn!(run = id, error = %e, "could not ask the other instances to stop a run");
                        }
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Stops a run executing in this process, whoever asked (the instance that
    /// published the request has checked the owner).
    fn stop_here(&self, id: &str) {
        let map = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = map.get(id) {
            l.cancel.cancel();
        }
    }
}

/// The Redis channel on which instances ask each other to stop a run (payload: its id).
const STOP_CHANNEL: &str = "own-ide:stop";

/// Listens for stop requests from other instances while `runs` exists, reconnecting
/// after Redis goes away.
async fn listen_for_stops(runs: std::sync::Weak<Runs>) {
    loop {
        let Some(redis) = runs.upgrade().map(|r| r.redis.clone()) else {
            return;
        };
        if let Some(mut pubsub) = redis.pubsub().await {
            if pubsub.subscribe(STOP_CHANNEL).await.is_ok() {
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = futures::StreamExt::next(&mut messages).await {
                    let Some(runs) = runs.upgrade() else { return };
                    if let Ok(id) = msg.get_payload::<String>() {
                        runs.stop_here(&id);
                    }
                }
            }
        }
        drop(redis);
        tokio::time::sleep(Duration::from_secs(1)).await;
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
