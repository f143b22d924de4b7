//! The execution engine against the real Docker engine: every language, verdicts,
//! hostile programs, concurrency, streaming and stop.

mod common;

// The hostile programs and every language, in both sandboxes.
crate::under_runc_and_runsc!(
    every_language_runs_hello_echo_and_errors,
    io_uring_setup_is_refused,
    exhausting_tmpfs_inodes_is_contained,
    hostile_programs_get_their_verdicts_and_change_nothing,
);

use common::{assert_verdict, finish, Client};
use serde_json::{json, Value};
use std::time::Duration;

async fn every_language_runs_hello_echo_and_errors(runtime: &str) {
    let state = common::state_under(runtime, &[("POOL_SIZE", "1")]).await;
    let mut c = Client::new(&state);
    let cases: &[(&str, &str, &str)] = &[
        ("python", "import sys\nprint('Hello, ' + sys.stdin.readline().strip() + '!')", "raise ValueError('boom')"),
        (
            "cpp",
            "#include <iostream>\n#include <string>\nint main(){std::string s; std::getline(std::cin,s); std::cout<<\"Hello, \"<<s<<\"!\\n\";}",
            "#include <cstdlib>\nint main(){ return 3; }",
        ),
        (
            "java",
            "import java.util.*;\npublic class Main { public static void main(String[] a){ Scanner s=new Scanner(System.in); System.out.println(\"Hello, \"+s.nextLine()+\"!\"); } }",
            "public class Main { public static void main(String[] a){ throw new RuntimeException(\"boom\"); } }",
        ),
        (
            "javascript",
            "const l=require('fs').readFileSync(0,'utf8').split('\\n');console.log(`Hello, ${l[0]}!`);",
            "throw new Error('boom')",
        ),
    ];
    for (lang, echo, failing) in cases {
        let run = c.run(lang, echo, "Ada\nignored\n").await;
        assert_verdict(&run, "ok");
        assert_eq!(run["stdout"], "Hello, Ada!\n", "{lang}: {run:#}");
        assert_eq!(run["exit_code"], 0);
        assert_eq!(run["language"], *lang);
        assert!(run["time_ms"].as_u64().is_some() && run["finished_at"].is_string());

        let run = c.run(lang, failing, "").await;
        assert_verdict(&run, "runtime_error");
        assert_ne!(run["exit_code"], 0, "{lang}: {run:#}");
    }
    let run = c.run("python", "raise ValueError('boom')", "").await;
    assert!(
        run["stderr"].as_str().unwrap().contains("ValueError: boom"),
        "{run:#}"
    );
    assert_eq!(run["exit_code"], 1);
    finish(state).await;
}

#[tokio::test]
async fn compile_errors_show_the_compiler_message() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let run = c
        .run("cpp", "int main() { return undefined_name; }", "")
        .await;
    assert_verdict(&run, "compile_error");
    let out = run["compile_output"].as_str().unwrap();
    assert!(
        out.contains("main.cpp:1") && out.contains("undefined_name"),
        "{out}"
    );
    assert_eq!(run["stdout"], "");

    let run = c
        .run(
            "java",
            "public class Main { public static void main(String[] a) { int x = \"s\"; } }",
            "",
        )
        .await;
    assert_verdict(&run, "compile_error");
    assert!(
        run["compile_output"]
            .as_str()
            .unwrap()
            .contains("Main.java:1: error"),
        "{run:#}"
    );

    // Warnings are compile output too, and the program still runs right after them.
    let run = c
        .run(
            "cpp",
            "#warning \"careful\"\n#include <cstdio>\nint main(){ fputs(\"e\\n\", stderr); puts(\"ran\"); }",
            "",
        )
        .await;
    assert_verdict(&run, "ok");
    assert!(
        run["compile_output"].as_str().unwrap().contains("careful"),
        "{run:#}"
    );
    assert_eq!(run["stdout"], "ran\n");
    assert_eq!(run["stderr"], "e\n");
    finish(state).await;
}

#[tokio::test]
async fn a_compile_that_takes_too_long_is_stopped() {
    let state = common::state_with(&[("POOL_SIZE", "0"), ("COMPILE_TIME_LIMIT_MS", "100")]).await;
    let mut c = Client::new(&state);
    let run = c
        .run(
            "java",
            "public class Main { public static void main(String[] a) { System.out.println(1); } }",
            "",
        )
        .await;
    assert_verdict(&run, "time_limit");
    assert!(
        run["compile_output"]
            .as_str()
            .unwrap()
            .contains("Compilation took too long and was stopped."),
        "{run:#}"
    );
    assert_eq!(run["stdout"], "");
    finish(state).await;
}

