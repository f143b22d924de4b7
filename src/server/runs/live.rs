//! A run this process is executing: its current state, its live events, its stop switch.

use crate::model::{Run, RunStatus};
use crate::server::auth::Owner;
use futures::stream::{self, BoxStream, StreamExt};
use std::sync::RwLock;
use tokio::sync::{broadcast, watch};
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
    /// What a guest ran (a guest's `Run` carries no code), kept so that it can be shared.
    pub source: Option<super::Source>,
    run: RwLock<Run>,
    events: broadcast::Sender<RunEvent>,
    pub(super) cancel: CancellationToken,
    finished: watch::Sender<bool>,
}

impl LiveRun {
    /// A queued run of `owner`'s.
    pub(super) fn new(owner: Owner, run: Run, source: Option<super::Source>) -> LiveRun {
        let (events, _) = broadcast::channel(1024);
        let (finished, _) = watch::channel(false);
        LiveRun {
            owner,
            source,
            run: RwLock::new(run),
            events,
            cancel: CancellationToken::new(),
            finished,
        }
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
