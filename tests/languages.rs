//! C, Rust, Go and TypeScript against the real Docker engine: each one's template greets
//! from stdin, compile and runtime errors reach the user, programs of several files build,
//! and hostile programs (fork bomb, memory hog, output flood, a peek at the supervisor
//! through /proc) get their verdicts in every one of them. Python's numpy is here too.

mod common;

use common::{assert_verdict, finish, Client};
use serde_json::{json, Value};

/// What one language must do; the same checks run for each.
struct Case {
    lang: &'static str,
    extension: &'static str,
    /// Does not compile; `compile_error` must contain `compile_says`.
    broken: &'static str,
    compile_says: &'static [&'static str],
    /// Compiles, then fails at run time with `failure_says` on stderr (if set).
    failing: &'static str,
    failure_says: &'static str,
    /// Files of a program that prints "hello from main and helper".
    files: Value,
    fork_bomb: &'static str,
    memory_hog: &'static str,
    output_flood: &'static str,
    /// Opens its parent's (the supervisor's) /proc/<pid>/mem; prints "denied" when refused.
    peek: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            lang: "c",
            extension: "c",
            broken: "int main(void) { return undefined_name; }",
            compile_says: &["main.c:1", "undefined_name"],
            failing: "#include <stdlib.h>\nint main(void) { exit(3); }",
            failure_says: "",
            files: json!([
                {"name": "main.c", "content": "#include <stdio.h>\n#include \"util/greet.h\"\nint main(void) { printf(\"%s\\n\", greet()); return 0; }\n"},
                {"name": "util/greet.h", "content": "const char *greet(void);\n"},
                {"name": "util/greet.c", "content": "#include \"greet.h\"\nconst char *greet(void) { return \"hello from main and helper\"; }\n"},
            ]),
            fork_bomb: "#include <unistd.h>\nint main(void) { for (;;) fork(); }",
            // Kept in a global: gcc -O2 drops a malloc and memset nobody can see.
            memory_hog: "#include <stdlib.h>\n#include <string.h>\nchar *kept[1 << 16];\nint main(void) { for (int i = 0;; i++) { char *p = malloc(1 << 24); if (p) memset(p, 1, 1 << 24); kept[i & 0xffff] = p; } }",
            output_flood: "#include <stdio.h>\nint main(void) { for (;;) fputs(\"xxxxxxxxxxxxxxxx\", stdout); }",
            peek: "#include <errno.h>\n#include <fcntl.h>\n#include <stdio.h>\n#include <unistd.h>\nint main(void) { char p[64]; snprintf(p, sizeof p, \"/proc/%d/mem\", getppid()); int fd = open(p, O_RDONLY); puts(fd < 0 && errno == EACCES ? \"denied\" : \"open\"); return 0; }",
        },
        Case {
            lang: "rust",
            extension: "rs",
            broken: "fn main() {\n    let x: i32 = \"s\";\n}",
            compile_says: &["main.rs:2", "mismatched types"],
            failing: "fn main() { panic!(\"boom\"); }",
            failure_says: "boom",
            files: json!([
                {"name": "main.rs", "content": "mod util;\nmod words;\nfn main() { println!(\"{}\", util::greet(words::AND)); }\n"},
                {"name": "util.rs", "content": "pub fn greet(w: &str) -> String { format!(\"hello from main {w} helper\") }\n"},
                {"name": "words/mod.rs", "content": "pub const AND: &str = \"and\";\n"},
            ]),
            fork_bomb: "fn main() { loop { let _ = std::process::Command::new(\"/proc/self/exe\").spawn(); } }",
            memory_hog: "fn main() { let mut v = Vec::new(); loop { v.push(vec![1u8; 1 << 24]); } }",
            output_flood: "use std::io::Write;\nfn main() { let mut o = std::io::stdout(); loop { let _ = o.write_all(b\"xxxxxxxxxxxxxxxx\"); } }",
            peek: "fn main() {\n    let p = format!(\"/proc/{}/mem\", std::os::unix::process::parent_id());\n    match std::fs::File::open(p) {\n        Err(e) if e.raw_os_error() == Some(13) => println!(\"denied\"),\n        _ => println!(\"open\"),\n    }\n}",
        },
        Case {
            lang: "go",
            extension: "go",
            broken: "package main\n\nfunc main() {\n\tvar x int = \"s\"\n\t_ = x\n}",
            compile_says: &["main.go:4", "cannot use"],
            failing: "package main\n\nfunc main() { panic(\"boom\") }",
            failure_says: "boom",
            files: json!([
                {"name": "main.go", "content": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"prog/util\"\n)\n\nfunc main() { fmt.Println(util.Greet(and)) }\n"},
                {"name": "words.go", "content": "package main\n\nconst and = \"and\"\n"},
                {"name": "util/greet.go", "content": "package util\n\n// Greet greets.\nfunc Greet(w string) string { return \"hello from main \" + w + \" helper\" }\n"},
            ]),
            fork_bomb: "package main\n\nimport \"os/exec\"\n\nfunc main() {\n\tfor {\n\t\t_ = exec.Command(\"/proc/self/exe\").Start()\n\t}\n}",
            memory_hog: "package main\n\nfunc main() {\n\tvar all [][]byte\n\tfor {\n\t\tb := make([]byte, 1<<24)\n\t\tfor i := 0; i < len(b); i += 4096 {\n\t\t\tb[i] = 1\n\t\t}\n\t\tall = append(all, b)\n\t}\n}",
            output_flood: "package main\n\nimport \"os\"\n\nfunc main() {\n\tfor {\n\t\tos.Stdout.WriteString(\"xxxxxxxxxxxxxxxx\")\n\t}\n}",
            peek: "package main\n\nimport (\n\t\"errors\"\n\t\"fmt\"\n\t\"io/fs\"\n\t\"os\"\n)\n\nfunc main() {\n\t_, err := os.Open(fmt.Sprintf(\"/proc/%d/mem\", os.Getppid()))\n\tif errors.Is(err, fs.ErrPermission) {\n\t\tfmt.Println(\"denied\")\n\t} else {\n\t\tfmt.Println(\"open\")\n\t}\n}",
        },
        Case {
            lang: "typescript",
            extension: "ts",
            broken: "const x: number = ;\n",
            compile_says: &["main.ts:1"],
            failing: "function fail(m: string): never { throw new Error(m); }\nfail(\"boom\");\n",
            failure_says: "boom",
            files: json!([
                {"name": "main.ts", "content": "import { greet } from \"./lib/greet\";\nimport { AND } from \"./words\";\nconsole.log(greet(AND));\n"},
                {"name": "lib/greet.ts", "content": "export function greet(w: string): string { return `hello from main ${w} helper`; }\n"},
                {"name": "words.ts", "content": "export const AND: string = \"and\";\n"},
            ]),
            fork_bomb: "const cp = require(\"child_process\");\nfor (;;) { try { cp.spawn(process.execPath, [__filename]); } catch (e) {} }\n",
            memory_hog: "const all: Buffer[] = [];\nfor (;;) all.push(Buffer.alloc(1 << 24, 1));\n",
            output_flood: "const s: string = \"x\".repeat(65536);\nfor (;;) process.stdout.write(s);\n",
            peek: "const fs = require(\"fs\");\ntry { fs.openSync(`/proc/${process.ppid}/mem`, \"r\"); console.log(\"open\"); } catch (e: any) { console.log(e.code === \"EACCES\" ? \"denied\" : \"open\"); }\n",
        },
    ]
}

