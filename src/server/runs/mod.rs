//! Runs as the API sees them: validated, queued, executed in the background, observable
//! while they run (events), stoppable, and kept in Redis so that any app instance can
//! answer for them. REST handlers and server functions both come through here, one
//! service call per operation. `live` is a run executing in this process; `shared` is
//! what instances share through Redis.

mod cluster;
mod events;
mod live;
pub mod program;
mod queue;
mod shared;

pub use live::{InputRefusal, LiveRun, Numbered, RunEvent};
pub use queue::{Claimed, Job, Queue};

use crate::error::AppError;
use crate::model::{HistoryPage, QuotaInfo, Run, RunLimits, RunStatus, SourceFile, Verdict};
use crate::server::auth::{Caller, Owner};
use crate::server::config::Role;
use crate::server::heartbeat::RedisLiveness;
use crate::server::limits::{InFlight, Lease, UserRate};
use crate::server::quota::{self, Quota};
use crate::server::redis::Redis;
use crate::server::sandbox::{self, Engine, Event, Outcome, Program, Refusal, Ticket};
use crate::server::store::{RunStore, MAX_PER_PAGE};
use events::EventStreams;
use futures::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use shared::{Shared, TypedInput};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::task::TaskTracker;

/// What a run request carries: the body of `POST /api/v1/runs`. (Checked by
/// `program::check`.)
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct NewRun {
    #[schema(value_type = crate::server::sandbox::LanguageId)]
    pub language: String,
    /// The program as one file (the language's `source_file`); or else `files`.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "objects")]
    pub files: Option<Vec<SourceFile>>,
    /// The entry file among `files` (default: the first).
    #[serde(default)]
    pub main: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default, deserialize_with = "object")]
    pub limits: Option<RunLimits>,
    /// Standard input, at most `MAX_STDIN_BYTES` bytes (default 65536).
    #[serde(default)]
    pub stdin: Option<String>,
    /// Keep the program's stdin open after `stdin` for input typed while it runs
    /// (see [`Runs::send_input`]).
    #[serde(default)]
    pub interactive: bool,
}

/// `null` or a `T` written as a JSON object (serde's derive would also take a struct from
/// an array of its fields in order, which no client means).
fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)?
        .map(|fields| serde_json::from_value(serde_json::Value::Object(fields)))
        .transpose()
        .map_err(D::Error::custom)
}

/// `null` or a list of `T`s, each written as a JSON object (see [`object`]).
fn objects<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    Option::<Vec<serde_json::Map<String, serde_json::Value>>>::deserialize(d)?
        .map(|list| {
            list.into_iter()
                .map(|fields| serde_json::from_value(serde_json::Value::Object(fields)))
                .collect()
        })
        .transpose()
        .map_err(D::Error::custom)
}

/// Input typed into a running program: `POST /api/v1/runs/{id}/stdin`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
pub struct NewInput {
    #[serde(default)]
    pub data: String,
    /// Ends the program's input after `data`.
    #[serde(default)]
    pub eof: bool,
}

/// A run through [`Runs::accept`]: the run, the caller's in-flight lease, and the count
/// against their quota or rate.
struct Accepted {
    run: Run,
    lease: Lease,
    quota: Option<QuotaInfo>,
}

/// A run just accepted. A user's keeps what made it (the history reopens it); a
/// guest's does not.
fn accepted_run(
    is_user: bool,
    req: &NewRun,
    program: &Program,
    lang: &sandbox::Language,
    id: String,
) -> Run {
    let run = Run {
        interactive: req.interactive,
        ..Run::new(id, lang.id, now_rfc3339())
    };
    if !is_user {
        return run;
    }
    Run {
        code: req.code.clone(),
        stdin: Some(req.stdin.clone().unwrap_or_default()),
        files: req.files.is_some().then(|| program.files.clone()),
        main: req.files.is_some().then(|| program.main.clone()),
        args: Some(program.args.clone()),
        limits: Some(RunLimits {
            time_ms: Some(program.time.as_millis() as u64),
            memory_mb: Some(program.memory_mb),
        }),
        ..run
    }
}

/// What a run ran, as its request gave it. A user's `Run` carries it; a guest's does not
/// (the API answers guests without it), so the service keeps it beside the run, for a
/// share of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub files: Option<Vec<SourceFile>>,
    #[serde(default)]
    pub main: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    pub stdin: String,
}

impl Source {
    /// What `req` asked to run (a checked request: its main file is among its files).
    pub(super) fn of(req: &NewRun) -> Source {
        let main = req.files.as_ref().map(|files| {
            req.main
                .clone()
                .or_else(|| files.first().map(|f| f.name.clone()))
                .unwrap_or_default()
        });
        Source {
            code: req.code.clone(),
            files: req.files.clone(),
            main,
            args: req.args.clone().unwrap_or_default(),
            stdin: req.stdin.clone().unwrap_or_default(),
        }
    }
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
                let input_here = |id: &str| {
                    if let Some(runs) = weak.upgrade() {
                        runs.input_here(id);
                    }
                };
                shared.listen(alive, stop_here, input_here).await;
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

