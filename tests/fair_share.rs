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
    // Nothing refused was queued: the user's history holds the two accepted runs only.
    let h = user.get("/api/v1/history").await.json();
    assert_eq!(h["total"], 2, "{h}");
    // A stopped run gives its place back at once.
    let stopped = stop_and_wait(&mut user, &ids[0]).await;
    assert_eq!(stopped["verdict"], "stopped");
    let again = submit_many(&user, 1).await;
    let again_ids = accepted_ids(&again);
    assert_eq!(again_ids.len(), 1, "{}", again[0].text());
    for id in [&ids[1], &again_ids[0]] {
        stop_and_wait(&mut user, id).await;
    }
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
