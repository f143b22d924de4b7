//! Short programs first: a run that keeps its container busy for longer than [`AFTER`]
//! has its CPU weight lowered, so that short runs (a hello world, a typical exercise)
//! get the CPU at once even while long busy loops fill the other slots.
//!
//! This is the idea of a multi-level feedback queue with two levels: every run starts
//! at Docker's default weight (1024 CPU shares), and one that is still going after
//! `AFTER` drops to the lowest weight the kernel accepts (2). The kernel's fair
//! scheduler then gives a fresh run about 500 times the CPU of each demoted one while
//! both want it, and a demoted run still uses every cycle nobody else wants (its
//! one-CPU quota is unchanged). It costs one extra Docker call, and only for long runs.
//! A run's container is never reused, so the lowered weight ends with the run.
//!
//! A caller's run that starts while the same caller has another run going or waiting
//! is a background run (see `Engine::execute`): it starts at the low weight, and in a
//! fresh container rather than a warm one, so that a flood of runs from one caller
//! takes neither the CPU nor the warm pool from the others.

use bollard::models::ContainerUpdateBody;
use bollard::Docker;
use std::time::Duration;
use tokio_util::task::AbortOnDropHandle;

/// How long a run keeps the default CPU weight. A Python or JavaScript hello world
/// finishes well within it; compiling C++ or Java does not, and is demoted with the
/// busy loops (it then shares the CPU equally with them).
pub const AFTER: Duration = Duration::from_millis(500);

/// The lowest CPU weight cgroup v1 accepts.
const LOW_SHARES: i64 = 2;

/// Lowers the CPU weight of container `id` once `after` has passed. Dropping the
/// handle (the run ended) cancels it; a failure only costs the run its demotion.
pub fn after(docker: Docker, id: String, after: Duration) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let body = ContainerUpdateBody {
            cpu_shares: Some(LOW_SHARES),
            ..Default::default()
        };
        if let Err(e) = docker.update_container(&id, body).await {
            tracing::debug!(container = %id, error = %e, "could not lower a long run's CPU weight");
        }
    }))
}
