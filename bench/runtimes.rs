//! gVisor's cost: every language's hello world (its editor template, no input) through
//! `POST /api/v1/runs?wait=true`, N sequential runs under runc and under runsc
//! (`SANDBOX_RUNTIME`), alternating run by run in this one process so that both see the
//! same machine. Prints median and p95 of each and the added milliseconds; asserts nothing.
//!
//! Run with `cargo bench --features ssr --bench runtimes` (services up, runsc registered:
//! `scripts/test.sh` does both). BENCH_RUNS (default 20), BENCH_PAUSE_MS (default 300).

mod common;

use common::{percentile, post_run};
use own_ide::server::sandbox::LANGUAGES;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let n = env_or("BENCH_RUNS", 20) as usize;
    let pause = Duration::from_millis(env_or("BENCH_PAUSE_MS", 300));
    let lift = [("GUEST_QUOTA", "1000000000"), ("MAX_RUNS_IN_FLIGHT", "0")];
    let mut apps = Vec::new();
    for runtime in ["runc", "runsc"] {
        let mut overrides = lift.to_vec();
        overrides.push(("SANDBOX_RUNTIME", runtime));
        let state = common::state(&overrides).await;
        apps.push((runtime, own_ide::server::api_router(state.clone()), state));
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // let the warm pools fill
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40001));

    println!("\n## Hello world (the template), {n} runs each, runc beside runsc (ms)");
    println!(
        "{:<11} {:>11} {:>8} {:>12} {:>9} {:>9} {:>7}",
        "language", "runc median", "p95", "runsc median", "p95", "added", "ratio"
    );
    for lang in LANGUAGES {
        let body = serde_json::json!({"language": lang.id, "code": lang.template});
        let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut failures = [0; 2];
        for _ in 0..n {
            for (i, (_, app, _)) in apps.iter().enumerate() {
                let t = Instant::now();
                let (status, run) = post_run(app, &body, peer).await;
                times[i].push(common::ms(t.elapsed()));
                if status != 200 || run["verdict"] != "ok" {
                    failures[i] += 1;
                }
                tokio::time::sleep(pause).await;
            }
        }
        let (m0, p0) = (percentile(&times[0], 50.0), percentile(&times[0], 95.0));
        let (m1, p1) = (percentile(&times[1], 50.0), percentile(&times[1], 95.0));
        println!(
            "{:<11} {m0:>11.1} {p0:>8.1} {m1:>12.1} {p1:>9.1} {:>+9.1} {:>7.2}{}",
            lang.id,
            m1 - m0,
            m1 / m0,
            if failures != [0, 0] {
                format!("  (failures: runc {}, runsc {})", failures[0], failures[1])
            } else {
                String::new()
            }
        );
    }
    for (_, _, state) in apps {
        state.engine.shutdown().await;
    }
}
