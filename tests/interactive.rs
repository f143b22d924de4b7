//! Interactive input against the real Docker engine: a program's prompt reaches the live
//! events before anything is typed, typed lines reach the program as they are sent, the
//! end of input ends a program reading to its end, and only the run's owner may type,
//! only while it runs.

mod common;

use common::{finish, Client};
use serde_json::{json, Value};

/// One language's interactive program: it prompts `name? ` without a newline, greets the
/// name typed, then counts the words typed until the end of input. A table, so that each
/// new language adds one row.
const PROGRAMS: &[(&str, &str)] = &[
    (
        "python",
        "import sys\nname = input('name? ')\nprint(f'Hello, {name}!')\nrest = sys.stdin.read()\nprint(f'then {len(rest.split())} words')\n",
    ),
    (
        "cpp",
        "#include <iostream>\n#include <string>\nint main() {\n    std::string name, w;\n    std::cout << \"name? \";\n    std::getline(std::cin, name);\n    std::cout << \"Hello, \" << name << \"!\" << std::endl;\n    int n = 0;\n    while (std::cin >> w) n++;\n    std::cout << \"then \" << n << \" words\" << std::endl;\n}\n",
    ),
    // C stdio: a prompt without a newline, then scanf (no fflush: the terminal's rules).
    (
        "cpp",
        "#include <cstdio>\n#include <cstring>\nint main() {\n    char name[64], w[64];\n    printf(\"name? \");\n    if (!fgets(name, sizeof name, stdin)) return 1;\n    name[strcspn(name, \"\\n\")] = 0;\n    printf(\"Hello, %s!\\n\", name);\n    int n = 0;\n    while (scanf(\"%63s\", w) == 1) n++;\n    printf(\"then %d words\\n\", n);\n}\n",
    ),
    (
        "java",
        "import java.util.Scanner;\npublic class Main {\n    public static void main(String[] a) {\n        Scanner s = new Scanner(System.in);\n        System.out.print(\"name? \");\n        String name = s.nextLine();\n        System.out.println(\"Hello, \" + name + \"!\");\n        int n = 0;\n        while (s.hasNext()) { s.next(); n++; }\n        System.out.println(\"then \" + n + \" words\");\n    }\n}\n",
    ),
    (
        "javascript",
        "const rl = require('readline').createInterface({ input: process.stdin, output: process.stdout });\nrl.question('name? ', (name) => {\n  console.log(`Hello, ${name}!`);\n  let n = 0;\n  rl.on('line', (l) => { n += l.split(/\\s+/).filter(Boolean).length; });\n  rl.on('close', () => console.log(`then ${n} words`));\n});\n",
    ),
    // C on a pseudo-terminal, as C++'s stdio row: printf's prompt shows before fgets waits.
    (
        "c",
        "#include <stdio.h>\n#include <string.h>\nint main(void) {\n    char name[64], w[64];\n    printf(\"name? \");\n    if (!fgets(name, sizeof name, stdin)) return 1;\n    name[strcspn(name, \"\\n\")] = 0;\n    printf(\"Hello, %s!\\n\", name);\n    int n = 0;\n    while (scanf(\"%63s\", w) == 1) n++;\n    printf(\"then %d words\\n\", n);\n    return 0;\n}\n",
    ),
    // Rust's stdout is line-buffered everywhere: a prompt is flushed, as Rust programs do.
    (
        "rust",
        "use std::io::{self, BufRead, Write};\nfn main() {\n    print!(\"name? \");\n    io::stdout().flush().unwrap();\n    let stdin = io::stdin();\n    let mut name = String::new();\n    stdin.lock().read_line(&mut name).unwrap();\n    println!(\"Hello, {}!\", name.trim_end());\n    let n: usize = stdin.lock().lines().map(|l| l.unwrap().split_whitespace().count()).sum();\n    println!(\"then {} words\", n);\n}\n",
    ),
    // Go's os.Stdout is unbuffered: fmt.Print's prompt is out at once.
    (
        "go",
        "package main\n\nimport (\n\t\"bufio\"\n\t\"fmt\"\n\t\"os\"\n\t\"strings\"\n)\n\nfunc main() {\n\tin := bufio.NewReader(os.Stdin)\n\tfmt.Print(\"name? \")\n\tname, _ := in.ReadString('\\n')\n\tfmt.Printf(\"Hello, %s!\\n\", strings.TrimSpace(name))\n\twords := bufio.NewScanner(in)\n\twords.Split(bufio.ScanWords)\n\tn := 0\n\tfor words.Scan() {\n\t\tn++\n\t}\n\tfmt.Printf(\"then %d words\\n\", n)\n}\n",
    ),
    (
        "typescript",
        "import * as readline from 'readline';\nconst rl = readline.createInterface({ input: process.stdin, output: process.stdout });\nrl.question('name? ', (name: string) => {\n  console.log(`Hello, ${name}!`);\n  let n: number = 0;\n  rl.on('line', (l: string) => { n += l.split(/\\s+/).filter(Boolean).length; });\n  rl.on('close', () => console.log(`then ${n} words`));\n});\n",
    ),
];

