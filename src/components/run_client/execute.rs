//! One run through the API: send the code, follow its live events to the result, and
//! ask for the run once more if the stream breaks first.

use super::client::Client;
use crate::model::{PublicError, QuotaInfo, Run, RunStatus};
use futures::StreamExt;
use gloo_net::eventsource::futures::EventSource;
use gloo_net::http::{Request, Response};
use leptos::prelude::*;

const OFFLINE: &str = "Could not reach the server. Check your connection and try again.";

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: PublicError,
}

#[derive(serde::Deserialize)]
struct Accepted {
    id: String,
}

#[derive(serde::Deserialize)]
struct Chunk {
    data: String,
}

impl Client {
    /// Runs the code in the editor; the error is what the status line should say.
    pub(super) async fn execute(self) -> Result<(), String> {
        let Some(id) = self.submit().await? else {
            return Ok(());
        };
        self.run_id.set(Some(id.clone()));
        let language = self.state.language.get_untracked();
        let interactive = self.state.interactive.get_untracked();
        self.state.typed.set(Vec::new());
        self.state.input_open.set(interactive);
        self.state.run.set(Some(Run {
            interactive,
            ..Run::new(id.clone(), language, "")
        }));
        let followed = self.follow(&id).await;
        self.state.input_open.set(false);
        if followed? {
            return Ok(());
        }
        self.recover(&id).await
    }

    /// Sends typed input to the run (through the server function); a run that has just
    /// ended takes none, and that is no error to show (its result says how it ended).
    pub(super) async fn send_input(self, id: &str, data: String, eof: bool) -> Result<(), String> {
        match crate::api::runs::send_stdin(id.to_string(), data, eof).await {
            Ok(()) => Ok(()),
            Err(e) if e.status() == 409 => Ok(()),
            Err(e) => Err(e.public().message),
        }
    }

    /// The request body for the program on screen: a plain single file as `code`,
    /// else `files` and `main`; arguments and limits when given. The error says what
    /// to fix.
    fn body(self) -> Result<serde_json::Value, String> {
        let lang = self.state.language.get_untracked();
        let draft = untrack(|| self.state.draft());
        let mut body = serde_json::json!({
            "language": lang,
            "stdin": self.state.stdin.get_untracked(),
            // Only when asked: a program that reads stdin otherwise waits for typing
            // nobody knows is expected (every template reads a name).
            "interactive": self.state.interactive.get_untracked(),
        });
        match self.language(&lang) {
            Some(info) if draft.is_single(&info) => {
                body["code"] = draft.files[0].content.clone().into();
            }
            _ => {
                body["files"] = serde_json::json!(draft.files);
                body["main"] = draft.main.clone().into();
            }
        }
        let args = crate::model::split_args(&draft.args)
            .ok_or("The arguments have a quote that is not closed.")?;
        if !args.is_empty() {
            body["args"] = serde_json::json!(args);
        }
        let mut limits = serde_json::Map::new();
        for (field, text, what) in [
            (
                "time_ms",
                &draft.time_ms,
                "The time limit is a whole number of milliseconds.",
            ),
            (
                "memory_mb",
                &draft.memory_mb,
                "The memory limit is a whole number of megabytes.",
            ),
        ] {
            let text = text.trim();
            if !text.is_empty() {
                let v: u64 = text.parse().map_err(|_| what.to_string())?;
                limits.insert(field.into(), v.into());
            }
        }
        if !limits.is_empty() {
            body["limits"] = limits.into();
        }
        Ok(body)
    }

    /// Sends the run: its id once accepted, `None` when the guest's daily quota refused it.
    async fn submit(self) -> Result<Option<String>, String> {
        let body = self.body()?;
        let resp = Request::post("/api/v1/runs")
            .json(&body)
            .map_err(|_| "Could not send the code.".to_string())?
            .send()
            .await
            .map_err(|_| OFFLINE.to_string())?;
        self.note_quota(&resp);
        match resp.status() {
            // A used-up guest quota: the quota note now invites the guest to sign in, no
            // error banner. Other refusals (too many runs in flight, a user's per-minute
            // rate) pass on, and will pass, so their message says what to wait for.
            429 => {
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                match resp.json::<ErrorBody>().await {
                    Ok(b) if b.error.code != "quota_exhausted" => {
                        self.hold(retry);
                        Err(b.error.message)
                    }
                    _ => {
                        self.used_up(retry);
                        Ok(None)
                    }
                }
            }
            202 => resp
                .json::<Accepted>()
                .await
                .map(|a| Some(a.id))
                .map_err(|_| "The server sent an unexpected answer.".to_string()),
            status => Err(resp
                .json::<ErrorBody>()
                .await
                .map(|b| b.error.message)
                .unwrap_or_else(|_| format!("The server answered {status}."))),
        }
    }

