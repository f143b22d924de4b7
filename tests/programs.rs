//! Programs as people write them, against the real Docker engine: several files,
//! arguments, and limits chosen per run (and every refusal of a bad request).

mod common;

use common::{assert_verdict, finish, Client};
use serde_json::{json, Value};

/// Runs `body` through `POST /api/v1/runs?wait=true`; the finished run.
async fn run(c: &mut Client, body: Value) -> Value {
    let r = c.post_json("/api/v1/runs?wait=true", &body).await;
    assert_eq!(r.status, 200, "run failed: {}", r.text());
    r.json()
}

/// Arguments no shell may touch: spaces, quotes, globs, variables, an empty one, UTF-8.
fn tricky_args() -> Vec<&'static str> {
    vec!["one two", "", "$HOME", "*", "'; rm -rf / #", "héllo"]
}

#[tokio::test]
async fn programs_of_several_files_run_and_see_their_arguments() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut c = Client::new(&state);
    let args = tricky_args();
    let expected = format!("{}\n{}\n", "hello from main and helper", args.join("|"));
    let cases = [
        (
            "python",
            json!([
                {"name": "main.py", "content": "import sys\nfrom helper import greet\nfrom pkg.words import AND\nprint(greet(AND))\nprint('|'.join(sys.argv[1:]))\n"},
                {"name": "helper.py", "content": "def greet(w):\n    return 'hello from main ' + w + ' helper'\n"},
                {"name": "pkg/words.py", "content": "AND = 'and'\n"},
            ]),
            None,
        ),
        (
            "javascript",
            json!([
                {"name": "lib/helper.js", "content": "exports.greet = (w) => `hello from main ${w} helper`;\n"},
                {"name": "words.js", "content": "module.exports = { AND: 'and' };\n"},
                {"name": "app.js", "content": "const { greet } = require('./lib/helper');\nconst { AND } = require('./words');\nconsole.log(greet(AND));\nconsole.log(process.argv.slice(2).join('|'));\n"},
            ]),
            Some("app.js"),
        ),
        (
            "cpp",
            json!([
                {"name": "main.cpp", "content": "#include <iostream>\n#include \"util/greet.h\"\nint main(int argc, char** argv){ std::cout << greet() << \"\\n\"; for (int i = 1; i < argc; i++) std::cout << (i > 1 ? \"|\" : \"\") << argv[i]; std::cout << \"\\n\"; }\n"},
                {"name": "util/greet.h", "content": "#include <string>\nstd::string greet();\nstd::string word();\n"},
                {"name": "util/greet.cpp", "content": "#include \"greet.h\"\nstd::string greet(){ return \"hello from main \" + word() + \" helper\"; }\n"},
                {"name": "word.cpp", "content": "#include <string>\nstd::string word(){ return \"and\"; }\n"},
            ]),
            None,
        ),
        (
            "java",
            json!([
                {"name": "Helper.java", "content": "class Helper { static String greet(String w){ return \"hello from main \" + w + \" helper\"; } }\n"},
                {"name": "Main.java", "content": "public class Main { public static void main(String[] a){ System.out.println(Helper.greet(app.Words.AND)); System.out.println(String.join(\"|\", a)); } }\n"},
                {"name": "app/Words.java", "content": "package app;\npublic class Words { public static final String AND = \"and\"; }\n"},
            ]),
            Some("Main.java"),
        ),
    ];
    for (lang, files, main) in cases {
        let mut body = json!({"language": lang, "files": files, "args": args});
        if let Some(m) = main {
            body["main"] = json!(m);
        }
        let r = run(&mut c, body).await;
        assert_verdict(&r, "ok");
        assert_eq!(r["stdout"], expected, "{lang}: {r:#}");
    }
    // A Java entry inside a package, found from its `package` line.
    let r = run(
        &mut c,
        json!({"language": "java", "main": "app/Start.java", "files": [
            {"name": "app/Start.java", "content": "/* entry */\npackage app;\npublic class Start { public static void main(String[] a){ System.out.println(Names.NAME + \" \" + a.length); } }\n"},
            {"name": "app/Names.java", "content": "package app;\nclass Names { static final String NAME = \"packaged\"; }\n"},
        ], "args": ["x", "y"]}),
    )
    .await;
    assert_verdict(&r, "ok");
    assert_eq!(r["stdout"], "packaged 2\n", "{r:#}");
    // A compile error names the file it is in.
    let r = run(
        &mut c,
        json!({"language": "cpp", "files": [
            {"name": "main.cpp", "content": "int helper();\nint main(){ return helper(); }\n"},
            {"name": "util/bad.cpp", "content": "int helper(){ return nope; }\n"},
        ]}),
    )
    .await;
    assert_verdict(&r, "compile_error");
    assert!(
        r["compile_output"]
            .as_str()
            .unwrap()
            .contains("util/bad.cpp"),
        "{r:#}"
    );
    // The single `code` of before is still one file.
    let r = c.run("python", "import sys\nprint(sys.argv)", "").await;
    assert_eq!(r["stdout"], "['main.py']\n");
    finish(state).await;
}

