//! The verdict rules: how a run's verdict, exit code, signal and peak memory follow from
//! how its step ended. Pure: no Docker, no I/O, so every rule is tested here.

use super::step::StepEnd;
use crate::model::Verdict;

/// Which step of a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Compile,
    Run,
}

/// What a run's outcome reports about how its program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Judgement {
    /// For the compile step, `Ok` means the program may run.
    pub verdict: Verdict,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub memory_kb: Option<u64>,
    pub cpu_time_ms: Option<u64>,
}

/// Decides the verdict of a step from how it `end`ed and the container's memory limit.
///
/// Only facts count: the supervisor's report (from `wait4` and the cgroup's OOM counter,
/// out of the program's reach), Docker's view of the container, and the engine's own
/// timers, stop and output cap. Nothing the program printed changes a verdict.
pub(super) fn judge(step: Step, end: &StepEnd, memory_limit_kb: u64) -> Judgement {
    let bare = |verdict| Judgement {
        verdict,
        exit_code: None,
        signal: None,
        memory_kb: None,
        cpu_time_ms: None,
    };
    match (step, end) {
        (Step::Compile, StepEnd::Compiled(r)) if r.exit == Some(0) => bare(Verdict::Ok),
        (Step::Compile, StepEnd::Compiled(r)) => Judgement {
            exit_code: r.exit,
            signal: r.signal.map(signal_name),
            ..bare(Verdict::CompileError)
        },
        // The supervisor ended by itself without its report (125: it refused its input),
        // or the container runtime failed (runsc has been seen to exit 2 with no output):
        // the sandbox's failure, not the program's. Only a signal can end it otherwise.
        (_, StepEnd::Vanished { code, .. }) if *code <= 128 => bare(Verdict::InternalError),
        // No compile report: the compiler never reached its end.
        (Step::Compile, StepEnd::Vanished { .. }) => bare(Verdict::CompileError),
        (Step::Compile, StepEnd::Exited(_)) | (Step::Run, StepEnd::Compiled(_)) => {
            bare(Verdict::InternalError)
        }
        (Step::Run, StepEnd::Exited(r)) => {
            let verdict = if r.oom {
                Verdict::MemoryLimit
            } else if r.exit == Some(0) {
                Verdict::Ok
            } else {
                Verdict::RuntimeError
            };
            Judgement {
                verdict,
                exit_code: r.exit,
                signal: r.signal.map(signal_name),
                memory_kb: Some(r.rss_kb.min(memory_limit_kb)),
                cpu_time_ms: Some(r.cpu_ms),
            }
        }
        // No report: the program killed its supervisor. How the program ended is not
        // known, and is not invented; only Docker's OOM flag is a fact.
        (Step::Run, StepEnd::Vanished { oom_killed, .. }) => bare(if *oom_killed {
            Verdict::MemoryLimit
        } else {
            Verdict::RuntimeError
        }),
        (Step::Compile, StepEnd::OutputCapped) => bare(Verdict::CompileError),
        (_, StepEnd::TimedOut) => bare(Verdict::TimeLimit),
        (_, StepEnd::Cancelled) => bare(Verdict::Stopped),
        (_, StepEnd::OutputCapped) => bare(Verdict::OutputLimit),
        (_, StepEnd::Failed(_) | StepEnd::DeadOnArrival) => bare(Verdict::InternalError),
    }
}

/// An interactive run's program has a CPU-time limit (its wall-clock limit is a
/// person's): killed by it (`SIGXCPU`, or `SIGKILL` a second later) after using that much
/// CPU, which only `wait4` measures, is a time limit. A program that raises either signal
/// itself without the CPU time stays a runtime error.
pub(super) fn cpu_limited(j: Judgement, limit_ms: u64) -> Judgement {
    let by_limit = matches!(j.signal.as_deref(), Some("SIGXCPU" | "SIGKILL"))
        // The kernel checks its own sampled CPU time, which `wait4`'s figure trails by
        // up to a few ticks per second of CPU.
        && j.cpu_time_ms.is_some_and(|cpu| cpu + (limit_ms / 5).max(200) >= limit_ms);
    if j.verdict == Verdict::RuntimeError && by_limit {
        Judgement {
            verdict: Verdict::TimeLimit,
            ..j
        }
    } else {
        j
    }
}

