//! Passwords: argon2id hashes in PHC strings, computed through a bound.
//!
//! Each hash or verification holds about 19 MiB and a core for tens of milliseconds, so
//! they run on at most `HASH_CONCURRENCY` blocking threads at once (default: one per
//! core). A caller that cannot get a slot within `HASH_WAIT_MS` gets `503 busy` with
//! `Retry-After` instead of queueing without end: a flood of log-ins costs waiting
//! futures (a few hundred bytes each, for at most the wait), never more argon2 memory.

use crate::error::AppError;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Seconds a caller refused for lack of a hashing slot is told to wait.
pub const BUSY_RETRY_AFTER: u64 = 2;

/// Hashes with argon2id and the crate's recommended parameters, as a PHC string.
/// Blocking and unbounded: servers go through [`Hasher`].
pub fn hash_password(password: &str) -> Option<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| tracing::error!(error = %e, "argon2 hashing failed"))
        .ok()
}

/// Checks a password against a PHC string. Blocking and unbounded: servers go through
/// [`Hasher`].
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// What the hasher has done, for tests and diagnostics.
#[derive(Debug, Default)]
struct Stats {
    /// Hashes and verifications running now.
    running: AtomicUsize,
    /// The most that ever ran at once.
    peak: AtomicUsize,
    /// Verifications started.
    verifications: AtomicU64,
}

/// Counts one running job from creation to drop (also when the job panics).
struct Running(Arc<Stats>);

impl Running {
    fn start(stats: Arc<Stats>) -> Running {
        let now = stats.running.fetch_add(1, Ordering::SeqCst) + 1;
        stats.peak.fetch_max(now, Ordering::SeqCst);
        Running(stats)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Hashing and verification through a bound of `concurrency` at once.
pub struct Hasher {
    slots: Arc<Semaphore>,
    wait: Duration,
    stats: Arc<Stats>,
}

/// argon2 takes about 19 MiB per hash. glibc raises its mmap threshold to the size of the
/// largest block freed, after which such buffers come from per-thread arenas and stay
/// resident after the hash, one for each blocking thread that ever hashed: 200 log-ins at
/// once grew the process from 13 to 495 MiB (bench/abuse.rs), with the bound on hashes
/// at once holding. A fixed threshold (glibc's default, 128 KiB) keeps big buffers
/// mapped on their own, so each goes back to the system when its hash ends (58 MiB peak).
fn return_big_buffers_promptly() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only tunes the allocator; it may be called at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn busy() -> AppError {
    AppError::unavailable(
        "busy",
        "The server is busy checking passwords. Please try again in a moment.",
        BUSY_RETRY_AFTER,
    )
}

impl Hasher {
    /// At most `concurrency` (at least 1) at once; callers wait up to `wait` for a slot.
    pub fn new(concurrency: usize, wait: Duration) -> Hasher {
        return_big_buffers_promptly();
        Hasher {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            wait,
            stats: Default::default(),
        }
    }

    /// Runs `work` on a blocking thread once a slot is free, or answers `503 busy`.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        // A zero wait still takes a free slot: the timeout polls the acquire first.
        let slot = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(busy()),
        };
        let stats = self.stats.clone();
        // The slot moves into the thread: if the caller goes away, the work still holds
        // it until it ends, so the bound counts real work, not waiting requests.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let _running = Running::start(stats);
            work()
        })
        .await
        .map_err(|_| AppError::Internal)
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: &str) -> Result<String, AppError> {
        let password = password.to_string();
        self.bounded(move || hash_password(&password))
            .await?
            .ok_or(AppError::Internal)
    }

    /// Whether `password` matches `phc`.
    pub async fn verify(&self, password: &str, phc: String) -> Result<bool, AppError> {
        let password = password.to_string();
        let stats = self.stats.clone();
        self.bounded(move || {
            stats.verifications.fetch_add(1, Ordering::SeqCst);
            verify_password(&password, &phc)
        })
        .await
    }

    /// Password verifications started since this process began.
    pub fn verifications(&self) -> u64 {
        self.stats.verifications.load(Ordering::SeqCst)
    }

    /// The most hashes and verifications that ever ran at once.
    pub fn peak(&self) -> usize {
        self.stats.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_to_argon2id_phc_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_bound_holds_and_latecomers_get_busy() {
        let hasher = Arc::new(Hasher::new(1, Duration::ZERO));
        let phc = hash_password("correct horse").unwrap();
        let calls = (0..16).map(|_| {
            let (hasher, phc) = (hasher.clone(), phc.clone());
            tokio::spawn(async move { hasher.verify("wrong horse", phc).await })
        });
        let results: Vec<_> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(hasher.peak(), 1);
        let busy: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        let checked = results.iter().filter(|r| r == &&Ok(false)).count();
        assert_eq!(busy.len() + checked, 16);
        assert_eq!(checked as u64, hasher.verifications());
        assert!(checked >= 1);
        // With the only slot held, a caller is refused at once.
        let held = hasher.slots.clone().acquire_owned().await.unwrap();
        let refused = hasher.verify("x", phc.clone()).await.unwrap_err();
        drop(held);
        let mut busy = busy;
        busy.push(&refused);
        for e in busy {
            assert_eq!(e.code(), "busy");
            assert_eq!(e.status(), 503);
            assert_eq!(e.retry_after(), Some(BUSY_RETRY_AFTER));
        }
    }
}
