//! Runs as the API sees them: validated, queued, executed in the background, observable
//! while they run (events), stoppable, and kept in Redis so that any app instance can
//! answer for them. REST handlers and server functions both come through here, one
//! service call per operation. `live` is a run executing in this process; `shared` is
//! what instances share through Redis.

mod cluster;
mod events;
mod live;
mod queue;
mod shared;

pub use live::{LiveRun, Numbered, RunEvent};
pub use queue::{Claimed, Job, Queue};

use crate::error::AppError;
use crate::model::{HistoryPage, QuotaInfo, Run, RunStatus, Verdict};
use crate::server::auth::{Caller, Owner};
use crate::server::config::Role;
use crate::server::heartbeat::RedisLiveness;
use crate::server::limits::{InFlight, Lease, UserRate};
use crate::server::quota::{self, Quota};
use crate::server::redis::Redis;
use crate::server::sandbox::{self, Engine, Event, Outcome, Refusal, Ticket};
use crate::server::store::{RunStore, MAX_PER_PAGE};
use events::EventStreams;
use futures::stream::{self, BoxStream, StreamExt};
use serde::Deserialize;
use shared::Shared;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::task::TaskTracker;

/// What a run request carries.
#[derive(Clone, Debug, Deserialize)]
pub struct NewRun {
    pub language: String,
    pub code: String,
    #[serde(default)]
    pub stdin: Option<String>,
}

/// The run service.
pub struct Runs {
    engine: Arc<Engine>,
    quota: Arc<Quota>,
    in_flight: InFlight,
    user_rate: UserRate,
    store: Arc<RunStore>,
    shared: Arc<Shared>,
    live: Mutex<HashMap<String, Arc<LiveRun>>>,
    /// The background task of every accepted run, so that shutdown can wait for their
    /// final writes.
    tasks: TaskTracker,
    /// Set when the process is shutting down: no new run is accepted.
    closing: AtomicBool,
    /// What this process does with runs: executes them here (`all`), queues them
    /// (`web`), or takes them from the queue (`executor`).
    role: Role,
    redis: Arc<Redis>,
    /// Each run's events in Redis, for every node.
    streams: Arc<EventStreams>,
    /// The cluster queue.
    queue: Arc<Queue>,
    /// Engine instances' heartbeats (an executor's consumer name is its instance id).
    liveness: RedisLiveness,
    /// Stops an executor's queue reader at shutdown.
    stop_reading: tokio_util::sync::CancellationToken,
}