    /// Checks a request without side effects (see [`program::check`]): its language
    /// and the program to run.
    pub fn validate(
        &self,
        req: &NewRun,
    ) -> Result<(&'static sandbox::Language, Program), AppError> {
        program::check(req, self.engine.config())
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
        let (lang, program) = self.validate(&req)?;
        if self.closing.load(Ordering::SeqCst) || self.role == Role::Executor {
            return Err(AppError::unavailable(
                "shutting_down",
                "This server is restarting. Please try again in a few seconds.",
                5,
            )
            .into());
        }
        if self.role == Role::Web {
            return self.submit_to_queue(caller, req, lang, &program).await;
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
        let Accepted { run, lease, quota } = self.accept(caller, &req, &program, lang).await?;
        let owner = caller.owner();
        let is_user = matches!(owner, Owner::User(_));
        let source = (!is_user).then(|| Source::of(&req));
        let input_limit = req
            .interactive
            .then_some(self.engine.config().max_stdin_bytes);
        let (mirror, _) = self.streams.writer(&run.id);
        let live = Arc::new(LiveRun::new(
            owner,
            run.clone(),
            source,
            Some(mirror),
            true,
            input_limit,
        ));
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run.id.clone(), live.clone());
        self.shared
            .save(&live.owner, &run, live.source.as_ref())
            .await;
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
            let stdin = req.stdin.unwrap_or_default();
            let outcome = this
                .execute(&task_live, ticket, lang, &program, &stdin)
                .await;
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

    /// The accepting step of every new run, executed here or queued: a fresh id, the
    /// caller's in-flight lease, then the count against their quota or rate (the lease
    /// given back when that refuses).
    async fn accept(
        &self,
        caller: &Caller,
        req: &NewRun,
        program: &Program,
        lang: &sandbox::Language,
    ) -> Result<Accepted, Refused> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let lease = self.in_flight.acquire(caller, &id).await?;
        let quota = match self.count(caller).await {
            Ok(q) => q,
            Err(refused) => {
                lease.release().await;
                return Err(refused);
            }
        };
        let is_user = matches!(caller, Caller::User { .. });
        let run = accepted_run(is_user, req, program, lang, id);
        Ok(Accepted { run, lease, quota })
    }