/// The languages response tells each new language's extension and template; the
/// template greets the name read from stdin, or the world without one.
#[tokio::test]
async fn each_new_language_greets_fails_and_builds_several_files() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut c = Client::new(&state);
    let langs = c.get("/api/v1/languages").await.json();
    for case in cases() {
        let lang = case.lang;
        let info = langs
            .as_array()
            .and_then(|l| l.iter().find(|l| l["id"] == lang))
            .unwrap_or_else(|| panic!("{lang} missing: {langs:#}"))
            .clone();
        assert_eq!(info["extension"], case.extension, "{info:#}");
        assert_eq!(info["libraries"], json!([]), "{info:#}");
        let template = info["template"].as_str().unwrap();

        let run = c.run(lang, template, "Ada\nignored\n").await;
        assert_verdict(&run, "ok");
        assert_eq!(run["stdout"], "Hello, Ada!\n", "{lang}: {run:#}");
        assert_eq!(run["exit_code"], 0);
        let run = c.run(lang, template, "").await;
        assert_eq!(run["stdout"], "Hello, world!\n", "{lang}: {run:#}");

        let run = c.run(lang, case.broken, "").await;
        assert_verdict(&run, "compile_error");
        let out = run["compile_output"].as_str().unwrap();
        for says in case.compile_says {
            assert!(out.contains(says), "{lang}: {says}: {out}");
        }
        assert_eq!(run["stdout"], "");

        let run = c.run(lang, case.failing, "").await;
        assert_verdict(&run, "runtime_error");
        assert_ne!(run["exit_code"], 0, "{lang}: {run:#}");
        assert!(
            run["stderr"].as_str().unwrap().contains(case.failure_says),
            "{lang}: {run:#}"
        );

        let r = c
            .post_json(
                "/api/v1/runs?wait=true",
                &json!({"language": lang, "files": case.files}),
            )
            .await;
        assert_eq!(r.status, 200, "{lang}: {}", r.text());
        let run = r.json();
        assert_verdict(&run, "ok");
        assert_eq!(
            run["stdout"], "hello from main and helper\n",
            "{lang}: {run:#}"
        );
    }
    finish(state).await;
}

