//! Nothing left behind: the rule that says which sandbox containers are leftovers, and
//! the heartbeat by which engine instances show they are alive.

use std::time::Duration;

/// Whether engine instances are alive, from a heartbeat each instance renews. The
/// engine does not know where the heartbeats live; the server implements this (with
/// Redis), so that instances on other machines or in containers are seen the same way.
#[async_trait::async_trait]
pub trait Liveness: Send + Sync {
    /// Records that `instance` is alive for the next `ttl`.
    async fn beat(&self, instance: &str, ttl: Duration) -> Result<(), String>;
    /// Whether `instance` has beaten within its last `ttl`; `Err` when that cannot be
    /// known right now (then nothing of that instance is removed).
    async fn alive(&self, instance: &str) -> Result<bool, String>;
}

/// Whether a sandbox container is a leftover to remove.
///
/// Young containers are never leftovers: a run ends within the compile and run limits,
/// and `threshold` adds a margin to those. Of this instance's own containers, those it
/// does not hold (no pool, no run) are leftovers: a removal that failed, or one that a
/// crash interrupted. A live instance's containers are its own business (it sweeps
/// them itself), and only a dead instance's are taken; when liveness is unknown,
/// nothing is.
pub(super) fn is_leftover(
    mine: bool,
    owned: bool,
    alive: Option<bool>,
    age: Duration,
    threshold: Duration,
) -> bool {
    if age < threshold {
        return false;
    }
    if mine {
        !owned
    } else {
        alive == Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(80);
    const OLD: Duration = Duration::from_secs(81);
    const YOUNG: Duration = Duration::from_secs(79);

    #[test]
    fn young_containers_are_never_taken() {
        for mine in [true, false] {
            for alive in [None, Some(false), Some(true)] {
                assert!(!is_leftover(mine, false, alive, YOUNG, T));
            }
        }
    }

    #[test]
    fn own_containers_go_only_when_no_pool_or_run_holds_them() {
        assert!(is_leftover(true, false, Some(true), OLD, T));
        assert!(!is_leftover(true, true, Some(true), OLD, T));
    }

    #[test]
    fn others_go_only_when_their_instance_is_known_dead() {
        assert!(is_leftover(false, false, Some(false), OLD, T));
        assert!(!is_leftover(false, false, Some(true), OLD, T));
        assert!(!is_leftover(false, false, None, OLD, T));
    }
}
