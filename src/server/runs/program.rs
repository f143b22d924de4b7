//! The one check of a run request (both faces, REST and server functions, come through
//! `Runs::validate`): the language, the code or files, the entry file, the arguments and
//! the limits, turned into the program the engine runs. Nothing here has side effects.

use super::NewRun;
use crate::error::AppError;
use crate::model::{file_name_problem, SourceFile};
use crate::server::config::SandboxConfig;
use crate::server::sandbox::{self, Language, Program};
use std::collections::HashSet;
use std::time::Duration;

/// At most this many files in one run.
pub const MAX_FILES: usize = 20;
/// At most this many arguments.
pub const MAX_ARGS: usize = 32;
/// Each argument is at most this many bytes.
pub const MAX_ARG_BYTES: usize = 1024;
/// The least time limit a run may choose, in milliseconds.
pub const MIN_TIME_MS: u64 = 100;
/// The least memory limit a run may choose, in MiB (Docker refuses less than 6).
pub const MIN_MEMORY_MB: u64 = 16;

fn invalid(code: &'static str, message: String) -> AppError {
    AppError::invalid(code, message)
}

/// Checks `req` against the configuration and returns its language and program.
pub fn check(req: &NewRun, cfg: &SandboxConfig) -> Result<(&'static Language, Program), AppError> {
    let lang = sandbox::find_language(&req.language).ok_or_else(|| {
        let known: Vec<&str> = sandbox::LANGUAGES.iter().map(|l| l.id).collect();
        invalid(
            "unknown_language",
            format!(
                "Unknown language \"{}\". Choose one of: {}.",
                req.language,
                known.join(", ")
            ),
        )
    })?;
    let (files, main) = files(req, lang, cfg)?;
    let stdin = req.stdin.as_deref().unwrap_or("");
    if stdin.len() > cfg.max_stdin_bytes {
        return Err(AppError::PayloadTooLarge(format!(
            "The input is {} bytes; the limit is {} bytes.",
            stdin.len(),
            cfg.max_stdin_bytes
        )));
    }
    let args = args(req.args.as_deref().unwrap_or_default())?;
    let caps = lang.limits(cfg);
    let asked = req.limits.unwrap_or_default();
    let time_ms = limit(
        "time_ms",
        "ms",
        asked.time_ms,
        MIN_TIME_MS,
        caps.time_ms,
        lang,
    )?;
    let memory_mb = limit(
        "memory_mb",
        "MB",
        asked.memory_mb,
        MIN_MEMORY_MB,
        caps.memory_mb,
        lang,
    )?;
    Ok((
        lang,
        Program {
            files,
            main,
            args,
            time: Duration::from_millis(time_ms),
            time_chosen: asked.time_ms.is_some(),
            memory_mb,
        },
    ))
}

/// The program's files and entry file: `code` as the language's one source file, or the
/// checked `files` and `main`.
fn files(
    req: &NewRun,
    lang: &Language,
    cfg: &SandboxConfig,
) -> Result<(Vec<SourceFile>, String), AppError> {
    let files = match (&req.code, &req.files) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "code_and_files",
                "Give either code or files, not both.".into(),
            ))
        }
        (None, None) => return Err(invalid("empty_code", "There is no code to run.".into())),
        (Some(code), None) => {
            if req.main.is_some() {
                return Err(invalid(
                    "invalid_main",
                    "main names an entry among files; with code there is only one file.".into(),
                ));
            }
            vec![SourceFile {
                name: lang.source_file.into(),
                content: code.clone(),
            }]
        }
        (None, Some(files)) => files.clone(),
    };
    if files.len() > MAX_FILES {
        return Err(invalid(
            "too_many_files",
            format!(
                "There are {} files; a run has at most {MAX_FILES}.",
                files.len()
            ),
        ));
    }
    let total: usize = files.iter().map(|f| f.content.len()).sum();
    if total > cfg.max_code_bytes {
        return Err(AppError::PayloadTooLarge(format!(
            "The code is {total} bytes; the limit is {} bytes.",
            cfg.max_code_bytes
        )));
    }
    if files.iter().all(|f| f.content.trim().is_empty()) {
        return Err(invalid("empty_code", "There is no code to run.".into()));
    }
    let mut names = HashSet::new();
    let mut dirs = HashSet::new();
    for f in &files {
        if let Some(problem) = file_name_problem(&f.name) {
            return Err(invalid(
                "invalid_file_name",
                format!("The file name \"{}\" is not allowed: {problem}", f.name),
            ));
        }
        if !names.insert(f.name.as_str()) {
            return Err(invalid(
                "duplicate_file_name",
                format!("There are two files named \"{}\".", f.name),
            ));
        }
        if let Some((dir, _)) = f.name.split_once('/') {
            dirs.insert(dir);
        }
        if f.content.contains('\0') {
            return Err(invalid(
                "invalid_code",
                format!("The file \"{}\" contains a NUL character.", f.name),
            ));
        }
    }
    if let Some(both) = dirs.iter().find(|d| names.contains(*d)) {
        return Err(invalid(
            "duplicate_file_name",
            format!("\"{both}\" is both a file and a directory."),
        ));
    }
    let main = match &req.main {
        None => files[0].name.clone(),
        Some(main) if names.contains(main.as_str()) => main.clone(),
        Some(main) => {
            return Err(invalid(
                "unknown_main",
                format!("main names \"{main}\", which is not one of the files."),
            ))
        }
    };
    let ext = format!(".{}", lang.extension());
    if !main.ends_with(&ext) {
        return Err(invalid(
            "invalid_main",
            format!(
                "The entry file of a {} program must end in {ext}; \"{main}\" does not.",
                lang.name
            ),
        ));
    }
    Ok((files, main))
}