    /// Keeps Run disabled for the wait a refusal asked for (a few seconds when it did not
    /// say; at most a minute, so that a run that ends sooner is not waited out long).
    fn hold(self, retry_after: Option<u64>) {
        let held = self.state.held;
        held.set(true);
        let secs = retry_after.unwrap_or(3).clamp(1, 60);
        set_timeout(
            move || held.set(false),
            std::time::Duration::from_secs(secs),
        );
    }

    /// A guest's quota refused the run: the note shows none left, and when they come
    /// back, even if the answer had no rate-limit headers (another tab, or the API,
    /// used the last run since this page counted).
    fn used_up(self, retry_after: Option<u64>) {
        self.state.quota.update(|q| {
            if let Some(q) = q.as_mut().filter(|q| q.remaining > 0) {
                q.remaining = 0;
                q.reset_seconds = retry_after.unwrap_or(q.reset_seconds);
            }
        });
    }

    /// A guest's runs left, from the rate-limit headers of any answer that has them.
    fn note_quota(self, resp: &Response) {
        // A signed-in user starts without a quota note and keeps it so: the headers on a
        // user's runs are the per-minute rate, not a daily count to show.
        if self.state.quota.get_untracked().is_none() {
            return;
        }
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.parse::<u64>().ok());
        if let (Some(limit), Some(remaining), Some(reset)) = (
            header("x-ratelimit-limit"),
            header("x-ratelimit-remaining"),
            header("x-ratelimit-reset"),
        ) {
            self.state.quota.set(Some(QuotaInfo {
                limit: limit as u32,
                remaining: remaining as u32,
                reset_seconds: reset,
            }));
        }
    }

    /// Follows the run's events into the run on screen: true once the result came,
    /// false if the stream ended before it.
    async fn follow(self, id: &str) -> Result<bool, String> {
        let mut es = EventSource::new(&format!("/api/v1/runs/{id}/events"))
            .map_err(|_| "Could not follow the run.".to_string())?;
        let subs: Vec<_> = ["status", "stdout", "stderr", "result"]
            .iter()
            .filter_map(|k| es.subscribe(*k).ok())
            .collect();
        let mut events = futures::stream::select_all(subs);
        let mut finished = false;
        while let Some(Ok((kind, msg))) = events.next().await {
            let data = msg.data().as_string().unwrap_or_default();
            if self.apply(&kind, &data) {
                finished = true;
                break;
            }
        }
        es.close();
        Ok(finished)
    }

    /// One event into the run on screen; true for the result, the last event.
    fn apply(self, kind: &str, data: &str) -> bool {
        let run = self.state.run;
        match kind {
            "status" if data.contains("running") => run.update(|r| {
                if let Some(r) = r {
                    r.status = RunStatus::Running
                }
            }),
            "stdout" | "stderr" => {
                if let Ok(c) = serde_json::from_str::<Chunk>(data) {
                    run.update(|r| {
                        if let Some(r) = r {
                            let stream = if kind == "stdout" {
                                &mut r.stdout
                            } else {
                                &mut r.stderr
                            };
                            stream.push_str(&c.data);
                        }
                    });
                }
            }
            "result" => {
                if let Ok(r) = serde_json::from_str::<Run>(data) {
                    if r.saved == Some(false) {
                        self.state.message.set(Some(crate::model::UNSAVED.into()));
                    }
                    run.set(Some(r));
                }
                return true;
            }
            _ => {}
        }
        false
    }

    /// The stream broke before the result: asks for the run once more.
    async fn recover(self, id: &str) -> Result<(), String> {
        let resp = Request::get(&format!("/api/v1/runs/{id}"))
            .send()
            .await
            .map_err(|_| OFFLINE.to_string())?;
        match resp.json::<Run>().await {
            Ok(r) if r.status == RunStatus::Finished => {
                self.state.run.set(Some(r));
                Ok(())
            }
            _ => Err(
                "Lost the connection to the run. Its result may still appear in a moment.".into(),
            ),
        }
    }
}
