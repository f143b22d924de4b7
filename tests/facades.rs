//! The Judge0 and Piston faces against the real engine: what a Judge0 or Piston client
//! sees (statuses, fields, units, base64, errors in their shapes), and that both faces
//! are the same service as `/api/v1` (identity, quota, history).

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use common::{Client, Reply};
use serde_json::{json, Value};

/// A Judge0 client: our API token as `X-Auth-Token`, as Judge0 clients send it.
struct Judge0 {
    c: Client,
    token: Option<String>,
}

impl Judge0 {
    async fn user(state: &own_ide::server::state::AppState) -> Judge0 {
        let mut c = Client::new(state);
        c.sign_up("judge0").await;
        let token = c.bearer.take();
        Judge0 { c, token }
    }

    fn guest(state: &own_ide::server::state::AppState) -> Judge0 {
        Judge0 {
            c: Client::new(state),
            token: None,
        }
    }

    async fn send(&mut self, method: &str, uri: &str, body: Option<&Value>) -> Reply {
        let mut headers = vec![];
        if let Some(t) = &self.token {
            headers.push(("x-auth-token", t.as_str()));
        }
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        // A Judge0 client keeps no cookie.
        self.c.cookie = None;
        self.c.send_with(method, uri, &headers, body).await
    }

    async fn get(&mut self, uri: &str) -> Reply {
        self.send("GET", uri, None).await
    }

    async fn post(&mut self, uri: &str, body: &Value) -> Reply {
        self.send("POST", uri, Some(body)).await
    }

    /// Submits with `wait=true` and every field; returns the submission.
    async fn run(&mut self, body: Value) -> Value {
        let r = self
            .post("/judge0/submissions?wait=true&fields=*", &body)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()
    }
}

fn python(code: &str) -> Value {
    json!({ "language_id": 71, "source_code": code })
}

/// A Python program that dies of `signal` (Python ignores some signals itself).
fn killed_by(signal: &str) -> Value {
    python(&format!(
        "import os, signal\nsignal.signal(signal.{signal}, signal.SIG_DFL)\nos.kill(os.getpid(), signal.{signal})\n"
    ))
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(v: &Value) -> String {
    use base64::Engine as _;
    let clean: String = v.as_str().unwrap().split_whitespace().collect();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .unwrap(),
    )
    .unwrap()
}

fn is_seconds(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    let (whole, frac) = s.split_once('.').unwrap_or(("", ""));
    !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()) && frac.len() == 3
}

#[tokio::test]
async fn judge0_catalogue_speaks_judge0() {
    let state = common::state().await;
    let mut j = Judge0::guest(&state);

    let langs = j.get("/judge0/languages").await.json();
    let names: Vec<(u64, String)> = langs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_u64().unwrap(),
                l["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (id, prefix) in [
        (71, "Python ("),
        (52, "C++ ("),
        (53, "C++ ("),
        (54, "C++ ("),
        (62, "Java ("),
        (63, "JavaScript ("),
    ] {
        assert!(
            names.iter().any(|(i, n)| *i == id && n.starts_with(prefix)),
            "{id} in {names:?}"
        );
    }
    // Each id of a language is answered by our one version.
    let cpp: Vec<&String> = names
        .iter()
        .filter(|(i, _)| (52..=54).contains(i))
        .map(|(_, n)| n)
        .collect();
    assert!(cpp.windows(2).all(|w| w[0] == w[1]), "{cpp:?}");

    let py = j.get("/judge0/languages/71").await;
    assert_eq!(py.status, StatusCode::OK);
    let py = py.json();
    assert_eq!(py["source_file"], "main.py");
    assert_eq!(py["is_archived"], false);
    let missing = j.get("/judge0/languages/9999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json()["error"].is_string());

    let statuses = j.get("/judge0/statuses").await.json();
    let expected = [
        "In Queue",
        "Processing",
        "Accepted",
        "Wrong Answer",
        "Time Limit Exceeded",
        "Compilation Error",
        "Runtime Error (SIGSEGV)",
        "Runtime Error (SIGXFSZ)",
        "Runtime Error (SIGFPE)",
        "Runtime Error (SIGABRT)",
        "Runtime Error (NZEC)",
        "Runtime Error (Other)",
        "Internal Error",
        "Exec Format Error",
    ];
    let got: Vec<(u64, &str)> = statuses
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_u64().unwrap(),
                s["description"].as_str().unwrap(),
            )
        })
        .collect();
    let want: Vec<(u64, &str)> = expected
        .iter()
        .enumerate()
        .map(|(i, d)| (i as u64 + 1, *d))
        .collect();
    assert_eq!(got, want);

    assert_eq!(j.get("/judge0/about").await.json()["version"], "1.13.1");
    let cfg = j.get("/judge0/config_info").await.json();
    assert_eq!(cfg["cpu_time_limit"], 5.0);
    assert_eq!(cfg["max_cpu_time_limit"], 5.0);
    assert_eq!(cfg["memory_limit"], 256 * 1024);
    assert_eq!(cfg["enable_additional_files"], true);
    assert_eq!(cfg["max_submission_batch_size"], 20);
    common::finish(state).await;
}