/// The settings of the fair share between callers.
pub struct FairShare {
    /// Queued-or-running runs per user, per guest, per guests of one IP (0: no cap).
    pub in_flight: u32,
    /// Queued-or-running runs per IP block (0: no cap).
    pub in_flight_per_ip: u32,
    /// Runs per user per minute (0: no rate).
    pub user_runs_per_minute: u32,
    /// How long a run's state stays in Redis.
    pub state_ttl: u64,
    /// What this process does with runs.
    pub role: Role,
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

/// How long a finished run stays in process memory (Redis keeps it longer).
const KEEP_FINISHED: Duration = Duration::from_secs(600);

impl Runs {
    pub fn new(
        engine: Arc<Engine>,
        redis: Arc<Redis>,
        quota: Arc<Quota>,
        store: Arc<RunStore>,
        fair: FairShare,
    ) -> Arc<Runs> {
        let runs = Arc::new(Runs {
            engine,
            quota,
            in_flight: InFlight::new(redis.clone(), fair.in_flight, fair.in_flight_per_ip),
            user_rate: UserRate::new(redis.clone(), fair.user_runs_per_minute),
            store,
            shared: Arc::new(Shared::new(redis.clone(), fair.state_ttl)),
            live: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            closing: AtomicBool::new(false),
            role: fair.role,
            streams: Arc::new(EventStreams::new(redis.clone(), fair.state_ttl)),
            queue: Arc::new(Queue::new(redis.clone(), fair.state_ttl)),
            liveness: RedisLiveness::new(redis.clone()),
            redis,
            stop_reading: tokio_util::sync::CancellationToken::new(),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (shared, weak) = (runs.shared.clone(), Arc::downgrade(&runs));
            rt.spawn(async move {
                let alive = || weak.strong_count() > 0;
                let stop_here = |id: &str| {
                    if let Some(runs) = weak.upgrade() {
                        runs.stop_here(id);
                    }
                };
                shared.listen(alive, stop_here).await;
            });
            rt.spawn(write_pending_runs(Arc::downgrade(&runs)));
            if runs.role == Role::Executor {
                cluster::start_executor(&runs);
            }
        }
        runs
    }

    /// What this process does with runs.
    pub fn role(&self) -> Role {
        self.role
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
    /// request is checked, a place in the queue is reserved, a place among the caller's
    /// runs in flight is taken, and only then is a guest's quota (a user's rate) counted,
    /// so that a refused run never costs the caller anything.
    pub async fn submit(
        self: &Arc<Self>,
        caller: &Caller,
        req: NewRun,
    ) -> Result<Submitted, Refused> {
        let lang = self.validate(&req)?;
        if self.closing.load(Ordering::SeqCst) || self.role == Role::Executor {
            return Err(AppError::unavailable(
                "shutting_down",
                "This server is restarting. Please try again in a few seconds.",
                5,
            )
            .into());
        }
        if self.role == Role::Web {
            return self.submit_to_queue(caller, req, lang).await;
        }
        // Waiting runs are served round-robin across owners (see `sandbox::slots`).
        let key = match caller.owner() {
            Owner::User(id) => format!("user:{id}"),
            Owner::Guest(id) => format!("guest:{id}"),
        };
        let ticket = self.engine.admit(&key).await.map_err(|r| match r {
            Refusal::Busy => AppError::unavailable("queue_full", r.to_string(), 5),
            Refusal::DockerDown => AppError::unavailable("docker_unavailable", r.to_string(), 10),
        })?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let lease = self.in_flight.acquire(caller, &id).await?;
        let quota = match self.count(caller).await {
            Ok(q) => q,
            Err(refused) => {
                lease.release().await;
                return Err(refused);
            }
        };
        let owner = caller.owner();
        let is_user = matches!(owner, Owner::User(_));
        let run = Run {
            code: is_user.then(|| req.code.clone()),
            stdin: is_user.then(|| req.stdin.clone().unwrap_or_default()),
            ..Run::new(id, lang.id, now_rfc3339())
        };
        let (mirror, _) = self.streams.writer(&run.id);
        let live = Arc::new(LiveRun::new(owner, run.clone(), Some(mirror), true));
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run.id.clone(), live.clone());
        self.shared.save(&live.owner, &run).await;
        // A user's run is in the history from the start; the final state replaces it.
        let first_save = match &live.owner {
            Owner::User(user_id) => {
                let (store, user_id, run) = (self.store.clone(), user_id.clone(), run);
                Some(tokio::spawn(
                    async move { store.save(&user_id, &run).await },
                ))
            }
            Owner::Guest(_) => None,
        };
        let this = self.clone();
        let task_live = live.clone();
        self.tasks.spawn(async move {
            let outcome = this.execute(&task_live, ticket, lang, req).await;
            // Whether the run is in the history already decides how the final state is
            // written: over the first copy only (a run deleted while it ran stays
            // deleted), or from scratch when the first write did not get through.
            let first_saved = match first_save {
                Some(first) => matches!(first.await, Ok(Ok(()))),
                None => false,
            };
            this.finish(&task_live, outcome, first_saved, lease).await;
        });
        Ok(Submitted { live, quota })
    }

    /// Counts the run against a guest's daily quota or a user's per-minute rate: the
    /// count after it (for the rate-limit headers), or the refusal with it.
    async fn count(&self, caller: &Caller) -> Result<Option<QuotaInfo>, Refused> {
        let (guest_id, ip) = match caller {
            Caller::Guest { guest_id, ip } => (guest_id, ip),
            Caller::User { id, .. } => {
                return self
                    .user_rate
                    .take(id)
                    .await
                    .map_err(|(error, info)| Refused {
                        error,
                        quota: Some(info),
                    })
            }
        };
        let d = self.quota.take(guest_id, *ip).await?;
        if !d.allowed {
            return Err(Refused {
                error: quota::exhausted(&d.info),
                quota: Some(d.info),
            });
        }
        Ok(Some(d.info))
    }

    /// Runs the program in the engine, passing its events on to the live run. "running"
    /// goes to Redis too (for other instances), from its own task, which is awaited
    /// before returning so that it cannot land after the final state.
    async fn execute(
        &self,
        live: &Arc<LiveRun>,
        ticket: Ticket,
        lang: &'static sandbox::Language,
        req: NewRun,
    ) -> Outcome {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Run>();
        let started_tx = Mutex::new(Some(started_tx));
        let persist_running = tokio::spawn({
            let (shared, owner) = (self.shared.clone(), live.owner.clone());
            async move {
                if let Ok(run) = started_rx.await {
                    shared.save(&owner, &run).await;
                }
            }
        });
        let on_event = |ev: Event| match ev {
            Event::Started => live.update(|r| {
                r.status = RunStatus::Running;
                if let Some(tx) = started_tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = tx.send(r.clone());
                }
                Some(RunEvent::Status(RunStatus::Running))
            }),
            Event::Stdout(s) => live.update(|r| {
                r.stdout.push_str(&s);
                Some(RunEvent::Stdout(s))
            }),
            Event::Stderr(s) => live.update(|r| {
                r.stderr.push_str(&s);
                Some(RunEvent::Stderr(s))
            }),
        };
        let stdin = req.stdin.unwrap_or_default();
        // A panic inside the engine must still finish the run (as internal_error).
        let exec = std::panic::AssertUnwindSafe(self.engine.execute(
            ticket,
            lang,
            &req.code,
            &stdin,
            &on_event,
            &live.cancel,
        ));
        let outcome = futures::FutureExt::catch_unwind(exec)
            .await
            .unwrap_or_else(|_| {
                tracing::error!("the engine panicked during a run");
                Outcome::bare(Verdict::InternalError)
            });
        drop(started_tx);
        let _ = persist_running.await;
        outcome
    }