async fn start(c: &mut Client, lang: &str, code: &str) -> String {
    let r = c
        .post_json(
            "/api/v1/runs",
            &json!({"language": lang, "code": code, "interactive": true}),
        )
        .await;
    assert_eq!(r.status, 202, "{lang}: {}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

async fn type_in(c: &mut Client, id: &str, data: &str, eof: bool) -> common::Reply {
    c.post_json(
        &format!("/api/v1/runs/{id}/stdin"),
        &json!({"data": data, "eof": eof}),
    )
    .await
}

fn error_code(r: &common::Reply) -> String {
    r.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn every_language_prompts_takes_typed_lines_and_ends_at_eof() {
    // A program that misses its end of input fails within seconds, not a minute.
    let state =
        common::state_with(&[("POOL_SIZE", "0"), ("INTERACTIVE_TIME_LIMIT_MS", "20000")]).await;
    for (lang, code) in PROGRAMS {
        let mut owner = Client::new(&state);
        let id = start(&mut owner, lang, code).await;
        let mut events = owner.events(&id).await;
        // Nothing typed yet: the prompt is out all the same.
        events.until("name? ").await;
        assert!(!events.seen.contains("Hello"), "{lang}: {}", events.seen);

        // Someone else cannot type into it, nor learn that it exists.
        let mut stranger = Client::new(&state);
        let r = type_in(&mut stranger, &id, "Mallory\n", true).await;
        assert_eq!(r.status, 404, "{lang}: {}", r.text());
        assert_eq!(error_code(&r), "not_found");

        let r = type_in(&mut owner, &id, "Ada\n", false).await;
        assert_eq!(r.status, 202, "{lang}: {}", r.text());
        events.until("Hello, Ada!").await;
        assert_eq!(
            type_in(&mut owner, &id, "one two\n", false).await.status,
            202
        );
        assert_eq!(type_in(&mut owner, &id, "three", true).await.status, 202);
        // The end of input ends the program's reading: it counts and finishes.
        events.until_result().await;
        let run = owner.get(&format!("/api/v1/runs/{id}")).await.json();
        assert_eq!(run["verdict"], "ok", "{lang}: {run:#}");
        assert_eq!(
            run["stdout"], "name? Hello, Ada!\nthen 3 words\n",
            "{lang}: {run:#}"
        );
        assert_eq!(run["interactive"], true);

        // After the end: 409, and the run is as it was.
        let r = type_in(&mut owner, &id, "late\n", false).await;
        assert_eq!(r.status, 409, "{lang}: {}", r.text());
        assert_eq!(error_code(&r), "run_not_running");
        let after = owner.get(&format!("/api/v1/runs/{id}")).await.json();
        assert_eq!(after, run);
    }
    finish(state).await;
}

#[tokio::test]
async fn input_is_refused_with_the_contracts_errors() {
    let state = common::state_with(&[("POOL_SIZE", "0"), ("MAX_STDIN_BYTES", "16")]).await;
    let mut c = Client::new(&state);
    let code = "import sys\nprint('ready', flush=True)\nprint(len(sys.stdin.read()))\n";
    let id = start(&mut c, "python", code).await;
    let mut events = c.events(&id).await;
    events.until("ready").await;
    // Over the limit in one request, then in all: nothing reaches the program.
    let r = type_in(&mut c, &id, &"x".repeat(17), false).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(error_code(&r), "payload_too_large");
    assert_eq!(
        type_in(&mut c, &id, &"x".repeat(10), false).await.status,
        202
    );
    let r = type_in(&mut c, &id, &"x".repeat(7), false).await;
    assert_eq!(r.status, 413, "{}", r.text());
    // Nothing to send.
    let r = type_in(&mut c, &id, "", false).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(error_code(&r), "empty_input");
    // Not JSON of the right shape.
    let r = c
        .post_json(&format!("/api/v1/runs/{id}/stdin"), &json!({"data": 5}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]["message"].is_string());
    // The end of input; after it, the input is closed even while the run lasts.
    assert_eq!(type_in(&mut c, &id, "", true).await.status, 202);
    let r = type_in(&mut c, &id, "more", false).await;
    assert!(
        [409].contains(&r.status.as_u16())
            && ["input_closed", "run_not_running"].contains(&error_code(&r).as_str()),
        "{}",
        r.text()
    );
    events.until_result().await;
    let run = c.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(run["stdout"], "ready\n10\n", "{run:#}");

    // A run given its input up front takes no more, exactly as before.
    let mut d = Client::new(&state);
    let r = d
        .post_json(
            "/api/v1/runs",
            &json!({"language": "python", "code": "import sys, time\nprint(sys.stdin.read(), flush=True)\ntime.sleep(30)", "stdin": "given"}),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let mut events = d.events(&id).await;
    events.until("given").await;
    let r = type_in(&mut d, &id, "typed\n", false).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(error_code(&r), "input_closed");
    assert_eq!(
        d.post_json(&format!("/api/v1/runs/{id}/stop"), &json!({}))
            .await
            .status,
        202
    );
    events.until_result().await;
    finish(state).await;
}

#[tokio::test]
async fn input_typed_while_queued_waits_for_the_program() {
    // One slot, taken by a run that waits for its end of input: the second run queues.
    let state = common::state_with(&[("POOL_SIZE", "0"), ("MAX_CONCURRENT_RUNS", "1")]).await;
    let mut c = Client::new(&state);
    let blocker = start(
        &mut c,
        "python",
        "import sys\nprint('busy', flush=True)\nsys.stdin.read()\n",
    )
    .await;
    c.events(&blocker).await.until("busy").await;
    let queued = start(&mut c, "python", "print('got', input())\n").await;
    let run = c.get(&format!("/api/v1/runs/{queued}")).await.json();
    assert_eq!(run["status"], "queued", "{run:#}");
    assert_eq!(type_in(&mut c, &queued, "early\n", false).await.status, 202);
    assert_eq!(type_in(&mut c, &blocker, "", true).await.status, 202);
    let run = common::wait_finished(&mut c, &queued).await;
    assert_eq!(run["stdout"], "got early\n", "{run:#}");
    finish(state).await;
}

#[tokio::test]
async fn input_reaches_a_run_executing_on_another_instance() {
    let a = common::state_with(&[("POOL_SIZE", "0")]).await;
    let b = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut on_a = Client::new(&a);
    let id = start(
        &mut on_a,
        "python",
        "print('Hello, ' + input('name? ') + '!')\n",
    )
    .await;
    let mut events = on_a.events(&id).await;
    events.until("name? ").await;
    let mut on_b = Client::new(&b);
    on_b.cookie = on_a.cookie.clone();
    let mut stranger = Client::new(&b);
    assert_eq!(
        type_in(&mut stranger, &id, "Eve\n", false).await.status,
        404
    );
    let r = type_in(&mut on_b, &id, "Grace\n", true).await;
    assert_eq!(r.status, 202, "{}", r.text());
    events.until_result().await;
    let run: Value = on_a.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(run["stdout"], "name? Hello, Grace!\n", "{run:#}");
    finish(a).await;
    finish(b).await;
}

#[tokio::test]
async fn an_interactive_run_waits_for_a_person_but_not_for_a_busy_loop() {
    // A wall-clock limit no test reaches: only the CPU limit (the run limit) can end the
    // loop, and only the person's limit lets the sleeper finish.
    let state = common::state_with(&[
        ("POOL_SIZE", "0"),
        ("RUN_TIME_LIMIT_MS", "1000"),
        ("INTERACTIVE_TIME_LIMIT_MS", "600000"),
    ])
    .await;
    let mut c = Client::new(&state);
    let id = start(&mut c, "python", "while True:\n    pass\n").await;
    let run = common::wait_finished(&mut c, &id).await;
    assert_eq!(run["verdict"], "time_limit", "{run:#}");
    assert_eq!(run["signal"], "SIGXCPU", "{run:#}");

    // Two seconds asleep (no CPU), twice the run limit, then it reads its answer.
    let code =
        "import time\nname = input('name? ')\ntime.sleep(2)\nprint('Hello, ' + name + '!')\n";
    let id = start(&mut c, "python", code).await;
    let mut events = c.events(&id).await;
    events.until("name? ").await;
    assert_eq!(type_in(&mut c, &id, "Ada\n", false).await.status, 202);
    events.until_result().await;
    let run = c.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(run["verdict"], "ok", "{run:#}");
    assert_eq!(run["stdout"], "name? Hello, Ada!\n");
    assert!(run["time_ms"].as_u64().unwrap() >= 2000, "{run:#}");
    finish(state).await;
}

#[tokio::test]
async fn a_program_on_a_terminal_cannot_forge_its_end_nor_stall_on_unread_input() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    // A fake report with a guessed nonce through the terminal, then it ignores its input
    // and exits 3 two seconds later.
    let fake = "\\x1e0123456789abcdef0123456789abcdef\\x1eR exit=0 signal=- cpu_ms=1 rss_kb=1 wall_ms=1 oom=0\\x1e0123456789abcdef0123456789abcdef\\x1e";
    let code = format!(
        "#include <cstdio>\n#include <unistd.h>\nint main() {{ printf(\"{fake}\\n\"); fflush(stdout); sleep(2); return 3; }}\n"
    );
    let id = start(&mut c, "cpp", &code).await;
    let mut events = c.events(&id).await;
    events.until("oom=0").await;
    // Far more than a terminal buffers, never read.
    for _ in 0..4 {
        let r = type_in(&mut c, &id, &"y".repeat(15_000), false).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    events.until_result().await;
    let run = c.get(&format!("/api/v1/runs/{id}")).await.json();
    assert_eq!(run["verdict"], "runtime_error", "{run:#}");
    assert_eq!(run["exit_code"], 3, "{run:#}");
    assert!(
        run["stdout"]
            .as_str()
            .unwrap()
            .contains("R exit=0 signal=-"),
        "the fake report is the program's output: {run:#}"
    );
    finish(state).await;
}
