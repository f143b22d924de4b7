//! The wrapper protocol: the shell that is each container's own process, what goes into
//! its stdin (nonce, source, the program's stdin) and the nonce-framed reports it writes
//! back (the compile report, the run's trailer with exit code and stats).
//!
//! Trust model: the nonce is never in argv or the environment, and the shell has consumed
//! it from the pipe before the program starts, so the program cannot print a valid report
//! (anything it prints, fake markers included, stays its output). A program that ptraces
//! or reads the memory of its ancestors could learn the nonce and forge the report, but
//! only to lie about its own exit code, peak memory and OOM flag: the run time is measured
//! outside the container, and the memory limit is enforced by the cgroup either way (see
//! `verdict`, which believes the figures only where they cannot flatter the program).

use super::container::STATS_FILE;
use super::languages::Language;
use base64::Engine as _;

/// A fresh random nonce for one run's reports.
pub(super) fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Everything the wrapper shell reads, written at once: the nonce line, the source as one
/// base64 line (no quoting problems, no files from the host), then the program's stdin,
/// which the shell's `read`s leave alone.
pub(super) fn input(nonce: &str, code: &str, stdin: &str) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(code);
    format!("{nonce}\n{encoded}\n{stdin}").into_bytes()
}

/// The run step: the wrapper shell around GNU time around the language's run command.
pub(super) fn run_command(lang: &Language) -> Vec<String> {
    [
        "sh",
        "-c",
        &run_script(lang),
        "sh",
        "/usr/bin/time",
        "-f",
        "%M",
        "-o",
        STATS_FILE,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(lang.run.iter().map(|s| s.to_string()))
    .collect()
}

/// The wrapper shell (`sh -c SCRIPT sh /usr/bin/time ... PROGRAM...`), the container's
/// own process. It reads the nonce line and the source line from stdin and writes the
/// source file. Compiled languages then compile (stdin closed, all output to stderr) and
/// report on stderr `MARK nonce MARK exit-code MARK nonce MARK`, going on only after a
/// clean compile. Then it runs the program (not with `exec`: it has to report
/// afterwards) and writes the trailer: on stdout `MARK nonce MARK exit-code \n stats
/// MARK nonce MARK`, where the stats are GNU time's file and the cgroup's OOM counters,
/// read with shell built-ins (no fork); and on stderr an empty trailer `MARK nonce MARK
/// MARK nonce MARK`.
fn run_script(lang: &Language) -> String {
    let compile = match lang.compile {
        Some(compile) => format!(
            r#"{compile} </dev/null 1>&2
c=$?
printf '\036%s\036%s\036%s\036' "$n" "$c" "$n" >&2
[ "$c" = 0 ] || exit "$c"
"#
        ),
        None => String::new(),
    };
    // The CPU time of the container's cgroup (v1 cpuacct, or v2 cpu.stat) before and
    // after the program, read with shell built-ins.
    format!(
        r#"IFS= read -r n || exit
IFS= read -r s || exit
printf %s "$s" | base64 -d > {source} || exit
{compile}cpu() {{ t=; {{ read -r t < /sys/fs/cgroup/cpuacct/cpuacct.usage || while read -r k v; do [ "$k" = usage_usec ] && t=${{v}}000; done < /sys/fs/cgroup/cpu.stat; }} 2>/dev/null; }}
cpu; t0=$t
"$@"
c=$?
cpu
s=
[ -n "$t0" ] && [ -n "$t" ] && s="cpu_ns $((t - t0))
"
for f in {STATS_FILE} /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do
[ -f "$f" ] && [ -r "$f" ] && {{ while IFS= read -r l || [ -n "$l" ]; do s="$s$l
"; done < "$f"; }} 2>/dev/null
done
printf '\036%s\036%s\n%s\036%s\036' "$n" "$c" "$s" "$n"
printf '\036%s\036\036%s\036' "$n" "$n" >&2
exit "$c""#,
        source = lang.source_file,
    )
}

/// The compiler's exit code from the body of a compile report (`-1` if unreadable).
pub(super) fn compile_code(body: &[u8]) -> i64 {
    String::from_utf8_lossy(body).trim().parse().unwrap_or(-1)
}

/// The body of a run's stdout trailer: the exit code, then the stats text.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Report {
    pub code: i64,
    pub stats: Stats,
}

impl Report {
    pub fn parse(body: &[u8]) -> Option<Report> {
        let text = String::from_utf8_lossy(body);
        let (code, stats) = text.split_once('\n')?;
        Some(Report {
            code: code.trim().parse().ok()?,
            stats: Stats::parse(stats),
        })
    }
}

/// What the container recorded about a finished program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Stats {
    pub max_rss_kb: Option<u64>,
    pub signal: Option<i64>,
    pub oom_killed: bool,
    /// CPU time of the container's cgroup while the program ran.
    pub cpu_ns: Option<u64>,
}

impl Stats {
    fn parse(text: &str) -> Stats {
        let mut s = Stats::default();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("Command terminated by signal ") {
                s.signal = rest.trim().parse().ok();
            } else if let Some(n) = line.strip_prefix("cpu_ns ") {
                s.cpu_ns = n.trim().parse().ok();
            } else if let Some(n) = line.strip_prefix("oom_kill ") {
                s.oom_killed |= n.trim().parse::<u64>().map(|n| n > 0).unwrap_or(false);
            } else if let Ok(kb) = line.parse::<u64>() {
                s.max_rss_kb = Some(kb);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_parse_time_and_cgroup_output() {
        let s = Stats::parse("Command terminated by signal 9\n69540\n\noom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
        assert_eq!(
            s,
            Stats {
                max_rss_kb: Some(69540),
                signal: Some(9),
                oom_killed: true,
                cpu_ns: None,
            }
        );
        let s =
            Stats::parse("cpu_ns 28954000\n7672\n\noom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
        assert_eq!(
            s,
            Stats {
                max_rss_kb: Some(7672),
                signal: None,
                oom_killed: false,
                cpu_ns: Some(28954000),
            }
        );
        let r = Report::parse(b"137\nCommand terminated by signal 9\n69540\noom_kill 1\n").unwrap();
        assert_eq!(
            r,
            Report {
                code: 137,
                stats: Stats {
                    max_rss_kb: Some(69540),
                    signal: Some(9),
                    oom_killed: true,
                    cpu_ns: None,
                }
            }
        );
        // The exit code line is not taken for a peak memory figure.
        assert_eq!(Report::parse(b"0\n").unwrap().stats, Stats::default());
        assert_eq!(Report::parse(b"x\n1\n"), None);
        assert_eq!(Report::parse(b"0"), None);
    }

    #[test]
    fn compile_report_and_input_framing() {
        assert_eq!(compile_code(b" 1\n"), 1);
        assert_eq!(compile_code(b"0"), 0);
        assert_eq!(compile_code(b"nope"), -1);
        let framed = String::from_utf8(input("abc", "print(1)", "x\ny")).unwrap();
        assert_eq!(framed, "abc\ncHJpbnQoMSk=\nx\ny");
    }
}