    /// Writes the final state (history, Redis), gives the caller's place back, and only
    /// then tells the waiting clients: a client that starts its next run on the result
    /// finds its place free.
    async fn finish(
        self: &Arc<Self>,
        live: &Arc<LiveRun>,
        o: Outcome,
        first_saved: bool,
        lease: Lease,
    ) {
        let mut run = final_run(live, o);
        let kept = self.write_history(&live.owner, &mut run, first_saved).await;
        live.update(|r| {
            *r = run.clone();
            None
        });
        if kept {
            self.shared.save(&live.owner, &run).await;
        }
        lease.release().await;
        self.announce(live, run).await;
    }

    /// Tells the waiting clients (here, and on other nodes) that the run ended, and
    /// forgets it here a while later.
    async fn announce(self: &Arc<Self>, live: &Arc<LiveRun>, run: Run) {
        let id = run.id.clone();
        live.update(|_| Some(RunEvent::Result(Box::new(run))));
        live.mark_finished();
        self.shared.announce_finished(&id).await;
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_FINISHED).await;
            this.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
    }

    /// Writes a user's finished run to the history (over its first copy only, when that
    /// got through: a run deleted while it ran stays deleted), or keeps it in Redis to
    /// write once MongoDB answers again, and sets `saved` to what is true now. False
    /// when its owner deleted it meanwhile. A guest's run has no history.
    async fn write_history(&self, owner: &Owner, run: &mut Run, first_saved: bool) -> bool {
        let Owner::User(user_id) = owner else {
            return true;
        };
        let written = if first_saved {
            self.store.save_existing(user_id, run).await
        } else {
            self.store.save(user_id, run).await.map(|()| true)
        };
        run.saved = Some(matches!(written, Ok(true)));
        match written {
            Ok(true) => true,
            // Its owner deleted it while it ran: nothing here brings it back.
            Ok(false) => false,
            // Not lost: kept in Redis and written once MongoDB answers again;
            // until then the run says `saved: false`, which is the truth.
            Err(_) => {
                let kept = self.store.save_later(user_id, run, first_saved).await;
                tracing::error!(run = %run.id, user = %user_id, kept_for_later = kept, "could not save a finished run to the history (MongoDB unavailable)");
                true
            }
        }
    }

