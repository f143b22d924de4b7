//! Types shared by the server and the browser: what the API and the pages exchange.

use serde::{Deserialize, Serialize};

pub mod highlight;
pub mod share;
pub mod url;

pub use share::{ShareLink, SharedRun};

/// One language as clients see it (`GET /api/v1/languages`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LanguageInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub template: String,
    /// The file a single `code` is written to (`main.py`, `Main.java`).
    pub source_file: String,
    /// The extension of the language's source files, without the dot (`"py"`).
    pub extension: String,
    /// What the image holds beyond the standard library (`"numpy 1.24"`); empty if nothing.
    #[serde(default)]
    pub libraries: Vec<String>,
    /// The limits a run may choose: defaults and caps.
    pub limits: LanguageLimits,
}

/// One file of a program (`files` in a run request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SourceFile {
    /// Path inside the work dir: `[A-Za-z0-9_.-]{1,64}`, at most one directory level.
    pub name: String,
    pub content: String,
}

/// Limits of one run: as requested (absent fields take the language's defaults), and as
/// applied (both set) in a user's run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RunLimits {
    /// Wall-clock time of the program, in milliseconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_number"
    )]
    pub time_ms: Option<u64>,
    /// Memory of the program's container, in MiB.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole_number"
    )]
    pub memory_mb: Option<u64>,
}

/// A JSON number that is a whole number, however written (`2000` or `2000.0`: JSON does
/// not tell them apart, and JSON Schema's `integer` takes both); `null` is none.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Whole(u64),
        Written(f64),
    }
    match Option::<Number>::deserialize(d)? {
        None => Ok(None),
        Some(Number::Whole(v)) => Ok(Some(v)),
        // Saturates above u64::MAX: the cap check then names the cap.
        Some(Number::Written(v)) if v >= 0.0 && v.fract() == 0.0 => Ok(Some(v as u64)),
        Some(Number::Written(v)) => Err(serde::de::Error::custom(format!(
            "expected a whole number of at least 0, found {v}"
        ))),
    }
}

/// One limit's default and the most a run may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LimitRange {
    pub default: u64,
    pub max: u64,
}

/// A language's limits (`GET /api/v1/languages`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LanguageLimits {
    pub time_ms: LimitRange,
    pub memory_mb: LimitRange,
}

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum RunStatus {
    Queued,
    Running,
    Finished,
}

/// How a finished run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Verdict {
    Ok,
    CompileError,
    RuntimeError,
    TimeLimit,
    MemoryLimit,
    OutputLimit,
    Stopped,
    InternalError,
    /// The executor node running the program went away mid-run (cluster roles); the run
    /// is not run again.
    ExecutorLost,
}

impl Verdict {
    /// The words a person reads on the badge.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::CompileError => "Compile error",
            Verdict::RuntimeError => "Runtime error",
            Verdict::TimeLimit => "Time limit",
            Verdict::MemoryLimit => "Memory limit",
            Verdict::OutputLimit => "Output truncated",
            Verdict::Stopped => "Stopped",
            Verdict::InternalError => "Internal error",
            Verdict::ExecutorLost => "Executor lost",
        }
    }

    /// The snake_case id, as in the API and as a CSS class.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::CompileError => "compile_error",
            Verdict::RuntimeError => "runtime_error",
            Verdict::TimeLimit => "time_limit",
            Verdict::MemoryLimit => "memory_limit",
            Verdict::OutputLimit => "output_limit",
            Verdict::Stopped => "stopped",
            Verdict::InternalError => "internal_error",
            Verdict::ExecutorLost => "executor_lost",
        }
    }
}

/// A run, exactly as `API.md` describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Run {
    /// Always set in the API; defaulted only so that a stored record (which keeps the id
    /// as `_id`) can be read without it.
    #[serde(default)]
    pub id: String,
    pub language: String,
    pub status: RunStatus,
    pub verdict: Option<Verdict>,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub compile_output: String,
    pub time_ms: Option<u64>,
    pub memory_kb: Option<u64>,
    /// CPU time the program used; null until finished (and in runs stored before it
    /// was measured).
    #[serde(default)]
    pub cpu_time_ms: Option<u64>,
    pub truncated: bool,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// The source, on a user's own runs (history); absent for guests' runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The input, on a user's own runs (history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// The files, on a user's own runs made of files (instead of `code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<SourceFile>>,
    /// The entry file, on a user's own runs made of files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<String>,
    /// The program's arguments, on a user's own runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// The limits the run had (both set), on a user's own runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<RunLimits>,
    /// For a user's run: whether it is stored in the history. `false` means the history
    /// store was unavailable when the run finished and this run is not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<bool>,
    /// The run takes input while it runs (`POST /api/v1/runs/{id}/stdin`); absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interactive: bool,
}

