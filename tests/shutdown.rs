//! Shutting down loses nothing: runs in progress finish (or, after the grace, end
//! `stopped`) and their final state is in the history before the process exits.

mod common;

use axum::http::StatusCode;
use common::Client;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn shutdown_lets_short_runs_finish_stops_long_ones_and_writes_both() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&state);
    user.sign_up("shutdown").await;
    let long = user
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "import time\nprint('started', flush=True)\nwhile True: time.sleep(1)"}),
        )
        .await;
    assert_eq!(long.status, StatusCode::ACCEPTED, "{}", long.text());
    let long_id = long.json()["id"].as_str().unwrap().to_string();
    // The long run is really running before the shutdown starts.
    user.events(&long_id).await.until("started").await;

    state.runs.shutdown(Duration::from_millis(200)).await;

    // Its end is written: the history has it finished, stopped, saved.
    let saved = user.get(&format!("/api/v1/runs/{long_id}")).await.json();
    assert_eq!(saved["status"], "finished", "{saved}");
    assert_eq!(saved["verdict"], "stopped");
    let listed = user.get("/api/v1/history").await.json();
    let item = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == long_id.as_str())
        .cloned()
        .expect("the run is in the history");
    assert_eq!(item["status"], "finished", "{item}");
    assert_eq!(item["verdict"], "stopped");
    // No new run is taken once shutting down.
    let r = user
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "print(1)"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "shutting_down");
    assert!(r.header("retry-after").is_some());
    common::finish(state).await;
}

#[tokio::test]
async fn a_run_within_the_grace_finishes_normally() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&state);
    user.sign_up("graceful").await;
    let r = user
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "import time\ntime.sleep(0.5)\nprint('done')"}),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    state.runs.shutdown(Duration::from_secs(60)).await;
    let run = user.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(run["verdict"], "ok", "{run}");
    assert_eq!(run["stdout"], "done\n");
    common::finish(state).await;
}

/// One HTTP/1.1 request on a fresh connection; the status and the body.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The JSON object in a (possibly chunked) HTTP body.
fn json_of(body: &str) -> serde_json::Value {
    let start = body.find('{').expect("a JSON body");
    let end = body.rfind('}').expect("a JSON body");
    serde_json::from_str(&body[start..=end]).expect("JSON")
}

#[tokio::test]
async fn sigterm_writes_the_end_of_a_running_run_before_the_process_exits() {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let secret = "integration-test-secret-key-0123456789";
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_own-ide"))
        .env("LISTEN_ADDR", &addr)
        .env("LEPTOS_OUTPUT_NAME", "own-ide")
        .env("SECRET_KEY", secret)
        .env("SHUTDOWN_GRACE_SECONDS", "1")
        .env("POOL_SIZE", "1")
        .env("USER_RUNS_PER_MINUTE", "0")
        // Other tests that start the binary register from 127.0.0.1 too within the hour.
        .env("REGISTRATIONS_PER_IP_PER_HOUR", "0")
        .envs(common::test_stores())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the server binary");
    // Wait for it to listen (bounded: a server that does not come up fails the test).
    let mut up = false;
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server did not start");
    let name = common::fresh_name("sigterm");
    let creds = json!({"username": name, "password": "correct horse"}).to_string();
    let (status, _) = http(&addr, "POST", "/api/v1/users", None, &creds).await;
    assert_eq!(status, 201);
    let (_, body) = http(&addr, "POST", "/api/v1/token", None, &creds).await;
    let token = json_of(&body)["access_token"].as_str().unwrap().to_string();
    let code = json!({"language": "python", "code": "import time\nwhile True: time.sleep(1)"});
    let (status, body) = http(
        &addr,
        "POST",
        "/api/v1/runs",
        Some(&token),
        &code.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = json_of(&body)["id"].as_str().unwrap().to_string();
    // Running for real before the signal.
    loop {
        let (_, body) = http(
            &addr,
            "GET",
            &format!("/api/v1/runs/{id}"),
            Some(&token),
            "",
        )
        .await;
        if json_of(&body)["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    // After the process is gone, the history says how the run ended.
    let state = common::state().await;
    let user_id = state.accounts.verify_token(&token).unwrap().id;
    let run = state
        .runs
        .store()
        .get(&user_id, &id)
        .await
        .unwrap()
        .expect("the run is in the history");
    assert_eq!(run.status, own_ide::model::RunStatus::Finished);
    assert_eq!(run.verdict, Some(own_ide::model::Verdict::Stopped));
    common::finish(state).await;
}
