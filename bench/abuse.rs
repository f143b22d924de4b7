//! Abuse benchmark: prints numbers, asserts nothing.
//!
//! 1. A log-in flood: 200 log-ins at once, each a different name from its own address; the resident memory of this
//!    process (it hosts the app) before, and its peak during the flood.
//! 2. One guest on its own IP runs a Python hello world once a second: first on a quiet
//!    server (BENCH_QUIET_RUNS, default 20), then while registered attackers each keep
//!    their maximum of 5-second busy loops in flight and resubmit for BENCH_SECONDS
//!    (default 30): four attackers behind one IP, then four attackers on four IPs. It
//!    prints the guest's p50/p95 in each phase, the ratios to quiet, and how many of the
//!    guest's runs were refused.
//!
//! The shipped defaults, except the guests' daily quota (GUEST_QUOTA, 5 runs a day),
//! which the guest would use up in five seconds: it is not a load limit.
//!
//! Run with `cargo bench --features ssr --bench abuse` (the services must be up:
//! `scripts/test.sh` or `scripts/run.sh` start them).

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use common::{ms, percentile};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

const BUSY: &str = "while True: pass";
const HELLO: &str = "print('hello')";

/// An address of its own for each client of this bench run.
fn fresh_ip() -> SocketAddr {
    let n = uuid::Uuid::new_v4().as_u128();
    SocketAddr::from(([10, (n >> 16) as u8, (n >> 8) as u8, n as u8], 40000))
}

/// One API request as a client at `ip` with an optional bearer token or cookie.
async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    ip: SocketAddr,
    auth: &Auth,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut b = Request::builder().method(method).uri(uri);
    match auth {
        Auth::Bearer(t) => b = b.header("authorization", format!("Bearer {t}")),
        Auth::Cookie(Some(c)) => b = b.header("cookie", c.clone()),
        Auth::Cookie(None) => {}
    }
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let mut req = b.body(body).expect("request");
    req.extensions_mut().insert(ConnectInfo(ip));
    let Ok(res) = app.clone().oneshot(req).await;
    let status = res.status().as_u16();
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    let bytes = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or_default(),
        cookie,
    )
}

enum Auth {
    Bearer(String),
    Cookie(Option<String>),
}

/// Registers a fresh user from `ip` and logs in; returns its token.
async fn attacker(app: &axum::Router, ip: SocketAddr) -> String {
    let name = format!("atk_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let creds = json!({"username": name, "password": "correct horse"});
    let none = Auth::Cookie(None);
    let (s, v, _) = call(app, "POST", "/api/v1/users", ip, &none, Some(creds.clone())).await;
    assert_eq!(s, 201, "registration: {v}");
    let (s, v, _) = call(app, "POST", "/api/v1/token", ip, &none, Some(creds)).await;
    assert_eq!(s, 200, "log-in: {v}");
    v["access_token"].as_str().expect("token").to_string()
}

#[derive(Default)]
struct Tally {
    accepted: AtomicU64,
    refused: Mutex<BTreeMap<String, u64>>,
}

/// Keeps `per_attacker` busy loops in flight for each attacker until `stop`, resubmitting
/// as soon as one ends or is refused (after a short pause, as a script would).
fn attack(
    app: &axum::Router,
    attackers: &[(String, SocketAddr)],
    per_attacker: usize,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (token, ip) in attackers {
        for _ in 0..per_attacker {
            let (app, stop, tally) = (app.clone(), stop.clone(), tally.clone());
            let (auth, ip) = (Auth::Bearer(token.clone()), *ip);
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let body = json!({"language": "python", "code": BUSY});
                    let (s, v, _) = call(
                        &app,
                        "POST",
                        "/api/v1/runs?wait=true",
                        ip,
                        &auth,
                        Some(body),
                    )
                    .await;
                    if s == 200 {
                        tally.accepted.fetch_add(1, Ordering::SeqCst);
                    } else {
                        let code = v["error"]["code"].as_str().unwrap_or("?").to_string();
                        *tally
                            .refused
                            .lock()
                            .unwrap()
                            .entry(format!("{s} {code}"))
                            .or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }));
        }
    }
    tasks
}

/// What the guest saw in one phase.
#[derive(Default)]
struct Phase {
    ok_ms: Vec<f64>,
    refused: BTreeMap<String, u64>,
}

/// The guest's hello world once a second (the next one starts at once when a run took
/// longer), `runs` times.
async fn guest(
    app: &axum::Router,
    ip: SocketAddr,
    cookie: &mut Option<String>,
    runs: usize,
) -> Phase {
    let mut phase = Phase::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..runs {
        tick.tick().await;
        let body = json!({"language": "python", "code": HELLO});
        let t = Instant::now();
        let auth = Auth::Cookie(cookie.clone());
        let (s, v, set) = call(app, "POST", "/api/v1/runs?wait=true", ip, &auth, Some(body)).await;
        let took = ms(t.elapsed());
        if cookie.is_none() {
            *cookie = set;
        }
        if s == 200 && v["verdict"] == "ok" && v["stdout"] == "hello\n" {
            phase.ok_ms.push(took);
        } else {
            let code = v["error"]["code"]
                .as_str()
                .or(v["verdict"].as_str())
                .unwrap_or("?");
            *phase.refused.entry(format!("{s} {code}")).or_default() += 1;
        }
    }
    phase
}

