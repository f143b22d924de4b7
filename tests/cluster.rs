//! Beyond one machine, proved against real processes: web nodes and executors of the
//! built binary started by `scripts/cluster.sh` behind nginx, killed, paused and resumed
//! with real signals. Every wait awaits an event (with a bound that only stops a broken
//! test from hanging); the timings are in `bench/cluster.rs`.
//!
//! The tests take turns (one cluster at a time: the machine has two cores), and each
//! cluster has its own ports, directory and sandbox label.

mod cluster_support;

use cluster_support::{await_claim, claim, Cluster, Node, Spec, User};
use std::collections::HashSet;

/// One cluster at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A run that says it started, then goes on until stopped or lost.
const FOREVER: &str = "import time\nprint('started', flush=True)\nwhile True: time.sleep(0.2)";

/// Two one-slot executors with a short lease (so a dead one is noticed soon).
fn one_slot_executors() -> Spec {
    Spec {
        env: vec![
            ("CLUSTER_EXECUTOR_SLOTS", "1".into()),
            ("EXECUTOR_LEASE_MS", "2000".into()),
        ],
        ..Spec::default()
    }
}

#[tokio::test]
async fn six_runs_fan_out_over_two_one_slot_executors() {
    let _turn = TURN.lock().await;
    let cluster = Cluster::start(one_slot_executors());
    let user = User::sign_up(&cluster.lb, "fanout").await;
    let code = "import time\ntime.sleep(1)\nprint('done')";
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(user.submit(&cluster.lb, code).await);
    }
    let mut con = cluster_support::redis();
    let mut executors = HashSet::new();
    for id in &ids {
        let mut events = user.events(&cluster.lb, id, None).await;
        let result = events.result().await;
        assert_eq!(result["verdict"], "ok", "{result}");
        assert_eq!(result["stdout"], "done\n");
        let c = claim(&mut con, id);
        executors.insert(c.get("executor").cloned().unwrap_or_default());
    }
    assert_eq!(
        executors.len(),
        2,
        "both executors ran some of the six runs: {executors:?}"
    );
    assert!(!executors.contains(""), "every run has its executor");
}

