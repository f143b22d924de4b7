//! The warm pool: started, never-used containers per language, refilled only while no run
//! executes (creating and starting a container costs a lot of CPU; done while a run
//! executes, it slows that run down).

use super::container::Container;
use super::languages::{Language, LANGUAGES};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, Mutex, Notify};
use tokio_util::sync::CancellationToken;

/// The sending side of one language's pool, for its refill task.
pub(super) type Refill = (&'static Language, mpsc::Sender<Container>);

/// Ready containers for every language (each is used by exactly one run), and the count
/// of executing runs the refills wait on.
pub(super) struct Pools {
    ready: HashMap<&'static str, Mutex<mpsc::Receiver<Container>>>,
    /// Runs that hold a slot right now.
    running: AtomicUsize,
    /// Notified when a run starts or ends, or a pool hands out a container.
    activity: Notify,
}

impl Pools {
    /// Empty pools holding up to `size` containers each, and their refill ends.
    pub fn new(size: usize) -> (Pools, Vec<Refill>) {
        let mut ready = HashMap::new();
        let mut refills = Vec::new();
        for lang in LANGUAGES {
            let (tx, rx) = mpsc::channel(size.max(1));
            ready.insert(lang.id, Mutex::new(rx));
            refills.push((lang, tx));
        }
        let pools = Pools {
            ready,
            running: AtomicUsize::new(0),
            activity: Notify::new(),
        };
        (pools, refills)
    }

    /// Keeps one language's pool full of containers from `make`, until `shutdown`.
    pub async fn refill<F, Fut>(&self, refill: Refill, shutdown: &CancellationToken, make: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Container, String>>,
    {
        let (lang, tx) = refill;
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = tx.reserve() => match p { Ok(p) => p, Err(_) => return },
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.quiet(&tx) => {}
            }
            // Not cancelled half-way: a container Docker has created but that no guard
            // holds yet would be left behind. Shutdown waits for this task.
            match make().await {
                Ok(c) if shutdown.is_cancelled() => drop(c),
                Ok(c) => permit.send(c),
                Err(e) => {
                    tracing::warn!(language = lang.id, error = %e, "could not prepare a sandbox container; retrying");
                    drop(permit);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        }
    }

    /// Waits until no run is executing, or this pool is empty.
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

    /// A ready container for `lang`, if its pool has one.
    pub async fn take(&self, lang: &Language) -> Option<Container> {
        let c = self.ready.get(lang.id)?.lock().await.try_recv().ok()?;
        self.activity.notify_waiters();
        Some(c)
    }

    /// Counts a run as executing while the guard lives.
    pub fn running(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.activity.notify_waiters();
        Running(self)
    }

    /// Runs executing right now.
    pub fn running_count(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Removes the ready containers, leaving the pools open to refill with new ones.
    pub async fn flush(&self) {
        for ready in self.ready.values() {
            let mut rx = ready.lock().await;
            while let Ok(c) = rx.try_recv() {
                drop(c);
            }
        }
        self.activity.notify_waiters();
    }

    /// Closes the pools and removes the containers in them.
    pub async fn drain(&self) {
        for ready in self.ready.values() {
            let mut rx = ready.lock().await;
            rx.close();
            while let Ok(c) = rx.try_recv() {
                drop(c);
            }
        }
    }
}

/// Counts a run as executing while it lives (the pools refill when no run executes).
pub(super) struct Running<'a>(&'a Pools);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.activity.notify_waiters();
    }
}
