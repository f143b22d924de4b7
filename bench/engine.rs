//! Engine benchmark: prints numbers, asserts nothing.
//!
//! 1. For each language, N sequential hello-world runs through `POST /api/v1/runs?wait=true`
//!    (BENCH_PAUSE_MS, default 400, of quiet after every measured run on both sides)
//!    (median, p95), beside plain `docker run --rm` of the same image and program compiled
//!    and run the straightforward way (`javac Main.java && java Main`) with the engine's
//!    memory limit, measured in this same process run (ratio). BENCH_LANGUAGES (comma
//!    separated ids) picks some of the eight.
//! 2. Throughput at 4, 8 and 16 concurrent clients for BENCH_SECONDS (default 30): runs
//!    per second, errors, leftover containers; beside plain `docker run` throughput at the
//!    same parallelism.
//!
//! 3. Python hello world through each face, `/api/v1`, `/judge0` (`wait=true`) and
//!    `/piston` (execute), alternating (one of each per round, same pause), median and p95,
//!    and what each face adds at the median. `BENCH_FACES_ONLY=1` runs only this part.
//!
//! Run with `cargo bench --features ssr --bench engine` (the services must be up:
//! `scripts/test.sh` or `scripts/run.sh` start them).

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use http_body_util::BodyExt;
mod common;

use base64::Engine as _;
use common::percentile;
use own_ide::server::config::SandboxConfig;
use own_ide::server::sandbox::{container, find_language, Language};
use own_ide::server::state::AppState;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const HELLO: &[(&str, &str)] = &[
    ("python", "print('hello')"),
    ("cpp", "#include <cstdio>\nint main(){std::puts(\"hello\");}"),
    ("java", "public class Main { public static void main(String[] a) { System.out.println(\"hello\"); } }"),
    ("javascript", "console.log('hello')"),
    ("c", "#include <stdio.h>\nint main(void){puts(\"hello\");}"),
    ("rust", "fn main(){println!(\"hello\");}"),
    ("go", "package main\n\nimport \"fmt\"\n\nfunc main(){fmt.Println(\"hello\")}"),
    ("typescript", "const s: string = 'hello';\nconsole.log(s)"),
];

/// What a person would type to compile and run the file by hand, with no tuning: the
/// baseline the engine is compared with (for Java: javac, then java).
fn plain_commands(lang: &str) -> &'static str {
    match lang {
        "python" => "python3 main.py",
        "cpp" => "g++ -O2 -o main main.cpp && ./main",
        "java" => "javac Main.java && java Main",
        "javascript" => "node main.js",
        "c" => "gcc -O2 -o main main.c && ./main",
        "rust" => "rustc -O -o main main.rs && ./main",
        "go" => "go build -o main main.go && ./main",
        // The image's type stripper, as the engine uses it (there is no tsc to compare).
        "typescript" => "esbuild main.ts --outfile=main.js --log-level=warning && node main.js",
        other => panic!("no plain command for {other}"),
    }
}

/// The same program through plain `docker run --rm`: the language's source file written
/// and compiled and run the straightforward way (`plain_commands`), with the engine's
/// memory limit. The source travels as base64.
fn docker_run_args(cfg: &SandboxConfig, lang: &Language, code: &str) -> Vec<String> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(code);
    let script = format!(
        "printf %s {encoded} | base64 -d > {} && {}",
        lang.source_file,
        plain_commands(lang.id)
    );
    let memory = format!("{}b", container::memory_bytes(cfg, lang));
    [
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        &memory,
        &format!("{}{}:latest", cfg.image_prefix, lang.id),
        "sh",
        "-c",
        &script,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn docker_run(args: &[String]) -> bool {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "hello")
        .unwrap_or(false)
}

/// Median and 95th percentile.
fn stats(v: &[f64]) -> (f64, f64) {
    (percentile(v, 50.0), percentile(v, 95.0))
}

fn language(id: &str) -> &'static Language {
    find_language(id).expect("a language of the table")
}

async fn api_run(app: &axum::Router, lang: &str, code: &str) -> bool {
    let body = serde_json::json!({"language": lang, "code": code}).to_string();
    let mut req = Request::post("/api/v1/runs?wait=true")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    let Ok(res) = app.clone().oneshot(req).await;
    if res.status() != 200 {
        return false;
    }
    let bytes = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    v["verdict"] == "ok" && v["stdout"] == "hello\n"
}

