//! Shared by the benchmarks: percentiles and a table line.
#![allow(dead_code)]

use std::time::Duration;

/// The `p`-th percentile (0..=100) of `samples`, nearest-rank.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.saturating_sub(1).min(v.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The configuration from the environment, with `overrides` on top.
pub fn config(overrides: &[(&str, &str)]) -> own_ide::server::config::Config {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    own_ide::server::config::Config::from_lookup(move |k| {
        overrides
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(k).ok())
    })
    .expect("configuration")
}

pub async fn state(overrides: &[(&str, &str)]) -> own_ide::server::state::AppState {
    let opts = leptos::config::LeptosOptions::builder()
        .output_name("own-ide")
        .site_root("target/site")
        .build();
    own_ide::server::state::AppState::build(config(overrides), opts)
        .await
        .expect("state")
}

/// `POST /api/v1/runs?wait=true` of `body` through `app`, as a client at `peer`: the
/// status and the JSON answer (`null` when it is not JSON).
pub async fn post_run(
    app: &axum::Router,
    body: &serde_json::Value,
    peer: std::net::SocketAddr,
) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = axum::http::Request::post("/api/v1/runs?wait=true")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .expect("a request");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    let Ok(res) = app.clone().oneshot(req).await;
    let status = res.status().as_u16();
    let bytes = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}
