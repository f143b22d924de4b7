//! Forgery attempts against the supervisor: each program tries to make the engine report
//! something other than what happened, and the reported verdict, exit code, signal and
//! memory must be the true ones (or carry no figure at all, never a lie).

mod common;

use common::{assert_verdict, finish, Client};
use serde_json::Value;

/// The program reads and writes its supervisor through /proc and ptrace: every door is
/// shut, and its own exit code is reported.
#[tokio::test]
async fn the_supervisor_cannot_be_read_traced_or_written() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let code = r#"#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <unistd.h>
static const char *err(int ok) { return ok ? "opened" : strerrorname_np(errno); }
int main() {
    char path[64];
    pid_t sup = getppid();
    snprintf(path, sizeof path, "/proc/%d/mem", sup);
    printf("mem-r %s\n", err(open(path, O_RDONLY) >= 0));
    printf("mem-w %s\n", err(open(path, O_WRONLY) >= 0));
    snprintf(path, sizeof path, "/proc/%d/fd", sup);
    printf("fd %s\n", err(opendir(path) != nullptr));
    snprintf(path, sizeof path, "/proc/%d/fd/0", sup);
    printf("fd0 %s\n", err(open(path, O_RDONLY) >= 0));
    printf("ptrace %s\n", err(ptrace(PTRACE_ATTACH, sup, nullptr, nullptr) == 0));
    return 5;
}
"#;
    let run = c.run("cpp", code, "").await;
    assert_verdict(&run, "runtime_error");
    assert_eq!(run["exit_code"], 5, "{run:#}");
    assert_eq!(
        run["stdout"], "mem-r EACCES\nmem-w EACCES\nfd EACCES\nfd0 EACCES\nptrace EPERM\n",
        "{run:#}"
    );
    finish(state).await;
}

/// Reports with a guessed nonce, a hand-written figures file and a printed
/// `OutOfMemoryError` are only output.
#[tokio::test]
async fn printed_reports_and_figures_are_only_output() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let code = r#"import sys
z = '0' * 32
sys.stdout.write(f'\x1e{z}\x1eR exit=0 signal=- cpu_ms=1 rss_kb=1 wall_ms=1 oom=1\x1e{z}\x1e')
sys.stdout.flush()
sys.stderr.write(f'\x1e{z}\x1e\x1e{z}\x1e')
sys.stderr.flush()
for f in ['/tmp/.own-ide-time', '/work/.own-ide-time']:
    open(f, 'w').write('Command terminated by signal 9\n1\noom_kill 1\n')
print('java.lang.OutOfMemoryError: Java heap space', file=sys.stderr)
sys.exit(3)
"#;
    let run = c.run("python", code, "").await;
    assert_verdict(&run, "runtime_error");
    assert_eq!(run["exit_code"], 3, "{run:#}");
    assert_eq!(run["signal"], Value::Null);
    assert!(
        run["stdout"].as_str().unwrap().contains("R exit=0"),
        "{run:#}"
    );
    assert!(run["memory_kb"].as_u64().unwrap() > 1000, "{run:#}");

    // The JVM's words printed by a program that exits normally, and thrown by one.
    let java = |body: &str| {
        format!("public class Main {{ public static void main(String[] a) {{ {body} }} }}")
    };
    let run = c
        .run(
            "java",
            &java(
                "System.err.println(\"Exception in thread \\\"main\\\" java.lang.OutOfMemoryError: Java heap space\");",
            ),
            "",
        )
        .await;
    assert_verdict(&run, "ok");
    assert_eq!(run["exit_code"], 0);
    let run = c
        .run("java", &java("throw new OutOfMemoryError(\"fake\");"), "")
        .await;
    assert_verdict(&run, "runtime_error");
    assert_eq!(run["exit_code"], 1, "{run:#}");
    finish(state).await;
}

/// The program holds no descriptor but 0-2, and closing or duplicating its own changes
/// nothing about the report.
#[tokio::test]
async fn descriptors_hold_nothing_of_the_supervisor() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let code = r#"#include <cstdio>
#include <fcntl.h>
#include <unistd.h>
int main() {
    int open_fds = 0, highest = -1;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) != -1) { open_fds++; highest = fd; }
    printf("%d %d\n", open_fds, highest);
    fflush(stdout);
    dup2(1, 2);
    close(0);
    close(1);
    close(2);
    return 4;
}
"#;
    let run = c.run("cpp", code, "").await;
    assert_verdict(&run, "runtime_error");
    assert_eq!(run["stdout"], "3 2\n", "{run:#}");
    assert_eq!(run["exit_code"], 4, "{run:#}");
    finish(state).await;
}

/// Killing the supervisor, alone or with everything else of the user: under runc its
/// pid 1 ignores the signal and the program's true exit code is reported; where it can
/// be killed (runsc), the run has no exit status at all. Never a
/// success, never an invented figure.
#[tokio::test]
async fn a_killed_supervisor_is_never_a_lie() {
    let state = common::state_with(&[("POOL_SIZE", "0")]).await;
    let mut c = Client::new(&state);
    let no_status = |run: &Value| {
        run["exit_code"].is_null()
            && run["signal"].is_null()
            && run["stderr"]
                .as_str()
                .unwrap()
                .contains("supervisor was killed")
    };
    let run = c
        .run(
            "python",
            "import os, signal, sys\nprint('hi', flush=True)\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\nsys.exit(6)",
            "",
        )
        .await;
    assert_verdict(&run, "runtime_error");
    assert!(no_status(&run) || run["exit_code"] == 6, "{run:#}");
    let run = c
        .run(
            "python",
            "import os, signal, sys\ntry:\n    os.kill(1, signal.SIGKILL)\nexcept OSError:\n    pass\nsys.exit(7)",
            "",
        )
        .await;
    assert_verdict(&run, "runtime_error");
    assert!(no_status(&run) || run["exit_code"] == 7, "{run:#}");
    finish(state).await;
}

/// Real exhaustion is a memory limit in Python and in Java (the cgroup's kill, not the
/// JVM's exception), and a segmentation fault is a signal.
#[tokio::test]
async fn real_memory_hogs_and_signals_get_their_verdicts() {
    let state = common::state_with(&[("POOL_SIZE", "0"), ("RUN_TIME_LIMIT_MS", "10000")]).await;
    let mut c = Client::new(&state);
    let run = c
        .run(
            "python",
            "x = []\nwhile True:\n    x.append(bytearray(10**7))",
            "",
        )
        .await;
    assert_verdict(&run, "memory_limit");
    assert_eq!(run["signal"], "SIGKILL");
    let run = c
        .run(
            "java",
            "import java.util.*;\npublic class Main { public static void main(String[] a) { List<long[]> l = new ArrayList<>(); while (true) { long[] b = new long[1 << 20]; Arrays.fill(b, 1); l.add(b); } } }",
            "",
        )
        .await;
    assert_verdict(&run, "memory_limit");
    assert!(
        !run["stderr"].as_str().unwrap().contains("OutOfMemoryError"),
        "the cgroup, not the JVM, ended it: {run:#}"
    );
    let run = c
        .run(
            "cpp",
            "int main() { volatile int *p = nullptr; *p = 1; return 0; }",
            "",
        )
        .await;
    assert_verdict(&run, "runtime_error");
    assert_eq!(run["signal"], "SIGSEGV", "{run:#}");
    assert_eq!(run["exit_code"], Value::Null);
    finish(state).await;
}
