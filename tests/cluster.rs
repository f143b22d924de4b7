//! Beyond one machine, proved against real processes: web nodes and executors of the
//! built binary started by `scripts/cluster.sh` behind nginx, killed, paused and resumed
//! with real signals. Every wait awaits an event (with a bound that only stops a broken
//! test from hanging); the timings are in `bench/cluster.rs`.
//!
//! The tests take turns (one cluster at a time: the machine has two cores), and each
//! cluster has its own ports, directory and sandbox label.

mod cluster_support;

use cluster_support::{Cluster, Node, Spec, User};

/// One cluster at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A run that says it started, then goes on until stopped or lost.
const FOREVER: &str = "import time\nprint('started', flush=True)\nwhile True: time.sleep(0.2)";

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
        .until("started", |e| e.event == "stdout" && e.data.contains("started"))
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
        .until("started", |e| e.event == "stdout" && e.data.contains("started"))
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
