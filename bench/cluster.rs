//! Cluster benchmark: prints numbers, asserts nothing. Real processes: web nodes and
//! executors of the built binary behind nginx (`scripts/cluster.sh`), beside an
//! all-in-one node (`ROLE=all`) measured in the same run.
//!
//! 1. Python hello world, `POST /api/v1/runs?wait=true`, one client, BENCH_RUNS (default
//!    30) each, taking turns: the all-in-one node; a web node of the cluster directly (the
//!    run goes through the queue to an executor); the same through nginx. p50/p95 and the
//!    added ms (target: cluster p50 within 5 ms of the all-in-one's).
//! 2. Throughput, 8 clients, BENCH_SECONDS (default 10) per row: the all-in-one node; the
//!    cluster through nginx with two executors; then with one (the other stopped).
//! 3. Fan-out: six one-second runs at once through nginx, two one-slot executors: wall
//!    time from the first submit to the last result, three times (ideal: three waves of
//!    two runs, 3 s plus the start of each run).
//! 4. Stop across nodes: a run started through web node 1 (its events read there) is
//!    stopped through web node 2; the time from the stop request to the `result` event
//!    (BENCH_STOPS, default 10; target < 500 ms).
//! 5. A dead executor's run: the executor holding a running run is killed (SIGKILL); the
//!    time until its `result` event says `executor_lost` (BENCH_LOSSES, default 3), with
//!    the default lease (`EXECUTOR_LEASE_MS`, 10 s): what a user would wait.
//!
//! The in-flight caps and the user rate are off (they are not a load limit here).
//! Run with `cargo bench --features ssr --bench cluster` (the services must be up:
//! `scripts/test.sh` or `scripts/run.sh` start them; nginx is installed if missing).

#[path = "../tests/cluster_support/mod.rs"]
mod cluster_support;
mod common;

use cluster_support::{Cluster, Node, Spec, User};
use common::{ms, percentile};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HELLO: &str = "print('hello')";
const FOREVER: &str = "import time\nprint('started', flush=True)\nwhile True: time.sleep(0.2)";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One `?wait=true` run through `addr`; its latency, or `None` if it did not end `ok`.
async fn hello(user: &User, addr: &str) -> Option<Duration> {
    let started = Instant::now();
    let r = user
        .post(
            addr,
            "/api/v1/runs?wait=true",
            &json!({"language": "python", "code": HELLO}),
        )
        .await;
    let took = started.elapsed();
    (r.status == 200 && r.json()["verdict"] == "ok").then_some(took)
}

fn row(name: &str, samples: &[f64], base: Option<f64>, errors: usize) {
    let p50 = percentile(samples, 50.0);
    let p95 = percentile(samples, 95.0);
    let added = base
        .map(|b| format!("{:+.1}", p50 - b))
        .unwrap_or_else(|| "-".into());
    println!(
        "| {name} | {} | {p50:.1} | {p95:.1} | {added} | {errors} |",
        samples.len()
    );
}

/// Runs per second that ended `ok` with `clients` clients looping for `secs`.
async fn throughput(user: &User, addr: &str, clients: usize, secs: u64) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (user, addr) = (user.clone(), addr.to_string());
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match hello(&user, &addr).await {
                    Some(_) => ok.fetch_add(1, Ordering::Relaxed),
                    None => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    (
        ok.load(Ordering::Relaxed) as f64 / elapsed,
        failed.load(Ordering::Relaxed),
    )
}