#[tokio::test]
async fn an_executor_killed_mid_run_ends_it_executor_lost_everywhere() {
    let _turn = TURN.lock().await;
    let cluster = Cluster::start(one_slot_executors());
    let user = User::sign_up(&cluster.lb, "lost").await;
    let (id, executor_1) = cluster
        .submit_to_executor_1(&user, &cluster.web(1), FOREVER)
        .await;
    // Its stream on the other web node.
    let mut events = user.events(&cluster.web(2), &id, None).await;
    events
        .until("started", |e| {
            e.event == "stdout" && e.data.contains("started")
        })
        .await;
    assert!(
        !cluster.containers(Some(&executor_1)).is_empty(),
        "the run's container exists before the kill"
    );

    cluster.kill9("executor-1");

    let result = events.result().await;
    assert_eq!(result["verdict"], "executor_lost", "{result}");
    assert_eq!(result["status"], "finished");
    assert_eq!(
        result["stdout"], "started\n",
        "the output streamed before the loss is kept"
    );
    // The run page and the history say what the stream said.
    let run = user.run(&cluster.web(1), &id).await;
    assert_eq!(run["verdict"], "executor_lost", "{run}");
    assert_eq!(run["stdout"], result["stdout"]);
    let listed = user
        .history_entry(&cluster.lb, &id)
        .await
        .expect("the run is in the history");
    assert_eq!(listed["verdict"], "executor_lost", "{listed}");
    assert_eq!(listed["stdout"], result["stdout"]);
    assert_eq!(listed["finished_at"], result["finished_at"]);
    // The dead executor's containers (the run's and its pool's) are removed by the
    // executor left on this Docker host.
    let started = tokio::time::Instant::now();
    while !cluster.containers(Some(&executor_1)).is_empty() {
        assert!(
            started.elapsed() < cluster_support::PATIENCE,
            "the dead executor's containers are still there: {:?}",
            cluster.containers(Some(&executor_1))
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_executor_killed_between_claim_and_start_leaves_the_run_to_another_which_runs_it_once() {
    let _turn = TURN.lock().await;
    // Executors wait a second between claiming a run and starting it (the test hook),
    // which leaves room to stop the executor there.
    let mut spec = one_slot_executors();
    spec.env.push(("EXECUTOR_START_DELAY_MS", "1000".into()));
    let cluster = Cluster::start(spec);
    let user = User::sign_up(&cluster.lb, "reclaim").await;
    let mut con = cluster_support::redis();
    let code = "print('once')";
    let mut attempts = 0;
    let (id, first) = loop {
        attempts += 1;
        assert!(
            attempts <= 5,
            "never caught an executor between claim and start"
        );
        cluster.pause("executor-2").await;
        let id = user.submit(&cluster.web(1), code).await;
        let c = await_claim(&mut con, &id).await;
        cluster.pause("executor-1").await;
        // A start the executor sent just before it stopped may not be read by Redis yet:
        // one more round trip first makes that unlikely (and would only cost an attempt).
        let _: String = redis::cmd("PING").query(&mut con).expect("PING");
        let now = claim(&mut con, &id);
        if now.get("started").is_none_or(|s| s.is_empty() || s == "0") {
            break (id, c["executor"].clone());
        }
        // It had already started: let it finish and try again with a new run.
        cluster.resume("executor-1");
        cluster.resume("executor-2");
        user.events(&cluster.lb, &id, None).await.result().await;
    };
    cluster.kill9("executor-1");
    cluster.resume("executor-2");

    let mut events = user.events(&cluster.web(2), &id, None).await;
    let result = events.result().await;
    assert_eq!(result["verdict"], "ok", "{result}");
    assert_eq!(result["stdout"], "once\n", "it ran once");
    let c = claim(&mut con, &id);
    assert_ne!(c["executor"], first, "it ran elsewhere: {c:?}");
    assert_eq!(
        events.seen.iter().filter(|e| e.event == "result").count(),
        1
    );
    let listed = user
        .history_entry(&cluster.lb, &id)
        .await
        .expect("the run is in the history");
    assert_eq!(listed["verdict"], "ok");
    assert_eq!(listed["stdout"], "once\n");
}

// The takeover may remove the paused executor's containers (it is silent then); once
// back, it learns that before it takes a run and drops its warm pool, so its next run
// gets a container no one is removing.
#[tokio::test]
async fn an_executor_paused_past_its_lease_changes_nothing_when_it_comes_back() {
    let _turn = TURN.lock().await;
    let cluster = Cluster::start(one_slot_executors());
    let user = User::sign_up(&cluster.lb, "stall").await;
    let code = "import time\nprint('started', flush=True)\ntime.sleep(3)\nprint('late')";
    let (id, executor_1) = cluster
        .submit_to_executor_1(&user, &cluster.web(1), code)
        .await;
    let mut events = user.events(&cluster.web(2), &id, None).await;
    events
        .until("started", |e| {
            e.event == "stdout" && e.data.contains("started")
        })
        .await;

    cluster.pause("executor-1").await;
    let result = events.result().await;
    assert_eq!(result["verdict"], "executor_lost", "{result}");
    // What reached Redis before the pause is kept: the first line, whole or without its
    // newline (the pause can fall between the two events the output came in), never
    // the line printed after the takeover.
    let kept = result["stdout"].as_str().unwrap_or_default();
    assert!(kept == "started\n" || kept == "started", "{result}");
    let claim_then = claim(&mut cluster_support::redis(), &id);

    // Back: its program has finished meanwhile (or its container is gone), and it tries
    // to write that outcome. A second run that only it can take shows it is done with
    // the first (one slot: it frees it only after the first run's end).
    cluster.resume("executor-1");
    let (second, by) = cluster
        .submit_to_executor_1(&user, &cluster.lb, "print('second')")
        .await;
    assert_eq!(by, executor_1);
    let r = user.events(&cluster.lb, &second, None).await.result().await;
    assert_eq!(r["verdict"], "ok", "{r}");

    // Everything is as the takeover wrote it: nothing of the late outcome.
    let run = user.run(&cluster.lb, &id).await;
    assert_eq!(run["verdict"], "executor_lost", "{run}");
    assert_eq!(run["stdout"], result["stdout"], "{run}");
    assert_eq!(run["finished_at"], result["finished_at"], "{run}");
    let listed = user
        .history_entry(&cluster.lb, &id)
        .await
        .expect("the run is in the history");
    assert_eq!(listed["verdict"], "executor_lost");
    assert_eq!(listed["stdout"], result["stdout"]);
    assert_eq!(listed["finished_at"], result["finished_at"]);
    let mut replay = user.events(&cluster.web(1), &id, None).await;
    replay.result().await;
    assert!(replay.next().await.is_none(), "nothing after the result");
    assert_eq!(
        replay.seen.iter().filter(|e| e.event == "result").count(),
        1
    );
    assert!(!replay.stdout().contains("late"), "{:?}", replay.seen);
    let claim_now = claim(&mut cluster_support::redis(), &id);
    assert_eq!(claim_now.get("result"), claim_then.get("result"));
}

#[tokio::test]
async fn sse_resumes_on_another_web_node_with_last_event_id() {
    let _turn = TURN.lock().await;
    let cluster = Cluster::start(Spec::default());
    let user = User::sign_up(&cluster.lb, "resume").await;
    let code = "import time\nfor i in range(1, 9):\n    print(i, flush=True)\n    time.sleep(0.2)";
    let id = user.submit(&cluster.web(1), code).await;

    // Read part of the output on web node 1, then drop the connection.
    let mut first = user.events(&cluster.web(1), &id, None).await;
    first
        .until("the second line", |e| {
            e.event == "stdout" && e.json()["data"].as_str().unwrap_or("").contains('2')
        })
        .await;
    let last = first
        .seen
        .last()
        .and_then(|e| e.id.clone())
        .expect("events carry ids");
    let before = first.stdout();
    drop(first);

    // Continue on web node 2 from the last id seen.
    let mut second = user.events(&cluster.web(2), &id, Some(&last)).await;
    let result = second.result().await;
    let after = second.stdout();
    let expected: String = (1..9).map(|i| format!("{i}\n")).collect();
    assert_eq!(
        format!("{before}{after}"),
        expected,
        "no chunk lost or repeated across the reconnection (before: {before:?}, after: {after:?})"
    );
    assert_eq!(result["verdict"], "ok", "{result}");
    assert_eq!(result["stdout"], expected.as_str());
    // Ids keep increasing across the two nodes.
    let ids: Vec<&String> = second.seen.iter().filter_map(|e| e.id.as_ref()).collect();
    assert!(
        ids.iter().all(|i| *i != &last),
        "the event with the last id seen is not sent again: {last} in {ids:?}"
    );
}

#[tokio::test]
async fn a_stop_through_one_web_node_ends_the_run_held_elsewhere() {
    let _turn = TURN.lock().await;
    let cluster = Cluster::start(Spec::default());
    let user = User::sign_up(&cluster.lb, "stop").await;
    let id = user.submit(&cluster.web(1), FOREVER).await;
    let mut events = user.events(&cluster.web(1), &id, None).await;
    events
        .until("started", |e| {
            e.event == "stdout" && e.data.contains("started")
        })
        .await;

    let r = user
        .post(
            &cluster.web(2),
            &format!("/api/v1/runs/{id}/stop"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);

    let result = events.result().await;
    assert_eq!(result["verdict"], "stopped", "{result}");
    assert_eq!(result["stdout"], "started\n");
    let saved = user.run(&cluster.lb, &id).await;
    assert_eq!(saved["verdict"], "stopped", "{saved}");
    let listed = user
        .history_entry(&cluster.lb, &id)
        .await
        .expect("the run is in the history");
    assert_eq!(listed["status"], "finished");
    assert_eq!(listed["verdict"], "stopped");
}

#[tokio::test]
async fn sigterm_of_an_all_in_one_node_lets_the_run_finish_and_history_shows_it_after_restart() {
    let _turn = TURN.lock().await;
    let mut node = Node::start(&[("ROLE", "all"), ("SHUTDOWN_GRACE_SECONDS", "30")]).await;
    let user = User::sign_up(&node.addr, "sigterm").await;
    let code = "import time\nprint('started', flush=True)\ntime.sleep(1)\nprint('done')";
    let id = user.submit(&node.addr, code).await;
    let mut events = user.events(&node.addr, &id, None).await;
    events
        .until("started", |e| {
            e.event == "stdout" && e.data.contains("started")
        })
        .await;

    let exit = node.terminate().await;
    assert!(exit.success(), "the node exits cleanly: {exit:?}");
    drop(events);

    node.restart().await;
    let listed = user
        .history_entry(&node.addr, &id)
        .await
        .expect("the run is in the history after the restart");
    assert_eq!(listed["status"], "finished", "{listed}");
    assert_eq!(listed["verdict"], "ok", "{listed}");
    assert_eq!(listed["stdout"], "started\ndone\n");
}

#[tokio::test]
async fn the_load_balancer_passes_the_client_address_the_web_nodes_trust() {
    let _turn = TURN.lock().await;
    let cluster = Cluster::start(Spec {
        env: vec![("GUEST_QUOTA", "1".into())],
        ..Spec::default()
    });
    // Everything here connects from 127.0.0.1, which the nodes trust as a proxy; so an
    // address written before nginx's own entry stands for the client (as it would for a
    // trusted proxy in front of nginx). Two guests at two addresses, one run each.
    let run = serde_json::json!({"language": "python", "code": "print('hi')"}).to_string();
    let guest = |ip: String| {
        let lb = cluster.lb.clone();
        let run = run.clone();
        async move {
            cluster_support::request(
                &lb,
                "POST",
                "/api/v1/runs?wait=true",
                &[("X-Forwarded-For", ip.as_str())],
                &run,
            )
            .await
        }
    };
    let a = cluster_support::unique_ip();
    let b = cluster_support::unique_ip();
    let first = guest(a.clone()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["stdout"], "hi\n");
    // The same address through the balancer again (to whichever web node): quota spent.
    let again = guest(a).await;
    assert_eq!(again.status, 429, "{}", again.body);
    let other = guest(b).await;
    assert_eq!(other.status, 200, "{}", other.body);
}

#[tokio::test]
async fn input_typed_while_a_run_is_queued_reaches_it_when_it_starts() {
    let _turn = TURN.lock().await;
    let cluster = Cluster::start(Spec {
        executors: 1,
        ..one_slot_executors()
    });
    let user = User::sign_up(&cluster.lb, "typedq").await;
    // The only slot is busy until this run is stopped.
    let busy = user.submit(&cluster.web(1), FOREVER).await;
    user.events(&cluster.web(1), &busy, None)
        .await
        .until("started", |e| {
            e.event == "stdout" && e.data.contains("started")
        })
        .await;

    let r = user
        .post(
            &cluster.web(1),
            "/api/v1/runs",
            &serde_json::json!({
                "language": "python",
                "code": "a = input()\nb = input()\nprint('got', a, b)",
                "interactive": true,
            }),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().expect("a run id").to_string();
    let queued = user.run(&cluster.web(2), &id).await;
    assert_eq!(queued["status"], "queued", "{queued}");

    // Typed through the other web node while it waits, in two parts, in order.
    for (data, eof) in [("first\n", false), ("second\n", true)] {
        let r = user
            .post(
                &cluster.web(2),
                &format!("/api/v1/runs/{id}/stdin"),
                &serde_json::json!({"data": data, "eof": eof}),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let still = user.run(&cluster.web(1), &id).await;
    assert_eq!(still["status"], "queued", "typed while queued: {still}");

    let r = user
        .post(
            &cluster.web(1),
            &format!("/api/v1/runs/{busy}/stop"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let result = user.events(&cluster.lb, &id, None).await.result().await;
    assert_eq!(result["verdict"], "ok", "{result}");
    assert_eq!(result["stdout"], "got first second\n", "{result}");
}
