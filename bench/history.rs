//! History benchmark: prints numbers, asserts nothing.
//!
//! One user with 10,000 stored runs (BENCH_HISTORY_RUNS). For the first, a middle and
//! the last page: the `/history` page (server-rendered) and `GET /api/v1/history`,
//! median and p95 over BENCH_REQUESTS requests each (default 30); beside a MongoDB ping
//! measured in the same run. Uses its own database, dropped at the end.
//!
//! `cargo bench --features ssr --bench history` (MongoDB must be up; the page needs
//! `cargo leptos build` to have run, for its asset names).

#[path = "common.rs"]
mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use common::{ms, percentile};
use http_body_util::BodyExt;
use own_ide::model::{Run, RunStatus, Verdict};
use std::time::Instant;
use tower::ServiceExt;

fn run(i: usize) -> Run {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(i as i64);
    let at = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let lang = ["python", "cpp", "java", "javascript"][i % 4];
    Run {
        status: RunStatus::Finished,
        verdict: Some(if i.is_multiple_of(7) {
            Verdict::RuntimeError
        } else {
            Verdict::Ok
        }),
        exit_code: Some(0),
        stdout: "hello\n".repeat(10),
        time_ms: Some(12),
        memory_kb: Some(8200),
        finished_at: Some(at.clone()),
        code: Some(format!("# program {i}\nprint('hello')\n").repeat(5)),
        stdin: Some(String::new()),
        ..Run::new(uuid::Uuid::new_v4().simple().to_string(), lang, at)
    }
}

async fn get(app: &axum::Router, uri: &str, token: &str, accept: &str) -> (u16, usize) {
    let mut req = Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", accept)
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40001,
        ))));
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let len = res.into_body().collect().await.unwrap().to_bytes().len();
    (status, len)
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("BENCH_HISTORY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let db = format!(
        "own_ide_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let state = common::state(&[("DATABASE_NAME", &db), ("POOL_SIZE", "0")]).await;
    let user = state
        .accounts
        .register(
            &format!("bench_{}", &db[14..]),
            "benchmark password",
            // An address of its own, so that repeated runs never meet the registration
            // throttle.
            std::net::IpAddr::from(uuid::Uuid::new_v4().as_u128().to_be_bytes()),
        )
        .await
        .expect("MongoDB is up");
    let (token, _) = state.accounts.issue_token(&user).unwrap();

    let t = Instant::now();
    let store = state.runs.store().clone();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        let uid = user.id.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..total).step_by(8) {
                store.save(&uid, &run(i)).await.expect("save");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "stored {total} runs for one user in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let app = own_ide::server::app_router(state.clone());

    let mut ping = Vec::new();
    for _ in 0..requests {
        let t = Instant::now();
        state.mongo.ping().await;
        ping.push(ms(t.elapsed()));
    }
    let last = total.div_ceil(20);
    println!("\n## History, {requests} requests per row (ms)");
    println!(
        "{:<34} {:>8} {:>8} {:>9}",
        "request", "median", "p95", "bytes"
    );
    println!(
        "{:<34} {:>8.2} {:>8.2} {:>9}",
        "MongoDB ping (baseline)",
        percentile(&ping, 50.0),
        percentile(&ping, 95.0),
        "-"
    );
    for page in [1, last / 2, last] {
        for (what, uri, accept) in [
            ("page /history?page=", "/history?page=", "text/html"),
            (
                "api /api/v1/history?page=",
                "/api/v1/history?page=",
                "application/json",
            ),
        ] {
            let uri = format!("{uri}{page}");
            let mut lat = Vec::new();
            let mut bytes = 0;
            for _ in 0..requests {
                let t = Instant::now();
                let (status, len) = get(&app, &uri, &token, accept).await;
                lat.push(ms(t.elapsed()));
                assert_eq!(status, 200, "{uri}");
                bytes = len;
            }
            println!(
                "{:<34} {:>8.2} {:>8.2} {:>9}",
                format!("{what}{page}"),
                percentile(&lat, 50.0),
                percentile(&lat, 95.0),
                bytes
            );
        }
    }
    println!("\ntarget: under 20 ms median for any page");
    state.mongo.db().unwrap().drop().await.unwrap();
}