#[tokio::test]
async fn hostile_programs_in_every_new_language_get_their_verdicts() {
    // Room for the memory hogs to reach the limit on a loaded machine: Go's took over 3 s
    // of wall time with 2 cores shared by 20 runnable processes. A fork bomb waits it out.
    let state = common::state_with(&[("POOL_SIZE", "1"), ("RUN_TIME_LIMIT_MS", "10000")]).await;
    let mut c = Client::new(&state);
    for case in cases() {
        let lang = case.lang;
        let run = c.run(lang, case.fork_bomb, "").await;
        assert!(
            ["time_limit", "runtime_error", "memory_limit"]
                .contains(&run["verdict"].as_str().unwrap()),
            "{lang} fork bomb: {run:#}"
        );

        let run = c.run(lang, case.memory_hog, "").await;
        assert_verdict(&run, "memory_limit");

        let run = c.run(lang, case.output_flood, "").await;
        // Node keeps writes the pipe cannot take at once in its own memory: for TypeScript
        // whichever limit the flood reaches first ends it (seen: memory_limit in one CI run).
        if lang == "typescript" && run["verdict"] == "memory_limit" {
            assert_eq!(run["status"], "finished");
        } else {
            assert_verdict(&run, "output_limit");
            assert_eq!(run["truncated"], true);
            assert_eq!(run["stdout"].as_str().unwrap().len(), 64 * 1024, "{lang}");
        }

        let run = c.run(lang, case.peek, "").await;
        assert_verdict(&run, "ok");
        assert_eq!(run["stdout"], "denied\n", "{lang}: {run:#}");

        // The language still runs right after.
        let run = c.run(lang, case.failing, "").await;
        assert_verdict(&run, "runtime_error");
    }
    finish(state).await;
}

/// numpy is in the Python image and the languages response says so.
#[tokio::test]
async fn python_has_numpy() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let langs = c.get("/api/v1/languages").await.json();
    let python = langs
        .as_array()
        .and_then(|l| l.iter().find(|l| l["id"] == "python"))
        .cloned()
        .unwrap();
    assert_eq!(python["libraries"], json!(["numpy 1.24"]), "{python:#}");
    assert_eq!(python["extension"], "py");
    let run = c
        .run(
            "python",
            "import numpy as np\na = np.arange(6).reshape(2, 3)\nprint(a.sum(axis=0).tolist(), np.__version__[:4])",
            "",
        )
        .await;
    assert_verdict(&run, "ok");
    assert_eq!(run["stdout"], "[3, 5, 7] 1.24\n", "{run:#}");
    finish(state).await;
}
