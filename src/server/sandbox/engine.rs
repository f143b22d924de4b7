//! The execution engine: runs one program in one fresh container and reports how it
//! ended. It knows nothing of HTTP, users or quotas.

use super::container::{self, Container, Owned, INSTANCE_LABEL, LABEL};
use super::demote;
use super::languages::Language;
use super::pool::Pools;
pub use super::program::Program;
use super::protocol;
use super::slots::{Place, Slots};
pub use super::step::Typed;
use super::step::{Attached, StepEnd, Stream};
use super::sweep::{self, Liveness};
use super::verdict::{self, Step};
use crate::model::Verdict;
use crate::server::config::SandboxConfig;
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

pub use super::verdict::signal_name;

/// How long one Docker API call may take before the engine gives up on it.
const DOCKER_CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Something a running program produced, delivered as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The run got a slot and its container; the program is about to start.
    Started,
    Stdout(String),
    Stderr(String),
}

/// Everything measured about one finished run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub compile_output: String,
    pub time_ms: u64,
    pub memory_kb: Option<u64>,
    /// CPU time the program used (`None` when it was not measured).
    pub cpu_time_ms: Option<u64>,
    pub truncated: bool,
}

impl Outcome {
    /// An outcome with only a verdict: no output, no measures.
    pub fn bare(verdict: Verdict) -> Self {
        Outcome {
            verdict,
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            compile_output: String::new(),
            time_ms: 0,
            memory_kb: None,
            cpu_time_ms: None,
            truncated: false,
        }
    }
}

/// Refusals that happen before a run is accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("The run queue is full. Please try again in a few seconds.")]
    Busy,
    #[error("The code runner (Docker) is not available right now.")]
    DockerDown,
}

/// A place in the bounded queue, and in the fair queue for a slot under its caller's
/// key (see [`super::slots`]). Dropping it frees both.
pub struct Ticket {
    place: Place,
    _counted: Counted,
}

/// One run counted against the queue bound until dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The engine: Docker client, warm pools, and the bounds on concurrent work.
pub struct Engine {
    /// `None` until the socket or host can be reached (the daemon may start later).
    docker: RwLock<Option<Docker>>,
    docker_host: Option<String>,
    negotiated: AtomicBool,
    healthy: AtomicBool,
    cfg: SandboxConfig,
    instance: String,
    pools: Pools,
    slots: Arc<Slots>,
    in_flight: Arc<AtomicUsize>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// The containers this engine holds (pooled or in a run).
    owned: Owned,
    /// Heartbeats of engine instances, once the server has wired them.
    liveness: OnceLock<Arc<dyn Liveness>>,
}

/// The container of a run had died before the run took it.
struct DeadOnArrival;

impl Engine {
    /// Connects to Docker (local socket, or `docker_host`) and starts filling the warm
    /// pools. Docker being down is not an error here: the engine reports it and retries.
    pub async fn start(
        cfg: SandboxConfig,
        docker_host: Option<&str>,
    ) -> Result<Arc<Engine>, String> {
        if let Some(host) = docker_host {
            if !["unix://", "tcp://", "http://", "https://", "npipe://"]
                .iter()
                .any(|p| host.starts_with(p))
            {
                return Err(format!("configuration error: DOCKER_HOST={host:?} is not valid: expected unix://PATH or tcp://HOST:PORT"));
            }
        }
        let docker = connect(docker_host);
        let (pools, refills) = Pools::new(cfg.pool_size);
        let engine = Arc::new(Engine::new(cfg, docker, docker_host, pools));
        if engine.ping().await {
            engine.check_runtime().await?;
        }
        if engine.cfg.pool_size > 0 {
            for refill in refills {
                let e = engine.clone();
                let lang = refill.0;
                engine.tracker.spawn(async move {
                    e.pools
                        .refill(refill, &e.shutdown, || {
                            e.fresh_container(lang, true, container::memory_bytes(&e.cfg, lang))
                        })
                        .await
                });
            }
        }
        Ok(engine)
    }

