//! The step driver: reads one attached container through its steps (the compile step,
//! then the run step), passing the program's output on as it comes, until the
//! supervisor's report, the time limit, a stop or the output cap ends the step.

use super::container::Container;
use super::output::{Capture, Splitter};
use super::program::Program;
use super::protocol::{self, Report};
use bollard::container::LogOutput;
use futures::StreamExt;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Which of the container's output streams bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stream {
    Out,
    Err,
}

/// Why an output callback ends a step before its output ends.
#[derive(Debug)]
enum Stop {
    /// The output passed the cap.
    OutputCap,
    /// The supervisor reported the end of the program.
    Exited(Report),
    /// The supervisor reported the end of the compile step.
    Compiled(Report),
    /// A report with the nonce that does not parse: only the supervisor knows the nonce,
    /// so the engine and the supervisor disagree on the protocol.
    Malformed,
}

/// How one step (compile or run) ended.
#[derive(Debug)]
pub(super) enum StepEnd {
    /// The supervisor reported how the program ended.
    Exited(Report),
    /// The container ended without the step's report: the supervisor was killed (the
    /// program can do that) or failed. Only Docker's view is known.
    Vanished {
        /// The container's exit code (125: the supervisor refused its input).
        code: i64,
        /// Docker says the memory cgroup killed a process.
        oom_killed: bool,
    },
    TimedOut,
    Cancelled,
    /// The output passed the cap.
    OutputCapped,
    /// The compile step ended as reported; the program may run next.
    Compiled(Report),
    /// Docker failed; the message is for the log.
    Failed(String),
    /// The container died before the program could start (no output at all, and it
    /// was still compiling or Docker says it ended before the run took it).
    DeadOnArrival,
}

impl StepEnd {
    fn from_stop(stop: Stop) -> StepEnd {
        match stop {
            Stop::OutputCap => StepEnd::OutputCapped,
            Stop::Compiled(r) => StepEnd::Compiled(r),
            Stop::Exited(r) => StepEnd::Exited(r),
            Stop::Malformed => StepEnd::Failed("a malformed supervisor report".into()),
        }
    }
}

/// The output side of an attached container.
type Output = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
>;

/// Output bytes of one stream, in arrival order.
pub(super) type Chunks = Vec<(Stream, Vec<u8>)>;

/// What the compile step left behind.
pub(super) struct Compiled {
    pub end: StepEnd,
    /// The compiler's output (capped).
    pub output: String,
    /// The compiler's output passed the cap (and the compile was stopped).
    pub truncated: bool,
    /// The program's output that arrived with the compile report: the run step's first.
    pub early: Chunks,
}

/// What the run step left behind.
pub(super) struct Ran {
    pub end: StepEnd,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
    /// The program's wall time: the supervisor's figure, or as measured here.
    pub time_ms: u64,
}

/// One run's attached container, read step by step. Dropping it stops feeding stdin.
pub(super) struct Attached<'a> {
    container: &'a Container,
    output: Output,
    nonce: String,
    cap: usize,
    cancel: &'a CancellationToken,
    /// When this run took the container.
    since: std::time::SystemTime,
    /// Whether any output at all came from the container.
    any_output: bool,
    /// The compile step is under way: the program cannot have started.
    compiling: bool,
    _feeder: AbortOnDropHandle<()>,
}

