//! Types shared by the server and the browser: what the API and the pages exchange.

use serde::{Deserialize, Serialize};

/// One language as clients see it (`GET /api/v1/languages`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanguageInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub template: String,
}

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Finished,
}

/// How a finished run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    CompileError,
    RuntimeError,
    TimeLimit,
    MemoryLimit,
    OutputLimit,
    Stopped,
    InternalError,
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
        }
    }
}

/// A run, exactly as `API.md` describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
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
    pub truncated: bool,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl Run {
    /// A one-line summary for the status bar: "OK · exit 0 · 14 ms · 8.2 MB".
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
        if let Some(kb) = self.memory_kb {
            parts.push(format!("{:.1} MB", kb as f64 / 1024.0));
        }
        parts.join(" · ")
    }
}

/// An error as the API and the pages show it: `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicError {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

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
            id: "x".into(),
            language: "python".into(),
            status: RunStatus::Finished,
            verdict: Some(Verdict::Ok),
            exit_code: Some(0),
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            compile_output: String::new(),
            time_ms: Some(14),
            memory_kb: Some(8397),
            truncated: false,
            created_at: String::new(),
            finished_at: None,
        };
        assert_eq!(run.summary(), "OK · exit 0 · 14 ms · 8.2 MB");
    }
}
