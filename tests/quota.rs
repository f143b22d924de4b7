//! The guest quota against the real Redis: counted on the cookie AND the IP, atomic under
//! concurrency, reset after the window, never applied to users, and a clear 503 (for
//! guests only) while Redis is away.

mod common;

use axum::http::StatusCode;
use common::{finish, free_port, start_redis, Client};
use serde_json::json;

const PROGRAM: &str = "print('hi')";

async fn submit(c: &mut Client) -> common::Reply {
    c.post_json(
        "/api/v1/runs",
        &json!({"language": "python", "code": PROGRAM}),
    )
    .await
}

fn header(r: &common::Reply, name: &str) -> u64 {
    r.header(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", r.headers))
        .parse()
        .unwrap()
}

/// Runs accepted with 202 are still going: give them time to end, then check that no
/// container of the engine is left.
#[tokio::test]
async fn the_sixth_run_is_refused_and_a_new_cookie_does_not_help() {
    let state = common::state_with(&[("GUEST_QUOTA", "5"), ("POOL_SIZE", "1")]).await;
    let mut guest = Client::new(&state);
    for left in (0..5).rev() {
        let r = submit(&mut guest).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        assert_eq!(header(&r, "x-ratelimit-limit"), 5);
        assert_eq!(header(&r, "x-ratelimit-remaining"), left);
        let reset = header(&r, "x-ratelimit-reset");
        assert!(reset > 86000 && reset <= 86400, "{reset}");
    }
    let r = submit(&mut guest).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "quota_exhausted");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Log in or register"));
    assert_eq!(header(&r, "x-ratelimit-remaining"), 0);
    assert!(header(&r, "retry-after") > 86000);

    // Same address, cookie deleted: still counted by IP.
    let mut fresh_cookie = Client::new(&state);
    fresh_cookie.ip = guest.ip;
    let r = submit(&mut fresh_cookie).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // Same cookie from another address: still counted by cookie.
    let mut moved = Client::new(&state);
    moved.cookie = guest.cookie.clone();
    let r = submit(&mut moved).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // Someone else entirely is fine.
    let mut other = Client::new(&state);
    let r = submit(&mut other).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(header(&r, "x-ratelimit-remaining"), 4);
    finish(state).await;
}

#[tokio::test]
async fn a_forged_forwarded_for_changes_nothing() {
    let state = common::state_with(&[("GUEST_QUOTA", "1"), ("POOL_SIZE", "0")]).await;
    let mut guest = Client::new(&state);
    assert_eq!(submit(&mut guest).await.status, StatusCode::ACCEPTED);
    // No cookie, and a made-up X-Forwarded-For from an untrusted peer.
    let mut liar = Client::new(&state);
    liar.ip = guest.ip;
    let r = liar
        .send_with(
            "POST",
            "/api/v1/runs",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", "203.0.113.77"),
            ],
            json!({"language": "python", "code": PROGRAM}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    finish(state).await;
}

#[tokio::test]
async fn fifty_at_once_allow_exactly_the_quota() {
    let state = common::state_with(&[("GUEST_QUOTA", "5"), ("POOL_SIZE", "0")]).await;
    let mut first = Client::new(&state);
    // One request first, so that all 50 share the guest's cookie.
    first.get("/api/v1/languages").await;
    assert!(first.cookie.is_some());
    let mut handles = Vec::new();
    for _ in 0..50 {
        let mut c = Client::new(&state);
        c.ip = first.ip;
        c.cookie = first.cookie.clone();
        handles.push(tokio::spawn(async move { submit(&mut c).await.status }));
    }
    let mut accepted = 0;
    let mut refused = 0;
    for h in handles {
        match h.await.unwrap() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((accepted, refused), (5, 45));
    finish(state).await;
}

#[tokio::test]
async fn the_count_starts_again_after_the_window() {
    let state = common::state_with(&[
        ("GUEST_QUOTA", "1"),
        ("IP_EXPIRY_SECONDS", "2"),
        ("POOL_SIZE", "0"),
    ])
    .await;
    let mut guest = Client::new(&state);
    assert_eq!(submit(&mut guest).await.status, StatusCode::ACCEPTED);
    let r = submit(&mut guest).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&r, "x-ratelimit-reset") <= 2);
    // Refused submissions are not counted, so asking until the window has passed
    // changes nothing.
    let mut r;
    crate::eventually!("the end of the window", {
        r = submit(&mut guest).await;
        r.status != StatusCode::TOO_MANY_REQUESTS
    });
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(header(&r, "x-ratelimit-remaining"), 0);
    finish(state).await;
}