impl<'a> Attached<'a> {
    /// Takes the container's streams and feeds the supervisor its input (nonce,
    /// files, commands, `stdin`, then whatever is `typed`, with the CPU limit in seconds
    /// for an interactive run); `None` if the streams were already taken.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        container: &'a Container,
        program: &Program,
        commands: &protocol::Commands,
        stdin: &str,
        typed: Option<&Typed>,
        cpu_limit_s: u64,
        cap: usize,
        cancel: &'a CancellationToken,
    ) -> Option<Self> {
        let since = std::time::SystemTime::now();
        let io = container.take_io()?;
        let nonce = protocol::nonce();
        let feeder = feed(
            io.input,
            // Typed input makes the wall-clock limit a person's: CPU time keeps the usual one.
            protocol::input(&nonce, program, commands, stdin, typed.map(|_| cpu_limit_s)),
            typed.cloned(),
        );
        Some(Attached {
            container,
            output: io.output,
            nonce,
            cap,
            cancel,
            since,
            any_output: false,
            compiling: false,
            _feeder: feeder,
        })
    }

    /// The compile step: the supervisor compiles (output to stderr) and reports how
    /// the compiler ended in a nonce-framed `C` report on stderr; the program runs only
    /// after a clean compile. Anything after the report is the program's already.
    pub async fn compile(&mut self, limit: Duration) -> Compiled {
        let mut split = Splitter::new(&self.nonce);
        let mut out = Capture::new(self.cap);
        let mut early = Chunks::new();
        self.compiling = true;
        let end = self
            .follow(limit, &mut |stream, bytes| match stream {
                // The compiler writes to stderr only: this is the program's.
                Stream::Out => {
                    early.push((Stream::Out, bytes.to_vec()));
                    ControlFlow::Continue(())
                }
                Stream::Err => {
                    out.push(split.push(bytes));
                    // A compiler that floods its diagnostics is stopped like a program.
                    if out.overflowed {
                        return ControlFlow::Break(Stop::OutputCap);
                    }
                    match split.trailer() {
                        Some(body) => match Report::parse(body, 'C') {
                            Some(r) => ControlFlow::Break(Stop::Compiled(r)),
                            None => ControlFlow::Break(Stop::Malformed),
                        },
                        None => ControlFlow::Continue(()),
                    }
                }
            })
            .await;
        self.compiling = false;
        early.push((Stream::Err, split.take_after()));
        out.push(&split.finish());
        Compiled {
            end,
            truncated: out.overflowed,
            output: out.finish(),
            early,
        }
    }

    /// The run step: after the program, the supervisor writes its `R` report (exit
    /// status or signal, CPU time, peak memory, wall time, the cgroup's OOM kill) after
    /// the program's output on stdout and an empty trailer on stderr, so Docker need not
    /// be asked how the program ended. `early` (output that came with
    /// the compile report) goes first; `on_text` gets the program's text as it comes.
    pub async fn run(
        &mut self,
        limit: Duration,
        early: Chunks,
        on_text: &(dyn Fn(Stream, String) + Send + Sync),
    ) -> Ran {
        let mut stdout = Capture::new(self.cap);
        let mut stderr = Capture::new(self.cap);
        let mut out_split = Splitter::new(&self.nonce);
        let mut err_split = Splitter::new(&self.nonce);
        let started = Instant::now();
        let mut on_output = |stream: Stream, bytes: &[u8]| {
            let (split, capture) = match stream {
                Stream::Out => (&mut out_split, &mut stdout),
                Stream::Err => (&mut err_split, &mut stderr),
            };
            let text = capture.push(split.push(bytes));
            if !text.is_empty() {
                on_text(stream, text);
            }
            if capture.overflowed {
                return ControlFlow::Break(Stop::OutputCap);
            }
            // Docker copies the two pipes separately: the run is over only when
            // both trailers have arrived.
            match (out_split.trailer(), err_split.trailer()) {
                (Some(report), Some(_)) => match Report::parse(report, 'R') {
                    Some(r) => ControlFlow::Break(Stop::Exited(r)),
                    None => ControlFlow::Break(Stop::Malformed),
                },
                _ => ControlFlow::Continue(()),
            }
        };
        let mut end = None;
        for (stream, bytes) in early.iter().filter(|(_, b)| !b.is_empty()) {
            if let ControlFlow::Break(stop) = on_output(*stream, bytes) {
                end = Some(StepEnd::from_stop(stop));
                break;
            }
        }
        let end = match end {
            Some(end) => end,
            None => self.follow(limit, &mut on_output).await,
        };
        // Bytes held back as a possible marker start were the program's after all.
        for (stream, split, capture) in [
            (Stream::Out, &mut out_split, &mut stdout),
            (Stream::Err, &mut err_split, &mut stderr),
        ] {
            let text = capture.push(&split.finish());
            if !text.is_empty() {
                on_text(stream, text);
            }
        }
        let time_ms = match &end {
            StepEnd::Exited(Report {
                wall_ms: Some(ms), ..
            }) => *ms,
            _ => started.elapsed().as_millis() as u64,
        };
        Ran {
            end,
            truncated: stdout.overflowed || stderr.overflowed,
            stdout: stdout.finish(),
            stderr: stderr.finish(),
            time_ms,
        }
    }

    /// Follows one step to its end. No Docker call at all when the step's report
    /// arrives; otherwise the container has ended, and Docker is asked how.
    async fn follow(
        &mut self,
        limit: Duration,
        on_output: &mut (dyn FnMut(Stream, &[u8]) -> ControlFlow<Stop> + Send),
    ) -> StepEnd {
        let any = &mut self.any_output;
        let mut counted = |stream: Stream, bytes: &[u8]| {
            *any |= !bytes.is_empty();
            on_output(stream, bytes)
        };
        if let Some(end) = drive(&mut self.output, limit, self.cancel, &mut counted).await {
            return end;
        }
        // The supervisor died before its report (the program killed it, or it refused
        // its input): the container has stopped, and Docker knows how. Without a byte of
        // output, while compiling or having died before this run took it, the container
        // never ran the program.
        match self.container.exit_state().await {
            Ok(state)
                if !self.any_output
                    && (self.compiling || state.finished_at.is_some_and(|t| t <= self.since)) =>
            {
                StepEnd::DeadOnArrival
            }
            Ok(state) => StepEnd::Vanished {
                code: state.code,
                oom_killed: state.oom_killed,
            },
            Err(e) => StepEnd::Failed(e),
        }
    }
}