    /// An engine that never runs code (`ROLE=web`): it holds the limits that requests
    /// are checked against, never connects to Docker and keeps no pool.
    pub fn idle(cfg: SandboxConfig) -> Arc<Engine> {
        let (pools, _) = Pools::new(0);
        Arc::new(Engine::new(cfg, None, None, pools))
    }

    /// An engine with nothing running yet: a new instance id, free slots, no containers.
    fn new(
        cfg: SandboxConfig,
        docker: Option<Docker>,
        docker_host: Option<&str>,
        pools: Pools,
    ) -> Engine {
        Engine {
            docker: RwLock::new(docker),
            docker_host: docker_host.map(str::to_string),
            negotiated: AtomicBool::new(false),
            healthy: AtomicBool::new(false),
            slots: Slots::new(cfg.max_concurrent_runs),
            in_flight: Arc::new(AtomicUsize::new(0)),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            pools,
            cfg,
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            owned: Owned::default(),
            liveness: OnceLock::new(),
        }
    }

    /// Refuses a `SANDBOX_RUNTIME` the Docker engine does not have (a typo, or gVisor
    /// not registered), with one line naming the variable.
    async fn check_runtime(&self) -> Result<(), String> {
        let docker = self.client()?;
        let info = match tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.info()).await {
            Ok(Ok(info)) => info,
            // Docker stopped answering meanwhile: runs are refused until it is back.
            _ => return Ok(()),
        };
        let runtimes = info.runtimes.unwrap_or_default();
        if let Some(runtime) = runtimes.get(&self.cfg.runtime) {
            // Without it gVisor ignores the container's seccomp profile (checked:
            // io_uring_setup then succeeds), and the profile is part of the sandbox.
            let args = runtime.runtime_args.as_deref().unwrap_or_default();
            if self.cfg.runtime == "runsc" && !args.iter().any(|a| a == "--oci-seccomp") {
                return Err("configuration error: SANDBOX_RUNTIME=\"runsc\" is registered with the Docker engine without --oci-seccomp, so the sandbox's seccomp profile would not apply (scripts/lib.sh ensure_runsc registers it right)".into());
            }
            return Ok(());
        }
        let known: Vec<String> = runtimes.into_keys().collect();
        Err(format!(
            "configuration error: SANDBOX_RUNTIME={:?} is not a runtime of the Docker engine (it has: {})",
            self.cfg.runtime,
            known.join(", ")
        ))
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.cfg
    }

    /// The label value that marks this engine's containers.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The Docker client, connecting first if that has not worked yet.
    fn client(&self) -> Result<Docker, String> {
        if let Some(d) = self
            .docker
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Ok(d.clone());
        }
        let d = connect(self.docker_host.as_deref())
            .ok_or_else(|| "the Docker engine is not reachable".to_string())?;
        *self.docker.write().unwrap_or_else(|p| p.into_inner()) = Some(d.clone());
        Ok(d)
    }

    /// Asks Docker whether it answers (negotiating the API version the first time it
    /// does), and remembers the answer for admission decisions.
    pub async fn ping(&self) -> bool {
        let Ok(current) = self.client() else {
            self.healthy.store(false, Ordering::SeqCst);
            return false;
        };
        if !self.negotiated.load(Ordering::SeqCst) {
            if let Ok(Ok(d)) =
                tokio::time::timeout(Duration::from_secs(2), current.negotiate_version()).await
            {
                *self.docker.write().unwrap_or_else(|p| p.into_inner()) = Some(d);
                self.negotiated.store(true, Ordering::SeqCst);
            }
        }
        let Ok(current) = self.client() else {
            return false;
        };
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(2), current.ping()).await,
            Ok(Ok(_))
        );
        self.healthy.store(ok, Ordering::SeqCst);
        ok
    }

    /// Takes a place in the bounded queue, or refuses at once. `key` names the caller
    /// (the run's owner): waiting runs are served round-robin across keys, so the place
    /// in line is fixed here, when the run is accepted.
    pub async fn admit(&self, key: &str) -> Result<Ticket, Refusal> {
        if !self.healthy.load(Ordering::SeqCst) && !self.ping().await {
            return Err(Refusal::DockerDown);
        }
        let limit = self.cfg.max_concurrent_runs + self.cfg.queue_size;
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let counted = Counted(self.in_flight.clone());
        if before >= limit {
            return Err(Refusal::Busy);
        }
        Ok(Ticket {
            place: self.slots.enter(key),
            _counted: counted,
        })
    }

    async fn fresh_container(
        &self,
        lang: &Language,
        pooled: bool,
        memory: i64,
    ) -> Result<Container, String> {
        let docker = self.client()?;
        let made = tokio::time::timeout(
            DOCKER_CALL_TIMEOUT,
            container::create_started(
                &docker,
                &self.cfg,
                lang,
                container::Holder {
                    instance: &self.instance,
                    pooled,
                    owned: &self.owned,
                    tracker: &self.tracker,
                },
                memory,
                protocol::command(lang),
            ),
        )
        .await;
        match made {
            Ok(Ok(c)) => {
                self.healthy.store(true, Ordering::SeqCst);
                Ok(c)
            }
            Ok(Err(e)) => {
                if matches!(
                    e,
                    bollard::errors::Error::HyperResponseError { .. }
                        | bollard::errors::Error::IOError { .. }
                ) {
                    self.healthy.store(false, Ordering::SeqCst);
                }
                Err(e.to_string())
            }
            Err(_) => Err("Docker did not answer in time".into()),
        }
    }

    /// A started container for one run: a pooled one that Docker still reports running
    /// (one that died in the pool, say with a restarted Docker engine, is removed),
    /// else a fresh one. Pooled containers have the language's default memory limit; a
    /// run that chose another gets a fresh container made with it.
    async fn take_container(&self, lang: &Language, memory: i64) -> Result<Container, String> {
        if memory != container::memory_bytes(&self.cfg, lang) {
            return self.fresh_container(lang, false, memory).await;
        }
        while let Some(c) = self.pools.take(lang).await {
            if matches!(
                tokio::time::timeout(DOCKER_CALL_TIMEOUT, c.is_running()).await,
                Ok(true)
            ) {
                return Ok(c);
            }
            tracing::warn!(language = lang.id, container = %c.id, "a pooled sandbox container had died; removing it");
        }
        self.fresh_container(lang, false, memory).await
    }

    /// Runs `program` with `stdin` in a fresh container. Waits for a free slot first (the
    /// ticket proves there is room in the queue). `cancel` stops the run at any point.
    /// With `typed` (an interactive run) the program's stdin stays open after `stdin`
    /// for what is typed while it runs, and the interactive time limit applies.
    #[allow(clippy::too_many_arguments)]
    pub async fn execute(
        &self,
        ticket: Ticket,
        lang: &'static Language,
        program: &Program,
        stdin: &str,
        typed: Option<Typed>,
        on_event: &(dyn Fn(Event) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Outcome {
        let mut ticket = ticket;
        if self.shutdown.is_cancelled() {
            return Outcome::bare(Verdict::Stopped);
        }
        // The run ends when its own token fires or the engine shuts down.
        let run_cancel = self.shutdown.child_token();
        let _link = AbortOnDropHandle::new(tokio::spawn({
            let (outer, inner) = (cancel.clone(), run_cancel.clone());
            async move {
                outer.cancelled().await;
                inner.cancel();
            }
        }));
        let cancel = &run_cancel;
        // Dropping the wait on a stop leaves the fair queue (the ticket gives the place
        // back when this returns).
        tokio::select! {
            _ = cancel.cancelled() => return Outcome::bare(Verdict::Stopped),
            _ = ticket.place.ready() => {}
        }
        let _running = self.pools.running();
        // Not raced against the cancel token: a container creation dropped half-way
        // would leave a container no guard holds. A stop that came meanwhile is seen
        // right after, and the container's guard removes it.
        let memory = (program.memory_mb * 1024 * 1024) as i64;
        // A caller's run beside its own others (a person waits on one run at a time, a
        // flood keeps several going) takes a fresh container and the low CPU weight at
        // once: the warm pool and the CPU stay with the callers who wait on one run.
        let background = ticket.place.caller_has_others();
        let taken = if background {
            self.fresh_container(lang, false, memory).await
        } else {
            self.take_container(lang, memory).await
        };
        let container = match taken {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(language = lang.id, error = %e, "no sandbox container for a run");
                return Outcome::bare(Verdict::InternalError);
            }
        };
        if cancel.is_cancelled() {
            container.remove_now().await;
            return Outcome::bare(Verdict::Stopped);
        }
        on_event(Event::Started);
        let mut container = container;
        // Long runs give the CPU to short ones (see `demote`); the timer ends with the run.
        let demote_after = if background {
            Duration::ZERO
        } else {
            demote::AFTER
        };
        let demote_later = |c: &Container| {
            self.client()
                .ok()
                .map(|d| demote::after(d, c.id.clone(), demote_after))
        };
        let mut retried = false;
        let outcome = loop {
            let _demote = demote_later(&container);
            match self
                .run_in(
                    &container,
                    lang,
                    program,
                    stdin,
                    typed.as_ref(),
                    on_event,
                    cancel,
                )
                .await
            {
                Ok(outcome) => break outcome,
                Err(DeadOnArrival) if retried => break Outcome::bare(Verdict::InternalError),
                // Nothing of the program ran: once more, on a fresh container.
                Err(DeadOnArrival) => {
                    tracing::warn!(language = lang.id, container = %container.id, "a sandbox container was dead before its run began; retrying on a fresh one");
                    retried = true;
                    container = match self.fresh_container(lang, false, memory).await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::error!(language = lang.id, error = %e, "no sandbox container for a run");
                            return Outcome::bare(Verdict::InternalError);
                        }
                    };
                }
            }
        };
        if outcome.truncated
            || (outcome.verdict != Verdict::Ok
                && outcome.verdict != Verdict::RuntimeError
                && outcome.verdict != Verdict::CompileError)
        {
            // Killed runs must not linger: remove before reporting.
            container.remove_now().await;
        }
        outcome
    }

    /// The compile step (if the language has one), then the run step, then the verdict.
    #[allow(clippy::too_many_arguments)]
    async fn run_in(
        &self,
        c: &Container,
        lang: &Language,
        program: &Program,
        stdin: &str,
        typed: Option<&Typed>,
        on_event: &(dyn Fn(Event) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<Outcome, DeadOnArrival> {
        let commands = protocol::commands(lang, program);
        let run_limit = if typed.is_some() && !program.time_chosen {
            self.cfg.interactive_time_limit.max(program.time)
        } else {
            program.time
        };
        // Whole seconds (the kernel's unit), never below the wall-clock limit.
        let cpu_limit_s = program.time.as_secs_f64().ceil().max(1.0) as u64;
        let Some(mut attached) = Attached::new(
            c,
            program,
            &commands,
            stdin,
            typed,
            cpu_limit_s,
            self.cfg.max_output_bytes,
            cancel,
        ) else {
            tracing::error!(container = %c.id, "a sandbox container without its attached streams");
            return Ok(Outcome::bare(Verdict::InternalError));
        };
        let limit_kb = program.memory_mb * 1024;
        let mut compile_output = String::new();
        let mut early = Vec::new();
        if commands.compile.is_some() {
            let compiled = attached.compile(self.cfg.compile_time_limit).await;
            if matches!(compiled.end, StepEnd::DeadOnArrival) {
                return Err(DeadOnArrival);
            }
            log_failure(&compiled.end, "compile step failed in Docker");
            let judged = verdict::judge(Step::Compile, &compiled.end, limit_kb);
            compile_output = compiled.output;
            if judged.verdict != Verdict::Ok {
                if judged.verdict == Verdict::TimeLimit {
                    compile_output.push_str("\nCompilation took too long and was stopped.");
                }
                if matches!(compiled.end, StepEnd::Vanished { code, .. } if code > 128) {
                    compile_output.push_str("\nThe compiler ended without a report.");
                }
                if compiled.truncated {
                    compile_output.push_str("\n[compiler output truncated; compilation stopped]");
                }
                return Ok(Outcome {
                    exit_code: judged.exit_code,
                    signal: judged.signal,
                    truncated: compiled.truncated,
                    compile_output,
                    ..Outcome::bare(judged.verdict)
                });
            }
            early = compiled.early;
        }
        let on_text = |stream, text| {
            on_event(match stream {
                Stream::Out => Event::Stdout(text),
                Stream::Err => Event::Stderr(text),
            })
        };
        let ran = attached.run(run_limit, early, &on_text).await;
        if matches!(ran.end, StepEnd::DeadOnArrival) {
            return Err(DeadOnArrival);
        }
        log_failure(&ran.end, "run step failed in Docker");
        if matches!(ran.end, StepEnd::Compiled(_)) {
            tracing::error!("a second compile report during the run step");
        }
        let mut judged = verdict::judge(Step::Run, &ran.end, limit_kb);
        if typed.is_some() {
            judged = verdict::cpu_limited(judged, cpu_limit_s * 1000);
        }
        let mut stderr = ran.stderr;
        if let StepEnd::Vanished { code, .. } = ran.end {
            if code <= 128 {
                tracing::error!(code, stderr = %stderr, "the sandbox ended without the supervisor's report");
            } else {
                if !stderr.is_empty() && !stderr.ends_with('\n') {
                    stderr.push('\n');
                }
                stderr.push_str(
                    "[the program's supervisor was killed: its exit status is unknown]\n",
                );
            }
        }
        Ok(Outcome {
            verdict: judged.verdict,
            exit_code: judged.exit_code,
            signal: judged.signal,
            stdout: ran.stdout,
            stderr,
            compile_output,
            time_ms: ran.time_ms,
            memory_kb: judged.memory_kb,
            cpu_time_ms: judged.cpu_time_ms,
            truncated: ran.truncated,
        })
    }

    /// Wires the instances' heartbeats and starts the periodic work that uses them:
    /// this instance's heartbeat, and the sweep of leftover containers every
    /// `sweep_interval`. Both stop at shutdown. Call once.
    pub fn watch(self: &Arc<Self>, liveness: Arc<dyn Liveness>) {
        if self.liveness.set(liveness).is_err() {
            return;
        }
        let engine = self.clone();
        self.tracker.spawn(async move {
            // A heartbeat lives for three beats, so one slow Redis call does not make
            // this instance look dead.
            let ttl = engine.cfg.heartbeat;
            let beat = (ttl / 3).max(Duration::from_millis(10));
            let mut last_sweep = Instant::now();
            loop {
                if let Some(l) = engine.liveness.get() {
                    if let Err(e) = l.beat(&engine.instance, ttl).await {
                        tracing::warn!(error = %e, "could not renew the engine's heartbeat");
                    }
                }
                if last_sweep.elapsed() >= engine.cfg.sweep_interval {
                    engine.sweep().await;
                    last_sweep = Instant::now();
                }
                tokio::select! {
                    _ = engine.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(beat) => {}
                }
            }
        });
    }

    /// Removes leftover sandbox containers (see `sweep::is_leftover`): this instance's
    /// that neither a pool nor a run holds, and those of instances whose heartbeat has
    /// lapsed, once older than the compile and run limits plus the margin. A removal
    /// that fails is tried again by the next sweep. Returns how many were removed.
    pub async fn sweep(&self) -> usize {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL}={}", self.cfg.label)],
        )]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let Ok(docker) = self.client() else { return 0 };
        let Ok(Ok(list)) =
            tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.list_containers(Some(opts))).await
        else {
            return 0;
        };
        let threshold = self.cfg.compile_time_limit
            + self.cfg.run_time_limit.max(self.cfg.interactive_time_limit)
            + self.cfg.sweep_margin;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let mut alive: HashMap<String, Option<bool>> = HashMap::new();
        let mut removed = 0;
        for c in list {
            let Some(id) = c.id else { continue };
            let instance = c
                .labels
                .unwrap_or_default()
                .remove(INSTANCE_LABEL)
                .unwrap_or_default();
            let age =
                Duration::from_secs(now.saturating_sub(c.created.unwrap_or(now)).max(0) as u64);
            let mine = instance == self.instance;
            let owned = mine
                && self
                    .owned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&id);
            let live = if mine || age < threshold {
                Some(true)
            } else if let Some(known) = alive.get(&instance) {
                *known
            } else {
                let known = match self.liveness.get() {
                    Some(l) => l.alive(&instance).await.ok(),
                    None => None,
                };
                alive.insert(instance.clone(), known);
                known
            };
            if sweep::is_leftover(mine, owned, live, age, threshold) {
                tracing::info!(container = %id, instance = %instance, "removing a leftover sandbox container");
                if container::remove(&docker, &id).await {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Removes every sandbox container (of this deployment's label) that engine
    /// `instance` left on this Docker host, whatever its age: for an executor known to be
    /// dead because its runs were just taken over (the sweep's age rule protects
    /// instances whose liveness this engine cannot see, e.g. with another Redis).
    /// Returns how many were removed.
    pub async fn remove_instance(&self, instance: &str) -> usize {
        if instance == self.instance {
            return 0;
        }
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL}={}", self.cfg.label),
                format!("{INSTANCE_LABEL}={instance}"),
            ],
        )]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let Ok(docker) = self.client() else { return 0 };
        let Ok(Ok(list)) =
            tokio::time::timeout(DOCKER_CALL_TIMEOUT, docker.list_containers(Some(opts))).await
        else {
            return 0;
        };
        let mut removed = 0;
        for id in list.into_iter().filter_map(|c| c.id) {
            tracing::info!(container = %id, %instance, "removing a container of a lost executor");
            if container::remove(&docker, &id).await {
                removed += 1;
            }
        }
        removed
    }

    /// Drops every warm container (removed in the background) and makes new ones: for an
    /// instance that was declared dead while it stalled, whose pooled containers another
    /// node may have removed.
    pub async fn flush_pools(&self) {
        self.pools.flush().await;
    }

    /// The start-up clean-up: one sweep (see [`Engine::sweep`]).
    pub async fn remove_leftovers(&self) -> usize {
        self.sweep().await
    }

    /// Runs admitted and not yet ended (queued or executing).
    pub fn runs_in_progress(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Counts this engine's containers that exist in Docker right now.
    pub async fn count_containers(&self) -> Result<usize, String> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{INSTANCE_LABEL}={}", self.instance)],
        )]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.client()?
            .list_containers(Some(opts))
            .await
            .map(|l| l.len())
            .map_err(|e| e.to_string())
    }

    /// Stops refilling, removes the pooled containers and waits for every removal.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        // Runs in progress stop (verdict `stopped`) and remove their containers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.pools.running_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.pools.drain().await;
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Logs a step that Docker failed (the verdict says only `internal_error`).
fn log_failure(end: &StepEnd, what: &str) {
    if let StepEnd::Failed(e) = end {
        tracing::error!(error = %e, "{what}");
    }
}

/// A client for `host` (or the local default); `None` while its socket does not exist.
fn connect(host: Option<&str>) -> Option<Docker> {
    match host {
        Some(h) => Docker::connect_with_host(h),
        None => Docker::connect_with_defaults(),
    }
    .ok()
}