    /// Counts the run (or a share) against a guest's daily quota or a user's per-minute
    /// rate: the count after it (for the rate-limit headers), or the refusal with it.
    pub async fn count(&self, caller: &Caller) -> Result<Option<QuotaInfo>, Refused> {
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

    /// Gives back what [`count`](Self::count) took, for a request that then failed on
    /// our side.
    pub async fn give_back(&self, caller: &Caller) {
        match caller {
            Caller::Guest { guest_id, ip } => self.quota.give_back(guest_id, *ip).await,
            Caller::User { id, .. } => self.user_rate.give_back(id).await,
        }
    }

    /// Runs the program in the engine, passing its events on to the live run. "running"
    /// goes to Redis too (for other instances), from its own task, which is awaited
    /// before returning so that it cannot land after the final state.
    async fn execute(
        &self,
        live: &Arc<LiveRun>,
        ticket: Ticket,
        lang: &'static sandbox::Language,
        program: &Program,
        stdin: &str,
    ) -> Outcome {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Run>();
        let started_tx = Mutex::new(Some(started_tx));
        let persist_running = tokio::spawn({
            let (shared, owner) = (self.shared.clone(), live.owner.clone());
            let source = live.source.clone();
            async move {
                if let Ok(run) = started_rx.await {
                    shared.save(&owner, &run, source.as_ref()).await;
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
        // A panic inside the engine must still finish the run (as internal_error).
        let exec = std::panic::AssertUnwindSafe(self.engine.execute(
            ticket,
            lang,
            program,
            stdin,
            live.take_typed(),
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
            self.shared
                .save(&live.owner, &run, live.source.as_ref())
                .await;
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
        self.find(id, viewer).await.map(|(run, _)| run)
    }

    /// Like [`get`](Self::get), with the code and input filled in for a guest's run too:
    /// what a share of it needs. Only the run's owner gets it.
    pub async fn with_source(&self, id: &str, viewer: &Owner) -> Option<Run> {
        let (mut run, source) = self.find(id, viewer).await?;
        if let Some(s) = source {
            if run.code.is_none() {
                run.code = s.code;
            }
            if run.files.is_none() {
                run.files = s.files;
                run.main = s.main;
            }
            run.args.get_or_insert(s.args);
            run.stdin.get_or_insert(s.stdin);
        }
        Some(run)
    }

    async fn find(&self, id: &str, viewer: &Owner) -> Option<(Run, Option<Source>)> {
        if let Some(l) = self.live(id, viewer) {
            return Some((l.snapshot(), l.source.clone()));
        }
        if !is_run_id(id) {
            return None;
        }
        if let Some(stored) = self.shared.load(id).await {
            if &stored.owner == viewer {
                return Some((stored.run, stored.source));
            }
            return None;
        }
        match viewer {
            Owner::User(user_id) => self
                .store
                .get(user_id, id)
                .await
                .ok()
                .flatten()
                .map(|r| (r, None)),
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

    /// Passes input typed by `viewer` to their interactive run `id` while it is queued
    /// (held until the program starts) or running: `data` as it is (a line needs its
    /// `\n`), then the end of input when `eof`. Each request and a run's typed input in
    /// all are bounded by the stdin limit (413). 404 for anyone else's run, 409
    /// `run_not_running` once it has finished, 409 `input_closed` when its input was
    /// given up front or has ended, 422 for a request that carries nothing.
    pub async fn send_input(
        &self,
        id: &str,
        viewer: &Owner,
        input: NewInput,
    ) -> Result<(), AppError> {
        let limit = self.engine.config().max_stdin_bytes;
        if input.data.len() > limit {
            return Err(AppError::PayloadTooLarge(format!(
                "The input is {} bytes; the limit is {limit} bytes.",
                input.data.len()
            )));
        }
        if input.data.is_empty() && !input.eof {
            return Err(AppError::invalid(
                "empty_input",
                "Send some data, or \"eof\": true to end the program's input.",
            ));
        }
        if let Some(live) = self.live(id, viewer) {
            let run = live.snapshot();
            if live.takes_input() || !run.interactive || run.status == RunStatus::Finished {
                return live
                    .send_input(&input.data, input.eof)
                    .map_err(input_refused);
            }
            // This node's copy of a run an executor holds: on to the executor.
            return self
                .deliver_input(TypedInput {
                    id: id.to_string(),
                    data: input.data,
                    eof: input.eof,
                })
                .await;
        }
        if !is_run_id(id) {
            return Err(AppError::NotFound);
        }
        match self.shared.load(id).await {
            Some(s) if &s.owner == viewer => {
                if s.run.status == RunStatus::Finished {
                    return Err(input_refused(InputRefusal::NotRunning));
                }
                if !s.run.interactive {
                    return Err(input_refused(InputRefusal::Closed));
                }
                self.deliver_input(TypedInput {
                    id: id.to_string(),
                    data: input.data,
                    eof: input.eof,
                })
                .await
            }
            // A user's run that Redis has let go of is in the history, finished.
            _ => match self.get(id, viewer).await {
                Some(_) => Err(input_refused(InputRefusal::NotRunning)),
                None => Err(AppError::NotFound),
            },
        }
    }

    /// Carries input to a run that executes on another instance (its owner checked).
    /// The one place that knows how input travels between machines: Redis pub/sub
    /// today, counted against the run's limit in Redis first.
    async fn deliver_input(&self, input: TypedInput) -> Result<(), AppError> {
        let limit = self.engine.config().max_stdin_bytes;
        match self.shared.send_input(&input, limit).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(input_refused(InputRefusal::TooMuch(limit))),
            Err(e) => {
                tracing::warn!(run = %input.id, error = %e, "could not pass typed input on through Redis");
                Err(AppError::unavailable(
                    "redis_unavailable",
                    "The input could not be passed to the program right now. Please try again.",
                    2,
                ))
            }
        }
    }

    /// Passes input another instance received (and held in Redis) to a run executing
    /// here (that instance has checked the owner). Input for a run not here is not ours.
    fn input_here(self: &Arc<Self>, id: &str) {
        let live = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        if let Some(live) = live.filter(|l| l.takes_input()) {
            let (this, id) = (self.clone(), id.to_string());
            tokio::spawn(async move { this.take_held_input(&live, &id).await });
        }
    }

    /// Passes run `id`'s typed input held in Redis that it has not had yet, in order:
    /// when it starts here (what was typed while it was queued) and on each notice.
    pub(super) async fn take_held_input(&self, live: &LiveRun, id: &str) {
        let mut taken = live.typed_taken.lock().await;
        match self.shared.typed_since(id, *taken).await {
            Ok(held) => {
                for input in held {
                    *taken += 1;
                    if let Err(e) = live.send_input(&input.data, input.eof) {
                        tracing::info!(run = %id, refusal = ?e, "typed input from another instance was not taken");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(run = %id, error = %e, "could not read typed input from Redis")
            }
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
            runs.shared.save(&owner, &run, None).await;
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

/// The contract's answer to input a run did not take.
fn input_refused(r: InputRefusal) -> AppError {
    match r {
        InputRefusal::NotRunning => AppError::conflict(
            "run_not_running",
            "The run has finished: it takes no more input.",
        ),
        InputRefusal::Closed => AppError::conflict(
            "input_closed",
            "This run's input has ended (it was given up front, or its end was sent).",
        ),
        InputRefusal::TooMuch(limit) => {
            AppError::PayloadTooLarge(format!("A run takes at most {limit} bytes of typed input."))
        }
    }
}

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
