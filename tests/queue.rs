//! The cluster roles in one test process: web nodes and an executor as separate app
//! states (each its own run service, engine and connections) against the real Redis,
//! Docker and MongoDB. They share only what separate processes would: Redis and MongoDB.
//! The tests use their own Redis logical database, so that executors of other test
//! runs never take these runs (and these executors never take theirs).

mod common;

use axum::http::StatusCode;
use common::Client;
use own_ide::server::runs::{Claimed, Queue};
use own_ide::server::state::AppState;
use serde_json::{json, Value};
use std::time::Duration;

const REDIS_URL: &str = "redis://127.0.0.1:6379/11";
/// A sandbox label of their own: engines whose heartbeats live in another Redis database
/// see every other engine as dead, and must never sweep their containers.
const LABEL: &str = "queue-tests";
/// An executor's heartbeat life in these tests: short, so that a dead one is noticed soon.
const LEASE_MS: &str = "1500";

/// One test at a time: each holds the one queue of this Redis database.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn web() -> AppState {
    common::state_with(&[
        ("ROLE", "web"),
        ("REDIS_URL", REDIS_URL),
        ("SANDBOX_LABEL", LABEL),
    ])
    .await
}

async fn executor() -> AppState {
    common::state_with(&[
        ("ROLE", "executor"),
        ("REDIS_URL", REDIS_URL),
        ("SANDBOX_LABEL", LABEL),
        ("POOL_SIZE", "1"),
        ("MAX_CONCURRENT_RUNS", "1"),
        ("EXECUTOR_LEASE_MS", LEASE_MS),
    ])
    .await
}

async fn stop_executor(state: AppState) {
    state.runs.shutdown(Duration::from_secs(5)).await;
    common::finish(state).await;
}

/// The SSE events in `text` as (id, event, data).
fn parse_events(text: &str) -> Vec<(u64, String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let (mut id, mut event, mut data) = (None, None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).ok();
                }
            }
            Some((id?, event?, data?))
        })
        .collect()
}

