//! `/healthz` and `/readyz` against real dependencies, including ones that go away and
//! come back; start-up refuses bad configuration with one clear line.

mod common;

use common::{free_port, start_redis, Client};
use serde_json::json;
use std::process::Command;

#[tokio::test]
async fn ready_when_everything_answers() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    assert_eq!(c.get("/healthz").await.status, 200);
    let r = c.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["checks"],
        json!({"docker": "ok", "redis": "ok", "mongodb": "ok"})
    );
    state.engine.shutdown().await;
}

#[tokio::test]
async fn redis_stopped_is_named_and_its_return_is_noticed() {
    let port = free_port();
    let mut redis = start_redis(port);
    let url = format!("redis://127.0.0.1:{port}");
    let state = common::state_with(&[("POOL_SIZE", "0"), ("REDIS_URL", &url)]).await;
    let mut c = Client::new(&state);
    assert_eq!(c.get("/readyz").await.status, 200);

    redis.kill().unwrap();
    redis.wait().unwrap();
    let r = tokio::time::timeout(common::PATIENCE, c.get("/readyz"))
        .await
        .expect("readyz must answer, not hang, while Redis is down");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["checks"]["redis"], "unavailable");
    assert_eq!(r.json()["checks"]["docker"], "ok");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("redis"));
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        c.get("/healthz").await.status,
        200,
        "the process still serves"
    );

    // Back again: noticed without a restart.
    let mut redis = start_redis(port);
    crate::eventually!(
        "readyz recovering when Redis returns",
        c.get("/readyz").await.status == 200
    );
    redis.kill().unwrap();
    let _ = redis.wait();
    state.engine.shutdown().await;
}

#[tokio::test]
async fn mongodb_and_docker_down_are_named() {
    let port = free_port();
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let state = common::state_with(&[
        ("POOL_SIZE", "0"),
        ("DATABASE_URI", &uri),
        ("DOCKER_HOST", "unix:///tmp/own-ide-no-docker.sock"),
    ])
    .await;
    let mut c = Client::new(&state);
    let r = c.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["checks"],
        json!({"docker": "unavailable", "redis": "ok", "mongodb": "unavailable"})
    );
    let r = c
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "print(1)"}),
        )
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "docker_unavailable");
    assert!(r.header("retry-after").is_some());
    assert!(
        !r.text().contains("tmp/own-ide-no-docker"),
        "no driver text reaches the client"
    );
}

/// A value that cannot be used stops start-up with one line naming the variable (a
/// secret is named, never shown).
#[test]
fn bad_configuration_stops_start_up_with_one_line() {
    for (name, value, words) in [
        ("GUEST_QUOTA", "abc", "whole number"),
        ("SECRET_KEY", "too-short-a-secret", "at least 32 bytes"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_own-ide"))
            .env(name, value)
            .env("LEPTOS_OUTPUT_NAME", "own-ide")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(name) && err.contains(words), "{err}");
        if name == "SECRET_KEY" {
            assert!(!err.contains(value), "{err}");
        }
    }
}

/// A health probe stores no session (a load balancer's probes would otherwise write a
/// MongoDB document each); the API's first contact still sets the guest cookie, and the
/// guest reads its run with it.
#[tokio::test]
async fn probes_and_reads_store_no_session() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let mut c = Client::new(&state);
        let r = c.get(path).await;
        assert!(
            !r.status.is_server_error() || path == "/readyz",
            "{path}: {}",
            r.status
        );
        assert!(r.header("set-cookie").is_none(), "{path} set a cookie");
    }
    let mut reader = Client::new(&state);
    reader.get("/api/v1/languages").await;
    assert!(
        reader.cookie.is_some(),
        "first contact sets the guest cookie"
    );
    let mut guest = Client::new(&state);
    let run = guest.run("python", "print(1)", "").await;
    assert!(guest.cookie.is_some(), "a run starts a guest session");
    let id = run["id"].as_str().unwrap().to_string();
    let again = guest.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["stdout"], "1\n");
    state.engine.shutdown().await;
}
