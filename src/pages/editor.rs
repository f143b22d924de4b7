//! `/`: the editor. Server-rendered as a plain form that runs code without JavaScript;
//! once hydrated, it runs through the API with live output and can stop a run.

use crate::api::auth::my_quota;
use crate::api::runs::{get_languages, get_run};
use crate::components::code_editor::CodeEditor;
use crate::components::output::{OutputView, StatusLine};
use crate::components::quota::QuotaNote;
use crate::components::run_client::{Actions, Signals};
use crate::model::{LanguageInfo, QuotaInfo, Run};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The page: languages, the guest's quota and any run to reopen, then the editor.
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

/// What the editor opens with: a run taken from the history (`?from=`), else the
/// language asked for (`?lang=`, or Python) with its starter template.
#[derive(Debug, PartialEq)]
struct Start {
    language: String,
    code: String,
    stdin: String,
    from_history: bool,
}

impl Start {
    fn choose(langs: &[LanguageInfo], opened: Option<Run>, asked: Option<String>) -> Start {
        let known = |l: &String| langs.iter().any(|x| &x.id == l);
        if let Some(r) = opened.filter(|r| known(&r.language)) {
            return Start {
                language: r.language,
                code: r.code.unwrap_or_default(),
                stdin: r.stdin.unwrap_or_default(),
                from_history: true,
            };
        }
        let language = asked.filter(known).unwrap_or_else(|| "python".to_string());
        let code = langs
            .iter()
            .find(|l| l.id == language)
            .map(|l| l.template.clone())
            .unwrap_or_default();
        Start {
            language,
            code,
            stdin: String::new(),
            from_history: false,
        }
    }
}

/// The editor: a form that posts without JavaScript, and runs through the API once
/// hydrated (Run, Ctrl+Enter).
#[component]
fn Editor(
    langs: Vec<LanguageInfo>,
    quota: Option<QuotaInfo>,
    opened: Option<Run>,
) -> impl IntoView {
    let query = use_query_map();
    let start = Start::choose(&langs, opened, query.read_untracked().get("lang"));
    let state = Signals {
        language: RwSignal::new(start.language.clone()),
        code: RwSignal::new(start.code),
        stdin: RwSignal::new(start.stdin),
        run: RwSignal::new(None),
        running: RwSignal::new(false),
        message: RwSignal::new(query.read_untracked().get("error")),
        quota: RwSignal::new(quota),
        typed: RwSignal::new(Vec::new()),
        input_open: RwSignal::new(false),
    };
    let actions = Actions::connect(state, &langs, start.from_history);
    let run = actions.start;
    view! {
        <form
            class="editor-page"
            method="post"
            action="/fn/run_form"
            on:submit=move |ev| {
                ev.prevent_default();
                run.run(());
            }
            on:keydown=move |ev| {
                if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
                    ev.prevent_default();
                    run.run(());
                }
            }
        >
            <Toolbar state=state actions=actions langs=langs.clone() selected=start.language/>
            <div class="panes">
                <div class="pane code-pane">
                    <CodeEditor code=state.code language=state.language on_run=run/>
                </div>
                <SidePane state=state actions=actions/>
            </div>
            <div class="status-bar">
                <StatusLine run=state.run message=state.message/>
                <span class="lang-version">{move || version_label(&langs, &state.language.get())}</span>
            </div>
        </form>
    }
}

/// "Python 3.11" for the status bar.
fn version_label(langs: &[LanguageInfo], id: &str) -> String {
    langs
        .iter()
        .find(|l| l.id == id)
        .map(|l| format!("{} {}", l.name, l.version))
        .unwrap_or_default()
}

/// The one row of controls: language, Run (a spinner while running), Stop, runs left.
#[component]
fn Toolbar(
    state: Signals,
    actions: Actions,
    langs: Vec<LanguageInfo>,
    selected: String,
) -> impl IntoView {
    let running = state.running;
    let options = langs
        .iter()
        .map(|l| {
            let id = l.id.clone();
            let selected = id == selected;
            view! { <option value=id.clone() selected=selected>{l.name.clone()}</option> }
        })
        .collect_view();
    view! {
        <div class="toolbar" role="toolbar" aria-label="Run controls">
            <label class="sr-only" for="language">"Language"</label>
            <select
                id="language"
                name="language"
                class="lang-select"
                on:change=move |ev| actions.switch.run(event_target_value(&ev))
                prop:value=move || state.language.get()
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
            <button type="button" class="button stop" disabled=move || !running.get() on:click=move |_| actions.stop.run(())>
                <span aria-hidden="true">"■"</span>" Stop"
            </button>
            <span class="spacer"></span>
            <QuotaNote quota=state.quota/>
        </div>
    }
}

