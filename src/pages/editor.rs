//! `/`: the editor. Server-rendered as a plain form that runs code without JavaScript;
//! once hydrated, it runs through the API with live output and can stop a run.

use crate::api::auth::my_quota;
use crate::api::runs::{get_languages, get_run};
use crate::components::code_editor::CodeEditor;
use crate::components::output::{OutputView, StatusLine};
use crate::model::{wait_words, LanguageInfo, QuotaInfo, Run};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn EditorPage() -> impl IntoView {
    let query = use_query_map();
    let from = query.read_untracked().get("from");
    let langs = Resource::new(|| (), |_| get_languages());
    let quota = Resource::new(|| (), |_| my_quota());
    // "Open in editor" from the history: that run's code, language and input.
    let opened = Resource::new(
        move || from.clone(),
        |from| async move {
            match from {
                Some(id) => get_run(id)
                    .await
                    .ok()
                    .flatten()
                    .filter(|r| r.code.is_some()),
                None => None,
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading the editor…"</p> }>
            {move || Suspend::new(async move {
                let quota = quota.await.ok().flatten();
                let opened = opened.await;
                match langs.await {
                    Ok(list) => view! { <Editor langs=list quota=quota opened=opened/> }.into_any(),
                    Err(_) => view! { <p class="error">"The editor could not load its languages. Please reload."</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// A guest's runs left today, or the invitation to sign in when none are left.
#[component]
fn QuotaNote(quota: RwSignal<Option<QuotaInfo>>) -> impl IntoView {
    move || {
        quota.get().map(|q| {
            if q.remaining > 0 {
                view! {
                    <span class="quota" data-testid="quota" data-remaining=q.remaining>
                        {format!(
                            "{} of {} guest runs left today · resets in {}",
                            q.remaining,
                            q.limit,
                            wait_words(q.reset_seconds)
                        )}
                    </span>
                }
                .into_any()
            } else {
                view! {
                    <span class="quota quota-out" data-testid="quota" data-remaining="0" role="status">
                        {format!("You have used today's {} guest runs (they reset in {}). ", q.limit, wait_words(q.reset_seconds))}
                        <a href="/login?next=/">"Log in"</a>
                        " or "
                        <a href="/register?next=/">"register"</a>
                        " to keep running code, free and without a daily limit."
                    </span>
                }
                .into_any()
            }
        })
    }
}

#[component]
fn Editor(
    langs: Vec<LanguageInfo>,
    quota: Option<QuotaInfo>,
    opened: Option<Run>,
) -> impl IntoView {
    let query = use_query_map();
    let opened_lang = opened
        .as_ref()
        .map(|r| r.language.clone())
        .filter(|l| langs.iter().any(|x| &x.id == l));
    let initial_lang = opened_lang
        .clone()
        .or_else(|| {
            query
                .read_untracked()
                .get("lang")
                .filter(|l| langs.iter().any(|x| &x.id == l))
        })
        .unwrap_or_else(|| "python".to_string());
    let template_of = {
        let langs = langs.clone();
        move |id: &str| {
            langs
                .iter()
                .find(|l| l.id == id)
                .map(|l| l.template.clone())
                .unwrap_or_default()
        }
    };
    let language = RwSignal::new(initial_lang.clone());
    let from_history = opened_lang.is_some();
    let (initial_code, initial_stdin) = match (&opened, from_history) {
        (Some(r), true) => (
            r.code.clone().unwrap_or_default(),
            r.stdin.clone().unwrap_or_default(),
        ),
        _ => (template_of(&initial_lang), String::new()),
    };
    let code = RwSignal::new(initial_code);
    let stdin = RwSignal::new(initial_stdin);
    // The input pane can be folded away to give the output more room.
    let stdin_folded = RwSignal::new(false);
    let quota = RwSignal::new(quota);
    let run = RwSignal::new(None::<Run>);
    let running = RwSignal::new(false);
    let message = RwSignal::new(query.read_untracked().get("error"));
    let run_id = RwSignal::new(None::<String>);
    let lang_label = {
        let langs = langs.clone();
        move || {
            let id = language.get();
            langs
                .iter()
                .find(|l| l.id == id)
                .map(|l| format!("{} {}", l.name, l.version))
                .unwrap_or_default()
        }
    };

    #[cfg(feature = "hydrate")]
    let client = client::Client::new(
        client::Signals {
            language,
            code,
            stdin,
            run,
            running,
            message,
            run_id,
            quota,
        },
        langs
            .iter()
            .map(|l| (l.id.clone(), l.template.clone()))
            .collect(),
        from_history,
    );
    #[cfg(feature = "hydrate")]
    let (start, stop, switch) = (client.start(), client.stop(), client.switch());
    #[cfg(not(feature = "hydrate"))]
    let (start, stop, switch) = (
        Callback::new(|_: ()| {}),
        Callback::new(|_: ()| {}),
        Callback::new(|_: String| {}),
    );
    #[cfg(not(feature = "hydrate"))]
    let _ = (&template_of, &run_id, from_history);

    let options = langs
        .iter()
        .map(|l| {
            let id = l.id.clone();
            let selected = id == initial_lang;
            view! { <option value=id.clone() selected=selected>{l.name.clone()}</option> }
        })
        .collect_view();

    view! {
        <form
            class="editor-page"
            method="post"
            action="/fn/run_form"
            on:submit=move |ev| {
                ev.prevent_default();
                start.run(());
            }
            on:keydown=move |ev| {
                if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
                    ev.prevent_default();
                    start.run(());
                }
            }
        >
            <div class="toolbar" role="toolbar" aria-label="Run controls">
                <label class="sr-only" for="language">"Language"</label>
                <select
                    id="language"
                    name="language"
                    class="lang-select"
                    on:change=move |ev| switch.run(event_target_value(&ev))
                    prop:value=move || language.get()
                >
                    {options}
                </select>
                <button type="submit" class="button primary run" disabled=move || running.get() aria-keyshortcuts="Control+Enter">
                    {move || if running.get() {
                        view! { <span class="spinner" aria-hidden="true"></span>"Running" }.into_any()
                    } else {
                        view! { <span aria-hidden="true">"▶"</span>" Run" <kbd>"Ctrl+Enter"</kbd> }.into_any()
                    }}
                </button>
                <button type="button" class="button stop" disabled=move || !running.get() on:click=move |_| stop.run(())>
                    <span aria-hidden="true">"■"</span>" Stop"
                </button>
                <span class="spacer"></span>
                <QuotaNote quota=quota/>
            </div>
            <div class="panes">
                <div class="pane code-pane">
                    <CodeEditor code=code language=language on_run=start/>
                </div>
                <div class="pane side-pane">
                    <div class="pane-head">
                        <label class="pane-title" for="stdin">"Input (stdin)"</label>
                        <button type="button" class="pane-toggle js-only" aria-controls="stdin"
                            aria-expanded=move || (!stdin_folded.get()).to_string()
                            aria-label=move || if stdin_folded.get() { "Show the input" } else { "Hide the input" }
                            title=move || if stdin_folded.get() { "Show the input" } else { "Hide the input" }
                            on:click=move |_| stdin_folded.update(|f| *f = !*f)>
                            {move || if stdin_folded.get() { "+" } else { "–" }}
                        </button>
                    </div>
                    <textarea
                        hidden=move || stdin_folded.get()
                        id="stdin"
                        name="stdin"
                        class="stdin"
                        spellcheck="false"
                        placeholder="Text your program reads from standard input"
                        prop:value=move || stdin.get()
                        on:input=move |ev| stdin.set(event_target_value(&ev))
                    >
                        {stdin.get_untracked()}
                    </textarea>
                    <h2 class="pane-title">"Output"</h2>
                    <OutputView run=run/>
                </div>
            </div>
            <div class="status-bar">
                <StatusLine run=run message=message/>
                <span class="lang-version">{lang_label}</span>
            </div>
        </form>
    }
}

#[cfg(feature = "hydrate")]
mod client {
    //! Browser-side behaviour: drafts, runs through the API, live events, stop.

    use crate::model::{PublicError, QuotaInfo, Run, RunStatus};
    use futures::StreamExt;
    use gloo_net::eventsource::futures::EventSource;
    use gloo_net::http::Request;
    use leptos::prelude::*;
    use leptos::task::spawn_local;
    use std::collections::HashMap;

    const LAST_LANG: &str = "own-ide:language";

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    fn draft_key(lang: &str) -> String {
        format!("own-ide:draft:{lang}")
    }

    /// The editor state the client reads and writes.
    #[derive(Clone, Copy)]
    pub struct Signals {
        pub language: RwSignal<String>,
        pub code: RwSignal<String>,
        pub stdin: RwSignal<String>,
        pub run: RwSignal<Option<Run>>,
        pub running: RwSignal<bool>,
        pub message: RwSignal<Option<String>>,
        pub run_id: RwSignal<Option<String>>,
        pub quota: RwSignal<Option<QuotaInfo>>,
    }

    #[derive(Clone, Copy)]
    pub struct Client {
        language: RwSignal<String>,
        code: RwSignal<String>,
        stdin: RwSignal<String>,
        run: RwSignal<Option<Run>>,
        running: RwSignal<bool>,
        message: RwSignal<Option<String>>,
        run_id: RwSignal<Option<String>>,
        quota: RwSignal<Option<QuotaInfo>>,
        templates: StoredValue<HashMap<String, String>>,
    }

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
        /// `opened`: the page was opened from the history with a run's code, which then
        /// becomes the draft instead of being replaced by the stored one.
        pub fn new(s: Signals, templates: HashMap<String, String>, opened: bool) -> Client {
            let c = Client {
                language: s.language,
                code: s.code,
                stdin: s.stdin,
                run: s.run,
                running: s.running,
                message: s.message,
                run_id: s.run_id,
                quota: s.quota,
                templates: StoredValue::new(templates),
            };
            // After hydration (effects never run on the server), restore the draft.
            Effect::new(move |prev: Option<()>| {
                if prev.is_some() {
                    return;
                }
                let Some(store) = storage() else { return };
                if opened {
                    let lang = c.language.get_untracked();
                    let _ = store.set_item(LAST_LANG, &lang);
                    let _ = store.set_item(&draft_key(&lang), &c.code.get_untracked());
                    return;
                }
                let explicit = leptos_router::hooks::use_query_map()
                    .read_untracked()
                    .get("lang")
                    .is_some();
                if !explicit {
                    if let Ok(Some(l)) = store.get_item(LAST_LANG) {
                        if c.templates.with_value(|t| t.contains_key(&l)) {
                            c.language.set(l);
                        }
                    }
                }
                let lang = c.language.get_untracked();
                if let Ok(Some(d)) = store.get_item(&draft_key(&lang)) {
                    c.code.set(d);
                } else {
                    c.code.set(
                        c.templates
                            .with_value(|t| t.get(&lang).cloned().unwrap_or_default()),
                    );
                }
            });
            // Every edit is saved as the draft of the current language.
            Effect::new(move |first: Option<()>| {
                let doc = c.code.get();
                if first.is_none() {
                    return;
                }
                if let Some(store) = storage() {
                    let _ = store.set_item(&draft_key(&c.language.get_untracked()), &doc);
                }
            });
            c
        }

        pub fn switch(self) -> Callback<String> {
            Callback::new(move |lang: String| {
                let draft = storage().and_then(|s| s.get_item(&draft_key(&lang)).ok().flatten());
                let doc = draft.unwrap_or_else(|| {
                    self.templates
                        .with_value(|t| t.get(&lang).cloned().unwrap_or_default())
                });
                if let Some(s) = storage() {
                    let _ = s.set_item(LAST_LANG, &lang);
                }
                self.language.set(lang);
                self.code.set(doc);
            })
        }

        pub fn stop(self) -> Callback<()> {
            Callback::new(move |_| {
                let Some(id) = self.run_id.get_untracked() else {
                    return;
                };
                spawn_local(async move {
                    let _ = Request::post(&format!("/api/v1/runs/{id}/stop"))
                        .send()
                        .await;
                });
            })
        }

        pub fn start(self) -> Callback<()> {
            Callback::new(move |_| {
                if self.running.get_untracked() {
                    return;
                }
                self.running.set(true);
                self.message.set(None);
                spawn_local(async move {
                    if let Err(msg) = self.execute().await {
                        self.message.set(Some(msg));
                    }
                    self.running.set(false);
                });
            })
        }

        async fn execute(self) -> Result<(), String> {
            let body = serde_json::json!({
                "language": self.language.get_untracked(),
                "code": self.code.get_untracked(),
                "stdin": self.stdin.get_untracked(),
            });
            let offline =
                |_| "Could not reach the server. Check your connection and try again.".to_string();
            let resp = Request::post("/api/v1/runs")
                .json(&body)
                .map_err(|_| "Could not send the code.".to_string())?
                .send()
                .await
                .map_err(offline)?;
            let header = |name: &str| resp.headers().get(name).and_then(|v| v.parse::<u64>().ok());
            if let (Some(limit), Some(remaining), Some(reset)) = (
                header("x-ratelimit-limit"),
                header("x-ratelimit-remaining"),
                header("x-ratelimit-reset"),
            ) {
                self.quota.set(Some(QuotaInfo {
                    limit: limit as u32,
                    remaining: remaining as u32,
                    reset_seconds: reset,
                }));
            }
            if resp.status() == 429 {
                // The quota note now invites the guest to sign in; no error banner.
                return Ok(());
            }
            if resp.status() != 202 {
                let err = resp
                    .json::<ErrorBody>()
                    .await
                    .map(|b| b.error.message)
                    .unwrap_or_else(|_| format!("The server answered {}.", resp.status()));
                return Err(err);
            }
            let id = resp
                .json::<Accepted>()
                .await
                .map_err(|_| "The server sent an unexpected answer.".to_string())?
                .id;
            self.run_id.set(Some(id.clone()));
            self.run.set(Some(Run {
                id: id.clone(),
                language: self.language.get_untracked(),
                status: RunStatus::Queued,
                verdict: None,
                exit_code: None,
                signal: None,
                stdout: String::new(),
                stderr: String::new(),
                compile_output: String::new(),
                time_ms: None,
                memory_kb: None,
                truncated: false,
                created_at: String::new(),
                finished_at: None,
                code: None,
                stdin: None,
                saved: None,
            }));
            let mut es = EventSource::new(&format!("/api/v1/runs/{id}/events"))
                .map_err(|_| "Could not follow the run.".to_string())?;
            let subs: Vec<_> = ["status", "stdout", "stderr", "result"]
                .iter()
                .filter_map(|k| es.subscribe(*k).ok())
                .collect();
            let mut events = futures::stream::select_all(subs);
            while let Some(item) = events.next().await {
                let Ok((kind, msg)) = item else { break };
                let data = msg.data().as_string().unwrap_or_default();
                match kind.as_str() {
                    "status" if data.contains("running") => {
                        self.run.update(|r| {
                            if let Some(r) = r {
                                r.status = RunStatus::Running
                            }
                        });
                    }
                    "stdout" | "stderr" => {
                        if let Ok(c) = serde_json::from_str::<Chunk>(&data) {
                            self.run.update(|r| {
                                if let Some(r) = r {
                                    if kind == "stdout" {
                                        r.stdout.push_str(&c.data)
                                    } else {
                                        r.stderr.push_str(&c.data)
                                    }
                                }
                            });
                        }
                    }
                    "result" => {
                        if let Ok(r) = serde_json::from_str::<Run>(&data) {
                            if r.saved == Some(false) {
                                self.message.set(Some(crate::model::UNSAVED.into()));
                            }
                            self.run.set(Some(r));
                        }
                        es.close();
                        return Ok(());
                    }
                    _ => {}
                }
            }
            es.close();
            // The stream broke before the result: ask for the run once more.
            let resp = Request::get(&format!("/api/v1/runs/{id}"))
                .send()
                .await
                .map_err(offline)?;
            match resp.json::<Run>().await {
                Ok(r) if r.status == RunStatus::Finished => {
                    self.run.set(Some(r));
                    Ok(())
                }
                _ => Err(
                    "Lost the connection to the run. Its result may still appear in a moment."
                        .into(),
                ),
            }
        }
    }
}