fn args(args: &[String]) -> Result<Vec<String>, AppError> {
    if args.len() > MAX_ARGS {
        return Err(invalid(
            "too_many_args",
            format!(
                "There are {} arguments; a run has at most {MAX_ARGS}.",
                args.len()
            ),
        ));
    }
    for (i, a) in args.iter().enumerate() {
        if a.len() > MAX_ARG_BYTES {
            return Err(invalid(
                "invalid_arg",
                format!(
                    "Argument {} is {} bytes; the limit is {MAX_ARG_BYTES} bytes.",
                    i + 1,
                    a.len()
                ),
            ));
        }
        if a.contains('\0') {
            return Err(invalid(
                "invalid_arg",
                format!("Argument {} contains a NUL character.", i + 1),
            ));
        }
    }
    Ok(args.to_vec())
}

/// A chosen limit within `[min, cap]`, or the default when none was chosen.
fn limit(
    field: &str,
    unit: &str,
    asked: Option<u64>,
    min: u64,
    range: crate::model::LimitRange,
    lang: &Language,
) -> Result<u64, AppError> {
    match asked {
        None => Ok(range.default),
        Some(v) if v > range.max => Err(invalid(
            "limit_above_cap",
            format!(
                "limits.{field} is {v}; this server's cap for {} is {} {unit}.",
                lang.name, range.max
            ),
        )),
        Some(v) if v < min => Err(invalid(
            "limit_below_minimum",
            format!("limits.{field} is {v}; the least is {min} {unit}."),
        )),
        Some(v) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunLimits;

    fn req(files: &[(&str, &str)]) -> NewRun {
        NewRun {
            language: "python".into(),
            code: None,
            files: Some(
                files
                    .iter()
                    .map(|(n, c)| SourceFile {
                        name: n.to_string(),
                        content: c.to_string(),
                    })
                    .collect(),
            ),
            main: None,
            args: None,
            limits: None,
            stdin: None,
            interactive: false,
        }
    }

    fn refused(r: &NewRun) -> (String, String) {
        let cfg = SandboxConfig::default();
        let e = check(r, &cfg).map(|_| ()).unwrap_err().public();
        (e.code, e.message)
    }

    #[test]
    fn code_is_one_file_with_default_limits() {
        let cfg = SandboxConfig::default();
        let r = NewRun {
            code: Some("print(1)".into()),
            files: None,
            ..req(&[])
        };
        let (lang, p) = check(&r, &cfg).unwrap();
        assert_eq!(lang.id, "python");
        assert_eq!(p.main, "main.py");
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.files[0].content, "print(1)");
        assert_eq!(p.time, cfg.run_time_limit);
        assert_eq!(p.memory_mb, cfg.memory_mb);
        assert!(p.args.is_empty());
    }

    #[test]
    fn files_main_args_and_limits_are_taken() {
        let cfg = SandboxConfig::default();
        let r = NewRun {
            main: Some("app/run.py".into()),
            args: Some(vec!["a b".into(), "".into()]),
            limits: Some(RunLimits {
                time_ms: Some(1000),
                memory_mb: Some(64),
            }),
            ..req(&[("util.py", "X = 1"), ("app/run.py", "import util")])
        };
        let (_, p) = check(&r, &cfg).unwrap();
        assert_eq!(p.main, "app/run.py");
        assert_eq!(p.args, ["a b", ""]);
        assert_eq!(p.time, Duration::from_millis(1000));
        assert_eq!(p.memory_mb, 64);
        // Without main, the first file.
        let (_, p) = check(&req(&[("b.py", "1"), ("a.py", "2")]), &cfg).unwrap();
        assert_eq!(p.main, "b.py");
    }

    #[test]
    fn every_bad_request_is_named() {
        let two = NewRun {
            code: Some("x".into()),
            ..req(&[("a.py", "1")])
        };
        assert_eq!(refused(&two).0, "code_and_files");
        let none = NewRun {
            files: None,
            ..req(&[])
        };
        assert_eq!(refused(&none).0, "empty_code");
        assert_eq!(refused(&req(&[])).0, "empty_code");
        assert_eq!(refused(&req(&[("a.py", "  \n")])).0, "empty_code");
        let many: Vec<(String, &str)> = (0..21).map(|i| (format!("f{i}.py"), "1")).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(refused(&req(&many)).0, "too_many_files");
        for bad in [
            "../x.py",
            "a/../x.py",
            "a/b/c.py",
            "/x.py",
            ".x.py",
            "..",
            "-o.py",
            "a b.py",
            "a\\b.py",
            "",
            "dir/",
            "é.py",
            &"x".repeat(65),
        ] {
            let (code, msg) = refused(&req(&[("main.py", "1"), (bad, "2")]));
            assert_eq!(code, "invalid_file_name", "{bad}");
            assert!(msg.contains(&format!("\"{bad}\"")), "{msg}");
        }
        let (code, msg) = refused(&req(&[("a.py", "1"), ("a.py", "2")]));
        assert_eq!(code, "duplicate_file_name");
        assert!(msg.contains("\"a.py\""), "{msg}");
        let (code, msg) = refused(&req(&[("a.py", "1"), ("u", "2"), ("u/b.py", "3")]));
        assert_eq!(code, "duplicate_file_name");
        assert!(msg.contains("\"u\""), "{msg}");
        let (code, msg) = refused(&NewRun {
            main: Some("b.py".into()),
            ..req(&[("a.py", "1")])
        });
        assert_eq!(code, "unknown_main");
        assert!(msg.contains("\"b.py\""), "{msg}");
        let (code, msg) = refused(&req(&[("notes.txt", "1"), ("a.py", "2")]));
        assert_eq!(code, "invalid_main");
        assert!(
            msg.contains("\"notes.txt\"") && msg.contains(".py"),
            "{msg}"
        );
        assert_eq!(
            refused(&NewRun {
                code: Some("1".into()),
                files: None,
                main: Some("main.py".into()),
                ..req(&[])
            })
            .0,
            "invalid_main"
        );
        let (code, msg) = refused(&req(&[("a.py", "1"), ("b.py", "x\0")]));
        assert_eq!(code, "invalid_code");
        assert!(msg.contains("\"b.py\""), "{msg}");
        let big = "x".repeat(40 * 1024);
        let (code, _) = refused(&req(&[("a.py", &big), ("b.py", &big)]));
        assert_eq!(code, "payload_too_large");
        let with_args = |args: Vec<String>| NewRun {
            args: Some(args),
            ..req(&[("a.py", "1")])
        };
        assert_eq!(
            refused(&with_args(vec![String::new(); 33])).0,
            "too_many_args"
        );
        let (code, msg) = refused(&with_args(vec!["x".into(), "y".repeat(1025)]));
        assert_eq!(code, "invalid_arg");
        assert!(msg.contains("Argument 2"), "{msg}");
        assert_eq!(refused(&with_args(vec!["a\0b".into()])).0, "invalid_arg");
        let with_limits = |time_ms, memory_mb| NewRun {
            limits: Some(RunLimits { time_ms, memory_mb }),
            ..req(&[("a.py", "1")])
        };
        let (code, msg) = refused(&with_limits(Some(5001), None));
        assert_eq!(code, "limit_above_cap");
        assert!(msg.contains("5000 ms"), "{msg}");
        let (code, msg) = refused(&with_limits(None, Some(257)));
        assert_eq!(code, "limit_above_cap");
        assert!(msg.contains("256 MB"), "{msg}");
        assert_eq!(
            refused(&with_limits(Some(0), None)).0,
            "limit_below_minimum"
        );
        assert_eq!(
            refused(&with_limits(None, Some(8))).0,
            "limit_below_minimum"
        );
        let java = NewRun {
            language: "java".into(),
            limits: Some(RunLimits {
                time_ms: None,
                memory_mb: Some(512),
            }),
            ..req(&[("Main.java", "class Main {}")])
        };
        assert!(check(&java, &SandboxConfig::default()).is_ok());
    }
}