#[tokio::test]
async fn users_are_never_counted_against_the_daily_quota() {
    let state = common::state_with(&[
        ("GUEST_QUOTA", "2"),
        ("POOL_SIZE", "1"),
        ("USER_RUNS_PER_MINUTE", "30"),
    ])
    .await;
    let mut user = Client::new(&state);
    user.sign_up("unlimited").await;
    for i in 0..4 {
        let r = user
            .post_json(
                "/api/v1/runs?wait=true",
                &json!({"language": "python", "code": format!("print({i})")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "run {i}: {}", r.text());
        assert_eq!(r.json()["stdout"], format!("{i}\n"));
        // Users see their per-minute rate, not the guests' daily quota.
        assert_eq!(header(&r, "x-ratelimit-limit"), 30);
        assert_eq!(header(&r, "x-ratelimit-remaining"), 29 - i);
    }
    finish(state).await;
}

#[tokio::test]
async fn redis_away_refuses_guests_with_503_and_users_keep_working() {
    let port = free_port();
    let mut redis = start_redis(port);
    let url = format!("redis://127.0.0.1:{port}");
    let state = common::state_with(&[
        ("GUEST_QUOTA", "3"),
        ("POOL_SIZE", "1"),
        ("REDIS_URL", &url),
    ])
    .await;
    let mut user = Client::new(&state);
    user.sign_up("redisdown").await;
    let mut guest = Client::new(&state);
    assert_eq!(submit(&mut guest).await.status, StatusCode::ACCEPTED);

    redis.kill().unwrap();
    redis.wait().unwrap();
    let r = submit(&mut guest).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "redis_unavailable");
    assert!(r.header("retry-after").is_some());
    let r = user
        .post_json(
            "/api/v1/runs?wait=true",
            &json!({"language": "python", "code": "print(7 * 6)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["stdout"], "42\n");

    // Redis comes back (empty): the quota works again without a restart.
    let mut redis = start_redis(port);
    let mut r;
    crate::eventually!("guests running again once Redis is back", {
        r = submit(&mut guest).await;
        r.status == StatusCode::ACCEPTED
    });
    assert_eq!(header(&r, "x-ratelimit-remaining"), 2);
    redis.kill().unwrap();
    redis.wait().unwrap();
    finish(state).await;
}

/// Only accepted runs count: invalid requests, runs refused over the quota and runs
/// refused because the queue is full leave the guest's count where it was.
#[tokio::test]
async fn refused_invalid_and_queue_full_runs_are_not_counted() {
    let state = common::state_with(&[
        ("GUEST_QUOTA", "2"),
        ("POOL_SIZE", "0"),
        ("MAX_CONCURRENT_RUNS", "1"),
        ("RUN_QUEUE_SIZE", "0"),
        ("RUN_TIME_LIMIT_MS", "120000"),
    ])
    .await;
    let mut guest = Client::new(&state);
    for (body, status) in [
        (
            json!({"language": "cobol", "code": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"language": "python", "code": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"language": "python", "code": "#".repeat(1 << 20)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let r = guest.post_json("/api/v1/runs", &body).await;
        assert_eq!(r.status, status, "{body:.60}: {}", r.text());
    }

    // A user (never counted) holds the only slot; the guest's run finds the queue full.
    let mut user = Client::new(&state);
    user.sign_up("slotholder").await;
    let r = user
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "import time\nprint('holding', flush=True)\ntime.sleep(100)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let holder = r.json()["id"].as_str().unwrap().to_string();
    crate::eventually!(
        "the user's run holding the slot",
        user.get(&format!("/api/v1/runs/{holder}")).await.json()["stdout"] == "holding\n"
    );
    let r = submit(&mut guest).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "queue_full");
    let r = user
        .post_json(&format!("/api/v1/runs/{holder}/stop"), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // The slot frees once the holder's container is gone; until then the guest keeps
    // meeting a full queue, which must not count either.
    let mut r;
    crate::eventually!("the slot coming free", {
        r = submit(&mut guest).await;
        r.status != StatusCode::SERVICE_UNAVAILABLE
    });

    // None of that counted: the whole quota is left.
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(header(&r, "x-ratelimit-remaining"), 1);
    crate::eventually!("the slot coming free again", {
        r = submit(&mut guest).await;
        r.status != StatusCode::SERVICE_UNAVAILABLE
    });
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(header(&r, "x-ratelimit-remaining"), 0);
    // Refusals over the quota do not push the count (or its window) further.
    crate::eventually!("the slot coming free a third time", {
        r = submit(&mut guest).await;
        r.status != StatusCode::SERVICE_UNAVAILABLE
    });
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    for _ in 0..2 {
        let r = submit(&mut guest).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    }
    let mut conn = state.redis.conn().await.unwrap();
    let key = match guest.ip.ip() {
        std::net::IpAddr::V4(v4) => format!("own-ide:quota:ip:{v4}"),
        std::net::IpAddr::V6(_) => unreachable!("fresh_ip gives IPv4 addresses"),
    };
    let count: u64 = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 2, "only the two accepted runs are counted");
    finish(state).await;
}