/// Submits a run without waiting; its id.
async fn submit(client: &mut Client, code: &str) -> String {
    let r = client
        .post_json("/api/v1/runs", &json!({"language": "python", "code": code}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

/// Claims run `id` from the queue as a made-up executor `{who}-<random>` (a name with no
/// heartbeat: to the cluster, an executor that has died), returning the queue handle and
/// the claim. Other runs claimed on the way go back.
async fn claim_as(web: &AppState, who: &str, id: &str) -> (Queue, Claimed) {
    let queue = Queue::new(web.redis.clone(), 600);
    let consumer = format!("{who}-{}", uuid::Uuid::new_v4().simple());
    loop {
        let got = queue.claim(&consumer).await;
        match got {
            Some(c) if c.job.id == id => return (queue, c),
            Some(other) => {
                queue.requeue(&other).await;
            }
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test]
async fn a_web_node_needs_no_docker_and_an_executor_serves_only_health() {
    let _one = ONE_AT_A_TIME.lock().await;
    let web = web().await;
    let checks: Vec<&str> = web.readiness().await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(checks, ["redis", "mongodb"]);
    let exec = executor().await;
    let router = own_ide::server::executor_router(exec.clone());
    let mut c = Client {
        app: router,
        ..Client::new(&exec)
    };
    assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
    let metrics = c.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.text().contains("own_ide_role{role=\"executor\"} 1"),
        "{}",
        metrics.text()
    );
    assert_eq!(
        c.get("/api/v1/languages").await.status,
        StatusCode::NOT_FOUND
    );
    stop_executor(exec).await;
}

#[tokio::test]
async fn a_run_goes_through_the_queue_and_its_output_resumes_on_another_web_node() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (web1, web2, exec) = (web().await, web().await, executor().await);
    let mut on1 = Client::new(&web1);
    on1.sign_up("queue").await;
    let mut on2 = Client {
        app: own_ide::server::api_router(web2.clone()),
        ..on1.clone_as_same_caller()
    };
    let id = submit(
        &mut on1,
        "import time\nfor i in range(4):\n    print('line', i, flush=True)\n    time.sleep(0.3)",
    )
    .await;
    // Read on the first web node until the second line, then reconnect to the other.
    let mut first = on1.events(&id).await;
    first.until("line 1").await;
    let seen = parse_events(&first.seen);
    let last = seen.last().unwrap().0;
    drop(first);
    let mut second = on2.events_after(&id, Some(&last.to_string())).await;
    second.until_result().await;
    let rest = parse_events(&second.seen);
    // Ids continue where the first connection stopped, none repeated or skipped.
    let ids: Vec<u64> = seen.iter().chain(rest.iter()).map(|e| e.0).collect();
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, expected, "{seen:?} then {rest:?}");
    // Every line arrives exactly once across the two connections.
    let stdout: String = seen
        .iter()
        .chain(rest.iter())
        .filter(|e| e.1 == "stdout")
        .map(|e| e.2["data"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stdout, "line 0\nline 1\nline 2\nline 3\n");
    let result = &rest.last().unwrap().2;
    assert_eq!(result["verdict"], "ok", "{result}");
    assert_eq!(result["saved"], true, "{result}");
    // The history (written by the executor) and both web nodes agree.
    let saved = on2.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(saved["verdict"], "ok", "{saved}");
    assert_eq!(saved["stdout"], "line 0\nline 1\nline 2\nline 3\n");
    stop_executor(exec).await;
}

#[tokio::test]
async fn a_stop_sent_to_one_web_node_ends_the_run_on_the_executor() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (web1, web2, exec) = (web().await, web().await, executor().await);
    let mut on1 = Client::new(&web1);
    let r = on1.get("/api/v1/languages").await;
    assert_eq!(r.status, StatusCode::OK);
    let id = submit(
        &mut on1,
        "import time\nprint('started', flush=True)\ntime.sleep(60)",
    )
    .await;
    let mut events = on1.events(&id).await;
    events.until("started").await;
    let mut on2 = Client {
        app: own_ide::server::api_router(web2.clone()),
        ..on1.clone_as_same_caller()
    };
    let stop = on2
        .send(
            "POST",
            &format!("/api/v1/runs/{id}/stop"),
            None,
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(stop.status, StatusCode::ACCEPTED, "{}", stop.text());
    events.until_result().await;
    let result = parse_events(&events.seen).last().unwrap().2.clone();
    assert_eq!(result["verdict"], "stopped", "{result}");
    stop_executor(exec).await;
}

#[tokio::test]
async fn a_queued_run_stopped_before_any_executor_took_it_never_runs() {
    let _one = ONE_AT_A_TIME.lock().await;
    let web = web().await;
    let mut guest = Client::new(&web);
    let id = submit(&mut guest, "print('ran')").await;
    let stop = guest
        .send(
            "POST",
            &format!("/api/v1/runs/{id}/stop"),
            None,
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(stop.status, StatusCode::ACCEPTED, "{}", stop.text());
    let run = common::wait_finished(&mut guest, &id).await;
    assert_eq!(run["verdict"], "stopped", "{run}");
    // An executor that starts now finds nothing of it to run.
    let exec = executor().await;
    let after = guest.run("python", "print('next')", "").await;
    assert_eq!(after["stdout"], "next\n");
    let run = guest.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(run["verdict"], "stopped", "{run}");
    assert_eq!(run["stdout"], "");
    stop_executor(exec).await;
}

#[tokio::test]
async fn a_run_claimed_by_an_executor_that_died_before_starting_it_runs_once_elsewhere() {
    let _one = ONE_AT_A_TIME.lock().await;
    let web = web().await;
    let mut user = Client::new(&web);
    user.sign_up("reclaim").await;
    let id = submit(&mut user, "print('once')").await;
    let (queue, claimed) = claim_as(&web, "dead", &id).await;
    // A live executor takes it over once the dead one's lease has passed, and runs it.
    let exec = executor().await;
    let run = common::wait_finished(&mut user, &id).await;
    assert_eq!(run["verdict"], "ok", "{run}");
    assert_eq!(run["stdout"], "once\n");
    // The dead executor coming back can neither start it nor write an outcome.
    assert!(!queue.start(&id, claimed.epoch).await);
    assert!(!queue.commit(&id, claimed.epoch, "{}").await);
    let saved = user.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(saved["stdout"], "once\n", "{saved}");
    stop_executor(exec).await;
}

#[tokio::test]
async fn a_started_run_of_a_dead_executor_ends_executor_lost_and_a_late_write_changes_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let web = web().await;
    let mut user = Client::new(&web);
    user.sign_up("lost").await;
    let id = submit(&mut user, "print('never')").await;
    let (queue, claimed) = claim_as(&web, "stalled", &id).await;
    assert!(queue.start(&id, claimed.epoch).await, "the claim holds");
    let exec = executor().await;
    let run = common::wait_finished(&mut user, &id).await;
    assert_eq!(run["verdict"], "executor_lost", "{run}");
    assert_eq!(run["saved"], true, "{run}");
    // The stalled executor comes back with an outcome: refused, nothing changes.
    let late = json!({"id": id, "verdict": "ok", "stdout": "late\n"}).to_string();
    assert!(!queue.commit(&id, claimed.epoch, &late).await);
    let saved = user.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(saved["verdict"], "executor_lost", "{saved}");
    let listed = user.get("/api/v1/history").await.json();
    let item = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .expect("the run is in the history");
    assert_eq!(item["verdict"], "executor_lost", "{item}");
    stop_executor(exec).await;
}

#[tokio::test]
async fn an_all_in_one_run_has_event_ids_and_resumes_on_another_instance() {
    let _one = ONE_AT_A_TIME.lock().await;
    let a = common::state_with(&[
        ("REDIS_URL", REDIS_URL),
        ("SANDBOX_LABEL", LABEL),
        ("POOL_SIZE", "1"),
    ])
    .await;
    let b = common::state_with(&[
        ("REDIS_URL", REDIS_URL),
        ("SANDBOX_LABEL", LABEL),
        ("POOL_SIZE", "0"),
    ])
    .await;
    let mut on_a = Client::new(&a);
    let run = on_a.run("python", "print('hi')", "").await;
    let id = run["id"].as_str().unwrap().to_string();
    let all = parse_events(on_a.events(&id).await.until_result().await);
    assert_eq!(all.first().map(|e| e.0), Some(1), "{all:?}");
    assert_eq!(all.last().unwrap().1, "result");
    // After the first event, from the other instance (the run's Redis stream).
    let on_b = Client {
        app: own_ide::server::api_router(b.clone()),
        ..on_a.clone_as_same_caller()
    };
    let rest = parse_events(on_b.events_after(&id, Some("1")).await.until_result().await);
    assert_eq!(rest, all[1..].to_vec());
    // A Last-Event-ID that is not a number is refused clearly.
    let bad = on_a
        .send_with(
            "GET",
            &format!("/api/v1/runs/{id}/events"),
            &[("last-event-id", "abc")],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["error"]["code"], "invalid_last_event_id");
    common::finish(a).await;
    common::finish(b).await;
}

#[tokio::test]
async fn a_guest_gets_a_lost_run_back_on_the_quota_and_keeps_what_it_printed() {
    let _one = ONE_AT_A_TIME.lock().await;
    let web = common::state_with(&[
        ("ROLE", "web"),
        ("REDIS_URL", REDIS_URL),
        ("SANDBOX_LABEL", LABEL),
        ("GUEST_QUOTA", "10"),
    ])
    .await;
    let mut guest = Client::new(&web);
    let r = guest
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "print('partial')"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("9"));
    let id = r.json()["id"].as_str().unwrap().to_string();
    let (queue, claimed) = claim_as(&web, "dead", &id).await;
    assert!(queue.start(&id, claimed.epoch).await);
    // What the dead executor had streamed before it went.
    let mut conn = web.redis.conn().await.unwrap();
    let _: () = redis::cmd("XADD")
        .arg(format!("own-ide:run:{id}:events"))
        .arg("0-2")
        .arg("e")
        .arg(json!({"stdout": "partial\n"}).to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    let exec = executor().await;
    let run = common::wait_finished(&mut guest, &id).await;
    assert_eq!(run["verdict"], "executor_lost", "{run}");
    assert_eq!(run["stdout"], "partial\n", "{run}");
    // The lost run was given back: the next one leaves 9 again, not 8.
    let next = guest
        .post_json(
            "/api/v1/runs?wait=true",
            &json!({"language": "python", "code": "print('next')"}),
        )
        .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text());
    assert_eq!(next.header("x-ratelimit-remaining").as_deref(), Some("9"));
    assert_eq!(next.json()["stdout"], "next\n");
    stop_executor(exec).await;
}

#[tokio::test]
async fn an_executor_shutting_down_stops_its_runs_and_writes_their_end() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (web, exec) = (web().await, executor().await);
    let mut user = Client::new(&web);
    user.sign_up("execdown").await;
    let id = submit(
        &mut user,
        "import time\nprint('started', flush=True)\ntime.sleep(60)",
    )
    .await;
    let mut events = user.events(&id).await;
    events.until("started").await;
    exec.runs.shutdown(Duration::from_millis(200)).await;
    events.until_result().await;
    let result = parse_events(&events.seen).last().unwrap().2.clone();
    assert_eq!(result["verdict"], "stopped", "{result}");
    assert_eq!(result["stdout"], "started\n", "{result}");
    let listed = user.get("/api/v1/history").await.json();
    let item = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .expect("the run is in the history");
    assert_eq!(item["verdict"], "stopped", "{item}");
    // A run submitted now is taken by another executor.
    let next = submit(&mut user, "print('later')").await;
    let other = executor().await;
    let run = common::wait_finished(&mut user, &next).await;
    assert_eq!(run["stdout"], "later\n", "{run}");
    common::finish(exec).await;
    stop_executor(other).await;
}