#[tokio::test]
async fn chosen_limits_are_enforced_and_the_defaults_are_not_those() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut c = Client::new(&state);
    let sleeper = "import time\ntime.sleep(2)\nprint('woke')\n";
    let r = run(
        &mut c,
        json!({"language": "python", "code": sleeper, "limits": {"time_ms": 1000}}),
    )
    .await;
    assert_verdict(&r, "time_limit");
    assert_eq!(r["stdout"], "");
    // The default limit lets the same program finish: the chosen one stopped it.
    let r = c.run("python", sleeper, "").await;
    assert_verdict(&r, "ok");
    assert_eq!(r["stdout"], "woke\n");

    // 100 MB, touched, under a 64 MB limit; then under the default.
    let hogs = [
        (
            "python",
            "b = bytearray(100 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('kept')\n",
        ),
        (
            "javascript",
            "const b = Buffer.alloc(100 * 1024 * 1024, 1);\nconsole.log(b[5] === 1 ? 'kept' : 'no');\n",
        ),
        (
            "cpp",
            "#include <cstdio>\n#include <cstring>\n#include <cstdlib>\nint main(){ size_t n = 100u << 20; volatile char* p = (volatile char*)malloc(n); for (size_t i = 0; i < n; i += 4096) p[i] = 1; long s = 0; for (size_t i = 0; i < n; i += 4096) s += p[i]; printf(\"%s\\n\", s == (long)(n / 4096) ? \"kept\" : \"no\"); }\n",
        ),
        (
            "java",
            "public class Main { public static void main(String[] a){ byte[][] k = new byte[100][]; for (int i = 0; i < 100; i++) { k[i] = new byte[1 << 20]; java.util.Arrays.fill(k[i], (byte) 1); } System.out.println(\"kept\"); } }\n",
        ),
    ];
    for (lang, code) in hogs {
        let r = run(
            &mut c,
            json!({"language": lang, "code": code, "limits": {"memory_mb": 64}}),
        )
        .await;
        assert_verdict(&r, "memory_limit");
        let r = c.run(lang, code, "").await;
        assert_verdict(&r, "ok");
        assert_eq!(r["stdout"], "kept\n", "{lang}: {r:#}");
    }
    finish(state).await;
}

#[tokio::test]
async fn limits_are_told_and_caps_refused() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let langs = c.get("/api/v1/languages").await.json();
    let by_id = |id: &str| {
        langs
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        by_id("python")["limits"],
        json!({"time_ms": {"default": 5000, "max": 5000}, "memory_mb": {"default": 256, "max": 256}})
    );
    assert_eq!(by_id("java")["limits"]["memory_mb"]["max"], 512);
    for (limits, needle) in [
        (json!({"time_ms": 5001}), "5000 ms"),
        (json!({"memory_mb": 257}), "256 MB"),
    ] {
        let r = c
            .post_json(
                "/api/v1/runs",
                &json!({"language": "python", "code": "print(1)", "limits": limits}),
            )
            .await;
        assert_eq!(r.status, 422);
        assert_eq!(r.json()["error"]["code"], "limit_above_cap");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{msg}");
    }
    assert_eq!(
        state.engine.count_containers().await.unwrap(),
        0,
        "refused requests start nothing"
    );
    finish(state).await;
}