/// One Python hello world through a face: `api`, `judge0` or `piston`, as the user whose
/// API token is `token` (the same caller on every face, so that each takes the same path
/// through identity; a cookie-less guest of `/api/v1` would also pay for a new session).
async fn face_run(app: &axum::Router, face: &str, token: &str) -> bool {
    let code = "print('hello')";
    let (uri, body) = match face {
        "api" => (
            "/api/v1/runs?wait=true",
            serde_json::json!({"language": "python", "code": code}),
        ),
        "judge0" => (
            "/judge0/submissions?wait=true",
            serde_json::json!({"language_id": 71, "source_code": code}),
        ),
        _ => (
            "/piston/api/v2/execute",
            serde_json::json!({"language": "python", "version": "*", "files": [{"content": code}]}),
        ),
    };
    let mut req = Request::post(uri)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    let Ok(res) = app.clone().oneshot(req).await;
    if !res.status().is_success() {
        return false;
    }
    let bytes = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let stdout = match face {
        "piston" => &v["run"]["stdout"],
        _ => &v["stdout"],
    };
    stdout == "hello\n"
}

/// Part 3: each face beside `/api/v1`, alternating, on the same engine.
async fn faces(state: &AppState, app: &axum::Router, n: usize, pause: Duration) {
    let name = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    // A fresh address: registrations are limited per address.
    let r = uuid::Uuid::new_v4().as_u128();
    let ip = std::net::IpAddr::from([10, (r >> 16) as u8, (r >> 8) as u8, r as u8]);
    let token: Result<(String, u64), own_ide::error::AppError> = async {
        state.accounts.register(&name, "correct horse", ip).await?;
        let user = state.accounts.login(&name, "correct horse", ip).await?;
        state.accounts.issue_token(&user)
    }
    .await;
    let token = match token {
        Ok((t, _)) => t,
        Err(e) => panic!("a user for the faces bench: {e}"),
    };
    println!(
        "\n## Python hello world through each face, {n} rounds, alternating, {} ms pause (ms)",
        pause.as_millis()
    );
    let names = ["api", "judge0", "piston"];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut failures = vec![0; names.len()];
    for round in 0..n {
        for k in 0..names.len() {
            // Rotate who goes first, so that no face always follows the same one.
            let i = (k + round) % names.len();
            let t = Instant::now();
            if !face_run(app, names[i], &token).await {
                failures[i] += 1;
            }
            samples[i].push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(pause).await;
        }
    }
    let (base, _) = stats(&samples[0]);
    println!(
        "{:<8} {:>8} {:>8} {:>16} {:>22}",
        "face", "median", "p95", "added at median", "median paired added"
    );
    for (i, name) in names.iter().enumerate() {
        let (m, p) = stats(&samples[i]);
        // The same round's /api/v1 run is the pair: slow drifts of a shared machine
        // cancel out.
        let paired: Vec<f64> = samples[i]
            .iter()
            .zip(&samples[0])
            .map(|(f, a)| f - a)
            .collect();
        println!(
            "{name:<8} {m:>8.1} {p:>8.1} {:>16.1} {:>22.1}{}",
            m - base,
            percentile(&paired, 50.0),
            if failures[i] > 0 {
                format!("  ({} failures)", failures[i])
            } else {
                String::new()
            }
        );
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    // Pause after every measured run, API and docker alike (a person does not press Run
    // back to back); BENCH_PAUSE_MS=0 measures runs back to back.
    let pause = Duration::from_millis(
        std::env::var("BENCH_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400),
    );
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    // The benchmark is one guest making hundreds of runs, up to 16 at once: lift the daily
    // guest quota and the per-caller caps (abuse limits, measured in bench/abuse.rs; here
    // they would turn most of the throughput rows' requests into 429s).
    let cfg = common::config(&[
        ("GUEST_QUOTA", "1000000000"),
        ("USER_RUNS_PER_MINUTE", "0"),
        ("MAX_RUNS_IN_FLIGHT", "0"),
        ("MAX_RUNS_IN_FLIGHT_PER_IP", "0"),
    ]);
    let sandbox = cfg.sandbox.clone();
    println!(
        "engine: max_concurrent_runs={} pool_size={} cores={}",
        cfg.sandbox.max_concurrent_runs,
        cfg.sandbox.pool_size,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let opts = leptos::config::LeptosOptions::builder()
        .output_name("own-ide")
        .build();
    let state = AppState::build(cfg, opts).await.expect("state");
    let app = own_ide::server::api_router(state.clone());
    tokio::time::sleep(Duration::from_secs(3)).await; // let the warm pools fill
    if std::env::var("BENCH_FACES_ONLY").is_ok_and(|v| v == "1") {
        faces(&state, &app, n, pause).await;
        return;
    }

    println!(
        "\n## Sequential hello world, {n} runs each, {} ms pause after each measured run (ms)",
        pause.as_millis()
    );
    println!(
        "{:<11} {:>10} {:>8} {:>14} {:>10} {:>8}",
        "language", "api median", "api p95", "docker median", "docker p95", "ratio"
    );
    let only = std::env::var("BENCH_LANGUAGES").unwrap_or_default();
    for (lang, code) in HELLO {
        if !only.is_empty() && !only.split(',').any(|l| l == *lang) {
            continue;
        }
        let baseline = docker_run_args(&sandbox, language(lang), code);
        let mut api = Vec::new();
        let mut plain = Vec::new();
        let mut failures = 0;
        for _ in 0..n {
            let t = Instant::now();
            if !api_run(&app, lang, code).await {
                failures += 1;
            }
            api.push(t.elapsed().as_secs_f64() * 1000.0);
            // Each measured run starts on a quiet machine: the pool refill that follows
            // an API run must not land on the docker baseline (or the next run).
            tokio::time::sleep(pause).await;
            let t = Instant::now();
            let args = baseline.clone();
            if !tokio::task::spawn_blocking(move || docker_run(&args))
                .await
                .unwrap()
            {
                failures += 1;
            }
            plain.push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(pause).await;
        }
        let (am, ap) = stats(&api);
        let (dm, dp) = stats(&plain);
        println!(
            "{lang:<11} {am:>10.1} {ap:>8.1} {dm:>14.1} {dp:>10.1} {:>8.2}{}",
            am / dm,
            if failures > 0 {
                format!("  ({failures} failures)")
            } else {
                String::new()
            }
        );
    }

    faces(&state, &app, n, pause).await;

    println!("\n## Throughput, python hello world, {secs} s per row");
    println!(
        "{:<8} {:>12} {:>8} {:>16} {:>8} {:>8}",
        "clients", "api runs/s", "errors", "docker runs/s", "ratio", "leftover"
    );
    for clients in [4usize, 8, 16] {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let ok = Arc::new(AtomicUsize::new(0));
        let err = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (app, ok, err) = (app.clone(), ok.clone(), err.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    if api_run(&app, "python", "print('hello')").await {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        err.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        let t = Instant::now();
        for task in tasks {
            let _ = task.await;
        }
        let api_rate = ok.load(Ordering::SeqCst) as f64 / t.elapsed().as_secs_f64();

        let deadline = Instant::now() + Duration::from_secs(secs);
        let plain_ok = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        let baseline = docker_run_args(&sandbox, language("python"), "print('hello')");
        for _ in 0..clients {
            let (plain_ok, args) = (plain_ok.clone(), baseline.clone());
            threads.push(std::thread::spawn(move || {
                while Instant::now() < deadline {
                    if docker_run(&args) {
                        plain_ok.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        let t = Instant::now();
        for th in threads {
            let _ = th.join();
        }
        let plain_rate = plain_ok.load(Ordering::SeqCst) as f64 / t.elapsed().as_secs_f64();
        // Containers of finished runs are removed in the background; give that a moment.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let leftover = state
            .engine
            .count_containers()
            .await
            .unwrap_or(usize::MAX)
            .saturating_sub(
                state.engine.config().pool_size * own_ide::server::sandbox::LANGUAGES.len(),
            );
        println!(
            "{clients:<8} {api_rate:>12.2} {:>8} {plain_rate:>16.2} {:>8.2} {leftover:>8}",
            err.load(Ordering::SeqCst),
            api_rate / plain_rate
        );
    }
    state.engine.shutdown().await;
    println!(
        "\nafter shutdown: {} containers of this engine remain",
        state.engine.count_containers().await.unwrap_or(usize::MAX)
    );
}