impl Run {
    /// A run that has just been accepted: queued, no output, no figures yet.
    pub fn new(
        id: impl Into<String>,
        language: impl Into<String>,
        created_at: impl Into<String>,
    ) -> Run {
        Run {
            id: id.into(),
            language: language.into(),
            status: RunStatus::Queued,
            verdict: None,
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            compile_output: String::new(),
            time_ms: None,
            memory_kb: None,
            cpu_time_ms: None,
            truncated: false,
            created_at: created_at.into(),
            finished_at: None,
            code: None,
            stdin: None,
            files: None,
            main: None,
            args: None,
            limits: None,
            saved: None,
            interactive: false,
        }
    }

    /// A one-line summary for the status bar: "OK · exit 0 · 14 ms · CPU 9 ms · 8.2 MB".
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.verdict {
            parts.push(v.label().to_string());
        }
        if let Some(sig) = &self.signal {
            parts.push(sig.clone());
        } else if let Some(code) = self.exit_code {
            parts.push(format!("exit {code}"));
        }
        if let Some(ms) = self.time_ms {
            parts.push(format!("{ms} ms"));
        }
        if let Some(ms) = self.cpu_time_ms {
            parts.push(format!("CPU {ms} ms"));
        }
        if let Some(kb) = self.memory_kb {
            parts.push(format!("{:.1} MB", kb as f64 / 1024.0));
        }
        parts.join(" · ")
    }
}

/// An error as the API and the pages show it: `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PublicError {
    pub code: String,
    pub message: String,
}

/// What a user is told when a finished run could not be kept in the history.
pub const UNSAVED: &str =
    "This run finished, but it could not be saved to your history: the database is unavailable right now.";

/// The signed-in user as pages and the API show it. Never carries the password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserInfo {
    pub id: String,
    pub username: String,
}

/// A guest's daily allowance as the editor shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window ends and the count starts again.
    pub reset_seconds: u64,
}

/// One page of a user's history (`GET /api/v1/history`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    pub items: Vec<Run>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

/// Usernames: 3 to 32 of `[A-Za-z0-9_.-]`. Returns the sentence to show, or `None`.
pub fn username_problem(name: &str) -> Option<&'static str> {
    let n = name.chars().count();
    if n < 3 {
        Some("Choose a username of at least 3 characters.")
    } else if n > 32 {
        Some("Usernames are at most 32 characters long.")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Some("Use only letters, digits, and _ . - in a username.")
    } else {
        None
    }
}

/// Passwords: 8 to 128 characters. Returns the sentence to show, or `None`.
pub fn password_problem(password: &str) -> Option<&'static str> {
    let n = password.chars().count();
    if n < 8 {
        Some("Passwords need at least 8 characters.")
    } else if n > 128 {
        Some("Passwords are at most 128 characters long.")
    } else {
        None
    }
}

/// Why a program's file name is refused, or `None`: one or two parts (`dir/name`) of 1
/// to 64 of `[A-Za-z0-9_.-]`, none starting with `.` or `-` (so no `..`, no hidden files,
/// and no name a compiler could read as an option).
pub fn file_name_problem(name: &str) -> Option<&'static str> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 2 {
        return Some("at most one directory level (dir/name).");
    }
    for part in parts {
        if part.is_empty() || part.len() > 64 {
            return Some("each part of a name has 1 to 64 characters.");
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Some("use only letters, digits, and _ . - (and one / for a directory).");
        }
        if part.starts_with('.') || part.starts_with('-') {
            return Some("a name may not start with . or -.");
        }
    }
    None
}

/// Splits an arguments line as a shell would split words (no expansion): blanks
/// separate, single quotes keep everything, double quotes keep all but `\"` and `\\`,
/// a backslash outside quotes keeps the next character. `None` for an open quote.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if let Some(w) = word.take() {
                    args.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\') => w.push(c),
                            c => {
                                w.push('\\');
                                w.push(c);
                            }
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(String::new);
                if let Some(c) = chars.next() {
                    w.push(c);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    args.extend(word);
    Some(args)
}

