//! Real processes for the cluster proofs and the cluster benchmark: a cluster started by
//! `scripts/cluster.sh` (web nodes and executors of the built binary behind nginx), a
//! lone all-in-one node, and a small HTTP/1.0 client that speaks to them over TCP.
//!
//! Every process started here is stopped when its guard is dropped, also when a test
//! fails half-way: nodes are continued (a test may have paused one), stopped, and killed
//! if they do not exit; the sandbox containers of the cluster's own label are removed.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds a wait that would otherwise hang a broken test on a loaded 2-core machine; not
/// a latency promise (those are measured in `bench/cluster.rs`).
pub const PATIENCE: Duration = Duration::from_secs(90);

/// The built server binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_own-ide");

/// A name no other test run on this machine uses (pid, time and a counter).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}x{nanos:x}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A client address no other test uses (guest quotas are counted per address).
pub fn unique_ip() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    format!("10.{}.{}.{}", (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

/// A port nothing listens on right now, below the kernel's ephemeral range (32768 and
/// up here), so that no outgoing connection of another process can take it before the
/// node that is given it listens (that happened with ports the kernel handed out).
pub fn free_port() -> u16 {
    free_ports(1)
}

/// `count` ports in a row that are free right now (the script numbers nodes from a base),
/// picked at random in 20000..32000.
fn free_ports(count: u16) -> u16 {
    loop {
        let base = 20000 + (uuid::Uuid::new_v4().as_u128() % 12000) as u16;
        let all_free =
            (0..count).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The MongoDB database and Redis URL the nodes use: the test run's database (as
/// `tests/common`), and a Redis logical database of their own (`CLUSTER_TEST_REDIS_URL`,
/// else the test run's Redis with database 2). The run queue is one set of keys per
/// Redis database: executors of another test run in the tests' database 1 would take
/// this cluster's runs, and these executors theirs.
pub fn stores() -> Vec<(String, String)> {
    let redis = std::env::var("CLUSTER_TEST_REDIS_URL").unwrap_or_else(|_| {
        let base = std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379/1".into());
        let (url, query) = base.split_once('?').unwrap_or((&base, ""));
        let authority_end = url.find("://").map(|i| i + 3).unwrap_or(0);
        let host = match url[authority_end..].find('/') {
            Some(slash) => &url[..authority_end + slash],
            None => url,
        };
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{host}/2{query}")
    });
    vec![
        (
            "DATABASE_NAME".into(),
            std::env::var("DATABASE_NAME").unwrap_or("own_ide_test".into()),
        ),
        ("REDIS_URL".into(), redis),
    ]
}

/// The settings every node of a test cluster gets unless the test overrides them: one
/// slot per executor, one warm container per language, no fair-share caps or rates
/// (they have their own tests), a short sweep so a dead executor's containers go soon,
/// and a sandbox label of its own so that nothing else on this Docker engine is touched.
fn base_env(label: &str) -> Vec<(String, String)> {
    let mut env = stores();
    for (k, v) in [
        ("SECRET_KEY", "cluster-test-secret-key-0123456789abcdef"),
        ("POOL_SIZE", "1"),
        ("MAX_RUNS_IN_FLIGHT", "0"),
        ("MAX_RUNS_IN_FLIGHT_PER_IP", "0"),
        ("USER_RUNS_PER_MINUTE", "0"),
        ("GUEST_QUOTA", "1000"),
        ("REGISTRATIONS_PER_IP_PER_HOUR", "0"),
        ("SANDBOX_SWEEP_INTERVAL_MS", "500"),
        ("SANDBOX_SWEEP_MARGIN_MS", "0"),
        ("SHUTDOWN_GRACE_SECONDS", "5"),
        ("RUST_LOG", "info,own_ide=debug"),
        ("LEPTOS_OUTPUT_NAME", "own-ide"),
        ("LEPTOS_SITE_ROOT", "target/site-test"),
        ("LEPTOS_SITE_PKG_DIR", "pkg"),
        ("LEPTOS_HASH_FILES", "false"),
    ] {
        env.push((k.into(), v.into()));
    }
    env.push(("SANDBOX_LABEL".into(), label.into()));
    env
}

fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.into(), value.into()));
}

/// What a cluster is made of.
pub struct Spec {
    pub web_nodes: u16,
    pub executors: u16,
    /// Settings for every node, on top of the test defaults.
    pub env: Vec<(&'static str, String)>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            web_nodes: 2,
            executors: 2,
            env: Vec::new(),
        }
    }
}

/// A running cluster; stopped when dropped.
pub struct Cluster {
    pub dir: PathBuf,
    pub label: String,
    /// The load balancer's address, `127.0.0.1:PORT`.
    pub lb: String,
    web_port: u16,
    executor_port: u16,
    pub spec_web: u16,
    pub spec_executors: u16,
    env: Vec<(String, String)>,
}