    /// Shuts the service down: no new run is accepted (`503 shutting_down`), runs in
    /// progress get `grace` to finish, then are stopped (verdict `stopped`), and this
    /// returns once every run's final state is written (history and Redis), so that a
    /// restart leaves nothing `running`.
    pub async fn shutdown(&self, grace: Duration) {
        self.closing.store(true, Ordering::SeqCst);
        // An executor takes no more runs from the queue.
        self.stop_reading.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_ok() {
            return;
        }
        let live: Vec<Arc<LiveRun>> = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        tracing::info!(
            runs = self.tasks.len(),
            "stopping the runs still in progress"
        );
        for l in live {
            l.stop();
        }
        // Stopped runs end at once; the bound only guards against a store that hangs
        // (each of its calls is itself bounded).
        if tokio::time::timeout(SHUTDOWN_WRITES, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::error!("some runs did not write their final state before shutdown");
        }
    }

    /// How many runs this process holds in memory.
    pub fn live_count(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).len()
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
        if let Some(stored) = self.shared.load(id).await {
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

    /// The run's events for `viewer` after event `after` (0: all), numbered: live from
    /// this process, else from the run's Redis stream (whichever node executes it), else
    /// (its stream expired) its status and then its result once it ends. 404 for
    /// anyone else's.
    pub async fn events(
        &self,
        id: &str,
        viewer: &Owner,
        after: u64,
    ) -> Result<BoxStream<'static, Numbered>, AppError> {
        if let Some(live) = self.live(id, viewer) {
            return Ok(live.events(after));
        }
        // Subscribed before the state is read: an end announced in between is not missed.
        let finished = self.shared.finished_runs();
        let run = self.get(id, viewer).await.ok_or(AppError::NotFound)?;
        if self.streams.exists(id).await {
            return Ok(self.remote_events(id, viewer.clone(), after));
        }
        let status = (1, RunEvent::Status(run.status));
        let shared = self.shared.clone();
        let (id, viewer) = (id.to_string(), viewer.clone());
        let result = async move {
            let run = wait_for_end(run, finished, &shared, &id, &viewer).await;
            (2, RunEvent::Result(Box::new(run)))
        };
        Ok(stream::iter([status])
            .chain(stream::once(result))
            .filter(move |(n, _)| futures::future::ready(*n > after))
            .boxed())
    }

    /// Forgets a run of `viewer`'s everywhere but the history (after it was deleted there).
    /// A run still in progress here is stopped: its owner threw it away.
    async fn forget(self: &Arc<Self>, id: &str, viewer: &Owner) {
        let here = {
            let mut map = self.live.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(id).is_some_and(|l| &l.owner == viewer) {
                map.remove(id)
            } else {
                None
            }
        };
        if let Some(l) = here {
            if self.role == Role::Web && l.snapshot().status != RunStatus::Finished {
                // A web node only follows it: the queue or an executor has it.
                self.stop_in_cluster(id, viewer).await;
            } else {
                l.stop();
            }
        }
        if self
            .shared
            .load(id)
            .await
            .is_some_and(|s| &s.owner == viewer)
        {
            self.shared.remove(id).await;
        }
    }

    /// Stops a queued or running run of `viewer`'s, here or on another instance (asked
    /// through Redis). Returns false when `viewer` has no such run. A finished run stays
    /// as it was.
    pub async fn stop(self: &Arc<Self>, id: &str, viewer: &Owner) -> bool {
        if let Some(l) = self.live(id, viewer) {
            if self.role == Role::Web {
                // A web node's copy only follows the run: the queue or an executor has it.
                if l.snapshot().status != RunStatus::Finished {
                    self.stop_in_cluster(id, viewer).await;
                }
            } else {
                l.stop();
            }
            return true;
        }
        // Not executing here: its state in Redis says whose it is and whether it ended.
        match self.shared.load(id).await {
            Some(s) if &s.owner == viewer => {
                if s.run.status != RunStatus::Finished {
                    self.stop_in_cluster(id, viewer).await;
                }
                true
            }
            // A user's run that Redis has let go of is in the history, finished.
            _ => self.get(id, viewer).await.is_some(),
        }
    }

    /// Stops a run executing in this process, whoever asked (the instance that
    /// published the request has checked the owner).
    fn stop_here(&self, id: &str) {
        let map = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = map.get(id) {
            l.stop();
        }
    }

