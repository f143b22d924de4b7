//! A shared run: the immutable public snapshot behind `/s/{slug}`.

use super::{Run, RunStatus, SourceFile, Verdict};
use serde::{Deserialize, Serialize};

/// A run as anyone with its link sees it (`GET /api/v1/shares/{slug}`): what was run,
/// its input, output and verdict, frozen when it was shared. It never names its owner
/// or the run it was taken from. Fields added to runs later (files, arguments, limits)
/// join it as optional fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SharedRun {
    /// The share's id, as in its link `/s/{slug}`.
    pub slug: String,
    /// The language id (`GET /api/v1/languages`).
    pub language: String,
    /// The program when it was one file; with `files`, the main file's content.
    pub code: String,
    /// The program's files, when it had several (`main` names the entry file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<SourceFile>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<String>,
    /// The program's command-line arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    pub stdin: String,
    pub verdict: Verdict,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub compile_output: String,
    pub time_ms: Option<u64>,
    pub memory_kb: Option<u64>,
    pub cpu_time_ms: Option<u64>,
    pub truncated: bool,
    /// When the run was made (RFC 3339).
    pub ran_at: String,
    /// When it was shared (RFC 3339).
    pub shared_at: String,
    /// When the link stops working (RFC 3339); null: it works until its creator revokes it.
    pub expires_at: Option<String>,
}

/// The answer to `POST /api/v1/runs/{id}/share`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ShareLink {
    /// Short, unguessable and URL-safe: 11 characters of `[A-Za-z0-9]`.
    pub slug: String,
    /// The page anyone can open: `<origin>/s/{slug}`.
    pub url: String,
}

impl SharedRun {
    /// The snapshot of a finished run (`None` while it has not finished, or without its
    /// code). `slug` and the times are the share's.
    pub fn of(
        run: &Run,
        slug: String,
        shared_at: String,
        expires_at: Option<String>,
    ) -> Option<SharedRun> {
        if run.status != RunStatus::Finished {
            return None;
        }
        let code = match (&run.code, &run.files) {
            (Some(code), _) => code.clone(),
            (None, Some(files)) => files
                .iter()
                .find(|f| Some(&f.name) == run.main.as_ref())
                .or(files.first())
                .map(|f| f.content.clone())
                .unwrap_or_default(),
            (None, None) => return None,
        };
        Some(SharedRun {
            slug,
            language: run.language.clone(),
            code,
            files: run.files.clone(),
            main: run.files.as_ref().and(run.main.clone()),
            args: run.args.clone().unwrap_or_default(),
            stdin: run.stdin.clone().unwrap_or_default(),
            verdict: run.verdict?,
            exit_code: run.exit_code,
            signal: run.signal.clone(),
            stdout: run.stdout.clone(),
            stderr: run.stderr.clone(),
            compile_output: run.compile_output.clone(),
            time_ms: run.time_ms,
            memory_kb: run.memory_kb,
            cpu_time_ms: run.cpu_time_ms,
            truncated: run.truncated,
            ran_at: run.created_at.clone(),
            shared_at,
            expires_at,
        })
    }

    /// The snapshot as a finished run without an id, for the views that show runs (the
    /// output panel, the status line) and for a fork in the editor.
    pub fn as_run(&self) -> Run {
        Run {
            status: RunStatus::Finished,
            verdict: Some(self.verdict),
            exit_code: self.exit_code,
            signal: self.signal.clone(),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            compile_output: self.compile_output.clone(),
            time_ms: self.time_ms,
            memory_kb: self.memory_kb,
            cpu_time_ms: self.cpu_time_ms,
            truncated: self.truncated,
            finished_at: Some(self.ran_at.clone()),
            code: self.files.is_none().then(|| self.code.clone()),
            files: self.files.clone(),
            main: self.main.clone(),
            args: Some(self.args.clone()),
            stdin: Some(self.stdin.clone()),
            ..Run::new("", self.language.clone(), self.ran_at.clone())
        }
    }

    /// The first `n` non-empty lines of the code, for link previews.
    pub fn first_lines(&self, n: usize) -> String {
        self.code
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(n)
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Slugs are 11 characters of `[A-Za-z0-9]`; anything else is never looked up.
pub fn is_slug(s: &str) -> bool {
    s.len() == SLUG_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The length of a slug: 11 base-62 characters hold about 65 bits of randomness.
pub const SLUG_LEN: usize = 11;

#[cfg(test)]
mod tests {
    use super::*;

    fn finished() -> Run {
        Run {
            status: RunStatus::Finished,
            verdict: Some(Verdict::Ok),
            exit_code: Some(0),
            stdout: "hi\n".into(),
            code: Some("\n\nprint('hi')\nx = 1\ny = 2\n".into()),
            stdin: None,
            ..Run::new(
                "0123456789abcdef0123456789abcdef",
                "python",
                "2026-11-26T10:00:00Z",
            )
        }
    }

    #[test]
    fn only_finished_runs_with_code_make_snapshots() {
        let s = SharedRun::of(&finished(), "abcdefghijk".into(), "t".into(), None).unwrap();
        assert_eq!(
            (s.code.as_str(), s.stdin.as_str(), s.verdict),
            ("\n\nprint('hi')\nx = 1\ny = 2\n", "", Verdict::Ok)
        );
        assert_eq!(s.first_lines(2), "print('hi')\nx = 1");
        let json = serde_json::to_value(&s).unwrap();
        assert!(
            json.get("id").is_none() && json.get("owner").is_none(),
            "{json}"
        );
        let running = Run {
            status: RunStatus::Running,
            ..finished()
        };
        assert!(SharedRun::of(&running, "s".into(), "t".into(), None).is_none());
        let no_code = Run {
            code: None,
            ..finished()
        };
        assert!(SharedRun::of(&no_code, "s".into(), "t".into(), None).is_none());
        assert_eq!(s.as_run().stdout, "hi\n");
    }

    #[test]
    fn slugs_are_checked() {
        assert!(is_slug("aZ09bY18cX2"));
        assert!(!is_slug("aZ09bY18cX"));
        assert!(!is_slug("aZ09bY18c-2"));
        assert!(!is_slug("../../etc/x"));
    }
}