#[tokio::test]
async fn every_status_a_program_can_reach_with_its_fields_and_units() {
    let state = common::state().await;
    let mut j = Judge0::user(&state).await;

    // Accepted: fields and units.
    let s = j
        .run(json!({"language_id": 71, "source_code": "print(input())", "stdin": "hi", "expected_output": "hi\n\n"}))
        .await;
    assert_eq!(s["status"], json!({"id": 3, "description": "Accepted"}));
    assert_eq!(s["status_id"], 3);
    assert_eq!(s["stdout"], "hi\n");
    assert_eq!(s["stderr"], Value::Null);
    assert_eq!(s["compile_output"], Value::Null);
    assert_eq!(s["message"], Value::Null);
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["exit_signal"], Value::Null);
    assert!(is_seconds(&s["time"]), "{}", s["time"]);
    assert!(is_seconds(&s["wall_time"]), "{}", s["wall_time"]);
    assert!(
        s["memory"].as_u64().unwrap() > 1000,
        "memory in KB: {}",
        s["memory"]
    );
    assert_eq!(s["cpu_time_limit"], "5.0");
    assert_eq!(s["memory_limit"], 256 * 1024);
    assert_eq!(s["language_id"], 71);
    assert_eq!(s["language"]["id"], 71);
    assert_eq!(s["source_code"], "print(input())");
    assert_eq!(s["stdin"], "hi");
    assert_eq!(s["expected_output"], "hi\n\n");
    let token = s["token"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(token).unwrap();
    assert_eq!(uuid.get_version_num(), 4, "{token}");
    assert!(s["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(s["finished_at"].as_str().unwrap().ends_with('Z'));

    // Wrong Answer: the same output against another expectation.
    let s = j
        .run(json!({"language_id": 71, "source_code": "print('Hello, Bob')", "expected_output": "Hello, Bob!"}))
        .await;
    assert_eq!(s["status"]["id"], 4, "{s}");
    assert_eq!(s["status"]["description"], "Wrong Answer");

    // Time Limit Exceeded.
    let s = j.run(python("while True:\n    pass\n")).await;
    assert_eq!(s["status"]["id"], 5, "{s}");
    assert_eq!(s["message"], "Time limit exceeded");
    assert_eq!(
        s["exit_code"], 0,
        "as isolate reports a killed program: {s}"
    );

    // Compilation Error: only the compiler's output, no figures.
    let s = j
        .run(json!({"language_id": 54, "source_code": "int main() { return x; }"}))
        .await;
    assert_eq!(s["status"]["id"], 6, "{s}");
    assert!(
        s["compile_output"].as_str().unwrap().contains("error"),
        "{s}"
    );
    assert_eq!(s["time"], Value::Null);
    assert_eq!(s["memory"], Value::Null);
    assert_eq!(s["exit_code"], Value::Null);

    // The runtime errors, by signal, and NZEC by exit status.
    for (signal, id, number) in [
        ("SIGSEGV", 7, 11),
        ("SIGXFSZ", 8, 25),
        ("SIGFPE", 9, 8),
        ("SIGABRT", 10, 6),
        ("SIGTERM", 12, 15),
    ] {
        let s = j.run(killed_by(signal)).await;
        assert_eq!(s["status"]["id"], id, "{signal}: {s}");
        assert_eq!(s["exit_signal"], number, "{signal}: {s}");
        assert_eq!(s["message"], format!("Caught fatal signal {number}"));
    }
    let s = j.run(python("import sys\nsys.exit(3)\n")).await;
    assert_eq!(s["status"]["id"], 11, "{s}");
    assert_eq!(s["exit_code"], 3);
    assert_eq!(s["message"], "Exited with error status 3");

    // Memory over the limit: Judge0 has no status of its own for it.
    let s = j.run(python("x = b\"x\" * (1024 * 1024 * 1024)\n")).await;
    assert_eq!(s["status"]["id"], 12, "{s}");
    assert_eq!(s["message"], "Memory limit exceeded");

    // In Queue / Processing while it runs, then the result.
    let r = j
        .post(
            "/judge0/submissions",
            &python("import time\ntime.sleep(2)\nprint('done')\n"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = r.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "only the token: {body}");
    let token = body["token"].as_str().unwrap().to_string();
    let s = j.get(&format!("/judge0/submissions/{token}")).await.json();
    let id = s["status"]["id"].as_u64().unwrap();
    assert!(id == 1 || id == 2, "{s}");
    eventually!("the submission to finish", {
        let s = j.get(&format!("/judge0/submissions/{token}")).await.json();
        s["status"]["id"] == 3 && s["stdout"] == "done\n"
    });
    common::finish(state).await;
}

#[tokio::test]
async fn base64_round_trips_and_field_selection() {
    let state = common::state().await;
    let mut j = Judge0::user(&state).await;
    let code = "print(input()[::-1] * 30)";
    let r = j
        .post(
            "/judge0/submissions?base64_encoded=true&wait=true&fields=*",
            &json!({
                "language_id": 71,
                "source_code": b64(code),
                "stdin": b64("héllo"),
                "expected_output": b64(&format!("{}\n", "olléh".repeat(30))),
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let s = r.json();
    assert_eq!(s["status"]["id"], 3, "{s}");
    assert_eq!(unb64(&s["stdout"]), format!("{}\n", "olléh".repeat(30)));
    assert_eq!(unb64(&s["source_code"]), code);
    assert_eq!(unb64(&s["stdin"]), "héllo");
    // As Judge0 (Ruby's encode64) writes base64: lines of 60, each ending in a newline.
    let raw = s["stdout"].as_str().unwrap();
    assert!(
        raw.ends_with('\n') && raw.lines().next().unwrap().len() == 60,
        "{raw:?}"
    );

    // The same submission read back, plain and in base64, with chosen fields.
    let token = s["token"].as_str().unwrap();
    let plain = j
        .get(&format!(
            "/judge0/submissions/{token}?fields=stdout,status_id"
        ))
        .await
        .json();
    let keys: Vec<&String> = plain.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2, "{plain}");
    assert_eq!(plain["stdout"], format!("{}\n", "olléh".repeat(30)));
    assert_eq!(plain["status_id"], 3);
    let default = j.get(&format!("/judge0/submissions/{token}")).await.json();
    let mut keys: Vec<&str> = default
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "compile_output",
            "memory",
            "message",
            "status",
            "stderr",
            "stdout",
            "time",
            "token"
        ]
    );
    let bad = j
        .get(&format!(
            "/judge0/submissions/{token}?fields=stdout,colour,size"
        ))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json(),
        json!({"error": "invalid fields: [colour, size]"})
    );

    // Invalid base64: Judge0's field-error shape, and nothing runs.
    let r = j
        .post(
            "/judge0/submissions?base64_encoded=true&wait=true",
            &json!({"language_id": 71, "source_code": "print(1)!!", "stdin": b64("x")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json(), json!({"source_code": ["is not valid base64"]}));
    let history = history_total(&mut j).await;
    assert_eq!(history, 1, "only the valid submission ran");
    common::finish(state).await;
}

async fn history_total(j: &mut Judge0) -> u64 {
    j.c.bearer = j.token.clone();
    let h = j.c.get("/api/v1/history").await;
    j.c.bearer = None;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text());
    h.json()["total"].as_u64().unwrap()
}

#[tokio::test]
async fn refusals_are_in_judge0_shapes() {
    let state = common::state().await;
    let mut j = Judge0::guest(&state);
    for (body, field, message) in [
        (
            json!({"language_id": 71, "source_code": "print(1)", "cpu_time_limit": 100}),
            "cpu_time_limit",
            "must be less than or equal to 5",
        ),
        (
            json!({"language_id": 71, "source_code": "print(1)", "memory_limit": 10_000_000}),
            "memory_limit",
            "must be less than or equal to 262144",
        ),
        (
            json!({"language_id": 71, "source_code": "print(1)", "wall_time_limit": 0.01}),
            "wall_time_limit",
            "must be greater than or equal to 0.1",
        ),
        (
            json!({"language_id": 71, "source_code": "print(1)", "memory_limit": 1000}),
            "memory_limit",
            "must be greater than or equal to 16384",
        ),
        (
            json!({"language_id": 9999, "source_code": "print(1)"}),
            "language_id",
            "language with id 9999 doesn't exist",
        ),
        (json!({"language_id": 71}), "source_code", "can't be blank"),
        (
            json!({"language_id": 71, "source_code": "print(1)", "command_line_arguments": "a 'b"}),
            "command_line_arguments",
            "has a quote that is not closed",
        ),
        (
            json!({"language_id": 71, "source_code": "print(1)", "enable_network": true}),
            "enable_network",
            "enabling network is not allowed",
        ),
    ] {
        let r = j.post("/judge0/submissions", &body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(r.json(), json!({ field: [message] }), "{body}");
    }
    // A body that is not JSON, an unknown token, a batch too large: Judge0's `{"error"}`.
    let r =
        j.c.send(
            "POST",
            "/judge0/submissions",
            Some("text/plain"),
            "print(1)",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.json()["error"].is_string());
    let r = j
        .get("/judge0/submissions/01234567-89ab-4def-8123-456789abcdef")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({"error": "Not Found"}));
    let many: Vec<Value> = (0..21).map(|_| python("print(1)")).collect();
    let r = j
        .post("/judge0/submissions/batch", &json!({ "submissions": many }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json(),
        json!({"error": "number of submissions in a batch should be less than or equal to 20"})
    );
    common::finish(state).await;
}

#[tokio::test]
async fn batches_queue_behind_the_in_flight_cap() {
    // One run in flight per caller: a batch of three is accepted in turn.
    let state = common::state_with(&[("MAX_RUNS_IN_FLIGHT", "1")]).await;
    let mut j = Judge0::user(&state).await;
    let r = j
        .post(
            "/judge0/submissions/batch?base64_encoded=true",
            &json!({"submissions": [
                {"language_id": 71, "source_code": b64("print(input())"), "stdin": b64("one"), "expected_output": b64("one")},
                {"language_id": 4242, "source_code": b64("print(2)")},
                {"language_id": 63, "source_code": b64("console.log(2 + 2)"), "expected_output": b64("5")},
                {"language_id": 62, "source_code": b64("public class Main { public static void main(String[] a) { System.out.println(3); } }")},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let answers = r.json();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 4);
    assert_eq!(
        answers[1],
        json!({"language_id": ["language with id 4242 doesn't exist"]})
    );
    let tokens: Vec<&str> = [0, 2, 3]
        .iter()
        .map(|i| answers[*i]["token"].as_str().unwrap())
        .collect();
    let query = format!(
        "/judge0/submissions/batch?tokens={},01234567-89ab-4def-8123-456789abcdef&fields=status_id,stdout,token",
        tokens.join(",")
    );
    let mut last: Value;
    eventually!("every submission of the batch to finish", {
        last = j.get(&query).await.json();
        last["submissions"]
            .as_array()
            .unwrap()
            .iter()
            .take(3)
            .all(|s| s["status_id"].as_u64().unwrap_or(1) > 2)
    });
    let subs = last["submissions"].as_array().unwrap();
    assert_eq!(subs[0]["status_id"], 3, "{last}");
    assert_eq!(subs[1]["status_id"], 4, "{last}");
    assert_eq!(subs[1]["stdout"], "4\n");
    assert_eq!(subs[2]["status_id"], 3, "{last}");
    assert_eq!(subs[2]["stdout"], "3\n");
    assert_eq!(subs[3], Value::Null, "an unknown token");
    common::finish(state).await;
}

#[tokio::test]
async fn identity_quota_and_history_are_the_run_service_s() {
    let state = common::state_with(&[("GUEST_QUOTA", "2")]).await;

    // A user's submission is in the user's history, visible to that user only.
    let mut alice = Judge0::user(&state).await;
    let s = alice.run(python("print('mine')")).await;
    let token = s["token"].as_str().unwrap().to_string();
    alice.c.bearer = alice.token.clone();
    let h = alice.c.get("/api/v1/history").await.json();
    alice.c.bearer = None;
    assert_eq!(h["total"], 1);
    assert_eq!(h["items"][0]["id"], token.replace('-', ""));
    assert_eq!(h["items"][0]["stdout"], "mine\n");
    // The bearer header is accepted as well.
    let r = alice
        .c
        .send_with(
            "GET",
            &format!("/judge0/submissions/{token}"),
            &[(
                "authorization",
                &format!("Bearer {}", alice.token.clone().unwrap()),
            )],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let mut bob = Judge0::user(&state).await;
    assert_eq!(
        bob.get(&format!("/judge0/submissions/{token}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let mut forger = Judge0::guest(&state);
    forger.token = Some("not-a-token".into());
    let r = forger.get(&format!("/judge0/submissions/{token}")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["error"].is_string(), "{}", r.text());

    // The owner deletes it: gone from the history and from Judge0.
    let r = alice
        .send("DELETE", &format!("/judge0/submissions/{token}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(unb64(&r.json()["stdout"]), "mine\n");
    assert_eq!(
        alice
            .get(&format!("/judge0/submissions/{token}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(history_total(&mut alice).await, 0);

    // A guest without cookies is known by its address: it reads its own submissions,
    // and is counted against the guest quota.
    let mut guest = Judge0::guest(&state);
    let s = guest.run(python("print(1)")).await;
    let token = s["token"].as_str().unwrap().to_string();
    assert_eq!(
        guest
            .get(&format!("/judge0/submissions/{token}"))
            .await
            .status,
        StatusCode::OK
    );
    let mut elsewhere = Judge0::guest(&state);
    assert_eq!(
        elsewhere
            .get(&format!("/judge0/submissions/{token}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = guest
        .post("/judge0/submissions?wait=true", &python("print(2)"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    let r = guest
        .post("/judge0/submissions?wait=true", &python("print(3)"))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert!(r.json()["error"].is_string());
    // The same address through Piston: the same count.
    let mut p = Piston(Client::new(&state));
    p.0.ip = guest.c.ip;
    let r = p
        .execute(json!({"language": "python", "version": "*", "files": [{"content": "print(4)"}]}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.json()["message"].is_string());
    common::finish(state).await;
}

struct Piston(Client);

impl Piston {
    async fn execute(&mut self, body: Value) -> Reply {
        self.0.cookie = None;
        self.0.post_json("/piston/api/v2/execute", &body).await
    }
}

#[tokio::test]
async fn piston_runtimes_and_execute() {
    let state = common::state().await;
    let mut p = Piston(Client::new(&state));
    let rts = p.0.get("/piston/api/v2/runtimes").await.json();
    let py = rts
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["language"] == "python")
        .unwrap()
        .clone();
    assert_eq!(py["version"], "3.11.0");
    assert!(py["aliases"].as_array().unwrap().contains(&json!("py")));

    let r = p
        .execute(json!({"language": "py", "version": "3.x", "files": [{"name": "main.py", "content": "import sys\nprint(sys.stdin.read().upper())"}], "stdin": "abc"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let out = r.json();
    assert_eq!(out["language"], "python");
    assert_eq!(out["version"], "3.11.0");
    assert_eq!(out["run"]["stdout"], "ABC\n");
    assert_eq!(out["run"]["output"], "ABC\n");
    assert_eq!(out["run"]["code"], 0);
    assert_eq!(out["run"]["signal"], Value::Null);
    assert!(out.get("compile").is_none());

    // A compiled language: its compile stage; a failed compile is the run stage too.
    let r = p
        .execute(json!({"language": "c++", "version": "*", "files": [{"content": "int main() { return x; }"}]}))
        .await;
    let out = r.json();
    assert_eq!(out["compile"]["code"], 1, "{out}");
    assert!(out["compile"]["stderr"].as_str().unwrap().contains("error"));
    assert_eq!(out["run"], out["compile"]);
    let r = p
        .execute(json!({"language": "cpp", "version": "*", "files": [{"content": "#include <cstdio>\nint main() { std::puts(\"hi\"); return 4; }", "encoding": "utf8"}]}))
        .await;
    let out = r.json();
    assert_eq!(out["compile"]["code"], 0, "{out}");
    assert_eq!(out["run"]["stdout"], "hi\n");
    assert_eq!(out["run"]["code"], 4);
    // A time limit ends with SIGKILL, as in Piston.
    let r = p
        .execute(
            json!({"language": "javascript", "version": "*", "files": [{"content": "for(;;){}"}]}),
        )
        .await;
    let out = r.json();
    assert_eq!(out["run"]["signal"], "SIGKILL", "{out}");
    assert_eq!(out["run"]["code"], Value::Null);

    // Piston's refusals: 400 with its words, 415 for a body that is not JSON.
    for (body, message) in [
        (
            json!({"version": "*", "files": []}),
            "language is required as a string",
        ),
        (
            json!({"language": "python", "files": []}),
            "version is required as a string",
        ),
        (
            json!({"language": "python", "version": "*"}),
            "files is required as an array",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"name": "a"}]}),
            "files[0].content is required as a string",
        ),
        (
            json!({"language": "cobol", "version": "*", "files": [{"content": ""}]}),
            "cobol-* runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "2", "files": [{"content": ""}]}),
            "python-2 runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "print(1)"}], "run_timeout": 600000}),
            "run_timeout cannot exceed the configured limit of 5000",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "print(1)"}], "run_timeout": "1"}),
            "If specified, run_timeout must be a number",
        ),
    ] {
        let r = p.execute(body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.json(), json!({ "message": message }), "{body}");
    }
    let r =
        p.0.send(
            "POST",
            "/piston/api/v2/execute",
            Some("text/plain"),
            "print(1)",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        r.json(),
        json!({"message": "requests must be of type application/json"})
    );
    // piston-client posts its JSON as text/plain, with its default limits (-1 memory):
    // taken as it is.
    let body = json!({"language": "python", "version": "*", "files": [{"content": "print(5)"}],
        "compile_memory_limit": -1, "run_memory_limit": -1, "run_timeout": 0});
    let r =
        p.0.send(
            "POST",
            "/piston/api/v2/execute",
            Some("text/plain;charset=UTF-8"),
            body.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["run"]["stdout"], "5\n");
    common::finish(state).await;
}

/// A Python program that keeps a CPU busy for two seconds, then says so.
const BUSY_2S: &str =
    "import time\nt = time.time()\nwhile time.time() - t < 2:\n    pass\nprint('done')\n";
/// A Python program that fills 100 MB, then says so.
const FILL_100MB: &str = "x = b'x' * (100 * 1024 * 1024)\nprint('done')\n";

#[tokio::test]
async fn judge0_limits_and_arguments_reach_the_run() {
    let state = common::state().await;
    let mut j = Judge0::user(&state).await;

    // The same programs finish within the defaults and are stopped by lower limits.
    let s = j.run(python(BUSY_2S)).await;
    assert_eq!(
        (s["status"]["id"].clone(), s["stdout"].clone()),
        (json!(3), json!("done\n")),
        "{s}"
    );
    let s = j
        .run(json!({"language_id": 71, "source_code": BUSY_2S, "cpu_time_limit": 1}))
        .await;
    assert_eq!(s["status"]["id"], 5, "{s}");
    assert_eq!(s["cpu_time_limit"], "1.0");
    let s = j
        .run(json!({"language_id": 71, "source_code": BUSY_2S, "wall_time_limit": "1.5"}))
        .await;
    assert_eq!(s["status"]["id"], 5, "{s}");
    assert_eq!(s["wall_time_limit"], "1.5");
    let s = j.run(python(FILL_100MB)).await;
    assert_eq!(s["status"]["id"], 3, "{s}");
    let s = j
        .run(json!({"language_id": 71, "source_code": FILL_100MB, "memory_limit": 65536}))
        .await;
    assert_eq!(s["status"]["id"], 12, "{s}");
    assert_eq!(s["message"], "Memory limit exceeded");
    assert_eq!(s["memory_limit"], 65536);

    // Arguments split as bash splits them, after Judge0 deletes $ & ; < > | `.
    let s = j
        .run(json!({
            "language_id": 71,
            "source_code": "import sys\nprint(sys.argv[1:])",
            "command_line_arguments": "  a 'b c' \"d e\" f$x;g  ",
        }))
        .await;
    assert_eq!(s["status"]["id"], 3, "{s}");
    assert_eq!(s["stdout"], "['a', 'b c', 'd e', 'fxg']\n");
    assert_eq!(s["command_line_arguments"], Value::Null, "not kept: {s}");
    common::finish(state).await;
}

#[tokio::test]
async fn piston_files_args_and_limits_reach_the_run() {
    let state = common::state().await;
    let mut p = Piston(Client::new(&state));
    let r = p
        .execute(json!({
            "language": "python",
            "version": "3",
            "files": [
                {"name": "main.py", "content": "import sys, helper\nprint(helper.greet(input()), sys.argv[1:])"},
                {"name": "helper.py", "content": "def greet(n):\n    return 'Hello, ' + n"},
            ],
            "stdin": "Ada\n",
            "args": ["x", "y z"],
        }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["run"]["stdout"], "Hello, Ada ['x', 'y z']\n");

    // C++ of two translation units; the first file unnamed takes the language's name.
    let r = p
        .execute(json!({
            "language": "c++",
            "version": "*",
            "files": [
                {"content": "int twice(int);\n#include <cstdio>\nint main(int c, char** v) { std::printf(\"%d %s\\n\", twice(21), v[1]); }"},
                {"name": "twice.cpp", "content": "int twice(int x) { return 2 * x; }"},
            ],
            "args": ["arg"],
        }))
        .await;
    assert_eq!(r.json()["run"]["stdout"], "42 arg\n", "{}", r.text());

    // Lower limits stop what the defaults let finish.
    let files = json!([{"content": BUSY_2S}]);
    let r = p
        .execute(json!({"language": "python", "version": "*", "files": files}))
        .await;
    assert_eq!(r.json()["run"]["stdout"], "done\n", "{}", r.text());
    let r = p
        .execute(json!({"language": "python", "version": "*", "files": files, "run_timeout": 1000}))
        .await;
    let out = r.json();
    assert_eq!(
        (out["run"]["signal"].clone(), out["run"]["status"].clone()),
        (json!("SIGKILL"), json!("TO")),
        "{out}"
    );
    let files = json!([{"content": FILL_100MB}]);
    let r = p
        .execute(json!({"language": "python", "version": "*", "files": files, "run_memory_limit": 64 * 1024 * 1024}))
        .await;
    let out = r.json();
    assert_eq!(out["run"]["message"], "Memory limit exceeded", "{out}");
    let r = p
        .execute(
            json!({"language": "python", "version": "*", "files": files, "compile_timeout": 1000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("compiling has fixed limits"));
    common::finish(state).await;
}

/// A zip of `entries` (name, bytes; a name ending in `/` is a directory), deflated, as
/// base64: what a Judge0 client sends as `additional_files`.
fn zipped(entries: &[(&str, &[u8])]) -> String {
    use base64::Engine as _;
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
    }
    let bytes = w.finish().unwrap().into_inner();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn judge0_additional_files_are_put_beside_the_source() {
    let state = common::state().await;
    let mut j = Judge0::user(&state).await;
    // Python imports a module and a package file and reads a data file from the zip.
    let extra = zipped(&[
        ("helper.py", b"def greet(n):\n    return f'hello {n}'\n"),
        ("lib/", b""),
        ("lib/words.py", b"AND = 'and'\n"),
        ("data.txt", b"from the zip\n"),
    ]);
    let main = "from helper import greet\nfrom lib.words import AND\nprint(greet('main'), AND, open('data.txt').read().strip())\n";
    let s = j
        .run(json!({"language_id": 71, "source_code": main, "additional_files": extra}))
        .await;
    assert_eq!(s["status"]["id"], 3, "{s}");
    assert_eq!(s["stdout"], "hello main and from the zip\n");
    assert_eq!(
        s["source_code"], main,
        "the source is the program's own file"
    );
    assert_eq!(
        s["additional_files"],
        extra.as_str(),
        "answered back as sent"
    );
    // C++: a header from the zip.
    let extra = zipped(&[(
        "greet.h",
        b"inline const char *greet() { return \"hi from a header\"; }\n",
    )]);
    let s = j
        .run(json!({
            "language_id": 54,
            "source_code": "#include <cstdio>\n#include \"greet.h\"\nint main() { puts(greet()); }\n",
            "additional_files": extra,
        }))
        .await;
    assert_eq!(s["status"]["id"], 3, "{s}");
    assert_eq!(s["stdout"], "hi from a header\n");
    let ran = history_total(&mut j).await;
    assert_eq!(ran, 2);

    // Hostile archives: each refused in Judge0's shape, nothing run.
    let bomb = vec![0u8; 8 * 1024 * 1024];
    let many: Vec<(String, Vec<u8>)> = (0..25)
        .map(|i| (format!("f{i}.py"), b"x = 1\n".to_vec()))
        .collect();
    let many: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let symlink = {
        use base64::Engine as _;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.add_symlink(
            "link.py",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        base64::engine::general_purpose::STANDARD.encode(w.finish().unwrap().into_inner())
    };
    for (zip, says) in [
        ("not base64 at all!".to_string(), "is not valid base64"),
        (b64("just text, not a zip"), "is not a zip archive"),
        (
            zipped(&[("../escape.py", b"x")]),
            "\"../escape.py\", which is not allowed",
        ),
        (
            zipped(&[("/etc/cron.d/x", b"x")]),
            "\"/etc/cron.d/x\", which is not allowed",
        ),
        (
            zipped(&[("a/b/c.py", b"x")]),
            "which is not allowed: at most one directory level",
        ),
        (
            zipped(&[("main.py", b"print('replaced')")]),
            "the name of the source file",
        ),
        (
            zipped(&[("blob.bin", &[0xff, 0xfe, 0x00, 0x80])]),
            "which is not text",
        ),
        (zipped(&[("zeros.txt", &bomb)]), "unpacks to more than"),
        (zipped(&many), "has more than 19 files"),
        (symlink, "\"link.py\", a link"),
    ] {
        let r = j
            .post(
                "/judge0/submissions?wait=true",
                &json!({"language_id": 71, "source_code": "print(1)", "additional_files": zip}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{says}: {}",
            r.text()
        );
        let msg = r.json()["additional_files"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(msg.contains(says), "{says}: {msg}");
    }
    assert_eq!(history_total(&mut j).await, ran, "nothing refused ran");
    common::finish(state).await;
}