/// A compiler flooding its diagnostics is stopped at the output cap like a program.
#[tokio::test]
async fn compile_output_is_capped_and_the_compile_stopped() {
    let state = common::state_with(&[("POOL_SIZE", "0"), ("MAX_OUTPUT_BYTES", "20000")]).await;
    let mut c = Client::new(&state);
    // Each level includes itself twice: 2^depth copies of the error below.
    let code = "#include \"main.cpp\"\n#include \"main.cpp\"\nint x = undefined_name;\n";
    let run = c.run("cpp", code, "").await;
    assert_verdict(&run, "compile_error");
    assert_eq!(run["truncated"], true, "{run:#}");
    let out = run["compile_output"].as_str().unwrap();
    assert!(out.starts_with("In file included from main.cpp:1"), "{out}");
    assert!(out.len() <= 20000 + 100, "{} bytes", out.len());
    assert!(out.ends_with("compilation stopped]"), "{out}");
    assert_eq!(run["stdout"], "");
    finish(state).await;
}

/// The project's seccomp profile refuses io_uring whatever the daemon's default is.
async fn io_uring_setup_is_refused(runtime: &str) {
    let state = common::state_under(runtime, &[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let code =
        "#include <unistd.h>\n#include <sys/syscall.h>\n#include <cerrno>\n#include <cstdio>\n\
        int main(){ unsigned char params[120] = {0};\n\
        long r = syscall(__NR_io_uring_setup, 1, params);\n\
        if (r < 0) printf(\"errno %d\\n\", errno); else printf(\"fd %ld\\n\", r); }";
    let run = c.run("cpp", code, "").await;
    assert_verdict(&run, "ok");
    let out = run["stdout"].as_str().unwrap();
    // EPERM (the profile's default) or ENOSYS, never a ring.
    assert!(out == "errno 1\n" || out == "errno 38\n", "{run:#}");
    finish(state).await;
}

/// Filling a tmpfs with empty files ends in the program's own error, and the next run
/// starts clean.
async fn exhausting_tmpfs_inodes_is_contained(runtime: &str) {
    let state = common::state_under(runtime, &[("POOL_SIZE", "1")]).await;
    let mut c = Client::new(&state);
    let code = "import os\nn = 0\ntry:\n    while True:\n        open(f'/tmp/f{n}', 'w').close()\n        n += 1\n\
        except OSError as e:\n    print(n, e.errno)\n    raise\n";
    let run = c.run("python", code, "").await;
    if runtime == "runsc" {
        // gVisor's tmpfs has no inode limit: the files cost the sandbox's memory and
        // time instead, and the run ends on one of its limits.
        assert!(
            ["runtime_error", "memory_limit", "time_limit"]
                .contains(&run["verdict"].as_str().unwrap()),
            "{run:#}"
        );
    } else {
        assert_inode_limit_hit(&run);
    }
    let run = c
        .run("python", "import os\nprint(os.path.exists('/tmp/f0'))", "")
        .await;
    assert_verdict(&run, "ok");
    assert_eq!(run["stdout"], "False\n", "a fresh /tmp: {run:#}");
    finish(state).await;
}

/// The program's own ENOSPC after fewer files than the inode limit allows.
fn assert_inode_limit_hit(run: &Value) {
    assert_verdict(run, "runtime_error");
    let (n, errno) = run["stdout"]
        .as_str()
        .unwrap()
        .trim()
        .split_once(' ')
        .expect("a count and an errno");
    assert!(n.parse::<u64>().unwrap() < 5000, "{run:#}");
    assert_eq!(errno, "28", "ENOSPC: {run:#}");
    assert!(run["stderr"]
        .as_str()
        .unwrap()
        .contains("No space left on device"));
}

/// CPU time is reported beside wall time: a busy loop shows it, a sleep does not.
#[tokio::test]
async fn cpu_time_is_measured_apart_from_wall_time() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let run = c
        .run(
            "python",
            "x = 0\nfor i in range(6_000_000):\n    x += i\nprint(x > 0)",
            "",
        )
        .await;
    assert_verdict(&run, "ok");
    let cpu = run["cpu_time_ms"].as_u64().expect("cpu_time_ms");
    assert!(cpu >= 100, "a busy loop uses CPU: {run:#}");
    let run = c.run("python", "import time\ntime.sleep(1)", "").await;
    assert_verdict(&run, "ok");
    let cpu = run["cpu_time_ms"].as_u64().expect("cpu_time_ms");
    assert!(run["time_ms"].as_u64().unwrap() >= 1000, "{run:#}");
    assert!(cpu < 500, "a sleep uses little CPU: {run:#}");
    finish(state).await;
}

async fn hostile_programs_get_their_verdicts_and_change_nothing(runtime: &str) {
    let state = common::state_under(
        runtime,
        &[("POOL_SIZE", "1"), ("RUN_TIME_LIMIT_MS", "3000")],
    )
    .await;
    let mut c = Client::new(&state);

    let run = c
        .run(
            "python",
            "x = []\nwhile True:\n    x.append(' ' * 10**7)",
            "",
        )
        .await;
    common::assert_memory_exhausted(runtime, &run);

    let run = c.run("python", "while True:\n    pass", "").await;
    assert_verdict(&run, "time_limit");
    assert!(run["time_ms"].as_u64().unwrap() >= 3000);

    let run = c.run("python", "import time\ntime.sleep(1000)", "").await;
    assert_verdict(&run, "time_limit");

    let run = c.run("python", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", "").await;
    assert!(
        // 64 Python processes may also fill the memory cgroup first (they do under gVisor).
        ["time_limit", "runtime_error", "memory_limit"].contains(&run["verdict"].as_str().unwrap()),
        "fork bomb: {run:#}"
    );

    let run = c
        .run(
            "python",
            "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
            "",
        )
        .await;
    assert_verdict(&run, "output_limit");
    assert_eq!(run["truncated"], true);
    assert_eq!(run["stdout"].as_str().unwrap().len(), 64 * 1024);

    let run = c
        .run(
            "python",
            "f = open('/work/big', 'w')\nwhile True:\n    f.write('x' * 1048576)",
            "",
        )
        .await;
    assert!(
        ["runtime_error", "memory_limit"].contains(&run["verdict"].as_str().unwrap()),
        "disk fill: {run:#}"
    );

    let run = c.run(
        "python",
        "import socket\ns = socket.create_connection(('1.1.1.1', 80), timeout=2)\nprint('connected')",
        "",
    )
    .await;
    assert_verdict(&run, "runtime_error");
    assert!(!run["stdout"].as_str().unwrap().contains("connected"));
    assert!(
        run["stderr"].as_str().unwrap().contains("OSError")
            || run["stderr"].as_str().unwrap().contains("unreachable"),
        "{run:#}"
    );

    for path in ["/etc/own-ide-was-here", "/usr/bin/x", "/own-ide"] {
        let run = c
            .run("python", &format!("open('{path}', 'w').write('x')"), "")
            .await;
        assert_verdict(&run, "runtime_error");
        assert!(run["stderr"].as_str().unwrap().contains("Error"), "{run:#}");
    }

    let run = c
        .run(
            "python",
            "import os\nprint(os.getuid())\nprint(open('/proc/1/cmdline').read())",
            "",
        )
        .await;
    assert_verdict(&run, "ok");
    let out = run["stdout"].as_str().unwrap();
    assert!(
        out.starts_with("10001\n"),
        "runs as the unprivileged user: {out}"
    );
    // The container's own command line carries no server setting either.
    for word in ["SECRET", "REDIS", "DATABASE", "mongodb://", "redis://"] {
        assert!(!out.contains(word), "{word}: {out}");
    }
    assert!(!std::path::Path::new("/own-ide").exists());

    let run = c
        .run(
            "python",
            "import os\nprint(os.path.exists('/var/run/docker.sock'))",
            "",
        )
        .await;
    assert_eq!(run["stdout"], "False\n");

    // A background child must not hold the run (it would end at the time limit).
    let run = c
        .run(
            "python",
            "import subprocess\nsubprocess.Popen(['sleep', '1000'])\nprint('left one behind')",
            "",
        )
        .await;
    assert_verdict(&run, "ok");
    assert_eq!(run["stdout"], "left one behind\n");

    // The host and the engine are fine afterwards.
    let run = c.run("python", "print(6 * 7)", "").await;
    assert_eq!(run["stdout"], "42\n");
    finish(state).await;
}

/// The exact environment a program sees: the engine's PATH, HOME and LANG and the
/// container's HOSTNAME (the supervisor execs the program directly: no shell adds PWD);
/// nothing of the server's own environment (secrets, service
/// addresses) may leak, in any language.
#[tokio::test]
async fn the_program_sees_exactly_its_own_environment() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut c = Client::new(&state);
    let programs = [
        ("python", "import os\nfor k, v in sorted(os.environ.items()):\n    print(f'{k}={v}')"),
        ("cpp", "#include <cstdio>\nextern char **environ;\nint main(){ for (char **e = environ; *e; ++e) std::puts(*e); }"),
        ("java", "public class Main { public static void main(String[] a){ System.getenv().forEach((k, v) -> System.out.println(k + \"=\" + v)); } }"),
        ("javascript", "for (const [k, v] of Object.entries(process.env)) console.log(k + '=' + v);"),
    ];
    for (lang, code) in programs {
        let run = c.run(lang, code, "").await;
        assert_verdict(&run, "ok");
        let mut env: Vec<&str> = run["stdout"].as_str().unwrap().lines().collect();
        env.sort_unstable();
        assert_eq!(
            env,
            [
                "HOME=/work",
                "HOSTNAME=sandbox",
                "LANG=C.UTF-8",
                "PATH=/usr/local/bin:/usr/bin:/bin",
            ],
            "{lang}"
        );
    }
    finish(state).await;
}

#[tokio::test]
async fn output_that_looks_like_the_trailer_is_only_output() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut c = Client::new(&state);
    // A fake trailer framed like the engine's, with a made-up nonce, on both streams,
    // then more output after a pause: the run must not end or lose anything.
    let code = r#"import sys, time
fake = '\x1e' + '0' * 32 + '\x1e0\n7672\noom_kill 1\n\x1e' + '0' * 32 + '\x1e'
sys.stdout.write('a\x1eb\n' + fake + '\n')
sys.stdout.flush()
sys.stderr.write(fake + '\x1e' + '0' * 31)
sys.stderr.flush()
time.sleep(0.3)
print('after')
sys.stdout.write('\x1e')
sys.exit(3)
"#;
    let fake = format!(
        "\x1e{z}\x1e0\n7672\noom_kill 1\n\x1e{z}\x1e",
        z = "0".repeat(32)
    );
    for _ in 0..2 {
        let run = c.run("python", code, "").await;
        assert_verdict(&run, "runtime_error");
        assert_eq!(run["exit_code"], 3, "{run:#}");
        assert_eq!(run["signal"], Value::Null);
        assert_eq!(run["stdout"], format!("a\x1eb\n{fake}\nafter\n\x1e"));
        assert_eq!(run["stderr"], format!("{fake}\x1e{}", "0".repeat(31)));
    }

    // A program that tries to kill its supervisor (pid 1: under runc the signal is
    // ignored) gets its true exit code; were the supervisor killed (under runsc it can
    // be), the engine would report no exit status rather than invent one.
    let code = "import os, signal, sys\nprint('before', flush=True)\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    pass\nprint('after')\nsys.exit(7)";
    let run = c.run("python", code, "").await;
    assert_verdict(&run, "runtime_error");
    assert_eq!(run["signal"], Value::Null, "{run:#}");
    if run["exit_code"].is_null() {
        assert!(
            run["stderr"]
                .as_str()
                .unwrap()
                .contains("supervisor was killed"),
            "{run:#}"
        );
    } else {
        assert_eq!(run["exit_code"], 7, "{run:#}");
        assert_eq!(run["stdout"], "before\nafter\n");
    }
    finish(state).await;
}

