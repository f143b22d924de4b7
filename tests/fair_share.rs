//! The fair share between callers: runs in flight per caller and per IP block, and the
//! users' per-minute rate, against the real Redis and Docker engine.

mod common;

use axum::http::StatusCode;
use common::{finish, Client};
use serde_json::{json, Value};

/// A run that keeps its place until it is stopped.
const LONG: &str = "import time\nwhile True: time.sleep(1)";

/// Submits `n` long runs at once; returns the replies.
async fn submit_many(client: &Client, n: usize) -> Vec<common::Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let mut c = client.clone_as_same_caller();
            tokio::spawn(async move {
                c.post_json("/api/v1/runs", &json!({"language": "python", "code": LONG}))
                    .await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("submit task"));
    }
    replies
}

/// Stops a run and waits until it has finished (its place is given back before the
/// result is published).
async fn stop_and_wait(client: &mut Client, id: &str) -> Value {
    let r = client
        .send("POST", &format!("/api/v1/runs/{id}/stop"), None, "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    common::wait_finished(client, id).await
}

fn accepted_ids(replies: &[common::Reply]) -> Vec<String> {
    replies
        .iter()
        .filter(|r| r.status == StatusCode::ACCEPTED)
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect()
}

fn assert_too_many(r: &common::Reply) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "too_many_runs");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
}