/// Input typed while the program runs (an interactive run): chunks in the order they
/// were sent; the channel's end is the program's end of input. Shared, so that a run
/// retried on a fresh container (see `DeadOnArrival`) reads the same channel.
pub type Typed = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>>;

/// Writes `input` to a process's stdin, then whatever is `typed` (if the run is
/// interactive) as it comes, then closes it, from its own task: a program that writes
/// before it reads must not dead-lock against us. Each chunk is flushed on its own, so
/// the program sees a line as soon as it was sent. Dropping the handle stops it.
fn feed(
    mut writer: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    input: Vec<u8>,
    typed: Option<Typed>,
) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(async move {
        if writer.write_all(&input).await.is_err() {
            return;
        }
        if let Some(typed) = typed {
            let _ = writer.flush().await;
            let mut typed = typed.lock_owned().await;
            while let Some(chunk) = typed.recv().await {
                if writer.write_all(&chunk).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
            }
        }
        let _ = writer.shutdown().await;
    }))
}

/// Passes a process's output to `on_output` until that ends the step, the time `limit`
/// passes, `cancel` fires or the output ends. The last case is `None`: the caller asks
/// Docker how the process ended.
async fn drive(
    output: &mut Output,
    limit: Duration,
    cancel: &CancellationToken,
    on_output: &mut (dyn FnMut(Stream, &[u8]) -> ControlFlow<Stop> + Send),
) -> Option<StepEnd> {
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let end = StepEnd::from_stop;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break Some(StepEnd::Cancelled),
            _ = &mut deadline => break Some(StepEnd::TimedOut),
            item = output.next() => match item {
                Some(Ok(LogOutput::StdOut { message })) | Some(Ok(LogOutput::Console { message })) => {
                    if let ControlFlow::Break(stop) = on_output(Stream::Out, &message) { break Some(end(stop)); }
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    if let ControlFlow::Break(stop) = on_output(Stream::Err, &message) { break Some(end(stop)); }
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(e)) => break Some(StepEnd::Failed(e.to_string())),
                None => break None,
            },
        }
    }
}
