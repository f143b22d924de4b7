//! A run this process is executing: its current state, its live events, its stop switch.

use crate::model::{Run, RunStatus};
use crate::server::auth::Owner;
use crate::server::sandbox::Typed;
use futures::stream::{self, BoxStream, StreamExt};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;

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
    pub(super) cancel: CancellationToken,
    finished: watch::Sender<bool>,
    /// An interactive run's open input (`None` for a run whose input was given up front).
    input: Mutex<Option<Input>>,
    /// The program's end of that input, taken by the engine when the run starts.
    typed: Mutex<Option<Typed>>,
}

/// Where typed input goes until its end, and how much of it has gone.
struct Input {
    /// `None` once the end of input was sent.
    tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
    sent: usize,
    limit: usize,
}

/// Why typed input was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum InputRefusal {
    /// The run has finished.
    NotRunning,
    /// The run's input was given up front, or its end was sent already.
    Closed,
    /// The run's typed input would pass its limit (bytes).
    TooMuch(usize),
}

impl LiveRun {
    /// A queued run of `owner`'s.
    /// For an interactive run, `input_limit` bounds the bytes typed into it in total.
    pub(super) fn new(owner: Owner, run: Run, input_limit: Option<usize>) -> LiveRun {
        let (events, _) = broadcast::channel(1024);
        let (finished, _) = watch::channel(false);
        let (input, typed) = match input_limit {
            Some(limit) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let input = Input {
                    tx: Some(tx),
                    sent: 0,
                    limit,
                };
                (Some(input), Some(Arc::new(tokio::sync::Mutex::new(rx))))
            }
            None => (None, None),
        };
        LiveRun {
            owner,
            run: RwLock::new(run),
            events,
            cancel: CancellationToken::new(),
            finished,
            input: Mutex::new(input),
            typed: Mutex::new(typed),
        }
    }

    /// The program's end of an interactive run's input (once).
    pub(super) fn take_typed(&self) -> Option<Typed> {
        self.typed.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Passes `data` (then, with `eof`, the end of input) to the program, or holds it
    /// until the program starts when the run is queued.
    pub(super) fn send_input(&self, data: &str, eof: bool) -> Result<(), InputRefusal> {
        if self.snapshot().status == RunStatus::Finished {
            return Err(InputRefusal::NotRunning);
        }
        let mut guard = self.input.lock().unwrap_or_else(|p| p.into_inner());
        let Some(input) = guard.as_mut() else {
            return Err(InputRefusal::Closed);
        };
        let Some(tx) = &input.tx else {
            return Err(InputRefusal::Closed);
        };
        if input.sent + data.len() > input.limit {
            return Err(InputRefusal::TooMuch(input.limit));
        }
        // The engine drops its end when the program has ended.
        if !data.is_empty() && tx.send(data.as_bytes().to_vec()).is_err() {
            return Err(InputRefusal::NotRunning);
        }
        input.sent += data.len();
        if eof {
            input.tx = None;
        }
        Ok(())
    }

    /// The run as it is now.
    pub fn snapshot(&self) -> Run {
        self.run
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Everything that happened so far as events, plus a receiver for what comes next,
    /// taken together so that nothing is missed or repeated.
    fn subscribe(&self) -> (Vec<RunEvent>, Option<broadcast::Receiver<RunEvent>>) {
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

    /// The run's events from the start: what happened so far, then what happens next,
    /// ending right after the result. A subscriber that falls behind skips what it
    /// missed of the live output (the result still carries all of it).
    pub fn events(&self) -> BoxStream<'static, RunEvent> {
        let (past, rx) = self.subscribe();
        let rest = match rx {
            None => stream::empty().boxed(),
            Some(rx) => BroadcastStream::new(rx)
                // A lagging subscriber skips what it missed (`Lagged` is the only error).
                .filter_map(|ev| futures::future::ready(ev.ok()))
                .boxed(),
        };
        // Ends as soon as the result is out, without waiting for another event (none
        // comes: the sender lives on while the finished run is kept).
        let all = stream::iter(past).chain(rest);
        stream::unfold((all, false), |(mut events, done)| async move {
            if done {
                return None;
            }
            let ev = events.next().await?;
            let done = matches!(ev, RunEvent::Result(_));
            Some((ev, (events, done)))
        })
        .boxed()
    }

    /// Waits until the run has finished and returns it.
    pub async fn wait(&self) -> Run {
        let mut rx = self.finished.subscribe();
        let _ = rx.wait_for(|done| *done).await;
        self.snapshot()
    }

    /// Changes the run and sends the event the change makes, if any.
    pub(super) fn update(&self, f: impl FnOnce(&mut Run) -> Option<RunEvent>) {
        let mut run = self.run.write().unwrap_or_else(|p| p.into_inner());
        if let Some(ev) = f(&mut run) {
            // Sent under the lock so that `subscribe` sees a consistent cut.
            let _ = self.events.send(ev);
        }
    }

    /// Marks the run as ended for everyone waiting in `wait`.
    pub(super) fn mark_finished(&self) {
        let _ = self.finished.send(true);
    }

    /// Asks the run to stop (queued or running); it ends `stopped`.
    pub(super) fn stop(&self) {
        self.cancel.cancel();
    }
}