#[tokio::test]
async fn every_bad_program_is_refused_by_name_and_starts_nothing() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let f = |n: &str| json!({"name": n, "content": "print(1)"});
    let many: Vec<Value> = (0..21).map(|i| f(&format!("f{i}.py"))).collect();
    let cases = [
        (
            json!({"code": "print(1)", "files": [f("a.py")]}),
            422,
            "code_and_files",
            "either code or files",
        ),
        (json!({"files": []}), 422, "empty_code", "no code"),
        (json!({"files": many}), 422, "too_many_files", "at most 20"),
        (
            json!({"files": [f("main.py"), f("../x.py")]}),
            422,
            "invalid_file_name",
            "\"../x.py\"",
        ),
        (
            json!({"files": [f("main.py"), f("a/b/c.py")]}),
            422,
            "invalid_file_name",
            "\"a/b/c.py\"",
        ),
        (
            json!({"files": [f("main.py"), f(".hidden.py")]}),
            422,
            "invalid_file_name",
            "\".hidden.py\"",
        ),
        (
            json!({"files": [f("main.py"), f("main.py")]}),
            422,
            "duplicate_file_name",
            "\"main.py\"",
        ),
        (
            json!({"files": [f("main.py")], "main": "other.py"}),
            422,
            "unknown_main",
            "\"other.py\"",
        ),
        (
            json!({"files": [f("notes.txt")]}),
            422,
            "invalid_main",
            "\"notes.txt\"",
        ),
        (
            json!({"files": [f("main.py")], "args": vec!["a"; 33]}),
            422,
            "too_many_args",
            "at most 32",
        ),
        (
            json!({"files": [f("main.py")], "args": ["ok", "x".repeat(1025)]}),
            422,
            "invalid_arg",
            "Argument 2",
        ),
        (
            json!({"files": [f("main.py")], "args": ["a\u{0}b"]}),
            422,
            "invalid_arg",
            "NUL",
        ),
        (
            json!({"files": [f("main.py")], "limits": {"time_ms": 0}}),
            422,
            "limit_below_minimum",
            "time_ms",
        ),
        (
            json!({"files": [{"name": "a.py", "content": "x".repeat(40_000)}, {"name": "b.py", "content": "x".repeat(40_000)}]}),
            413,
            "payload_too_large",
            "65536",
        ),
    ];
    for (mut body, status, code, needle) in cases {
        body["language"] = json!("python");
        let r = c.post_json("/api/v1/runs", &body).await;
        assert_eq!(r.status, status, "{code}: {}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["code"], code, "{}", r.text());
        assert!(
            e["message"].as_str().unwrap().contains(needle),
            "{code}: {}",
            r.text()
        );
    }
    assert_eq!(state.engine.count_containers().await.unwrap(), 0);
    finish(state).await;
}

#[tokio::test]
async fn a_users_run_keeps_its_files_arguments_and_limits() {
    let state = common::state_with(&[("POOL_SIZE", "1")]).await;
    let mut user = Client::new(&state);
    user.sign_up("programs").await;
    let files = json!([
        {"name": "main.py", "content": "import sys, helper\nprint(helper.X, sys.argv[1])\n"},
        {"name": "helper.py", "content": "X = 7\n"},
    ]);
    let r = run(
        &mut user,
        json!({"language": "python", "files": files, "main": "main.py", "args": ["a b"], "limits": {"memory_mb": 128}}),
    )
    .await;
    assert_verdict(&r, "ok");
    assert_eq!(r["stdout"], "7 a b\n");
    let id = r["id"].as_str().unwrap().to_string();
    for run in [
        r.clone(),
        user.get(&format!("/api/v1/runs/{id}")).await.json(),
        user.get("/api/v1/history").await.json()["items"][0].clone(),
    ] {
        assert_eq!(run["id"], id.as_str());
        assert_eq!(run["files"], files, "{run:#}");
        assert_eq!(run["main"], "main.py");
        assert_eq!(run["args"], json!(["a b"]));
        assert_eq!(
            run["limits"],
            json!({"time_ms": 5000, "memory_mb": 128}),
            "the limits it ran with"
        );
        assert!(run.get("code").is_none());
    }
    // A guest's run keeps none of it.
    let mut guest = Client::new(&state);
    let r = run(
        &mut guest,
        json!({"language": "python", "files": files, "args": ["x"]}),
    )
    .await;
    for field in ["files", "main", "args", "limits", "code"] {
        assert!(r.get(field).is_none(), "{field}: {r:#}");
    }
    finish(state).await;
}