/// Beside the code: the input, which folds away to give the output more room, and the
/// output.
#[component]
fn SidePane(state: Signals, actions: Actions) -> impl IntoView {
    let stdin = state.stdin;
    let folded = RwSignal::new(false);
    let toggle_label = move || {
        if folded.get() {
            "Show the input"
        } else {
            "Hide the input"
        }
    };
    view! {
        <div class="pane side-pane">
            <div class="pane-head">
                <label class="pane-title" for="stdin">"Input (stdin)"</label>
                <button type="button" class="pane-toggle js-only" aria-controls="stdin"
                    aria-expanded=move || (!folded.get()).to_string()
                    aria-label=toggle_label
                    title=toggle_label
                    on:click=move |_| folded.update(|f| *f = !*f)>
                    {move || if folded.get() { "+" } else { "–" }}
                </button>
            </div>
            <textarea
                hidden=move || folded.get()
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
            <OutputView run=state.run typed=state.typed>
                <InputLine state=state actions=actions/>
            </OutputView>
        </div>
    }
}

/// The terminal-like line that ends the output of an interactive run: Enter sends the
/// line (with its newline), Ctrl+D ends the program's input; disabled once the run has
/// ended or its input has.
#[component]
fn InputLine(state: Signals, actions: Actions) -> impl IntoView {
    let line = RwSignal::new(String::new());
    let shown = move || {
        state
            .run
            .with(|r| r.as_ref().is_some_and(|r| r.interactive))
    };
    let open = move || state.running.get() && state.input_open.get();
    let input = NodeRef::<leptos::html::Input>::new();
    // Typing goes straight to the program once it starts.
    // (On the next frame: the line is still disabled while this effect runs.)
    Effect::new(move |_| {
        if open() {
            request_animation_frame(move || {
                if let Some(el) = input.get_untracked() {
                    let _ = el.focus();
                }
            });
        }
    });
    let send = move |eof: bool| {
        let mut text = line.get_untracked();
        line.set(String::new());
        if !eof {
            text.push('\n');
        }
        actions.input.run((text, eof));
    };
    let placeholder = move || {
        if open() {
            "Type here: Enter sends the line, Ctrl+D ends the input"
        } else if state.running.get() {
            "Input ended"
        } else {
            "The program has ended"
        }
    };
    view! {
        <div class="input-line" hidden=move || !shown()>
            <span class="caret" aria-hidden="true">"›"</span>
            <input
                node_ref=input
                type="text"
                class="stdin-line"
                aria-label="Input for the running program"
                autocomplete="off"
                spellcheck="false"
                placeholder=placeholder
                disabled=move || !open()
                prop:value=move || line.get()
                on:input=move |ev| line.set(event_target_value(&ev))
                on:keydown=move |ev| {
                    let key = ev.key();
                    if key == "Enter" && !ev.ctrl_key() && !ev.meta_key() {
                        ev.prevent_default();
                        ev.stop_propagation();
                        send(false);
                    } else if ev.ctrl_key() && key.eq_ignore_ascii_case("d") {
                        ev.prevent_default();
                        ev.stop_propagation();
                        send(true);
                    }
                }
            />
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs() -> Vec<LanguageInfo> {
        ["python", "cpp"]
            .map(|id| LanguageInfo {
                id: id.into(),
                name: id.to_uppercase(),
                version: "1".into(),
                template: format!("// {id} template"),
            })
            .to_vec()
    }

    fn saved(language: &str) -> Run {
        let mut r = Run::new("r1", language, "");
        r.code = Some("print(1)".into());
        r.stdin = Some("in".into());
        r
    }

    #[test]
    fn a_run_from_the_history_wins_over_the_asked_language() {
        let s = Start::choose(&langs(), Some(saved("python")), Some("cpp".into()));
        assert_eq!(
            s,
            Start {
                language: "python".into(),
                code: "print(1)".into(),
                stdin: "in".into(),
                from_history: true,
            }
        );
    }

    #[test]
    fn an_unknown_language_falls_back_to_the_asked_one_then_python() {
        let s = Start::choose(&langs(), Some(saved("cobol")), Some("cpp".into()));
        assert_eq!(
            (s.language.as_str(), s.code.as_str()),
            ("cpp", "// cpp template")
        );
        assert!(!s.from_history && s.stdin.is_empty());
        let s = Start::choose(&langs(), None, Some("cobol".into()));
        assert_eq!(
            (s.language.as_str(), s.code.as_str()),
            ("python", "// python template")
        );
    }
}
