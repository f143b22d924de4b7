//! A run this process is executing: its current state, its numbered events, its stop
//! switch.
//!
//! Every event gets the next number (1, 2, 3, ...): the SSE `id`, the same on every node
//! (the run's Redis stream uses `0-N`), so a client that reconnects with `Last-Event-ID`
//! continues after what it saw, here or on another node. The events are kept for the
//! life of the run in memory (the output they carry is capped by the engine), so a
//! subscriber never skips any.

use crate::model::{Run, RunStatus};
use crate::server::auth::Owner;
use crate::server::sandbox::Typed;
use futures::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// One message of the live event stream of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEvent {
    Status(RunStatus),
    Stdout(String),
    Stderr(String),
    /// The last event: the finished run.
    Result(Box<Run>),
}

/// An event with its number (from 1).
pub type Numbered = (u64, RunEvent);

/// A run this process is executing or has just finished.
pub struct LiveRun {
    pub owner: Owner,
    /// What a guest ran (a guest's `Run` carries no code), kept so that it can be shared.
    pub source: Option<super::Source>,
    inner: Arc<RwLock<Inner>>,
    /// The number of the last event, for subscribers waiting for the next one.
    latest: watch::Sender<u64>,
    pub(super) cancel: CancellationToken,
    finished: watch::Sender<bool>,
    /// Where each event is copied as it happens (the run's Redis stream), if anywhere.
    mirror: Option<mpsc::UnboundedSender<Numbered>>,
    /// An interactive run's open input (`None` for a run whose input was given up front).
    input: Mutex<Option<Input>>,
    /// The program's end of that input, taken by the engine when the run starts.
    typed: Mutex<Option<Typed>>,
    /// How many of the typed inputs held in Redis for this run it has had (read in
    /// order, one reader at a time).
    pub(super) typed_taken: tokio::sync::Mutex<usize>,
}

struct Inner {
    run: Run,
    /// Every event so far, numbered in order (numbers may skip where a copy read from
    /// Redis had lost some to trimming).
    log: Vec<Numbered>,
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
    /// A queued run of `owner`'s: its first event (1) is the `queued` status. Events are
    /// copied to `mirror` as they happen (the first one too when `mirror_first`: an
    /// executor's copy of a run starts after the web node's `queued`). For an
    /// interactive run, `input_limit` bounds the bytes typed into it in total.
    pub(super) fn new(
        owner: Owner,
        run: Run,
        source: Option<super::Source>,
        mirror: Option<mpsc::UnboundedSender<Numbered>>,
        mirror_first: bool,
        input_limit: Option<usize>,
    ) -> LiveRun {
        let first = RunEvent::Status(run.status);
        if let Some(m) = mirror.as_ref().filter(|_| mirror_first) {
            let _ = m.send((1, first.clone()));
        }
        let (latest, _) = watch::channel(1);
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
            source,
            inner: Arc::new(RwLock::new(Inner {
                run,
                log: vec![(1, first)],
            })),
            latest,
            cancel: CancellationToken::new(),
            finished,
            mirror,
            input: Mutex::new(input),
            typed: Mutex::new(typed),
            typed_taken: tokio::sync::Mutex::new(0),
        }
    }

    /// The program's end of an interactive run's input (once).
    pub(super) fn take_typed(&self) -> Option<Typed> {
        self.typed.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Passes `data` (then, with `eof`, the end of input) to the program, or holds it
    /// until the program starts when the run is queued.
    /// Whether typed input is taken here: an interactive run this process executes
    /// (a web node's copy of a queued run passes input on through Redis instead).
    pub(super) fn takes_input(&self) -> bool {
        self.input
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

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
        self.inner
            .read()
            .map(|i| i.run.clone())
            .unwrap_or_else(|p| p.into_inner().run.clone())
    }

    /// The run's events after event `after` (0: from the start), then each one as it
    /// happens, ending right after the result.
    pub fn events(&self, after: u64) -> BoxStream<'static, Numbered> {
        let rx = self.latest.subscribe();
        let inner = self.inner.clone();
        stream::unfold(
            (rx, after + 1, false, inner),
            |(mut rx, next, done, inner)| async move {
                if done {
                    return None;
                }
                loop {
                    let got = events_from(&inner, next);
                    if let Some((last, _)) = got.last() {
                        let n = last + 1;
                        let done = got.iter().any(|(_, e)| matches!(e, RunEvent::Result(_)));
                        return Some((stream::iter(got), (rx, n, done, inner)));
                    }
                    // The sender lives as long as the run; its end ends the stream.
                    rx.changed().await.ok()?;
                }
            },
        )
        .flatten()
        .boxed()
    }

    /// Waits until the run has finished and returns it.
    pub async fn wait(&self) -> Run {
        let mut rx = self.finished.subscribe();
        let _ = rx.wait_for(|done| *done).await;
        self.snapshot()
    }

    /// Changes the run and records the event the change makes, if any.
    pub(super) fn update(&self, f: impl FnOnce(&mut Run) -> Option<RunEvent>) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(ev) = f(&mut inner.run) {
            let n = inner.log.last().map_or(0, |(n, _)| *n) + 1;
            inner.log.push((n, ev.clone()));
            // Numbered and copied under the lock, so the mirror sees them in order.
            if let Some(m) = &self.mirror {
                let _ = m.send((n, ev));
            }
            self.latest.send_replace(n);
        }
    }

    /// Records event `n` as read from the run's Redis stream (this node does not execute
    /// the run): the run's state follows it. Events at or below the last one are ignored.
    pub(super) fn apply(&self, n: u64, ev: RunEvent) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if inner.log.last().is_some_and(|(last, _)| *last >= n) {
            return;
        }
        match &ev {
            RunEvent::Status(s) => inner.run.status = *s,
            RunEvent::Stdout(t) => inner.run.stdout.push_str(t),
            RunEvent::Stderr(t) => inner.run.stderr.push_str(t),
            RunEvent::Result(r) => inner.run = (**r).clone(),
        }
        inner.log.push((n, ev));
        self.latest.send_replace(n);
    }

    /// The number of the last event so far.
    pub(super) fn last_number(&self) -> u64 {
        *self.latest.borrow()
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

/// The events numbered `from` and later that exist now.
fn events_from(inner: &RwLock<Inner>, from: u64) -> Vec<Numbered> {
    let inner = inner.read().unwrap_or_else(|p| p.into_inner());
    let start = inner.log.partition_point(|(n, _)| *n < from);
    inner.log[start..].to_vec()
}