#[tokio::test]
async fn parallel_submits_stop_at_the_cap_and_a_stop_frees_a_place() {
    let state = common::state_with(&[("MAX_RUNS_IN_FLIGHT", "2"), ("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&state);
    user.sign_up("inflight").await;
    let replies = submit_many(&user, 6).await;
    let ids = accepted_ids(&replies);
    assert_eq!(ids.len(), 2, "exactly the cap is accepted");
    for r in replies.iter().filter(|r| r.status != StatusCode::ACCEPTED) {
        assert_too_many(r);
    }
    // A stopped run gives its place back at once.
    let stopped = stop_and_wait(&mut user, &ids[0]).await;
    assert_eq!(stopped["verdict"], "stopped");
    let again = submit_many(&user, 1).await;
    let again_ids = accepted_ids(&again);
    assert_eq!(again_ids.len(), 1, "{}", again[0].text());
    for id in [&ids[1], &again_ids[0]] {
        stop_and_wait(&mut user, id).await;
    }
    // Nothing refused was queued: the user's history holds the three accepted runs only.
    // Read once all have finished: a run's first write to the history is not awaited by
    // its submit, but its final one is.
    let h = user.get("/api/v1/history").await.json();
    assert_eq!(h["total"], 3, "{h}");
    finish(state).await;
}

#[tokio::test]
async fn a_run_that_fails_gives_its_place_back() {
    let state = common::state_with(&[("MAX_RUNS_IN_FLIGHT", "1"), ("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&state);
    user.sign_up("inflight-err").await;
    for i in 0..3 {
        // Sequential runs that end in an error each take and give back the one place.
        let run = user.run("python", "raise SystemExit(3)", "").await;
        assert_eq!(run["verdict"], "runtime_error", "run {i}: {run}");
        assert_eq!(run["exit_code"], 3);
    }
    finish(state).await;
}

#[tokio::test]
async fn a_guest_refused_for_runs_in_flight_is_not_counted() {
    let state = common::state_with(&[
        ("MAX_RUNS_IN_FLIGHT", "2"),
        ("GUEST_QUOTA", "5"),
        ("POOL_SIZE", "1"),
    ])
    .await;
    let mut guest = Client::new(&state);
    let first = guest
        .post_json("/api/v1/runs", &json!({"language": "python", "code": LONG}))
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    let second = guest
        .post_json("/api/v1/runs", &json!({"language": "python", "code": LONG}))
        .await;
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(second.header("x-ratelimit-remaining").as_deref(), Some("3"));
    let third = guest
        .post_json("/api/v1/runs", &json!({"language": "python", "code": LONG}))
        .await;
    assert_too_many(&third);
    // Another guest cookie on the same IP is held by the guests-of-this-IP cap too.
    let mut other = Client::new(&state);
    other.ip = guest.ip;
    let r = other
        .post_json("/api/v1/runs", &json!({"language": "python", "code": LONG}))
        .await;
    assert_too_many(&r);
    for r in [&first, &second] {
        let id = r.json()["id"].as_str().unwrap().to_string();
        stop_and_wait(&mut guest, &id).await;
    }
    // The refused runs cost nothing: two of five were used.
    let r = guest
        .post_json(
            "/api/v1/runs?wait=true",
            &json!({"language": "python", "code": "print(1)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("2"));
    finish(state).await;
}

#[tokio::test]
async fn one_ip_holds_at_most_its_cap_whoever_is_signed_in() {
    let state = common::state_with(&[
        ("MAX_RUNS_IN_FLIGHT", "2"),
        ("MAX_RUNS_IN_FLIGHT_PER_IP", "3"),
        ("POOL_SIZE", "1"),
    ])
    .await;
    let mut users = Vec::new();
    let ip = common::fresh_ip();
    for i in 0..3 {
        let mut u = Client::new(&state);
        u.ip = ip;
        u.sign_up(&format!("shared-ip-{i}")).await;
        users.push(u);
    }
    let mut accepted = Vec::new();
    for u in &users {
        let replies = submit_many(u, 2).await;
        for r in &replies {
            if r.status != StatusCode::ACCEPTED {
                assert_too_many(r);
                assert!(r.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("network"));
            }
        }
        accepted.push(accepted_ids(&replies));
    }
    assert_eq!(
        accepted.iter().map(Vec::len).sum::<usize>(),
        3,
        "{accepted:?}"
    );
    // A user elsewhere is not held back by that IP.
    let mut elsewhere = Client::new(&state);
    elsewhere.sign_up("elsewhere").await;
    let run = elsewhere.run("python", "print('free')", "").await;
    assert_eq!(run["stdout"], "free\n");
    for (u, ids) in users.iter_mut().zip(&accepted) {
        for id in ids {
            stop_and_wait(u, id).await;
        }
    }
    finish(state).await;
}

#[tokio::test]
async fn a_lapsed_lease_of_a_dead_instance_does_not_pin_a_place() {
    let state = common::state_with(&[("MAX_RUNS_IN_FLIGHT", "1"), ("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&state);
    user.sign_up("lapsed").await;
    let id = state
        .accounts
        .verify_token(user.bearer.as_deref().unwrap())
        .unwrap()
        .id;
    // What an instance that died mid-run leaves: a lease nobody renews any more.
    let mut conn = state.redis.conn().await.unwrap();
    let key = format!("own-ide:inflight:user:{id}");
    let _: () = redis::cmd("ZADD")
        .arg(&key)
        .arg(1)
        .arg("0123456789abcdef0123456789abcdef")
        .query_async(&mut conn)
        .await
        .unwrap();
    let run = user.run("python", "print('not pinned')", "").await;
    assert_eq!(run["stdout"], "not pinned\n");
    // A lease that has not lapsed yet does hold the place.
    let far = (time::OffsetDateTime::now_utc().unix_timestamp() + 600) * 1000;
    let _: () = redis::cmd("ZADD")
        .arg(&key)
        .arg(far)
        .arg("fedcba9876543210fedcba9876543210")
        .query_async(&mut conn)
        .await
        .unwrap();
    let r = user
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "print(1)"}),
        )
        .await;
    assert_too_many(&r);
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    finish(state).await;
}

#[tokio::test]
async fn users_have_a_per_minute_rate_with_headers() {
    let state = common::state_with(&[("USER_RUNS_PER_MINUTE", "3"), ("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&state);
    user.sign_up("rate").await;
    for left in [2, 1, 0] {
        let r = user
            .post_json(
                "/api/v1/runs?wait=true",
                &json!({"language": "python", "code": "print(1)"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(left.to_string()));
    }
    let r = user
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "print(1)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Not queued: the history holds the three accepted runs.
    assert_eq!(user.get("/api/v1/history").await.json()["total"], 3);
    finish(state).await;
}

/// The status of run `id` as its owner sees it.
async fn status(client: &mut Client, id: &str) -> String {
    let r = client.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["status"].as_str().unwrap_or_default().to_string()
}

/// Waits until run `id` is running (the engine has given it a slot and a container).
async fn wait_running(client: &mut Client, id: &str) {
    for _ in 0..600 {
        match status(client, id).await.as_str() {
            "running" => return,
            "queued" => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            other => panic!("run {id} is {other}, not running"),
        }
    }
    panic!("run {id} never started");
}

#[tokio::test]
async fn a_newcomer_is_served_before_a_caller_s_other_queued_runs() {
    let state = common::state_with(&[("MAX_CONCURRENT_RUNS", "1"), ("POOL_SIZE", "0")]).await;
    let mut flood = Client::new(&state);
    let mut ids = Vec::new();
    for _ in 0..4 {
        let r = flood
            .post_json("/api/v1/runs", &json!({"language": "python", "code": LONG}))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let mut newcomer = Client::new(&state);
    let r = newcomer
        .post_json("/api/v1/runs", &json!({"language": "python", "code": LONG}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let mine = r.json()["id"].as_str().unwrap().to_string();
    wait_running(&mut flood, &ids[0]).await;
    assert_eq!(status(&mut newcomer, &mine).await, "queued");

    // The first run holds the only slot; when it ends, the slot goes to the newcomer,
    // not to the three runs its caller queued before. While the newcomer's run holds
    // the slot, nothing else can run, so the others are still queued.
    stop_and_wait(&mut flood, &ids[0]).await;
    wait_running(&mut newcomer, &mine).await;
    for id in &ids[1..] {
        assert_eq!(status(&mut flood, id).await, "queued", "run {id}");
    }
    // Then the flooding caller's runs, in the order it queued them.
    stop_and_wait(&mut newcomer, &mine).await;
    wait_running(&mut flood, &ids[1]).await;
    for id in &ids[2..] {
        assert_eq!(status(&mut flood, id).await, "queued", "run {id}");
    }
    for id in &ids[1..] {
        stop_and_wait(&mut flood, id).await;
    }
    finish(state).await;
}

#[tokio::test]
async fn a_long_run_is_demoted_to_the_lowest_cpu_weight() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let r = c
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "while True: pass"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    wait_running(&mut c, &id).await;
    // The run's container is the engine's only one (no pool). Its CPU weight is read
    // from Docker until the demotion lands (or the run ends without it).
    let label = format!("label=own-ide.instance={}", state.engine.instance());
    let shares = loop {
        let out = std::process::Command::new("docker")
            .args(["ps", "-q", "--filter", &label])
            .output()
            .expect("docker CLI");
        let ids = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            !ids.is_empty(),
            "the run's container is gone before its demotion"
        );
        let out = std::process::Command::new("docker")
            .args(["inspect", "-f", "{{.HostConfig.CpuShares}}", &ids])
            .output()
            .expect("docker CLI");
        let shares = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if shares == "2" {
            break shares;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(shares, "2");
    stop_and_wait(&mut c, &id).await;
    finish(state).await;
}