#[tokio::main]
async fn main() {
    let runs = env_num("BENCH_RUNS", 30);
    let secs = env_num("BENCH_SECONDS", 10) as u64;
    let stops = env_num("BENCH_STOPS", 10);
    let losses = env_num("BENCH_LOSSES", 3);
    let quiet = [
        ("MAX_RUNS_IN_FLIGHT", "0"),
        ("MAX_RUNS_IN_FLIGHT_PER_IP", "0"),
        ("USER_RUNS_PER_MINUTE", "0"),
    ];

    let node = Node::start(&[("ROLE", "all"), quiet[0], quiet[1], quiet[2]]).await;
    let cluster = Cluster::start(Spec::default());
    let user = User::sign_up(&cluster.lb, "bench").await;

    // Warm up both (first runs start pools, connections, JIT of nothing but caches).
    for _ in 0..3 {
        hello(&user, &node.addr).await;
        hello(&user, &cluster.lb).await;
    }

    println!("\n## Python hello world, one client, {runs} runs each, taking turns");
    println!("| path | runs | p50 ms | p95 ms | p50 vs all-in-one | errors |");
    println!("|---|---|---|---|---|---|");
    let (mut all, mut web, mut lb) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors = [0usize; 3];
    for _ in 0..runs {
        for (i, (addr, out)) in [
            (node.addr.as_str(), &mut all),
            (&cluster.web(1), &mut web),
            (cluster.lb.as_str(), &mut lb),
        ]
        .into_iter()
        .enumerate()
        {
            match hello(&user, addr).await {
                Some(d) => out.push(ms(d)),
                None => errors[i] += 1,
            }
        }
    }
    let base = percentile(&all, 50.0);
    row("all-in-one (ROLE=all), direct", &all, None, errors[0]);
    row(
        "web node + executor, direct to the web node",
        &web,
        Some(base),
        errors[1],
    );
    row(
        "web node + executor, through nginx",
        &lb,
        Some(base),
        errors[2],
    );

    println!("\n## Throughput, python hello world, 8 clients, {secs} s per row");
    println!("| setup | runs/s | failed |");
    println!("|---|---|---|");
    let (rate, failed) = throughput(&user, &node.addr, 8, secs).await;
    println!("| all-in-one (ROLE=all) | {rate:.1} | {failed} |");
    let (rate, failed) = throughput(&user, &cluster.lb, 8, secs).await;
    println!("| cluster through nginx, two executors | {rate:.1} | {failed} |");
    cluster.signal("executor-2", "TERM");
    while std::path::Path::new(&format!("/proc/{}", cluster.pid("executor-2"))).exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rate, failed) = throughput(&user, &cluster.lb, 8, secs).await;
    println!("| cluster through nginx, one executor | {rate:.1} | {failed} |");
    drop(cluster);
    drop(node);

    // One-slot executors for the rest.
    let cluster = Cluster::start(Spec {
        env: vec![("CLUSTER_EXECUTOR_SLOTS", "1".into())],
        ..Spec::default()
    });
    let user = User::sign_up(&cluster.lb, "bench").await;
    hello(&user, &cluster.lb).await;
    hello(&user, &cluster.lb).await;

    println!("\n## Fan-out: six one-second runs at once, two one-slot executors");
    println!("| attempt | wall s | all ok |");
    println!("|---|---|---|");
    for attempt in 1..=3 {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (user, lb) = (user.clone(), cluster.lb.clone());
            tasks.push(tokio::spawn(async move {
                let r = user
                    .post(
                        &lb,
                        "/api/v1/runs?wait=true",
                        &json!({"language": "python", "code": "import time\ntime.sleep(1)"}),
                    )
                    .await;
                r.status == 200 && r.json()["verdict"] == "ok"
            }));
        }
        let mut all_ok = true;
        for t in tasks {
            all_ok &= t.await.unwrap_or(false);
        }
        println!(
            "| {attempt} | {:.2} | {all_ok} |",
            started.elapsed().as_secs_f64()
        );
    }

    println!("\n## Stop across nodes: started through web node 1, stopped through web node 2");
    let mut samples = Vec::new();
    for _ in 0..stops {
        let id = user.submit(&cluster.web(1), FOREVER).await;
        let mut events = user.events(&cluster.web(1), &id, None).await;
        events
            .until("started", |e| {
                e.event == "stdout" && e.data.contains("started")
            })
            .await;
        let t = Instant::now();
        let r = user
            .post(
                &cluster.web(2),
                &format!("/api/v1/runs/{id}/stop"),
                &json!({}),
            )
            .await;
        if r.status != 202 {
            println!("stop refused: {} {}", r.status, r.body);
            continue;
        }
        let result = events.result().await;
        if result["verdict"] == "stopped" {
            samples.push(ms(t.elapsed()));
        }
    }
    println!("| stops | p50 ms | p95 ms | target |");
    println!("|---|---|---|---|");
    println!(
        "| {} | {:.1} | {:.1} | < 500 |",
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 95.0)
    );

    println!("\n## A dead executor's run: SIGKILL to the `executor_lost` result");
    let mut samples = Vec::new();
    for _ in 0..losses {
        let (id, _) = cluster
            .submit_to_executor_1(&user, &cluster.lb, FOREVER)
            .await;
        let mut events = user.events(&cluster.web(2), &id, None).await;
        events
            .until("started", |e| {
                e.event == "stdout" && e.data.contains("started")
            })
            .await;
        let t = Instant::now();
        cluster.kill9("executor-1");
        let result = events.result().await;
        if result["verdict"] == "executor_lost" {
            samples.push(ms(t.elapsed()));
        } else {
            println!("ended {} instead", result["verdict"]);
        }
        cluster.restart_missing();
    }
    println!("| losses | p50 ms | max ms |");
    println!("|---|---|---|");
    println!(
        "| {} | {:.0} | {:.0} |",
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 100.0)
    );
}
