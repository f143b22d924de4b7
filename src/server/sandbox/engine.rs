//! The execution engine: runs one program in one fresh container and reports how it
//! ended. It knows nothing of HTTP, users or quotas.

use super::container::{self, Container, INSTANCE_LABEL, LABEL, STATS_FILE};
use super::languages::{Language, LANGUAGES};
use super::output::{Capture, Splitter};
use crate::model::Verdict;
use crate::server::config::SandboxConfig;
use base64::Engine as _;
use bollard::container::LogOutput;
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Mutex, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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

/// A place in the bounded queue. Dropping it frees the place.
pub struct Ticket {
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Ready containers for one language; each is used by exactly one run.
struct Pool {
    ready: Mutex<mpsc::Receiver<Container>>,
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
    pools: HashMap<&'static str, Pool>,
    slots: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
    /// Runs that hold a slot right now.
    running: AtomicUsize,
    /// Notified when a run starts or ends, or a pool hands out a container.
    activity: Notify,
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
        let mut pools = HashMap::new();
        let mut senders = Vec::new();
        for lang in LANGUAGES {
            let (tx, rx) = mpsc::channel(cfg.pool_size.max(1));
            pools.insert(
                lang.id,
                Pool {
                    ready: Mutex::new(rx),
                },
            );
            senders.push((lang, tx));
        }
        let engine = Arc::new(Engine {
            docker: RwLock::new(docker),
            docker_host: docker_host.map(str::to_string),
            negotiated: AtomicBool::new(false),
            healthy: AtomicBool::new(false),
            slots: Arc::new(Semaphore::new(cfg.max_concurrent_runs)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            running: AtomicUsize::new(0),
            activity: Notify::new(),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            pools,
            cfg,
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        });
        engine.ping().await;
        if engine.cfg.pool_size > 0 {
            for (lang, tx) in senders {
                let e = engine.clone();
                engine
                    .tracker
                    .spawn(async move { e.refill(lang, tx).await });
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

    /// Takes a place in the bounded queue, or refuses at once.
    pub async fn admit(&self) -> Result<Ticket, Refusal> {
        if !self.healthy.load(Ordering::SeqCst) && !self.ping().await {
            return Err(Refusal::DockerDown);
        }
        let limit = self.cfg.max_concurrent_runs + self.cfg.queue_size;
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let ticket = Ticket {
            in_flight: self.in_flight.clone(),
        };
        if before >= limit {
            return Err(Refusal::Busy);
        }
        Ok(ticket)
    }

    /// Keeps one language's pool full of started, never-used containers.
    async fn refill(self: Arc<Self>, lang: &'static Language, tx: mpsc::Sender<Container>) {
        loop {
            let permit = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                p = tx.reserve() => match p { Ok(p) => p, Err(_) => return },
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = self.quiet(&tx) => {}
            }
            // Not cancelled half-way: a container Docker has created but that no guard
            // holds yet would be left behind. Shutdown waits for this task.
            let created = self.fresh_container(lang).await;
            match created {
                Ok(c) if self.shutdown.is_cancelled() => drop(c),
                Ok(c) => permit.send(c),
                Err(e) => {
                    tracing::warn!(language = lang.id, error = %e, "could not prepare a sandbox container; retrying");
                    drop(permit);
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        }
    }

    /// Waits until no run is executing, or this pool is empty. Creating and starting a
    /// container costs a lot of CPU; done while a run executes, it slows that run down.
    async fn quiet(&self, tx: &mpsc::Sender<Container>) {
        loop {
            let notified = self.activity.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // The caller holds one reserved place: the ready containers are the others.
            let ready = tx.max_capacity() - tx.capacity() - 1;
            if ready == 0 || self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
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
                run_command(lang),
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
        if let Some(pool) = self.pools.get(lang.id) {
            if let Ok(c) = pool.ready.lock().await.try_recv() {
                self.activity.notify_waiters();
                return Ok(c);
            }
        }
        self.fresh_container(lang).await
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
        let _ticket = ticket;
        if self.shutdown.is_cancelled() {
            return Outcome::bare(Verdict::Stopped);
        }
        // The run ends when its own token fires or the engine shuts down.
        let run_cancel = self.shutdown.child_token();
        let _link = AbortOnDrop(tokio::spawn({
            let (outer, inner) = (cancel.clone(), run_cancel.clone());
            async move {
                outer.cancelled().await;
                inner.cancel();
            }
        }));
        let cancel = &run_cancel;
        let _slot = tokio::select! {
            _ = cancel.cancelled() => return Outcome::bare(Verdict::Stopped),
            s = self.slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => return Outcome::bare(Verdict::InternalError),
            },
        };
        let _running = RunningGuard::new(self);
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
            container.kill_now().await;
            return Outcome::bare(Verdict::Stopped);
        }
        on_event(Event::Started);
        let outcome = self
            .run_in(&container, lang, code, stdin, on_event, cancel)
            .await;
        if outcome.verdict != Verdict::Ok
            && outcome.verdict != Verdict::RuntimeError
            && outcome.verdict != Verdict::CompileError
        {
            // Killed runs must not linger: remove before reporting.
            container.kill_now().await;
        }
        outcome
    }

    async fn run_in(
        &self,
        c: &Container,
        lang: &Language,
        code: &str,
        stdin: &str,
        on_event: &(dyn Fn(Event) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Outcome {
        let cap = self.cfg.max_output_bytes;
        let Some(io) = c.take_io() else {
            tracing::error!(container = %c.id, "a sandbox container without its attached streams");
            return Outcome::bare(Verdict::InternalError);
        };
        // The container's own process is the wrapper shell (see `run_script`), waiting on
        // stdin. Everything goes in at once: a random per-run nonce, the source as one
        // base64 line (no quoting problems, no files from the host), then the program's
        // stdin, which the shell's `read`s leave alone.
        //
        // Trust model: the nonce is never in argv or the environment, and the shell has
        // consumed it from the pipe before the program starts, so the program cannot
        // print a valid report (anything it prints, fake markers included, stays its
        // output). A program that ptraces or reads the memory of its ancestors could
        // learn the nonce and forge the report, but only to lie about its own exit code,
        // peak memory and OOM flag: the run time is measured here, outside the
        // container, and the memory limit is enforced by the cgroup either way.
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let encoded = base64::engine::general_purpose::STANDARD.encode(code);
        let _feeder = feed(
            io.input,
            format!("{nonce}\n{encoded}\n{stdin}").into_bytes(),
        );
        let mut output = io.output;

        // Compiled languages: the shell first compiles (output to stderr) and reports the
        // compiler's exit code in a nonce-framed report on stderr; the program runs only
        // after a clean compile. Anything after the report is the program's already.
        let mut compile_output = String::new();
        let mut early: Vec<(Stream, Vec<u8>)> = Vec::new();
        if lang.compile.is_some() {
            let mut split = Splitter::new(&nonce);
            let mut out = Capture::new(cap);
            let end = self
                .attached(
                    c,
                    &mut output,
                    self.cfg.compile_time_limit,
                    cancel,
                    &mut |stream, bytes| match stream {
                        // The compiler writes to stderr only: this is the program's.
                        Stream::Out => {
                            early.push((Stream::Out, bytes.to_vec()));
                            ControlFlow::Continue(())
                        }
                        Stream::Err => {
                            out.push(split.push(bytes));
                            match split.trailer() {
                                Some(report) => ControlFlow::Break(Stop::Compiled(
                                    String::from_utf8_lossy(report).trim().parse().unwrap_or(-1),
                                )),
                                None => ControlFlow::Continue(()),
                            }
                        }
                    },
                )
                .await;
            early.push((Stream::Err, split.take_after()));
            out.push(&split.finish());
            compile_output = out.finish();
            let failed = |verdict| Outcome {
                compile_output: compile_output.clone(),
                ..Outcome::bare(verdict)
            };
            match end {
                ExecEnd::Compiled(0) => {}
                ExecEnd::Compiled(code) | ExecEnd::Exited { code, .. } => {
                    return Outcome {
                        exit_code: Some(code),
                        ..failed(Verdict::CompileError)
                    };
                }
                ExecEnd::TimedOut => {
                    let mut o = failed(Verdict::TimeLimit);
                    o.compile_output
                        .push_str("\nCompilation took too long and was stopped.");
                    return o;
                }
                ExecEnd::Cancelled => return failed(Verdict::Stopped),
                ExecEnd::Aborted => return failed(Verdict::OutputLimit),
                ExecEnd::Failed(e) => {
                    tracing::error!(error = %e, "compile step failed in Docker");
                    return failed(Verdict::InternalError);
                }
            }
        }

        // The run step: after the program, the wrapper shell reports the exit code, GNU
        // time's file and the cgroup's OOM counter in a trailer after the program's
        // output, so Docker need not be asked how the program ended.
        let mut stdout = Capture::new(cap);
        let mut stderr = Capture::new(cap);
        let mut out_split = Splitter::new(&nonce);
        let mut err_split = Splitter::new(&nonce);
        let started = Instant::now();
        let mut on_output = |stream: Stream, bytes: &[u8]| {
            let (split, capture, wrap): (&mut Splitter, &mut Capture, fn(String) -> Event) =
                match stream {
                    Stream::Out => (&mut out_split, &mut stdout, Event::Stdout),
                    Stream::Err => (&mut err_split, &mut stderr, Event::Stderr),
                };
            let text = capture.push(split.push(bytes));
            if !text.is_empty() {
                on_event(wrap(text));
            }
            if capture.overflowed {
                return ControlFlow::Break(Stop::Abort);
            }
            // Docker copies the two pipes separately: the run is over only when
            // both trailers have arrived.
            match (out_split.trailer(), err_split.trailer()) {
                (Some(report), Some(_)) => match Report::parse(report) {
                    Some(r) => ControlFlow::Break(Stop::Exited(r)),
                    None => ControlFlow::Continue(()),
                },
                _ => ControlFlow::Continue(()),
            }
        };
        // Output that came with the compile report goes first.
        let mut end = None;
        for (stream, bytes) in early.iter().filter(|(_, b)| !b.is_empty()) {
            if let ControlFlow::Break(stop) = on_output(*stream, bytes) {
                end = Some(stopped(stop, started.elapsed()));
                break;
            }
        }
        let end = match end {
            Some(end) => end,
            None => {
                self.attached(
                    c,
                    &mut output,
                    self.cfg.run_time_limit,
                    cancel,
                    &mut on_output,
                )
                .await
            }
        };
        // Bytes held back as a possible marker start were the program's after all.
        for (split, capture, wrap) in [
            (
                &mut out_split,
                &mut stdout,
                Event::Stdout as fn(String) -> Event,
            ),
            (&mut err_split, &mut stderr, Event::Stderr),
        ] {
            let text = capture.push(&split.finish());
            if !text.is_empty() {
                on_event(wrap(text));
            }
        }
        let time_ms = started.elapsed().as_millis() as u64;
        let truncated = stdout.overflowed || stderr.overflowed;
        let mut outcome = Outcome {
            stdout: stdout.finish(),
            stderr: stderr.finish(),
            compile_output,
            time_ms,
            truncated,
            ..Outcome::bare(Verdict::Ok)
        };
        match end {
            ExecEnd::Exited {
                code,
                ran_for,
                stats,
            } => {
                outcome.time_ms = ran_for.as_millis() as u64;
                // The program can write GNU time's file itself (same user, and GNU time
                // writes it only after the program ends). So its figures are only
                // believed where they cannot flatter or frame the program: the peak is
                // capped at the cgroup's limit, which the kernel enforces, and a signal
                // counts only when the exit status says the program died of it.
                let limit_kb = (container::memory_bytes(&self.cfg, lang) / 1024) as u64;
                outcome.memory_kb = stats.max_rss_kb.map(|kb| kb.min(limit_kb));
                let signal = stats.signal.filter(|sig| code == 128 + sig);
                if let Some(sig) = signal {
                    outcome.signal = Some(signal_name(sig));
                } else {
                    outcome.exit_code = Some(code);
                }
                outcome.verdict = if stats.oom_killed
                    || (lang.big_memory && outcome.stderr.contains("java.lang.OutOfMemoryError"))
                {
                    Verdict::MemoryLimit
                } else if code == 0 {
                    Verdict::Ok
                } else {
                    Verdict::RuntimeError
                };
            }
            ExecEnd::TimedOut => outcome.verdict = Verdict::TimeLimit,
            ExecEnd::Cancelled => outcome.verdict = Verdict::Stopped,
            ExecEnd::Aborted => outcome.verdict = Verdict::OutputLimit,
            ExecEnd::Failed(e) => {
                tracing::error!(error = %e, "run step failed in Docker");
                outcome.verdict = Verdict::InternalError;
            }
            ExecEnd::Compiled(_) => {
                tracing::error!("a second compile report during the run step");
                outcome.verdict = Verdict::InternalError;
            }
        }
        outcome
    }

    /// Reads one step (compile or run) of a container whose own process is the wrapper
    /// shell. No Docker call at all when the step's report arrives; otherwise the
    /// container has ended, and Docker is asked how.
    async fn attached(
        &self,
        c: &Container,
        output: &mut Output,
        limit: Duration,
        cancel: &CancellationToken,
        on_output: &mut (dyn FnMut(Stream, &[u8]) -> ControlFlow<Stop> + Send),
    ) -> ExecEnd {
        let ran_for = match drive(output, limit, cancel, on_output).await {
            Ok(end) => return end,
            Err(ran_for) => ran_for,
        };
        // The wrapper shell died before its report (killed with its container's process
        // tree): the container has stopped, and Docker knows how.
        let docker = match self.client() {
            Ok(d) => d,
            Err(e) => return ExecEnd::Failed(e),
        };
        for _ in 0..50 {
            match docker.inspect_container(&c.id, None).await {
                Ok(r) => {
                    let state = r.state.unwrap_or_default();
                    if state.running != Some(true) {
                        return ExecEnd::Exited {
                            code: state.exit_code.unwrap_or(-1),
                            ran_for,
                            stats: Stats {
                                oom_killed: state.oom_killed == Some(true),
                                ..Stats::default()
                            },
                        };
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => return ExecEnd::Failed(e.to_string()),
            }
        }
        ExecEnd::Failed("the container did not report its exit".into())
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
        while self.running.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for pool in self.pools.values() {
            let mut rx = pool.ready.lock().await;
            rx.close();
            while let Ok(c) = rx.try_recv() {
                drop(c);
            }
        }
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Aborts a helper task when the run it serves is over.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counts a run as executing while it lives (the pools refill when no run executes).
struct RunningGuard<'a>(&'a Engine);

impl<'a> RunningGuard<'a> {
    fn new(engine: &'a Engine) -> Self {
        engine.running.fetch_add(1, Ordering::SeqCst);
        engine.activity.notify_waiters();
        RunningGuard(engine)
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.activity.notify_waiters();
    }
}

#[derive(Clone, Copy, Debug)]
enum Stream {
    Out,
    Err,
}

/// Why an output callback ends a step before its output ends.
#[derive(Debug)]
enum Stop {
    /// Too much output.
    Abort,
    /// The wrapper shell reported the end of the program.
    Exited(Report),
    /// The wrapper shell reported the end of the compile step (its exit code).
    Compiled(i64),
}

#[derive(Debug)]
enum ExecEnd {
    Exited {
        code: i64,
        ran_for: Duration,
        /// What the run's trailer reported (without a trailer: only Docker's OOM flag).
        stats: Stats,
    },
    TimedOut,
    Cancelled,
    /// The output callback asked to stop (output limit).
    Aborted,
    /// The compile step ended (its exit code); the program may run next.
    Compiled(i64),
    Failed(String),
}

/// The output side of an attached container.
type Output = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
>;

/// Writes `input` to a process's stdin, then closes it, from its own task: a program that
/// writes before it reads must not dead-lock against us. Dropping the guard stops it.
fn feed(
    mut writer: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    input: Vec<u8>,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let _ = writer.write_all(&input).await;
        let _ = writer.shutdown().await;
    }))
}

/// What a `Stop` from the output callback means for the process.
fn stopped(stop: Stop, ran_for: Duration) -> ExecEnd {
    match stop {
        Stop::Abort => ExecEnd::Aborted,
        Stop::Compiled(code) => ExecEnd::Compiled(code),
        Stop::Exited(r) => ExecEnd::Exited {
            code: r.code,
            ran_for,
            stats: r.stats,
        },
    }
}

/// Passes a process's output to `on_output` until that ends the step, the time `limit`
/// passes, `cancel` fires or the output ends. The last case is `Err(how long it ran)`:
/// the caller asks Docker how the process ended.
async fn drive(
    output: &mut Output,
    limit: Duration,
    cancel: &CancellationToken,
    on_output: &mut (dyn FnMut(Stream, &[u8]) -> ControlFlow<Stop> + Send),
) -> Result<ExecEnd, Duration> {
    let started = Instant::now();
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let stopped = |stop| stopped(stop, started.elapsed());
    let end = loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break Some(ExecEnd::Cancelled),
            _ = &mut deadline => break Some(ExecEnd::TimedOut),
            item = output.next() => match item {
                Some(Ok(LogOutput::StdOut { message })) | Some(Ok(LogOutput::Console { message })) => {
                    if let ControlFlow::Break(stop) = on_output(Stream::Out, &message) { break Some(stopped(stop)); }
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    if let ControlFlow::Break(stop) = on_output(Stream::Err, &message) { break Some(stopped(stop)); }
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(e)) => break Some(ExecEnd::Failed(e.to_string())),
                None => break None,
            },
        }
    };
    end.ok_or_else(|| started.elapsed())
}

/// The run step: the wrapper shell around GNU time around the language's run command.
fn run_command(lang: &Language) -> Vec<String> {
    [
        "sh",
        "-c",
        &run_script(lang),
        "sh",
        "/usr/bin/time",
        "-f",
        "%M",
        "-o",
        STATS_FILE,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(lang.run.iter().map(|s| s.to_string()))
    .collect()
}

/// The wrapper shell (`sh -c SCRIPT sh /usr/bin/time ... PROGRAM...`), the container's
/// own process. It reads the nonce line and the source line from stdin and writes the
/// source file. Compiled languages then compile (stdin closed, all output to stderr) and
/// report on stderr `MARK nonce MARK exit-code MARK nonce MARK`, going on only after a
/// clean compile. Then it runs the program (not with `exec`: it has to report
/// afterwards) and writes the trailer: on stdout `MARK nonce MARK exit-code \n stats
/// MARK nonce MARK`, where the stats are GNU time's file and the cgroup's OOM counters,
/// read with shell built-ins (no fork); and on stderr an empty trailer `MARK nonce MARK
/// MARK nonce MARK`.
fn run_script(lang: &Language) -> String {
    let compile = match lang.compile {
        Some(compile) => format!(
            r#"{compile} </dev/null 1>&2
c=$?
printf '\036%s\036%s\036%s\036' "$n" "$c" "$n" >&2
[ "$c" = 0 ] || exit "$c"
"#
        ),
        None => String::new(),
    };
    format!(
        r#"IFS= read -r n || exit
IFS= read -r s || exit
printf %s "$s" | base64 -d > {source} || exit
{compile}"$@"
c=$?
s=
for f in {STATS_FILE} /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do
[ -f "$f" ] && [ -r "$f" ] && {{ while IFS= read -r l || [ -n "$l" ]; do s="$s$l
"; done < "$f"; }} 2>/dev/null
done
printf '\036%s\036%s\n%s\036%s\036' "$n" "$c" "$s" "$n"
printf '\036%s\036\036%s\036' "$n" "$n" >&2
exit "$c""#,
        source = lang.source_file,
    )
}

/// The body of a run's stdout trailer: the exit code, then the stats text.
#[derive(Debug, PartialEq, Eq)]
struct Report {
    code: i64,
    stats: Stats,
}

impl Report {
    fn parse(body: &[u8]) -> Option<Report> {
        let text = String::from_utf8_lossy(body);
        let (code, stats) = text.split_once('\n')?;
        Some(Report {
            code: code.trim().parse().ok()?,
            stats: Stats::parse(stats),
        })
    }
}

/// What the container recorded about a finished program.
#[derive(Debug, Default, PartialEq, Eq)]
struct Stats {
    max_rss_kb: Option<u64>,
    signal: Option<i64>,
    oom_killed: bool,
}

impl Stats {
    fn parse(text: &str) -> Stats {
        let mut s = Stats::default();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("Command terminated by signal ") {
                s.signal = rest.trim().parse().ok();
            } else if let Some(n) = line.strip_prefix("oom_kill ") {
                s.oom_killed |= n.trim().parse::<u64>().map(|n| n > 0).unwrap_or(false);
            } else if let Ok(kb) = line.parse::<u64>() {
                s.max_rss_kb = Some(kb);
            }
        }
        s
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

/// The usual name of a signal number.
pub fn signal_name(sig: i64) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_parse_time_and_cgroup_output() {
        let s = Stats::parse("Command terminated by signal 9\n69540\n\noom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
        assert_eq!(
            s,
            Stats {
                max_rss_kb: Some(69540),
                signal: Some(9),
                oom_killed: true
            }
        );
        let s = Stats::parse("7672\n\noom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
        assert_eq!(
            s,
            Stats {
                max_rss_kb: Some(7672),
                signal: None,
                oom_killed: false
            }
        );
        assert_eq!(signal_name(11), "SIGSEGV");
        let r = Report::parse(b"137\nCommand terminated by signal 9\n69540\noom_kill 1\n").unwrap();
        assert_eq!(
            r,
            Report {
                code: 137,
                stats: Stats {
                    max_rss_kb: Some(69540),
                    signal: Some(9),
                    oom_killed: true
                }
            }
        );
        // The exit code line is not taken for a peak memory figure.
        assert_eq!(Report::parse(b"0\n").unwrap().stats, Stats::default());
        assert_eq!(Report::parse(b"x\n1\n"), None);
        assert_eq!(Report::parse(b"0"), None);
        assert_eq!(signal_name(40), "signal 40");
    }
}