impl Cluster {
    /// Starts a cluster with `scripts/cluster.sh start` (which returns once every node
    /// and nginx answer `/healthz`).
    pub fn start(spec: Spec) -> Cluster {
        let label = unique("cl");
        let dir = std::env::temp_dir().join(format!("own-ide-{label}"));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let mut env = base_env(&label);
        for (k, v) in &spec.env {
            set(&mut env, k, v);
        }
        let lb = free_ports(1);
        let web_port = free_ports(spec.web_nodes);
        let executor_port = free_ports(spec.executors.max(1));
        for (k, v) in [
            ("CLUSTER_PORT", lb.to_string()),
            ("CLUSTER_WEB_NODES", spec.web_nodes.to_string()),
            ("CLUSTER_EXECUTORS", spec.executors.to_string()),
            ("CLUSTER_WEB_PORT", web_port.to_string()),
            ("CLUSTER_EXECUTOR_PORT", executor_port.to_string()),
            ("CLUSTER_BIN", BIN.to_string()),
            ("CLUSTER_DIR", dir.display().to_string()),
            ("CLUSTER_SERVICES", "skip".to_string()),
            ("CLUSTER_STOP_WAIT_SECONDS", "20".to_string()),
        ] {
            set(&mut env, k, &v);
        }
        let cluster = Cluster {
            dir,
            label,
            lb: format!("127.0.0.1:{lb}"),
            web_port,
            executor_port,
            spec_web: spec.web_nodes,
            spec_executors: spec.executors,
            env,
        };
        cluster.script("start");
        cluster
    }