/// The arguments as one line that [`split_args`] splits back into them.
pub fn join_args(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.,/:=+@%".contains(&b));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "24 hours", "1 hour", "15 minutes", "1 minute", "30 seconds".
pub fn wait_words(secs: u64) -> String {
    if secs >= 5400 {
        format!("{} hours", (secs + 1800) / 3600)
    } else if secs >= 3600 {
        "1 hour".into()
    } else if secs >= 120 {
        format!("{} minutes", secs.div_ceil(60))
    } else if secs >= 60 {
        "1 minute".into()
    } else if secs == 1 {
        "1 second".into()
    } else {
        format!("{secs} seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_numbers_however_written() {
        let limits = |s: &str| serde_json::from_str::<RunLimits>(s);
        let l = limits(r#"{"time_ms": 2000.0, "memory_mb": 64}"#).unwrap();
        assert_eq!((l.time_ms, l.memory_mb), (Some(2000), Some(64)));
        assert_eq!(limits(r#"{"time_ms": null}"#).unwrap().time_ms, None);
        assert_eq!(limits("{}").unwrap().time_ms, None);
        assert_eq!(
            limits(r#"{"time_ms": 1e30}"#).unwrap().time_ms,
            Some(u64::MAX)
        );
        for bad in [
            r#"{"time_ms": 1.5}"#,
            r#"{"time_ms": -1}"#,
            r#"{"time_ms": "5"}"#,
        ] {
            assert!(limits(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn verdict_serialises_in_snake_case() {
        assert_eq!(
            serde_json::to_string(&Verdict::CompileError).unwrap(),
            "\"compile_error\""
        );
        assert_eq!(Verdict::TimeLimit.as_str(), "time_limit");
    }

    #[test]
    fn summary_reads_like_the_status_line() {
        let run = Run {
            status: RunStatus::Finished,
            verdict: Some(Verdict::Ok),
            exit_code: Some(0),
            time_ms: Some(14),
            memory_kb: Some(8397),
            ..Run::new("x", "python", "")
        };
        assert_eq!(run.summary(), "OK · exit 0 · 14 ms · 8.2 MB");
        let run = Run {
            cpu_time_ms: Some(9),
            ..run
        };
        assert_eq!(run.summary(), "OK · exit 0 · 14 ms · CPU 9 ms · 8.2 MB");
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        assert_eq!(username_problem("ada"), None);
        assert_eq!(username_problem("a.b-c_9"), None);
        assert!(username_problem("ab").is_some());
        assert!(username_problem(&"a".repeat(33)).is_some());
        assert!(username_problem("ada lovelace").is_some());
        assert!(username_problem("adä").is_some());
        assert_eq!(password_problem("12345678"), None);
        assert!(password_problem("1234567").is_some());
        assert!(password_problem(&"x".repeat(129)).is_some());
    }

    #[test]
    fn argument_lines_split_like_a_shell_and_join_back() {
        let split = |s: &str| split_args(s).unwrap();
        assert_eq!(split("  a  b\tc "), ["a", "b", "c"]);
        assert_eq!(
            split("'one two' \"x \\\"y\\\"\" z\\ w ''"),
            ["one two", "x \"y\"", "z w", ""]
        );
        assert_eq!(split("a'b'\"c\""), ["abc"]);
        assert!(split("").is_empty());
        assert_eq!(split_args("'open"), None);
        assert_eq!(split_args("\"open"), None);
        for args in [
            vec![
                "plain",
                "with space",
                "",
                "it's",
                "$HOME",
                "a\"b",
                "back\\slash",
            ],
            vec!["héllo", "*", "--flag=1"],
        ] {
            let args: Vec<String> = args.into_iter().map(String::from).collect();
            assert_eq!(split(&join_args(&args)), args);
        }
    }

    #[test]
    fn file_names_are_checked() {
        for ok in ["main.py", "util/helper.py", "Main.java", "a-b_c.d", "x"] {
            assert_eq!(file_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a/b/c", "..", "../a", ".env", "-o", "a b", "é", "a\\b",
        ] {
            assert!(file_name_problem(bad).is_some(), "{bad}");
        }
        assert!(file_name_problem(&"x".repeat(65)).is_some());
        assert!(file_name_problem(&"x".repeat(64)).is_none());
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(wait_words(86400), "24 hours");
        assert_eq!(wait_words(3700), "1 hour");
        assert_eq!(wait_words(900), "15 minutes");
        assert_eq!(wait_words(61), "1 minute");
        assert_eq!(wait_words(30), "30 seconds");
    }
}
