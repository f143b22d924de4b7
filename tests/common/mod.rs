//! Shared set-up for integration tests: the real app state against the real Docker
//! engine, Redis and MongoDB-compatible server that `scripts/test.sh` starts.
#![allow(dead_code)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use own_ide::server::config::Config;
use own_ide::server::state::AppState;
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

/// How long `eventually!` waits for something that should happen. Generous on purpose:
/// it only bounds a test that would otherwise hang, on a loaded 2-core machine; it is
/// not a latency promise (those belong in `bench/`).
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Polls `$cond` (an expression that may `.await`) every 50 ms until it holds, and fails
/// with `$what` if it still does not after `PATIENCE`.
#[macro_export]
macro_rules! eventually {
    ($what:expr, $cond:expr) => {{
        let deadline = tokio::time::Instant::now() + $crate::common::PATIENCE;
        loop {
            if $cond {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not happen within {:?}",
                $what,
                $crate::common::PATIENCE
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

/// Shuts the engine down and checks that none of its containers is left. Removal is
/// asynchronous (Docker confirms it after `shutdown` returns), so it waits for it.
pub async fn finish(state: AppState) {
    state.engine.shutdown().await;
    crate::eventually!(
        "removal of every container of the engine",
        state.engine.count_containers().await.unwrap() == 0
    );
}

/// The MongoDB database and Redis logical database a test run uses unless the
/// environment names others: never the ones a running app uses (`own_ide`, Redis 0),
/// so a test run neither sees nor leaves that app's counters, sessions and history.
/// (Redis pub/sub channels are shared by every logical database; the only one,
/// `own-ide:stop`, carries run ids, which an app that does not hold the run ignores.)
pub const TEST_DATABASE_NAME: &str = "own_ide_test";
pub const TEST_REDIS_URL: &str = "redis://127.0.0.1:6379/1";

/// The test run's own MongoDB database and Redis URL (the environment's, when set), for
/// a test that starts the server binary itself.
pub fn test_stores() -> [(&'static str, String); 2] {
    [
        (
            "DATABASE_NAME",
            std::env::var("DATABASE_NAME").unwrap_or(TEST_DATABASE_NAME.into()),
        ),
        (
            "REDIS_URL",
            std::env::var("REDIS_URL").unwrap_or(TEST_REDIS_URL.into()),
        ),
    ]
}

/// Builds the app state with the process environment plus `overrides`. Unless a test
/// sets them itself, guests get a quota no test reaches and the fair-share caps and
/// rate are off (each has its own tests), and `SECRET_KEY` is fixed so that tokens can
/// be checked. `DATABASE_NAME` and `REDIS_URL` default to the test run's own databases
/// (see `TEST_DATABASE_NAME`).
pub async fn state_with(overrides: &[(&str, &str)]) -> AppState {
    let mut overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("GUEST_QUOTA", "1000000"),
        ("MAX_RUNS_IN_FLIGHT", "0"),
        ("MAX_RUNS_IN_FLIGHT_PER_IP", "0"),
        ("USER_RUNS_PER_MINUTE", "0"),
        ("SECRET_KEY", "integration-test-secret-key-0123456789"),
        ("DATABASE_NAME", TEST_DATABASE_NAME),
        ("REDIS_URL", TEST_REDIS_URL),
    ] {
        let from_env = matches!(k, "DATABASE_NAME" | "REDIS_URL") && std::env::var(k).is_ok();
        if !from_env && !overrides.iter().any(|(n, _)| n == k) {
            overrides.push((k.to_string(), v.to_string()));
        }
    }
    let cfg = Config::from_lookup(move |k| {
        overrides
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(k).ok())
    })
    .expect("test configuration");
    let opts = leptos::config::LeptosOptions::builder()
        .output_name("own-ide")
        .build();
    AppState::build(cfg, opts).await.expect("state")
}

/// Declares each named test, written as `async fn name(runtime: &'static str)`, twice:
/// under runc (`runc::name`) and under gVisor (`runsc::name`), so that the test command
/// runs the hostile programs in both sandboxes.
#[macro_export]
macro_rules! under_runc_and_runsc {
    ($($name:ident),+ $(,)?) => {
        mod runc {
            $( #[tokio::test] async fn $name() { super::$name("runc").await } )+
        }
        mod runsc {
            $( #[tokio::test] async fn $name() { super::$name("runsc").await } )+
        }
    };
}

/// The outcome of a program that really exhausted its memory: `memory_limit` (under runc
/// a Python program's is the cgroup's SIGKILL). Under gVisor the cgroup can take the whole
/// sandbox, supervisor included, and Docker may not see the kill: then the run is a
/// `runtime_error` whose status is unknown, with no exit code, signal or memory figure
/// invented. Never `ok`.
pub fn assert_memory_exhausted(runtime: &str, run: &serde_json::Value) {
    assert_eq!(run["status"], "finished", "{run:#}");
    if run["verdict"] == "memory_limit" {
        if runtime == "runc" && run["language"] == "python" {
            assert_eq!(run["signal"], "SIGKILL", "{run:#}");
        }
        return;
    }
    assert_eq!(runtime, "runsc", "only gVisor may lose the status: {run:#}");
    assert_eq!(run["verdict"], "runtime_error", "{run:#}");
    assert!(
        run["exit_code"].is_null() && run["signal"].is_null() && run["memory_kb"].is_null(),
        "{run:#}"
    );
    assert!(
        run["stderr"]
            .as_str()
            .unwrap_or_default()
            .contains("exit status is unknown"),
        "{run:#}"
    );
}

/// Like [`state_with`], with the sandboxes on the container runtime `runtime`.
pub async fn state_under(runtime: &str, overrides: &[(&str, &str)]) -> AppState {
    let mut all = overrides.to_vec();
    all.push(("SANDBOX_RUNTIME", runtime));
    state_with(&all).await
}

/// An instance whose MongoDB is away (nothing listens on its port); Redis and Docker
/// are the real ones.
pub async fn state_with_mongodb_down() -> AppState {
    let port = free_port();
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    state_with(&[("POOL_SIZE", "1"), ("DATABASE_URI", &uri)]).await
}

pub async fn state() -> AppState {
    state_with(&[]).await
}

/// A client of the API router with a fixed cookie jar and client address.
pub struct Client {
    pub app: Router,
    pub cookie: Option<String>,
    pub ip: SocketAddr,
    pub bearer: Option<String>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A TCP port nothing listens on right now, picked at random in 20000..32000, below the
/// kernel's ephemeral range: a port the kernel hands out can be taken by another
/// process's outgoing connection before the server given it listens.
pub fn free_port() -> u16 {
    loop {
        let port = 20000 + (uuid::Uuid::new_v4().as_u128() % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A private Redis on `port` that a test may stop and start again.
pub fn start_redis(port: u16) -> std::process::Child {
    let child = std::process::Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed by scripts/test.sh");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

/// A client address no other test uses (quota counters are per IP).
pub fn fresh_ip() -> SocketAddr {
    let n = uuid::Uuid::new_v4().as_u128();
    SocketAddr::from((
        [10, (n >> 16) as u8, (n >> 8) as u8, n as u8],
        40000 + (n >> 24) as u16 % 20000,
    ))
}

/// A username no other test uses.
pub fn fresh_name(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

impl Client {
    /// A new browser-like client: its own cookie jar and its own address.
    pub fn new(state: &AppState) -> Client {
        Client {
            app: own_ide::server::api_router(state.clone()),
            cookie: None,
            ip: fresh_ip(),
            bearer: None,
        }
    }

    /// A client of the whole app (pages and server functions too).
    pub fn for_app(state: &AppState) -> Client {
        Client {
            app: own_ide::server::app_router(state.clone()),
            ..Client::new(state)
        }
    }

    /// Registers a fresh user and logs in with a token; returns the username.
    pub async fn sign_up(&mut self, prefix: &str) -> String {
        let name = fresh_name(prefix);
        let r = self
            .post_json(
                "/api/v1/users",
                &serde_json::json!({"username": name, "password": "correct horse"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let r = self
            .post_json(
                "/api/v1/token",
                &serde_json::json!({"username": name, "password": "correct horse"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        self.bearer = Some(r.json()["access_token"].as_str().unwrap().to_string());
        name
    }

    /// Another client of the same app with the same identity (cookie, token, address),
    /// for requests made at the same time.
    pub fn clone_as_same_caller(&self) -> Client {
        Client {
            app: self.app.clone(),
            cookie: self.cookie.clone(),
            ip: self.ip,
            bearer: self.bearer.clone(),
        }
    }

    pub async fn post_form(&mut self, uri: &str, form: &str) -> Reply {
        self.send(
            "POST",
            uri,
            Some("application/x-www-form-urlencoded"),
            form.to_string(),
        )
        .await
    }

    pub async fn send(
        &mut self,
        method: &str,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        self.send_with(method, uri, &headers, body).await
    }

    /// Sends a request with extra headers (plus the cookie, token and address).
    pub async fn send_with(
        &mut self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c.clone());
        }
        if let Some(t) = &self.bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(body.into()).unwrap();
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap().to_string();
            let removed = v.contains("Max-Age=0") || pair.ends_with('=');
            self.cookie = if removed { None } else { Some(pair) };
        }
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Loads a page as a browser does (`Accept: text/html`).
    pub async fn page(&mut self, uri: &str) -> Reply {
        self.send_with("GET", uri, &[("accept", "text/html")], Body::empty())
            .await
    }

    pub async fn get(&mut self, uri: &str) -> Reply {
        self.send("GET", uri, None, Body::empty()).await
    }

    pub async fn delete(&mut self, uri: &str) -> Reply {
        self.send("DELETE", uri, None, Body::empty()).await
    }

    pub async fn post_json(&mut self, uri: &str, v: &Value) -> Reply {
        self.send("POST", uri, Some("application/json"), v.to_string())
            .await
    }

    /// Runs code through `POST /api/v1/runs?wait=true` and returns the finished run.
    pub async fn run(&mut self, language: &str, code: &str, stdin: &str) -> Value {
        let r = self
            .post_json(
                "/api/v1/runs?wait=true",
                &serde_json::json!({"language": language, "code": code, "stdin": stdin}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "run failed: {}", r.text());
        r.json()
    }
}

/// Asserts that a run finished with `verdict` (showing the whole run when not).
pub fn assert_verdict(run: &Value, verdict: &str) {
    assert_eq!(run["verdict"], verdict, "unexpected verdict: {run:#}");
    assert_eq!(run["status"], "finished");
}

/// Waits until run `id` has finished (as its events stream says) and returns it.
pub async fn wait_finished(client: &mut Client, id: &str) -> Value {
    let mut events = client.events(id).await;
    let text = events.until_result().await;
    let result = text
        .split("\n\n")
        .find_map(|ev| {
            let mut lines = ev.lines();
            (lines.next()? == "event: result").then(|| lines.next())?
        })
        .unwrap_or_else(|| panic!("no result event in: {text}"));
    serde_json::from_str(result.trim_start_matches("data: ")).expect("result JSON")
}

/// An open `GET /api/v1/runs/{id}/events` stream and what it has sent so far.
pub struct Events {
    body: axum::body::BodyDataStream,
    pub seen: String,
    pub ended: bool,
}

impl Events {
    /// Reads the stream until `needle` has arrived; fails if the stream ends first or
    /// nothing more comes within `PATIENCE`.
    pub async fn until(&mut self, needle: &str) -> &str {
        while !self.seen.contains(needle) {
            assert!(
                !self.ended,
                "the stream ended without {needle:?}: {}",
                self.seen
            );
            self.next().await;
        }
        &self.seen
    }

    /// Reads the stream until the whole `result` event has arrived. (The stream may stay
    /// open after it, so this does not wait for its end.)
    pub async fn until_result(&mut self) -> &str {
        loop {
            if let Some(at) = self.seen.find("event: result") {
                if self.seen[at..].contains("\n\n") {
                    return &self.seen;
                }
            }
            assert!(
                !self.ended,
                "the stream ended without a result: {}",
                self.seen
            );
            self.next().await;
        }
    }

    /// Reads the stream until the server ends it.
    pub async fn until_end(&mut self) -> &str {
        while !self.ended {
            self.next().await;
        }
        &self.seen
    }

    async fn next(&mut self) {
        let chunk = tokio::time::timeout(PATIENCE, futures::StreamExt::next(&mut self.body))
            .await
            .unwrap_or_else(|_| panic!("no event within {PATIENCE:?}; so far: {}", self.seen));
        match chunk {
            Some(Ok(b)) => self.seen.push_str(&String::from_utf8_lossy(&b)),
            Some(Err(e)) => panic!("the event stream failed: {e}"),
            None => self.ended = true,
        }
    }
}

impl Client {
    /// Opens the run's event stream with this client's cookie, token and address.
    pub async fn events(&self, id: &str) -> Events {
        self.events_after(id, None).await
    }

    /// Opens the run's event stream as a client that reconnects after the event with id
    /// `last_event_id` (sent as `Last-Event-ID`).
    pub async fn events_after(&self, id: &str, last_event_id: Option<&str>) -> Events {
        let mut req = Request::builder().uri(format!("/api/v1/runs/{id}/events"));
        if let Some(last) = last_event_id {
            req = req.header("last-event-id", last);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c.clone());
        }
        if let Some(t) = &self.bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let res = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "events of {id}");
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Events {
            body: res.into_body().into_data_stream(),
            seen: String::new(),
            ended: false,
        }
    }
}
