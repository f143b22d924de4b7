//! The supervisor protocol (docs/SANDBOX.md): the static supervisor baked into every
//! runtime image is each container's own process; the engine gives it its argv, writes
//! its stdin (a header with the nonce, the source files, then the program's stdin) and
//! reads back its nonce-framed reports (`C` for the compile step, `R` for the run).
//!
//! Trust model: the nonce is never in argv, the environment or a file, the supervisor
//! consumes it from the pipe before any fork and makes itself non-dumpable first, so the
//! program can neither read it (`/proc/<pid>/mem`, `/fd`, ptrace) nor print a valid
//! report: anything it prints, fake reports included, stays its output. The figures come
//! from `wait4` and the cgroup, read by the supervisor, never from a file the program can
//! write. The program can kill the supervisor (same user): then there is no report, and
//! the engine reports no exit status rather than invent one.

use super::languages::Language;

/// Where the supervisor lives in every runtime image.
pub(super) const SUPERVISOR: &str = "/usr/local/libexec/own-ide/supervisor";

/// A fresh random nonce for one run's reports (32 lowercase hex digits).
pub(super) fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Everything the supervisor reads, written at once: the header `<nonce> <payload_len>`
/// (then, for an interactive run, ` cpu=<s>`, the program's CPU-time limit, and ` tty`
/// when the language wants a terminal), the payload (one record
/// `<name> <size>\n<bytes>` for the source file), then the program's stdin, which the
/// supervisor leaves in the pipe.
pub(super) fn input(
    nonce: &str,
    lang: &Language,
    code: &str,
    stdin: &str,
    cpu_limit_s: Option<u64>,
) -> Vec<u8> {
    let mut payload = format!("{} {}\n", lang.source_file, code.len()).into_bytes();
    payload.extend_from_slice(code.as_bytes());
    let cpu = match cpu_limit_s {
        Some(s) if lang.tty => format!(" cpu={s} tty"),
        Some(s) => format!(" cpu={s}"),
        None => String::new(),
    };
    let mut all = format!("{nonce} {}{cpu}\n", payload.len()).into_bytes();
    all.extend_from_slice(&payload);
    all.extend_from_slice(stdin.as_bytes());
    all
}

/// The container's command: the supervisor, the compile command (if any) and the run
/// command. The JVM gets a heap ceiling of twice the container's memory limit, so that a
/// program exhausting memory is killed by the cgroup (a fact the supervisor reports)
/// rather than ending in an `OutOfMemoryError` it could as well print.
pub(super) fn command(lang: &Language, memory_bytes: i64) -> Vec<String> {
    let mut argv = vec![SUPERVISOR.to_string()];
    if let Some(compile) = lang.compile {
        argv.push("--compile".into());
        argv.push(compile.into());
    }
    argv.push("--".into());
    for (i, arg) in lang.run.iter().enumerate() {
        argv.push(arg.to_string());
        if i == 0 && *arg == "java" {
            argv.push(format!("-Xmx{}m", memory_bytes * 2 / (1024 * 1024)));
        }
    }
    argv
}

/// What the supervisor reported about one step (`C` or `R`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Report {
    /// Exit status, when the process exited.
    pub exit: Option<i64>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i64>,
    pub cpu_ms: u64,
    pub rss_kb: u64,
    /// The program's wall time (run reports only).
    pub wall_ms: Option<u64>,
    /// The memory cgroup killed a process during the step.
    pub oom: bool,
}

impl Report {
    /// Parses a report body `K exit=<n|-> signal=<n|-> cpu_ms=<n> rss_kb=<n>
    /// [wall_ms=<n>] oom=<0|1>` of kind `K`; `None` for anything else.
    pub fn parse(body: &[u8], kind: char) -> Option<Report> {
        let text = std::str::from_utf8(body).ok()?;
        let mut words = text.split(' ');
        if words.next()? != kind.to_string() {
            return None;
        }
        let mut r = Report::default();
        let (mut exit, mut signal, mut cpu, mut rss, mut oom) = (false, false, false, false, false);
        let opt = |v: &str| -> Option<Option<i64>> {
            if v == "-" {
                Some(None)
            } else {
                v.parse().ok().map(Some)
            }
        };
        for word in words {
            let (key, value) = word.split_once('=')?;
            match key {
                "exit" => (r.exit, exit) = (opt(value)?, true),
                "signal" => (r.signal, signal) = (opt(value)?, true),
                "cpu_ms" => (r.cpu_ms, cpu) = (value.parse().ok()?, true),
                "rss_kb" => (r.rss_kb, rss) = (value.parse().ok()?, true),
                "wall_ms" => r.wall_ms = Some(value.parse().ok()?),
                "oom" => {
                    r.oom = match value {
                        "0" => false,
                        "1" => true,
                        _ => return None,
                    };
                    oom = true;
                }
                _ => return None,
            }
        }
        (exit && signal && cpu && rss && oom && (r.exit.is_some() != r.signal.is_some()))
            .then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::sandbox::languages::find;

    #[test]
    fn reports_parse_exactly() {
        assert_eq!(
            Report::parse(
                b"R exit=0 signal=- cpu_ms=12 rss_kb=7672 wall_ms=30 oom=0",
                'R'
            ),
            Some(Report {
                exit: Some(0),
                signal: None,
                cpu_ms: 12,
                rss_kb: 7672,
                wall_ms: Some(30),
                oom: false,
            })
        );
        assert_eq!(
            Report::parse(b"C exit=- signal=9 cpu_ms=1 rss_kb=2 oom=1", 'C'),
            Some(Report {
                exit: None,
                signal: Some(9),
                cpu_ms: 1,
                rss_kb: 2,
                wall_ms: None,
                oom: true,
            })
        );
        // Wrong kind, missing or unknown fields, both or neither of exit and signal.
        assert_eq!(
            Report::parse(b"C exit=0 signal=- cpu_ms=1 rss_kb=2 oom=0", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=0 signal=- cpu_ms=1 oom=0", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=0 signal=- cpu_ms=1 rss_kb=2 oom=0 x=1", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=0 signal=9 cpu_ms=1 rss_kb=2 oom=0", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=- signal=- cpu_ms=1 rss_kb=2 oom=0", 'R'),
            None
        );
        assert_eq!(
            Report::parse(b"R exit=0 signal=- cpu_ms=1 rss_kb=2 oom=2", 'R'),
            None
        );
        assert_eq!(Report::parse(b"", 'R'), None);
    }

    #[test]
    fn input_and_command_follow_the_protocol() {
        let py = find("python").unwrap();
        let framed = String::from_utf8(input("abc", py, "print(1)", "x\ny", None)).unwrap();
        assert_eq!(framed, "abc 18\nmain.py 8\nprint(1)x\ny");
        let framed = String::from_utf8(input("abc", py, "print(1)", "", Some(5))).unwrap();
        assert_eq!(framed, "abc 18 cpu=5\nmain.py 8\nprint(1)");
        let cpp = find("cpp").unwrap();
        let framed = String::from_utf8(input("abc", cpp, "int main(){}", "", Some(5))).unwrap();
        assert!(
            framed.starts_with("abc 24 cpu=5 tty\nmain.cpp 12\n"),
            "{framed}"
        );
        assert_eq!(
            command(py, 256 << 20),
            [SUPERVISOR, "--", "python3", "-u", "main.py"]
        );
        let java = find("java").unwrap();
        let argv = command(java, 512 << 20);
        assert_eq!(argv[1], "--compile");
        let run = argv.iter().position(|a| a == "--").unwrap();
        assert_eq!(&argv[run + 1..run + 3], ["java", "-Xmx1024m"]);
    }
}
