//! Guest quota benchmark: prints numbers, asserts nothing.
//!
//! The quota check alone (one Lua script: check and count cookie and IP) against the
//! local Redis, at least 10,000 checks single-client and 16 clients concurrently; beside
//! a plain `PING` round trip on the same connection, measured in the same run.
//!
//! `cargo bench --features ssr --bench quota` (Redis must be up: `scripts/test.sh` or
//! `scripts/run.sh` start it). BENCH_CHECKS sets the number of checks (default 10000).

#[path = "common.rs"]
mod common;

use common::{ms, percentile};
use own_ide::server::quota::Quota;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

fn guest(i: usize) -> (String, IpAddr) {
    let id = format!("bench{:027}", i);
    let ip = IpAddr::from([198, 18, (i >> 8) as u8, i as u8]);
    (id, ip)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_CHECKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cfg = common::config(&[]);
    let redis = Arc::new(own_ide::server::redis::Redis::new(&cfg.redis_url).expect("REDIS_URL"));
    let quota = Arc::new(Quota::new(redis.clone(), 5, 60));
    let mut conn = redis.conn().await.expect("Redis is up");
    // Warm up: load the script, open the connection.
    for i in 0..200 {
        let (g, ip) = guest(i);
        quota.take(&g, ip).await.expect("quota check");
    }

    println!("## Quota check alone, local Redis ({n} checks per row, ms)");
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>10}",
        "what", "median", "p99", "max", "checks/s"
    );
    let row = |name: &str, lat: &[f64], secs: f64| {
        println!(
            "{:<22} {:>8.3} {:>8.3} {:>8.3} {:>10.0}",
            name,
            percentile(lat, 50.0),
            percentile(lat, 99.0),
            percentile(lat, 100.0),
            lat.len() as f64 / secs
        );
    };

    // Baseline: PING on the same connection.
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        lat.push(ms(t.elapsed()));
    }
    let ping = percentile(&lat, 50.0);
    row("PING, 1 client", &lat, t0.elapsed().as_secs_f64());

    // One client; 5 checks per guest, so both allowed and refused paths are measured.
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    let mut refused = 0;
    for i in 0..n {
        let (g, ip) = guest(1000 + i / 6);
        let t = Instant::now();
        let d = quota.take(&g, ip).await.unwrap();
        lat.push(ms(t.elapsed()));
        refused += usize::from(!d.allowed);
    }
    let single = percentile(&lat, 50.0);
    row("quota, 1 client", &lat, t0.elapsed().as_secs_f64());

    // 16 clients at once.
    let per = n.div_ceil(16);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..16 {
        let quota = quota.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let (g, ip) = guest(100_000 + c * per + i / 6);
                let t = Instant::now();
                quota.take(&g, ip).await.unwrap();
                lat.push(ms(t.elapsed()));
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    row("quota, 16 clients", &all, t0.elapsed().as_secs_f64());
    println!(
        "\nquota median / PING median (1 client): {:.2}; refused checks in the 1-client row: {refused}",
        single / ping
    );
    println!("target: p99 under 1 ms");
    // Remove the benchmark's counters.
    for pattern in ["own-ide:quota:*bench*", "own-ide:quota:ip:198.18.*"] {
        delete_matching(&mut conn, pattern).await;
    }
}

/// Deletes every key that matches `pattern` (500 per DEL).
async fn delete_matching(conn: &mut redis::aio::ConnectionManager, pattern: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(conn)
        .await
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: () = redis::cmd("DEL")
            .arg(chunk)
            .query_async(conn)
            .await
            .unwrap_or(());
    }
}