/// The usual name of a signal number.
pub fn signal_name(sig: i64) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// The signal number of a name [`signal_name`] gives (`"SIGSEGV"` → 11, `"signal 40"` → 40),
/// for clients that speak numbers.
pub fn signal_number(name: &str) -> Option<i64> {
    if let Some(n) = name.strip_prefix("signal ") {
        return n.parse().ok();
    }
    (1..=64).find(|&n| signal_name(n) == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_limit_of_an_interactive_run_is_a_time_limit() {
        let killed = |signal: &str, cpu: u64| Judgement {
            verdict: Verdict::RuntimeError,
            exit_code: None,
            signal: Some(signal.into()),
            memory_kb: Some(1),
            cpu_time_ms: Some(cpu),
        };
        assert_eq!(
            cpu_limited(killed("SIGXCPU", 5003), 5000).verdict,
            Verdict::TimeLimit
        );
        assert_eq!(
            cpu_limited(killed("SIGKILL", 6001), 5000).verdict,
            Verdict::TimeLimit
        );
        // Raised by the program itself, without the CPU time: its own doing.
        assert_eq!(
            cpu_limited(killed("SIGXCPU", 20), 5000).verdict,
            Verdict::RuntimeError
        );
        assert_eq!(
            cpu_limited(killed("SIGSEGV", 9000), 5000).verdict,
            Verdict::RuntimeError
        );
    }
    use crate::server::sandbox::protocol::Report;

    const LIMIT_KB: u64 = 256 * 1024;

    fn report(exit: Option<i64>, signal: Option<i64>, oom: bool) -> Report {
        Report {
            exit,
            signal,
            cpu_ms: 12,
            rss_kb: 7672,
            wall_ms: Some(20),
            oom,
        }
    }

    fn run(end: &StepEnd) -> Judgement {
        judge(Step::Run, end, LIMIT_KB)
    }

    fn compile(end: &StepEnd) -> Judgement {
        judge(Step::Compile, end, LIMIT_KB)
    }

    fn bare(verdict: Verdict) -> Judgement {
        Judgement {
            verdict,
            exit_code: None,
            signal: None,
            memory_kb: None,
            cpu_time_ms: None,
        }
    }

    #[test]
    fn a_clean_exit_is_ok_with_its_code_and_measures() {
        assert_eq!(
            run(&StepEnd::Exited(report(Some(0), None, false))),
            Judgement {
                verdict: Verdict::Ok,
                exit_code: Some(0),
                signal: None,
                memory_kb: Some(7672),
                cpu_time_ms: Some(12),
            }
        );
    }

    #[test]
    fn a_non_zero_exit_or_a_signal_is_a_runtime_error() {
        let j = run(&StepEnd::Exited(report(Some(3), None, false)));
        assert_eq!((j.verdict, j.exit_code), (Verdict::RuntimeError, Some(3)));
        let j = run(&StepEnd::Exited(report(None, Some(11), false)));
        assert_eq!(j.verdict, Verdict::RuntimeError);
        assert_eq!((j.exit_code, j.signal.as_deref()), (None, Some("SIGSEGV")));
    }

    #[test]
    fn memory_limit_only_from_the_cgroup() {
        let mut r = report(None, Some(9), true);
        r.rss_kb = LIMIT_KB + 10;
        let j = run(&StepEnd::Exited(r));
        assert_eq!(j.verdict, Verdict::MemoryLimit);
        assert_eq!(j.signal.as_deref(), Some("SIGKILL"));
        // Capped at the limit the kernel enforces.
        assert_eq!(j.memory_kb, Some(LIMIT_KB));
        // An exit 1 (say, after printing an OutOfMemoryError) without the cgroup's kill
        // is only a failure.
        let j = run(&StepEnd::Exited(report(Some(1), None, false)));
        assert_eq!(j.verdict, Verdict::RuntimeError);
    }

    #[test]
    fn a_killed_supervisor_is_no_exit_status() {
        let gone = |code, oom_killed| StepEnd::Vanished { code, oom_killed };
        assert_eq!(run(&gone(137, false)), bare(Verdict::RuntimeError));
        assert_eq!(run(&gone(137, true)), bare(Verdict::MemoryLimit));
        assert_eq!(run(&gone(143, false)), bare(Verdict::RuntimeError));
        // Ended without a signal and without its report: the sandbox failed.
        for code in [0, 1, 2, 125, 128] {
            assert_eq!(
                run(&gone(code, false)),
                bare(Verdict::InternalError),
                "{code}"
            );
            assert_eq!(compile(&gone(code, false)), bare(Verdict::InternalError));
        }
        assert_eq!(compile(&gone(137, false)), bare(Verdict::CompileError));
    }

    #[test]
    fn ends_without_an_exit_have_no_measures() {
        for step in [Step::Compile, Step::Run] {
            let j = |end| judge(step, &end, LIMIT_KB);
            assert_eq!(j(StepEnd::TimedOut), bare(Verdict::TimeLimit), "{step:?}");
            assert_eq!(j(StepEnd::Cancelled), bare(Verdict::Stopped), "{step:?}");
            let capped = match step {
                Step::Compile => Verdict::CompileError,
                Step::Run => Verdict::OutputLimit,
            };
            assert_eq!(j(StepEnd::OutputCapped), bare(capped), "{step:?}");
            assert_eq!(j(StepEnd::DeadOnArrival), bare(Verdict::InternalError));
            assert_eq!(
                j(StepEnd::Failed("docker gone".into())),
                bare(Verdict::InternalError),
                "{step:?}"
            );
        }
    }

    #[test]
    fn the_compile_report_decides_whether_the_program_runs() {
        let ok = StepEnd::Compiled(report(Some(0), None, false));
        assert_eq!(compile(&ok), bare(Verdict::Ok));
        let failed = compile(&StepEnd::Compiled(report(Some(1), None, false)));
        assert_eq!(
            failed,
            Judgement {
                exit_code: Some(1),
                ..bare(Verdict::CompileError)
            }
        );
        let killed = compile(&StepEnd::Compiled(report(None, Some(9), true)));
        assert_eq!(killed.verdict, Verdict::CompileError);
        assert_eq!(killed.signal.as_deref(), Some("SIGKILL"));
        // Reports in the wrong step are the engine's confusion.
        assert_eq!(run(&ok), bare(Verdict::InternalError));
        assert_eq!(
            compile(&StepEnd::Exited(report(Some(0), None, false))),
            bare(Verdict::InternalError)
        );
    }

    #[test]
    fn signals_have_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(11), "SIGSEGV");
        for n in 1..=64 {
            assert_eq!(signal_number(&signal_name(n)), Some(n));
        }
        assert_eq!(signal_name(64), "signal 64");
    }
}