    /// A page of the signed-in caller's history, from the query as given (strings, as
    /// both the API and the pages receive them).
    pub async fn history(
        &self,
        caller: &Caller,
        page: Option<&str>,
        per_page: Option<&str>,
        language: Option<&str>,
    ) -> Result<HistoryPage, AppError> {
        let user_id = signed_in(caller)?;
        let (page, per_page, language) = history_params(page, per_page, language)?;
        Ok(self
            .store
            .list(user_id, page, per_page, language.as_deref())
            .await?)
    }

    /// One of the signed-in caller's saved runs; `None` when it is not theirs or not there.
    pub async fn saved(&self, caller: &Caller, id: &str) -> Result<Option<Run>, AppError> {
        let user_id = signed_in(caller)?;
        if !is_run_id(id) {
            return Ok(None);
        }
        Ok(self.store.get(user_id, id).await?)
    }

    /// Deletes one of the signed-in caller's runs from the history and forgets it
    /// everywhere else (a run still in progress is stopped). 404 when there is no such
    /// run of theirs.
    pub async fn delete(self: &Arc<Self>, caller: &Caller, id: &str) -> Result<(), AppError> {
        let user_id = signed_in(caller)?;
        if !is_run_id(id) || !self.store.delete(user_id, id).await? {
            return Err(AppError::NotFound);
        }
        self.forget(id, &caller.owner()).await;
        Ok(())
    }
}

/// Writes the runs kept for later (MongoDB was away when they finished) every few
/// seconds while the service lives, and marks them saved in their Redis state.
async fn write_pending_runs(runs: std::sync::Weak<Runs>) {
    loop {
        tokio::time::sleep(PENDING_EVERY).await;
        let Some(runs) = runs.upgrade() else { return };
        for (user_id, run) in runs.store.write_pending().await {
            tracing::info!(run = %run.id, "a run kept while MongoDB was away is now in the history");
            let owner = Owner::User(user_id);
            if let Some(l) = runs.live(&run.id, &owner) {
                l.update(|r| {
                    r.saved = Some(true);
                    None
                });
            }
            runs.shared.save(&owner, &run).await;
        }
    }
}

/// How often kept runs are tried again.
const PENDING_EVERY: Duration = Duration::from_secs(2);

/// Waits until another instance announces the end of `run` (or, should an announcement
/// be lost while Redis reconnects, until a periodic look finds it finished), up to
/// [`EVENTS_WAIT_LIMIT`]; returns the run as it then is.
async fn wait_for_end(
    mut run: Run,
    mut finished: tokio::sync::broadcast::Receiver<String>,
    shared: &Shared,
    id: &str,
    viewer: &Owner,
) -> Run {
    let deadline = tokio::time::Instant::now() + EVENTS_WAIT_LIMIT;
    while run.status != RunStatus::Finished {
        let woke = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return run,
            // A safety net only: announcements are the normal path.
            _ = tokio::time::sleep(Duration::from_secs(2)) => true,
            msg = finished.recv() => match msg {
                Ok(done) => done == id,
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return run,
            },
        };
        if woke {
            match shared.load(id).await {
                Some(s) if &s.owner == viewer => run = s.run,
                _ => return run,
            }
        }
    }
    run
}

/// The finished run: its live copy with the engine's outcome.
fn final_run(live: &LiveRun, o: Outcome) -> Run {
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
    run.cpu_time_ms = o.cpu_time_ms;
    run.truncated = o.truncated;
    run.finished_at = Some(now_rfc3339());
    run
}

/// How long shutdown waits for stopped runs to write their final state.
const SHUTDOWN_WRITES: Duration = Duration::from_secs(15);

/// How long an events stream waits for a run that executes on another instance.
const EVENTS_WAIT_LIMIT: Duration = Duration::from_secs(120);

/// The user id of a signed-in caller; guests get a 401.
fn signed_in(caller: &Caller) -> Result<&str, AppError> {
    match caller {
        Caller::User { id, .. } => Ok(id),
        Caller::Guest { .. } => Err(AppError::Unauthorized(
            "Log in to see your history (pages: log in; API: send Authorization: Bearer <access token>).".into(),
        )),
    }
}

/// Parses a history query: page from 1, per_page from 1 to [`MAX_PER_PAGE`] (default
/// 20), and an optional known language.
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
        Some(l) => match sandbox::find_language(l) {
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