    fn script(&self, cmd: &str) {
        let out = Command::new(root().join("scripts/cluster.sh"))
            .arg(cmd)
            .current_dir(root())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("scripts/cluster.sh");
        if !out.status.success() && !std::thread::panicking() {
            panic!(
                "scripts/cluster.sh {cmd} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Starts again every node that is not running (e.g. one a test killed).
    pub fn restart_missing(&self) {
        self.script("start");
    }

    /// The address of web node `n` (1-based), bypassing the load balancer.
    pub fn web(&self, n: u16) -> String {
        format!("127.0.0.1:{}", self.web_port + n - 1)
    }

    /// The address of executor `n` (1-based): its `/healthz`, `/readyz` and metrics.
    pub fn executor(&self, n: u16) -> String {
        format!("127.0.0.1:{}", self.executor_port + n - 1)
    }

    /// The pid of node `name` (`web-1`, `executor-2`, `nginx`).
    pub fn pid(&self, name: &str) -> u32 {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.pid")))
            .unwrap_or_else(|e| panic!("pid file of {name}: {e}"));
        text.trim().parse().expect("a pid")
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to node `name`.
    pub fn signal(&self, name: &str, signal: &str) {
        kill(self.pid(name), signal);
    }

    /// Kills node `name` with SIGKILL and waits until it is gone.
    pub fn kill9(&self, name: &str) {
        let pid = self.pid(name);
        kill(pid, "KILL");
        while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log of node `name` so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Ids of this cluster's sandbox containers (all, or those of `instance`).
    pub fn containers(&self, instance: Option<&str>) -> Vec<String> {
        let mut args = vec![
            "ps".to_string(),
            "-aq".into(),
            "--filter".into(),
            format!("label=own-ide.sandbox={}", self.label),
        ];
        if let Some(i) = instance {
            args.push("--filter".into());
            args.push(format!("label=own-ide.instance={i}"));
        }
        let out = Command::new("docker")
            .args(&args)
            .output()
            .expect("docker ps");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// The state letter of process `pid` in `/proc` (`R`, `S`, `T` stopped, `Z`...).
fn proc_state(pid: u32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next())
        })
}

impl Cluster {
    /// Pauses node `name` (SIGSTOP) and waits until the kernel shows it stopped.
    pub async fn pause(&self, name: &str) {
        let pid = self.pid(name);
        kill(pid, "STOP");
        let started = tokio::time::Instant::now();
        while proc_state(pid) != Some('T') {
            assert!(started.elapsed() < PATIENCE, "{name} did not stop");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Resumes node `name` (SIGCONT).
    pub fn resume(&self, name: &str) {
        kill(self.pid(name), "CONT");
    }

    /// Submits `code` through `addr` while only executor 1 can take work (executor 2 is
    /// paused until the run is claimed); the run id and the instance id of executor 1.
    pub async fn submit_to_executor_1(
        &self,
        user: &User,
        addr: &str,
        code: &str,
    ) -> (String, String) {
        self.pause("executor-2").await;
        let id = user.submit(addr, code).await;
        let mut con = redis();
        let c = await_claim(&mut con, &id).await;
        self.resume("executor-2");
        (id, c["executor"].clone())
    }
}

/// A connection to the Redis database the nodes use, to read what the cluster wrote
/// (the run's claim: which executor holds it, under which epoch).
pub fn redis() -> redis::Connection {
    let url = stores()
        .into_iter()
        .find(|(k, _)| k == "REDIS_URL")
        .map(|(_, v)| v)
        .expect("REDIS_URL");
    redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("Redis")
}

/// The claim of run `id` (`own-ide:run:{id}:claim`: `executor`, `epoch`, `started`, ...).
pub fn claim(con: &mut redis::Connection, id: &str) -> std::collections::HashMap<String, String> {
    redis::cmd("HGETALL")
        .arg(format!("own-ide:run:{id}:claim"))
        .query(con)
        .expect("HGETALL")
}

/// Waits until run `id` is claimed by an executor; its claim.
pub async fn await_claim(
    con: &mut redis::Connection,
    id: &str,
) -> std::collections::HashMap<String, String> {
    let started = tokio::time::Instant::now();
    loop {
        let c = claim(con, id);
        if c.get("executor").is_some_and(|e| !e.is_empty()) {
            return c;
        }
        assert!(started.elapsed() < PATIENCE, "run {id} was never claimed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true)
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A paused node would never see its SIGTERM.
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(node) = name.strip_suffix(".pid") {
                if let Ok(pid) = std::fs::read_to_string(entry.path()) {
                    if let Ok(pid) = pid.trim().parse() {
                        let _ = node;
                        kill(pid, "CONT");
                    }
                }
            }
        }
        self.script("stop");
        let ids = self.containers(None);
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Kept when the test failed, or when CLUSTER_TEST_KEEP_LOGS is set.
        if !std::thread::panicking() && std::env::var_os("CLUSTER_TEST_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("cluster logs kept in {}", self.dir.display());
        }
    }
}

/// One node started directly (an all-in-one node, `ROLE=all`); killed when dropped.
pub struct Node {
    pub addr: String,
    pub label: String,
    child: Option<Child>,
    env: Vec<(String, String)>,
    pub log: PathBuf,
}

impl Node {
    /// Starts the binary with the test defaults plus `env`, and waits until it answers.
    pub async fn start(env: &[(&str, &str)]) -> Node {
        let label = unique("aio");
        let mut full = base_env(&label);
        for (k, v) in env {
            set(&mut full, k, v);
        }
        let addr = format!("127.0.0.1:{}", free_port());
        set(&mut full, "LISTEN_ADDR", &addr);
        let log = std::env::temp_dir().join(format!("own-ide-{label}.log"));
        let mut node = Node {
            addr,
            label,
            child: None,
            env: full,
            log,
        };
        node.spawn().await;
        node
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        let child = Command::new(BIN)
            .current_dir(root())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("the server binary");
        self.child = Some(child);
        let started = tokio::time::Instant::now();
        loop {
            if let Ok(r) = try_request(&self.addr, "GET", "/healthz", &[], "").await {
                if r.status == 200 {
                    return;
                }
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none(),
                "the node exited at start ({exited:?}): {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            assert!(started.elapsed() < PATIENCE, "the node did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit; its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running node");
        kill(child.id(), "TERM");
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait")
    }

    /// Starts the node again, same address and settings.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the node is still running");
        self.spawn().await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(c.id(), "TERM");
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let out = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=own-ide.sandbox={}", self.label),
            ])
            .output();
        if let Ok(out) = out {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        } else {
            eprintln!("node log kept in {}", self.log.display());
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn head(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

fn parse_head(text: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers)
}

/// One HTTP/1.0 request on a fresh connection (the answer ends with the connection, so
/// neither nginx nor the nodes chunk it); an error if the node cannot be reached.
pub async fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(head(addr, method, path, headers, body).as_bytes())
        .await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (status, headers) = parse_head(head);
    Ok(Reply {
        status,
        headers,
        body: body.to_string(),
    })
}

/// As `try_request`, failing the test if the node cannot be reached.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    tokio::time::timeout(PATIENCE, try_request(addr, method, path, headers, body))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} on {addr}: no answer within {PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// A signed-up user and its bearer token.
#[derive(Clone)]
pub struct User {
    pub name: String,
    pub token: String,
}

impl User {
    /// Signs up a fresh user through `addr` and logs in.
    pub async fn sign_up(addr: &str, prefix: &str) -> User {
        let name = unique(prefix);
        let creds = json!({"username": name, "password": "correct horse battery"}).to_string();
        let r = request(addr, "POST", "/api/v1/users", &[], &creds).await;
        assert_eq!(r.status, 201, "sign-up: {}", r.body);
        let r = request(addr, "POST", "/api/v1/token", &[], &creds).await;
        assert_eq!(r.status, 200, "log-in: {}", r.body);
        let token = r.json()["access_token"]
            .as_str()
            .expect("a token")
            .to_string();
        User { name, token }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// `GET path` as this user.
    pub async fn get(&self, addr: &str, path: &str) -> Reply {
        request(addr, "GET", path, &[("Authorization", &self.auth())], "").await
    }

    /// `POST path` with a JSON body as this user.
    pub async fn post(&self, addr: &str, path: &str, body: &Value) -> Reply {
        request(
            addr,
            "POST",
            path,
            &[("Authorization", &self.auth())],
            &body.to_string(),
        )
        .await
    }

    /// Submits a Python run through `addr`; its id.
    pub async fn submit(&self, addr: &str, code: &str) -> String {
        let r = self
            .post(
                addr,
                "/api/v1/runs",
                &json!({"language": "python", "code": code}),
            )
            .await;
        assert_eq!(r.status, 202, "submit: {}", r.body);
        r.json()["id"].as_str().expect("a run id").to_string()
    }

    /// Opens the run's event stream on `addr`, continuing after `last_event_id` if given.
    pub async fn events(&self, addr: &str, id: &str, last_event_id: Option<&str>) -> Events {
        let auth = self.auth();
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Accept", "text/event-stream"),
        ];
        if let Some(last) = last_event_id {
            headers.push(("Last-Event-ID", last));
        }
        Events::open(addr, &format!("/api/v1/runs/{id}/events"), &headers).await
    }

    /// The run as its owner sees it (`GET /api/v1/runs/{id}`).
    pub async fn run(&self, addr: &str, id: &str) -> Value {
        let r = self.get(addr, &format!("/api/v1/runs/{id}")).await;
        assert_eq!(r.status, 200, "run {id}: {}", r.body);
        r.json()
    }

    /// The run's entry in the user's history, if it is there.
    pub async fn history_entry(&self, addr: &str, id: &str) -> Option<Value> {
        let r = self.get(addr, "/api/v1/history?per_page=50").await;
        assert_eq!(r.status, 200, "history: {}", r.body);
        r.json()["items"]
            .as_array()
            .expect("history items")
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
    }
}

/// One server-sent event.
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// An open event stream: events are read as they arrive.
pub struct Events {
    stream: TcpStream,
    buf: String,
    pub status: u16,
    pub ended: bool,
    /// Every event received so far.
    pub seen: Vec<Event>,
}

impl Events {
    async fn open(addr: &str, path: &str, headers: &[(&str, &str)]) -> Events {
        let mut stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .write_all(head(addr, "GET", path, headers, "").as_bytes())
            .await
            .expect("send");
        let mut ev = Events {
            stream,
            buf: String::new(),
            status: 0,
            ended: false,
            seen: Vec::new(),
        };
        while !ev.buf.contains("\r\n\r\n") {
            assert!(ev.read().await, "{addr}{path}: no answer: {}", ev.buf);
        }
        let (h, rest) = ev.buf.split_once("\r\n\r\n").expect("head");
        let (status, _) = parse_head(h);
        ev.status = status;
        ev.buf = rest.to_string();
        assert_eq!(status, 200, "{addr}{path}: {}", ev.buf);
        ev
    }

    /// Reads more; false at the end of the stream.
    async fn read(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no event within {PATIENCE:?}; so far: {:?}", self.seen))
            .unwrap_or(0);
        if n == 0 {
            self.ended = true;
            return false;
        }
        self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        true
    }

    /// The next event, or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let normalised = self.buf.replace("\r\n", "\n");
            if let Some((block, rest)) = normalised.split_once("\n\n") {
                let (block, rest) = (block.to_string(), rest.to_string());
                self.buf = rest;
                let mut ev = Event::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    if line.starts_with(':') {
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => ev.id = Some(value.to_string()),
                        "event" => ev.event = value.to_string(),
                        "data" => data.push(value.to_string()),
                        _ => {}
                    }
                }
                if ev.event.is_empty() && data.is_empty() && ev.id.is_none() {
                    continue; // a keep-alive comment
                }
                ev.data = data.join("\n");
                self.seen.push(ev.clone());
                return Some(ev);
            }
            if self.ended || !self.read().await {
                return None;
            }
        }
    }

    /// Reads until an event satisfies `pred`; fails if the stream ends first.
    pub async fn until(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        loop {
            match self.next().await {
                Some(e) if pred(&e) => return e,
                Some(_) => {}
                None => panic!("the stream ended without {what}: {:?}", self.seen),
            }
        }
    }

    /// Reads until the `result` event; the run it carries.
    pub async fn result(&mut self) -> Value {
        self.until("a result", |e| e.event == "result").await.json()
    }

    /// Everything written to stdout in the events seen so far, in order.
    pub fn stdout(&self) -> String {
        self.seen
            .iter()
            .filter(|e| e.event == "stdout")
            .map(|e| e.json()["data"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}
