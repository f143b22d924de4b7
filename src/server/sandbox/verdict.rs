//! The verdict rules: how a run's verdict, exit code, signal and peak memory follow from
//! how its step ended. Pure: no Docker, no I/O, so every rule is tested here.

use super::languages::Language;
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

/// Decides the verdict of a step from how it `end`ed, the language, the container's
/// memory limit and the program's stderr (where the JVM reports running out of memory).
///
/// The program can write GNU time's file itself (same user, and GNU time writes it only
/// after the program ends). So its figures are only believed where they cannot flatter
/// or frame the program: the peak is capped at the cgroup's limit, which the kernel
/// enforces, and a signal counts only when the exit status says the program died of it.
pub(super) fn judge(
    step: Step,
    end: &StepEnd,
    lang: &Language,
    memory_limit_kb: u64,
    stderr: &str,
) -> Judgement {
    let bare = |verdict| Judgement {
        verdict,
        exit_code: None,
        signal: None,
        memory_kb: None,
        cpu_time_ms: None,
    };
    match (step, end) {
        (Step::Compile, StepEnd::Compiled(0)) => bare(Verdict::Ok),
        (Step::Compile, StepEnd::Compiled(code) | StepEnd::Exited { code, .. }) => Judgement {
            exit_code: Some(*code),
            ..bare(Verdict::CompileError)
        },
        (Step::Run, StepEnd::Exited { code, stats, .. }) => {
            let code = *code;
            let signal = stats.signal.filter(|sig| code == 128 + sig);
            let verdict = if stats.oom_killed
                || (lang.big_memory && stderr.contains("java.lang.OutOfMemoryError"))
            {
                Verdict::MemoryLimit
            } else if code == 0 {
                Verdict::Ok
            } else {
                Verdict::RuntimeError
            };
            Judgement {
                verdict,
                exit_code: if signal.is_some() { None } else { Some(code) },
                signal: signal.map(signal_name),
                memory_kb: stats.max_rss_kb.map(|kb| kb.min(memory_limit_kb)),
                cpu_time_ms: stats.cpu_ns.map(|ns| ns / 1_000_000),
            }
        }
        (Step::Run, StepEnd::Compiled(_)) => bare(Verdict::InternalError),
        // The compiler's diagnostics ran past the cap: the compile was stopped, and the
        // source is what produced them.
        (Step::Compile, StepEnd::OutputCapped) => bare(Verdict::CompileError),
        (_, StepEnd::TimedOut) => bare(Verdict::TimeLimit),
        (_, StepEnd::Cancelled) => bare(Verdict::Stopped),
        (_, StepEnd::OutputCapped) => bare(Verdict::OutputLimit),
        (_, StepEnd::Failed(_) | StepEnd::DeadOnArrival) => bare(Verdict::InternalError),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::sandbox::languages::find;
    use crate::server::sandbox::protocol::Stats;
    use std::time::Duration;

    const LIMIT_KB: u64 = 256 * 1024;

    fn exited(code: i64, stats: Stats) -> StepEnd {
        StepEnd::Exited {
            code,
            ran_for: Duration::from_millis(5),
            stats,
        }
    }

    fn run(end: &StepEnd, lang: &str, stderr: &str) -> Judgement {
        judge(Step::Run, end, find(lang).unwrap(), LIMIT_KB, stderr)
    }

    fn compile(end: &StepEnd) -> Judgement {
        judge(Step::Compile, end, find("cpp").unwrap(), LIMIT_KB, "")
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
    fn a_clean_exit_is_ok_with_its_code_and_memory() {
        let stats = Stats {
            max_rss_kb: Some(7672),
            cpu_ns: Some(3_400_000),
            ..Stats::default()
        };
        assert_eq!(
            run(&exited(0, stats), "python", ""),
            Judgement {
                verdict: Verdict::Ok,
                exit_code: Some(0),
                signal: None,
                memory_kb: Some(7672),
                cpu_time_ms: Some(3),
            }
        );
    }

    #[test]
    fn a_non_zero_exit_is_a_runtime_error() {
        let j = run(&exited(3, Stats::default()), "python", "Traceback");
        assert_eq!(j.verdict, Verdict::RuntimeError);
        assert_eq!(j.exit_code, Some(3));
        assert_eq!(j.signal, None);
        assert_eq!(j.memory_kb, None);
    }

    #[test]
    fn a_signal_is_reported_when_the_exit_status_agrees() {
        let stats = Stats {
            signal: Some(11),
            max_rss_kb: Some(1000),
            ..Stats::default()
        };
        let j = run(&exited(139, stats), "cpp", "");
        assert_eq!(j.verdict, Verdict::RuntimeError);
        assert_eq!(j.signal.as_deref(), Some("SIGSEGV"));
        assert_eq!(j.exit_code, None);
        assert_eq!(j.memory_kb, Some(1000));
    }

    #[test]
    fn a_signal_the_exit_status_denies_is_not_believed() {
        // The program wrote GNU time's file itself and exited normally.
        for code in [0, 1, 137] {
            let stats = Stats {
                signal: Some(11),
                ..Stats::default()
            };
            let j = run(&exited(code, stats), "cpp", "");
            assert_eq!(j.signal, None, "exit {code}");
            assert_eq!(j.exit_code, Some(code));
        }
        assert_eq!(
            run(
                &exited(
                    0,
                    Stats {
                        signal: Some(11),
                        ..Stats::default()
                    }
                ),
                "cpp",
                ""
            )
            .verdict,
            Verdict::Ok
        );
    }

    #[test]
    fn the_oom_flag_is_a_memory_limit_even_with_a_signal() {
        let stats = Stats {
            max_rss_kb: Some(LIMIT_KB + 10),
            signal: Some(9),
            oom_killed: true,
            cpu_ns: None,
        };
        assert_eq!(
            run(&exited(137, stats), "python", ""),
            Judgement {
                verdict: Verdict::MemoryLimit,
                exit_code: None,
                signal: Some("SIGKILL".into()),
                // Capped at the limit the kernel enforces.
                memory_kb: Some(LIMIT_KB),
                cpu_time_ms: None,
            }
        );
    }

    #[test]
    fn the_memory_figure_is_capped_at_the_limit() {
        let stats = Stats {
            max_rss_kb: Some(10 * LIMIT_KB),
            ..Stats::default()
        };
        let j = run(&exited(0, stats), "python", "");
        assert_eq!(j.verdict, Verdict::Ok);
        assert_eq!(j.memory_kb, Some(LIMIT_KB));
    }

    #[test]
    fn java_out_of_memory_is_a_memory_limit_only_for_the_jvm() {
        let oome = "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space";
        let j = run(&exited(1, Stats::default()), "java", oome);
        assert_eq!(j.verdict, Verdict::MemoryLimit);
        assert_eq!(j.exit_code, Some(1));
        // A Python program printing the same words has only failed.
        let j = run(&exited(1, Stats::default()), "python", oome);
        assert_eq!(j.verdict, Verdict::RuntimeError);
    }

    #[test]
    fn ends_without_an_exit_have_no_measures() {
        for step in [Step::Compile, Step::Run] {
            let lang = find("cpp").unwrap();
            let j = |end| judge(step, &end, lang, LIMIT_KB, "");
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
    fn a_clean_compile_lets_the_program_run() {
        assert_eq!(compile(&StepEnd::Compiled(0)), bare(Verdict::Ok));
    }

    #[test]
    fn a_failed_compile_is_a_compile_error_with_the_compiler_code() {
        assert_eq!(
            compile(&StepEnd::Compiled(1)),
            Judgement {
                exit_code: Some(1),
                ..bare(Verdict::CompileError)
            }
        );
        // The wrapper shell died before its report (say, the compiler was killed): the
        // container's exit code stands for the compiler's, and its stats mean nothing.
        let stats = Stats {
            max_rss_kb: Some(5),
            signal: Some(9),
            oom_killed: true,
            cpu_ns: None,
        };
        assert_eq!(
            compile(&exited(137, stats)),
            Judgement {
                exit_code: Some(137),
                ..bare(Verdict::CompileError)
            }
        );
    }

    #[test]
    fn a_compile_report_during_the_run_is_an_internal_error() {
        assert_eq!(
            run(&StepEnd::Compiled(0), "cpp", ""),
            bare(Verdict::InternalError)
        );
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(40), "signal 40");
    }
}