#[tokio::test]
async fn twenty_runs_at_once_all_finish_and_a_flood_gets_503() {
    let state = common::state_with(&[("POOL_SIZE", "2")]).await;
    let mut handles = Vec::new();
    for i in 0..20 {
        let mut c = Client::new(&state);
        handles.push(tokio::spawn(async move {
            (i, c.run("python", &format!("print({i} * 2)"), "").await)
        }));
    }
    for h in handles {
        let (i, run) = h.await.unwrap();
        assert_verdict(&run, "ok");
        assert_eq!(run["stdout"], format!("{}\n", i * 2));
    }
    finish(state).await;

    let state = common::state_with(&[
        ("POOL_SIZE", "0"),
        ("MAX_CONCURRENT_RUNS", "1"),
        ("RUN_QUEUE_SIZE", "2"),
    ])
    .await;
    let mut c = Client::new(&state);
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..6 {
        let r = c
            .post_json(
                "/api/v1/runs",
                &json!({"language": "python", "code": "import time\ntime.sleep(2)"}),
            )
            .await;
        statuses.push(r.status.as_u16());
        if r.status == 503 {
            assert!(r.header("retry-after").is_some());
            assert_eq!(r.json()["error"]["code"], "queue_full");
        } else {
            ids.push(r.json()["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses, vec![202, 202, 202, 503, 503, 503]);
    for id in ids {
        assert_eq!(
            c.post_json(&format!("/api/v1/runs/{id}/stop"), &json!({}))
                .await
                .status,
            202
        );
    }
    finish(state).await;
}

#[tokio::test]
async fn events_stream_live_output_and_stop_ends_the_run() {
    let state = common::state_with(&[("POOL_SIZE", "1"), ("RUN_TIME_LIMIT_MS", "120000")]).await;
    let mut c = Client::new(&state);
    let r = c.post_json("/api/v1/runs", &json!({"language": "python", "code": "import sys, time\nsys.stdout.write('before\\n')\nsys.stdout.flush()\ntime.sleep(30)\nprint('after')"})).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["status"], "queued");
    let id = r.json()["id"].as_str().unwrap().to_string();

    // Read the event stream until "before" arrives, while the program sleeps. It is
    // written in one call: `print` under `python -u` writes the text and the newline
    // separately, and a stop between the two would leave "before" without its newline.
    let mut events = c.events(&id).await;
    let seen = events.until("before").await;
    assert!(seen.contains("event: stdout"), "{seen}");
    let run = c.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(run["status"], "running");
    assert_eq!(run["verdict"], Value::Null);

    assert_eq!(
        c.post_json(&format!("/api/v1/runs/{id}/stop"), &json!({}))
            .await
            .status,
        202
    );
    let seen = events.until_result().await;
    assert!(seen.contains(r#""verdict":"stopped""#), "{seen}");
    let run = c.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_verdict(&run, "stopped");
    assert_eq!(run["stdout"], "before\n");
    finish(state).await;
}

#[tokio::test]
async fn a_run_is_stopped_through_another_instance() {
    // Two app instances sharing Redis and MongoDB; the run executes on the first.
    // A time limit no loaded machine reaches, so that only the stop can end the run.
    let a = common::state_with(&[("POOL_SIZE", "1"), ("RUN_TIME_LIMIT_MS", "120000")]).await;
    let b = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut on_a = Client::new(&a);
    // It prints a line every 0.1 s after "up", so that "still running" can be awaited.
    let code = "import time\nprint('up', flush=True)\nfor i in range(3000):\n    time.sleep(0.1)\n    print(i, flush=True)";
    let r = on_a
        .post_json("/api/v1/runs", &json!({"language": "python", "code": code}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let stdout = |run: &Value| run["stdout"].as_str().unwrap_or_default().to_string();
    crate::eventually!(
        "the run's first line",
        stdout(&on_a.get(&format!("/api/v1/runs/{id}")).await.json()).starts_with("up\n")
    );
    // The second instance knows that it runs (from Redis).
    let mut on_b = Client::new(&b);
    on_b.cookie = on_a.cookie.clone();
    assert_eq!(
        on_b.get(&format!("/api/v1/runs/{id}")).await.json()["status"],
        "running"
    );
    // Someone else cannot stop it through the second instance...
    let mut stranger = Client::new(&b);
    let r = stranger
        .post_json(&format!("/api/v1/runs/{id}/stop"), &json!({}))
        .await;
    assert_eq!(r.status, 404);
    // It goes on: three more lines come after the refusal, and it still runs.
    let lines = stdout(&on_a.get(&format!("/api/v1/runs/{id}")).await.json())
        .lines()
        .count();
    crate::eventually!(
        "three more lines after the refused stop",
        stdout(&on_a.get(&format!("/api/v1/runs/{id}")).await.json())
            .lines()
            .count()
            >= lines + 3
    );
    assert_eq!(
        on_a.get(&format!("/api/v1/runs/{id}")).await.json()["status"],
        "running"
    );
    // ...its owner (the same session cookie) can. An events stream opened on the second
    // instance before the stop ends with the result.
    let mut events = on_b.events(&id).await;
    let r = on_b
        .post_json(&format!("/api/v1/runs/{id}/stop"), &json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let events = events.until_end().await.to_string();
    let run = on_b.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_verdict(&run, "stopped");
    assert!(stdout(&run).starts_with("up\n0\n1\n2\n"), "{run:#}");
    // The second instance serves the run's events from the start (its Redis stream),
    // numbered as on the first: queued, running, then the output as it came.
    let blocks: Vec<&str> = events.split("\n\n").filter(|b| !b.is_empty()).collect();
    assert!(
        blocks[0] == "event: status\ndata: {\"status\":\"queued\"}\nid: 1"
            && blocks[1] == "event: status\ndata: {\"status\":\"running\"}\nid: 2",
        "{events}"
    );
    for (i, b) in blocks.iter().enumerate() {
        assert!(b.ends_with(&format!("\nid: {}", i + 1)), "{events}");
    }
    let streamed: String = blocks
        .iter()
        .filter(|b| b.starts_with("event: stdout\ndata: "))
        .map(|b| {
            let data = b.lines().nth(1).unwrap().trim_start_matches("data: ");
            serde_json::from_str::<Value>(data).unwrap()["data"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(streamed.starts_with("up\n0\n1\n2\n"), "{events}");
    assert!(
        events.contains("event: result") && events.contains(r#""verdict":"stopped""#),
        "{events}"
    );
    finish(a).await;
    finish(b).await;
}

#[tokio::test]
async fn bad_requests_get_exact_errors_and_change_nothing() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let r = c
        .post_json("/api/v1/runs", &json!({"language": "cobol", "code": "x"}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["code"], "unknown_language");
    let r = c
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "   "}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["code"], "empty_code");
    let r = c
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "x".repeat(64 * 1024 + 1)}),
        )
        .await;
    assert_eq!(r.status, 413);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("65536"));
    let r = c
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "print(1)", "stdin": "y".repeat(70_000)}),
        )
        .await;
    assert_eq!(r.status, 413);
    let r = c
        .send(
            "POST",
            "/api/v1/runs",
            Some("application/json"),
            "{not json",
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "bad_request");
    let r = c
        .send("POST", "/api/v1/runs", Some("text/plain"), "{}")
        .await;
    assert_eq!(r.status, 415);
    let r = c
        .post_json("/api/v1/runs", &json!({"language": "python"}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["code"], "empty_code");
    let r = c.get("/api/v1/runs/0123456789abcdef0123456789abcdef").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");
    let r = c.get("/api/v1/nothing-here").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        state.engine.count_containers().await.unwrap(),
        0,
        "refused requests start nothing"
    );

    let langs = c.get("/api/v1/languages").await.json();
    let ids: Vec<&str> = langs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            "python",
            "cpp",
            "java",
            "javascript",
            "c",
            "rust",
            "go",
            "typescript"
        ]
    );
    assert!(langs[0]["template"].as_str().unwrap().contains("print"));
    finish(state).await;
}

#[tokio::test]
async fn runs_are_private_to_their_guest_and_kept_in_redis() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut alice = Client::new(&state);
    let run = alice.run("python", "print('mine')", "").await;
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(
        alice.get(&format!("/api/v1/runs/{id}")).await.json()["stdout"],
        "mine\n"
    );
    let mut mallory = Client::new(&state);
    assert_eq!(mallory.get(&format!("/api/v1/runs/{id}")).await.status, 404);
    assert_eq!(
        mallory
            .post_json(&format!("/api/v1/runs/{id}/stop"), &json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        mallory
            .get(&format!("/api/v1/runs/{id}/events"))
            .await
            .status,
        404
    );

    // A second instance (fresh state, same Redis) answers for the run.
    let other = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut again = Client::new(&other);
    again.cookie = alice.cookie.clone();
    let r = again.get(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["stdout"], "mine\n");
    finish(state).await;
    finish(other).await;
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn exists(id: &str) -> bool {
    std::process::Command::new("docker")
        .args(["inspect", id])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Ids of the containers with all these labels, polled until there are `n` (at most
/// 60 s, then the test fails saying so).
async fn await_containers(labels: &[String], n: usize) -> Vec<String> {
    let mut args = vec!["ps".to_string(), "-q".to_string()];
    for l in labels {
        args.push("--filter".into());
        args.push(format!("label={l}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for _ in 0..600 {
        let ids: Vec<String> = docker(&args).lines().map(str::to_string).collect();
        if ids.len() >= n {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} containers labelled {labels:?} never appeared within 60 s");
}

/// The periodic sweep removes what a dead instance left (no heartbeat), old enough, and
/// keeps a live instance's pooled container and this instance's own pool.
#[tokio::test]
async fn the_sweep_removes_leftovers_of_dead_instances_only() {
    // A realm of its own, so that this test's sweep with tiny limits touches no other
    // test's containers.
    let realm = format!("sweep-{}", uuid::Uuid::new_v4().simple());
    let state = common::state_with(&[
        ("POOL_SIZE", "1"),
        ("SANDBOX_LABEL", &realm),
        ("COMPILE_TIME_LIMIT_MS", "100"),
        ("RUN_TIME_LIMIT_MS", "100"),
        // An interactive run may last this long: the sweep waits for it too.
        ("INTERACTIVE_TIME_LIMIT_MS", "100"),
        ("SANDBOX_SWEEP_MARGIN_MS", "0"),
        ("SANDBOX_SWEEP_INTERVAL_MS", "300"),
    ])
    .await;
    let liveness = own_ide::server::heartbeat::RedisLiveness::new(state.redis.clone());
    use own_ide::server::sandbox::Liveness as _;
    let live = format!("live-{}", uuid::Uuid::new_v4().simple());
    liveness
        .beat(&live, Duration::from_secs(120))
        .await
        .unwrap();
    let image = format!("{}python:latest", state.config.sandbox.image_prefix);
    let make = |instance: &str, pooled: &str| {
        docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            &format!("own-ide.sandbox={realm}"),
            "--label",
            &format!("own-ide.instance={instance}"),
            "--label",
            &format!("own-ide.pooled={pooled}"),
            &image,
            "sleep",
            "infinity",
        ])
    };
    let dead = make(&format!("dead-{}", uuid::Uuid::new_v4().simple()), "0");
    let kept = make(&live, "1");
    let mine = format!("own-ide.instance={}", state.engine.instance());
    let pool = await_containers(std::slice::from_ref(&mine), 4).await;
    let mut gone = false;
    for _ in 0..300 {
        if !exists(&dead) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        gone,
        "the dead instance's container was not swept within 30 s"
    );
    assert!(exists(&kept), "a live instance's pooled container stays");
    for id in &pool {
        assert!(exists(id), "this instance's pool stays");
    }
    docker(&["rm", "-f", &kept]);
    finish(state).await;
}

/// Pooled containers killed from outside are never handed to a run: each language's
/// next run is `ok`.
#[tokio::test]
async fn dead_pooled_containers_are_never_handed_out() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let labels = [
        format!("own-ide.instance={}", state.engine.instance()),
        "own-ide.pooled=1".to_string(),
    ];
    let pooled = await_containers(&labels, 4).await;
    let mut args = vec!["kill"];
    args.extend(pooled.iter().map(String::as_str));
    docker(&args);
    // Await their end as Docker reports it.
    let mut args = vec!["wait"];
    args.extend(pooled.iter().map(String::as_str));
    docker(&args);
    let mut c = Client::new(&state);
    let programs = [
        ("python", "print('ok')"),
        ("cpp", "#include <cstdio>\nint main(){ puts(\"ok\"); }"),
        (
            "java",
            "public class Main { public static void main(String[] a){ System.out.println(\"ok\"); } }",
        ),
        ("javascript", "console.log('ok')"),
    ];
    for (lang, code) in programs {
        let run = c.run(lang, code, "").await;
        assert_verdict(&run, "ok");
        assert_eq!(run["stdout"], "ok\n", "{lang}: {run:#}");
    }
    finish(state).await;
}

/// A container runtime the Docker engine does not have stops start-up with one line
/// naming the variable; `/readyz` names the runtime in use.
#[tokio::test]
async fn the_sandbox_runtime_is_checked_and_named() {
    let cfg = own_ide::server::config::SandboxConfig {
        runtime: "no-such-runtime".into(),
        pool_size: 0,
        ..Default::default()
    };
    let err = match own_ide::server::sandbox::Engine::start(cfg, None).await {
        Ok(_) => panic!("an unknown runtime was accepted"),
        Err(e) => e,
    };
    assert!(
        err.starts_with("configuration error: SANDBOX_RUNTIME=\"no-such-runtime\"")
            && err.contains("runc")
            && !err.contains('\n'),
        "{err}"
    );
    let state = common::state_with(&[("POOL_SIZE", "0"), ("SANDBOX_RUNTIME", "runc")]).await;
    let mut c = Client::new(&state);
    let r = c.get("/readyz").await;
    assert_eq!(r.json()["sandbox_runtime"], "runc", "{}", r.text());
    finish(state).await;
}

#[tokio::test]
async fn memory_figures_are_capped_at_the_limit_and_signals_are_named() {
    let state = common::state_with(&[("POOL_SIZE", "1"), ("SANDBOX_MEMORY_MB", "96")]).await;
    let mut c = Client::new(&state);
    let limit_kb = 96 * 1024;
    let memory = |run: &Value| run["memory_kb"].as_u64();

    let run = c
        .run(
            "python",
            "x = bytearray(40 * 1024 * 1024)\nprint(len(x))",
            "",
        )
        .await;
    assert_verdict(&run, "ok");
    let kb = memory(&run).expect("a finished program's peak memory");
    assert!((40 * 1024..=limit_kb).contains(&kb), "{run:#}");

    let run = c
        .run(
            "python",
            "x = []\nwhile True:\n    x.append(' ' * 10**6)",
            "",
        )
        .await;
    assert_verdict(&run, "memory_limit");
    assert!(memory(&run).is_none_or(|kb| kb <= limit_kb), "{run:#}");

    // GNU time's file is writable by the program: a forged peak is still capped.
    let forge = "import os, time\nfor _ in range(20):\n    open('/tmp/.own-ide-time', 'w').write('99999999\\n')\n    time.sleep(0.01)";
    let run = c.run("python", forge, "").await;
    assert!(memory(&run).is_none_or(|kb| kb <= limit_kb), "{run:#}");

    // A C++ null dereference dies of SIGSEGV, reported as such (no exit code).
    let run = c
        .run(
            "cpp",
            "int main(){ volatile int *p = nullptr; *p = 1; return 0; }",
            "",
        )
        .await;
    assert_verdict(&run, "runtime_error");
    assert_eq!(run["signal"], "SIGSEGV", "{run:#}");
    assert_eq!(run["exit_code"], Value::Null, "{run:#}");
    finish(state).await;
}

/// A Java program that really exhausts its memory gets the verdict `memory_limit`,
/// whether the JVM throws OutOfMemoryError or the kernel kills it first.
#[tokio::test]
async fn java_running_out_of_memory_is_a_memory_limit() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut c = Client::new(&state);
    let code = "import java.util.*;\npublic class Main { public static void main(String[] a){ List<long[]> keep = new ArrayList<>(); while (true) { long[] b = new long[1 << 20]; Arrays.fill(b, 7L); keep.add(b); } } }";
    let run = c.run("java", code, "").await;
    assert_verdict(&run, "memory_limit");
    finish(state).await;
}

#[tokio::test]
async fn stopping_a_queued_run_ends_it_stopped() {
    // One slot, held by a long run; a time limit no loaded machine reaches.
    let state = common::state_with(&[
        ("POOL_SIZE", "0"),
        ("MAX_CONCURRENT_RUNS", "1"),
        ("RUN_QUEUE_SIZE", "2"),
        ("RUN_TIME_LIMIT_MS", "120000"),
    ])
    .await;
    let mut c = Client::new(&state);
    let long = json!({"language": "python", "code": "import time\nprint('holding', flush=True)\ntime.sleep(100)"});
    let r = c.post_json("/api/v1/runs", &long).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let holder = r.json()["id"].as_str().unwrap().to_string();
    crate::eventually!(
        "the first run holding the only slot",
        c.get(&format!("/api/v1/runs/{holder}")).await.json()["stdout"] == "holding\n"
    );

    let r = c
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "print('never')"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let queued = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.get(&format!("/api/v1/runs/{queued}")).await.json()["status"],
        "queued"
    );
    let r = c
        .post_json(&format!("/api/v1/runs/{queued}/stop"), &json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    crate::eventually!(
        "the queued run ending",
        c.get(&format!("/api/v1/runs/{queued}")).await.json()["status"] == "finished"
    );
    let run = c.get(&format!("/api/v1/runs/{queued}")).await.json();
    assert_verdict(&run, "stopped");
    assert_eq!(run["stdout"], "", "a stopped queued run never ran: {run:#}");
    // The holder was not touched by it.
    assert_eq!(
        c.get(&format!("/api/v1/runs/{holder}")).await.json()["status"],
        "running"
    );

    let r = c
        .post_json(&format!("/api/v1/runs/{holder}/stop"), &json!({}))
        .await;
    assert_eq!(r.status, 202);
    crate::eventually!(
        "the first run ending",
        c.get(&format!("/api/v1/runs/{holder}")).await.json()["status"] == "finished"
    );
    finish(state).await;
}