/// This process's current and peak resident memory, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn login_flood(app: &axum::Router) {
    let (before, hwm_before) = rss_kib();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let sampling = sampling.clone();
        async move {
            let mut peak = 0;
            while sampling.load(Ordering::SeqCst) {
                peak = peak.max(rss_kib().0);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak
        }
    });
    let t = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            // Each a different name from its own address, so no brake answers before the
            // password check (an unknown name is checked against a dummy hash, as a real
            // one would be).
            let name = format!("flood_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            let creds = json!({"username": name, "password": "correct horse"});
            let app = app.clone();
            let ip = SocketAddr::from(([10, 200, (i / 250) as u8, (i % 250) as u8 + 1], 40000));
            tokio::spawn(async move {
                call(
                    &app,
                    "POST",
                    "/api/v1/token",
                    ip,
                    &Auth::Cookie(None),
                    Some(creds),
                )
                .await
                .0
            })
        })
        .collect();
    let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
    for task in tasks {
        *statuses.entry(task.await.unwrap_or(0)).or_default() += 1;
    }
    let took = t.elapsed();
    sampling.store(false, Ordering::SeqCst);
    let peak = sampler.await.unwrap_or(0);
    let (_, hwm_after) = rss_kib();
    println!("\n== log-in flood: 200 concurrent log-ins (200 names, 200 addresses) ==");
    println!("answers: {statuses:?} in {:.0} ms", ms(took));
    println!(
        "RSS before {:.1} MiB (peak so far {:.1} MiB); peak during {:.1} MiB (VmHWM after {:.1} MiB)",
        before as f64 / 1024.0,
        hwm_before as f64 / 1024.0,
        peak as f64 / 1024.0,
        hwm_after as f64 / 1024.0
    );
}

fn line(name: &str, p: &Phase, quiet: (f64, f64)) {
    let (p50, p95) = (percentile(&p.ok_ms, 50.0), percentile(&p.ok_ms, 95.0));
    println!(
        "{name:<28} {:>4} {:>9.0} {:>9.0} {:>9.2} {:>9.2}   {:?}",
        p.ok_ms.len(),
        p50,
        p95,
        p50 / quiet.0,
        p95 / quiet.1,
        p.refused
    );
}

#[tokio::main]
async fn main() {
    let seconds: usize = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let quiet_runs: usize = std::env::var("BENCH_QUIET_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let state = common::state(&[("GUEST_QUOTA", "1000000")]).await;
    let cfg = state.config.clone();
    println!(
        "defaults: MAX_CONCURRENT_RUNS={} RUN_QUEUE_SIZE={} MAX_RUNS_IN_FLIGHT={} MAX_RUNS_IN_FLIGHT_PER_IP={} USER_RUNS_PER_MINUTE={} POOL_SIZE={} cores={}",
        cfg.sandbox.max_concurrent_runs,
        cfg.sandbox.queue_size,
        cfg.max_runs_in_flight,
        cfg.max_runs_in_flight_per_ip,
        cfg.user_runs_per_minute,
        cfg.sandbox.pool_size,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    );
    let app = own_ide::server::api_router(state.clone());

    login_flood(&app).await;

    // Let the warm pool fill before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let guest_ip = fresh_ip();
    let mut cookie = None;
    let quiet = guest(&app, guest_ip, &mut cookie, quiet_runs).await;
    let quiet_p = (
        percentile(&quiet.ok_ms, 50.0),
        percentile(&quiet.ok_ms, 95.0),
    );

    let per_attacker = if cfg.max_runs_in_flight == 0 {
        2
    } else {
        cfg.max_runs_in_flight as usize
    };
    let one_ip = fresh_ip();
    let mut scenarios = Vec::new();
    for (name, ips) in [
        ("4 attackers behind one IP", vec![one_ip; 4]),
        ("4 attackers on 4 IPs", (0..4).map(|_| fresh_ip()).collect()),
    ] {
        let mut attackers = Vec::new();
        for ip in ips {
            attackers.push((attacker(&app, ip).await, ip));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let tasks = attack(&app, &attackers, per_attacker, &stop, &tally);
        // The attack is in full swing before the guest's first run.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let under = guest(&app, guest_ip, &mut cookie, seconds).await;
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            let _ = t.await;
        }
        println!(
            "{name}: attackers' runs finished {}, refused {:?}",
            tally.accepted.load(Ordering::SeqCst),
            tally.refused.lock().unwrap()
        );
        scenarios.push((name, under));
    }

    println!(
        "\n== a guest's Python hello world, once a second, against attackers' 5 s busy loops =="
    );
    println!(
        "{:<28} {:>4} {:>9} {:>9} {:>9} {:>9}   refused",
        "phase", "runs", "p50 ms", "p95 ms", "p50/quiet", "p95/quiet"
    );
    line("quiet", &quiet, quiet_p);
    for (name, p) in &scenarios {
        line(name, p, quiet_p);
    }
    println!("targets: p50 <= 4x quiet, p95 <= 10x quiet, 0 refused");
    state.engine.shutdown().await;
}
