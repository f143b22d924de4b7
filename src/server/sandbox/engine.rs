//! The execution engine: runs one program in one fresh container and reports how it
//! ended. It knows nothing of HTTP, users or quotas.

use super::container::{self, Container, INSTANCE_LABEL, LABEL};
use super::demote;
use super::languages::Language;
use super::pool::Pools;
use super::protocol;
use super::slots::{Place, Slots};
use super::step::{Attached, StepEnd, Stream};
use super::verdict::{self, Step};
use crate::model::Verdict;
use crate::server::config::SandboxConfig;
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
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
}

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
        let engine = Arc::new(Engine {
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
        });
        engine.ping().await;
        if engine.cfg.pool_size > 0 {
            for refill in refills {
                let e = engine.clone();
                let lang = refill.0;
                engine.tracker.spawn(async move {
                    e.pools
                        .refill(refill, &e.shutdown, || e.fresh_container(lang))
                        .await
                });
            }
        }
        Ok(engine)
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

    async fn fresh_container(&self, lang: &Language) -> Result<Container, String> {
        let docker = self.client()?;
        let made = tokio::time::timeout(
            DOCKER_CALL_TIMEOUT,
            container::create_started(
                &docker,
                &self.cfg,
                lang,
                &self.instance,
                &self.tracker,
                protocol::run_command(lang),
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

    async fn take_container(&self, lang: &Language) -> Result<Container, String> {
        match self.pools.take(lang).await {
            Some(c) => Ok(c),
            None => self.fresh_container(lang).await,
        }
    }

    /// Runs `code` with `stdin` in a fresh container. Waits for a free slot first (the
    /// ticket proves there is room in the queue). `cancel` stops the run at any point.
    pub async fn execute(
        &self,
        ticket: Ticket,
        lang: &'static Language,
        code: &str,
        stdin: &str,
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
        let container = match self.take_container(lang).await {
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
        // Long runs give the CPU to short ones (see `demote`); the timer ends with the run.
        let _demote = self
            .client()
            .ok()
            .map(|d| demote::after(d, container.id.clone(), demote::AFTER));
        let outcome = self
            .run_in(&container, lang, code, stdin, on_event, cancel)
            .await;
        if outcome.verdict != Verdict::Ok
            && outcome.verdict != Verdict::RuntimeError
            && outcome.verdict != Verdict::CompileError
        {
            // Killed runs must not linger: remove before reporting.
            container.remove_now().await;
        }
        outcome
    }

    /// The compile step (if the language has one), then the run step, then the verdict.
    async fn run_in(
        &self,
        c: &Container,
        lang: &Language,
        code: &str,
        stdin: &str,
        on_event: &(dyn Fn(Event) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Outcome {
        let Some(mut attached) = Attached::new(c, code, stdin, self.cfg.max_output_bytes, cancel)
        else {
            tracing::error!(container = %c.id, "a sandbox container without its attached streams");
            return Outcome::bare(Verdict::InternalError);
        };
        let limit_kb = (container::memory_bytes(&self.cfg, lang) / 1024) as u64;
        let mut compile_output = String::new();
        let mut early = Vec::new();
        if lang.compile.is_some() {
            let compiled = attached.compile(self.cfg.compile_time_limit).await;
            log_failure(&compiled.end, "compile step failed in Docker");
            let judged = verdict::judge(Step::Compile, &compiled.end, lang, limit_kb, "");
            compile_output = compiled.output;
            if judged.verdict != Verdict::Ok {
                if judged.verdict == Verdict::TimeLimit {
                    compile_output.push_str("\nCompilation took too long and was stopped.");
                }
                return Outcome {
                    exit_code: judged.exit_code,
                    compile_output,
                    ..Outcome::bare(judged.verdict)
                };
            }
            early = compiled.early;
        }
        let on_text = |stream, text| {
            on_event(match stream {
                Stream::Out => Event::Stdout(text),
                Stream::Err => Event::Stderr(text),
            })
        };
        let ran = attached.run(self.cfg.run_time_limit, early, &on_text).await;
        log_failure(&ran.end, "run step failed in Docker");
        if matches!(ran.end, StepEnd::Compiled(_)) {
            tracing::error!("a second compile report during the run step");
        }
        let judged = verdict::judge(Step::Run, &ran.end, lang, limit_kb, &ran.stderr);
        Outcome {
            verdict: judged.verdict,
            exit_code: judged.exit_code,
            signal: judged.signal,
            stdout: ran.stdout,
            stderr: ran.stderr,
            compile_output,
            time_ms: ran.time_ms,
            memory_kb: judged.memory_kb,
            truncated: ran.truncated,
        }
    }

    /// Removes containers that carry the engine label but belong to no live engine:
    /// what a crashed earlier process on this machine left behind (its process id is
    /// gone). Call once at start-up.
    pub async fn remove_leftovers(&self) -> usize {
        let filters = HashMap::from([("label".to_string(), vec![LABEL.to_string()])]);
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
        let host = container::this_host();
        for c in list {
            let labels = c.labels.unwrap_or_default();
            let label = |k: &str| labels.get(k).map(String::as_str);
            let mine = label(INSTANCE_LABEL) == Some(self.instance.as_str());
            // Another app instance on this machine (or one using the same Docker engine
            // from elsewhere) keeps its pool and its runs: only a dead process's go.
            let orphaned = match (label(container::HOST_LABEL), label(container::PID_LABEL)) {
                (Some(h), Some(pid)) if h == host => {
                    !std::path::Path::new(&format!("/proc/{pid}")).exists()
                }
                (Some(_), Some(_)) => false,
                _ => true,
            };
            if let (false, true, Some(id)) = (mine, orphaned, c.id) {
                container::remove(&docker, &id).await;
                removed += 1;
            }
        }
        removed
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
