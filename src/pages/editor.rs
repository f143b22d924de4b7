//! `/`: the editor. Server-rendered as a plain form that runs code without JavaScript;
//! once hydrated, it runs through the API with live output and can stop a run.

use crate::api::auth::my_quota;
use crate::api::runs::{get_languages, get_run};
use crate::api::shares::get_share;
use crate::components::code_editor::CodeEditor;
use crate::components::output::{OutputView, StatusLine};
use crate::components::quota::QuotaNote;
use crate::components::run_client::{Actions, Draft, Signals};
use crate::components::share::ShareButton;
use crate::model::{LanguageInfo, QuotaInfo, Run};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The page: languages, the guest's quota and any run to reopen, then the editor.
#[component]
pub fn EditorPage() -> impl IntoView {
    let query = use_query_map();
    let from = query.read_untracked().get("from");
    let fork = query.read_untracked().get("fork");
    let langs = Resource::new(|| (), |_| get_languages());
    let quota = Resource::new(|| (), |_| my_quota());
    // "Open in editor" from the history (`?from=`, that run's program, language and
    // input) or from a shared run (`?fork=`, a new draft from its snapshot).
    let opened = Resource::new(
        move || (from.clone(), fork.clone()),
        |(from, fork)| async move {
            match (from, fork) {
                (Some(id), _) => get_run(id)
                    .await
                    .ok()
                    .flatten()
                    .filter(|r| r.code.is_some() || r.files.is_some()),
                (None, Some(slug)) => get_share(slug).await.ok().flatten().map(|s| s.as_run()),
                (None, None) => None,
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
    draft: Draft,
    stdin: String,
    from_history: bool,
}

impl Start {
    fn choose(langs: &[LanguageInfo], opened: Option<Run>, asked: Option<String>) -> Start {
        let find = |l: &str| langs.iter().find(|x| x.id == l);
        if let Some(r) = opened {
            if let Some(draft) = find(&r.language).and_then(|l| Draft::from_run(&r, l)) {
                return Start {
                    language: r.language,
                    draft,
                    stdin: r.stdin.unwrap_or_default(),
                    from_history: true,
                };
            }
        }
        let language = asked
            .filter(|l| find(l).is_some())
            .unwrap_or_else(|| "python".to_string());
        let draft = find(&language)
            .map(|l| Draft::single(&l.source_file, &l.template))
            .unwrap_or_default();
        Start {
            language,
            draft,
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
    let state = Signals::new(start.language.clone(), start.draft, start.stdin);
    state.message.set(query.read_untracked().get("error"));
    state.quota.set(quota);
    let actions = Actions::connect(state, &langs, start.from_history);
    let run = actions.start;
    let naming = RwSignal::new(None::<Naming>);
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
            <OptionsPanel state=state langs=langs.clone() naming=naming/>
            <div class="panes">
                <div class="pane code-pane">
                    <FileTabs state=state naming=naming/>
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
            <button type="submit" class="button primary run" disabled=move || !state.can_run() aria-keyshortcuts="Control+Enter"
                class:held=move || !running.get() && !state.can_run()>
                {move || if running.get() {
                    view! { <span class="spinner" aria-hidden="true"></span>"Running" }.into_any()
                } else {
                    view! { <span aria-hidden="true">"▶"</span>" Run" <kbd>"Ctrl+Enter"</kbd> }.into_any()
                }}
            </button>
            <button type="button" class="button stop" disabled=move || !running.get() on:click=move |_| actions.stop.run(())>
                <span aria-hidden="true">"■"</span>" Stop"
            </button>
            <ShareButton quota=state.quota run_id=Signal::derive(move || {
                state.run.with(|r| r.as_ref().filter(|r| r.verdict.is_some() && !r.id.is_empty()).map(|r| r.id.clone()))
            })/>
            <button type="button" class="button options-toggle js-only" aria-controls="options"
                aria-expanded=move || state.options.get().to_string()
                on:click=move |_| state.options.update(|o| *o = !*o)>
                "Options"
            </button>
            // Off by default, so Run on a template shows its output at once; on, the
            // output ends in a line that answers the running program.
            <button type="button" class="button interactive-toggle js-only"
                aria-pressed=move || state.interactive.get().to_string()
                title="Type input to the program while it runs"
                on:click=move |_| state.interactive.update(|o| *o = !*o)>
                <span class="switch" aria-hidden="true"></span>"Interactive"
            </button>
            <span class="spacer"></span>
            <QuotaNote quota=state.quota/>
        </div>
    }
}

/// A file name being typed in a tab: a new file's, or file `i`'s new name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Naming {
    Add,
    Rename(usize),
}

/// The text field that names a file, in its tab: Enter confirms, Escape (or leaving the
/// field) cancels; a refused name shows why under the field and keeps it open.
#[component]
fn NameField(
    state: Signals,
    naming: RwSignal<Option<Naming>>,
    what: Naming,
    initial: String,
) -> impl IntoView {
    let value = RwSignal::new(initial);
    let error = RwSignal::new(None::<String>);
    let input = NodeRef::<leptos::html::Input>::new();
    // Typing goes into the field at once, over the suggested name.
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            request_animation_frame(move || {
                let _ = el.focus();
                el.select();
            });
        }
    });
    let commit = move || {
        let name = value.get_untracked().trim().to_string();
        let done = match what {
            Naming::Add => state.add_file(&name),
            Naming::Rename(i) => state.rename_file(i, &name),
        };
        match done {
            Ok(()) => naming.set(None),
            Err(e) => error.set(Some(e)),
        }
    };
    let label = match what {
        Naming::Add => "Name of the new file",
        Naming::Rename(_) => "New name of the file",
    };
    view! {
        <span class="name-field">
            <input node_ref=input type="text" class="file-name-input" aria-label=label
                spellcheck="false" autocomplete="off" size="14"
                aria-invalid=move || error.with(Option::is_some).to_string()
                aria-describedby="file-name-error"
                prop:value=move || value.get()
                on:input=move |ev| {
                    value.set(event_target_value(&ev));
                    error.set(None);
                }
                on:keydown=move |ev| match ev.key().as_str() {
                    "Enter" if !ev.ctrl_key() && !ev.meta_key() => {
                        ev.prevent_default();
                        ev.stop_propagation();
                        commit();
                    }
                    "Escape" => {
                        ev.prevent_default();
                        ev.stop_propagation();
                        naming.set(None);
                    }
                    _ => {}
                }
                on:blur=move |_| naming.set(None)/>
            <span id="file-name-error" class="name-error" role="alert"
                hidden=move || error.with(Option::is_none)>{move || error.get()}</span>
        </span>
    }
}

/// A name for a new file: `helper.py`, `helper2.py`, ... (the entry's extension).
fn new_file_name(state: Signals) -> String {
    let main = state.main.get_untracked();
    let ext = main.rsplit_once('.').map_or("txt", |(_, e)| e).to_string();
    let taken = |n: &str| {
        state
            .files
            .with_untracked(|f| f.iter().any(|f| f.name == n))
    };
    let mut name = format!("helper.{ext}");
    let mut i = 2;
    while taken(&name) {
        name = format!("helper{i}.{ext}");
        i += 1;
    }
    name
}

/// Tabs over the editor, one per file, once a program has more than one (or a file is
/// being added): select, rename (double-click or ✎, in place), delete (×), and make a
/// file the entry (the one run; ▶ marks it).
#[component]
fn FileTabs(state: Signals, naming: RwSignal<Option<Naming>>) -> impl IntoView {
    let rename = move |i: usize| naming.set(Some(Naming::Rename(i)));
    // Re-rendered whole on a change: at most 20 small tabs.
    let tabs = move || {
        let (active, main, now) = (state.active.get(), state.main.get(), naming.get());
        state
            .files
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let is_main = f.name == main;
                if now == Some(Naming::Rename(i)) {
                    view! {
                        <div class="file-tab editing" class:active=i == active class:entry=is_main>
                            <NameField state=state naming=naming what=Naming::Rename(i) initial=f.name/>
                        </div>
                    }
                    .into_any()
                } else {
                    tab(state, i, f.name, i == active, is_main, rename).into_any()
                }
            })
            .collect_view()
    };
    let adding = move || {
        (naming.get() == Some(Naming::Add)).then(|| {
            view! {
                <div class="file-tab editing">
                    <NameField state=state naming=naming what=Naming::Add initial=new_file_name(state)/>
                </div>
            }
        })
    };
    view! {
        <Show when=move || state.files.with(|f| f.len() > 1) || naming.get().is_some()>
            <div class="file-tabs" role="tablist" aria-label="Files">
                {tabs}
                {adding}
                <button type="button" class="tab-add" title="Add a file" aria-label="Add a file"
                    hidden=move || naming.get() == Some(Naming::Add)
                    on:click=move |_| naming.set(Some(Naming::Add))>"+"</button>
            </div>
        </Show>
    }
}

/// One file's tab; the active one carries its actions. (The entry's class is `entry`:
/// `main` is the page layout's, which would stretch the tab.)
fn tab(
    state: Signals,
    i: usize,
    name: String,
    active: bool,
    is_main: bool,
    rename: impl Fn(usize) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let actions = active.then(|| {
        let make_main = (!is_main).then(|| {
            let n = name.clone();
            view! {
                <button type="button" class="tab-action make-main" title="Run this file (make it the entry)"
                    aria-label=format!("Make {n} the entry file")
                    on:click=move |_| state.main.set(n.clone())>"▶"</button>
            }
        });
        view! {
            {make_main}
            <button type="button" class="tab-action rename" title="Rename"
                aria-label=format!("Rename {name}")
                on:click=move |_| rename(i)>"✎"</button>
            <button type="button" class="tab-action delete" title="Delete"
                aria-label=format!("Delete {name}")
                on:click=move |_| state.delete_file(i)>"×"</button>
        }
    });
    view! {
        <div class="file-tab" class:active=active class:entry=is_main>
            <button type="button" class="tab-name" role="tab"
                aria-selected=active.to_string()
                title=if is_main { "The entry file: this one runs" } else { "" }
                on:click=move |_| state.select(i)
                on:dblclick=move |_| rename(i)>
                {is_main.then(|| view! { <span class="entry-mark" aria-label="entry file">"▶ "</span> })}
                {name.clone()}
            </button>
            {actions}
        </div>
    }
}

/// The options under the control row (closed by default, remembered with the draft):
/// the program's arguments, its time and memory limits (the caps as placeholders), and
/// adding a file (named in its new tab).
#[component]
fn OptionsPanel(
    state: Signals,
    langs: Vec<LanguageInfo>,
    naming: RwSignal<Option<Naming>>,
) -> impl IntoView {
    let limits = move || {
        let id = state.language.get();
        langs.iter().find(|l| l.id == id).map(|l| l.limits)
    };
    let limits = Memo::new(move |_| limits());
    let chips = move || match crate::model::split_args(&state.args.get()) {
        Some(args) if !args.is_empty() => args
            .into_iter()
            .map(|a| view! { <span class="chip">{a}</span> })
            .collect_view()
            .into_any(),
        Some(_) => ().into_any(),
        None => view! { <span class="chip-error">"A quote is not closed."</span> }.into_any(),
    };
    let add = move |_| naming.set(Some(Naming::Add));
    view! {
        <div id="options" class="options-panel js-only" hidden=move || !state.options.get()>
            <label class="option args">
                <span>"Arguments"</span>
                <input id="args" type="text" spellcheck="false" autocomplete="off"
                    placeholder="one \"two words\" three"
                    prop:value=move || state.args.get()
                    on:input=move |ev| state.args.set(event_target_value(&ev))/>
            </label>
            <span class="chips" aria-live="polite">{chips}</span>
            <label class="option">
                <span>"Time (ms)"</span>
                <input id="time-limit" type="number" inputmode="numeric" min="100"
                    max=move || limits.get().map(|l| l.time_ms.max)
                    placeholder=move || limits.get().map(|l| l.time_ms.default.to_string())
                    prop:value=move || state.time_ms.get()
                    on:input=move |ev| state.time_ms.set(event_target_value(&ev))/>
            </label>
            <label class="option">
                <span>"Memory (MB)"</span>
                <input id="memory-limit" type="number" inputmode="numeric" min="16"
                    max=move || limits.get().map(|l| l.memory_mb.max)
                    placeholder=move || limits.get().map(|l| l.memory_mb.default.to_string())
                    prop:value=move || state.memory_mb.get()
                    on:input=move |ev| state.memory_mb.set(event_target_value(&ev))/>
            </label>
            <button type="button" class="button add-file" on:click=add>"+ Add a file"</button>
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
                source_file: format!("main.{id}"),
                extension: id.into(),
                libraries: Vec::new(),
                limits: crate::model::LanguageLimits {
                    time_ms: crate::model::LimitRange {
                        default: 5000,
                        max: 5000,
                    },
                    memory_mb: crate::model::LimitRange {
                        default: 256,
                        max: 256,
                    },
                },
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
                draft: Draft::single("main.python", "print(1)"),
                stdin: "in".into(),
                from_history: true,
            }
        );
    }

    #[test]
    fn a_saved_program_reopens_with_its_files_arguments_and_chosen_limits() {
        let mut r = saved("python");
        r.code = None;
        let files = vec![
            crate::model::SourceFile {
                name: "a.py".into(),
                content: "import b".into(),
            },
            crate::model::SourceFile {
                name: "b.py".into(),
                content: "print(2)".into(),
            },
        ];
        r.files = Some(files.clone());
        r.main = Some("b.py".into());
        r.args = Some(vec!["one two".into(), "x".into()]);
        r.limits = Some(crate::model::RunLimits {
            time_ms: Some(5000),
            memory_mb: Some(64),
        });
        let s = Start::choose(&langs(), Some(r), None);
        assert_eq!(
            s.draft,
            Draft {
                files,
                main: "b.py".into(),
                args: "'one two' x".into(),
                // The default time is not a choice; the smaller memory is.
                time_ms: String::new(),
                memory_mb: "64".into(),
                options: true,
                interactive: false,
            }
        );
    }

    #[test]
    fn an_unknown_language_falls_back_to_the_asked_one_then_python() {
        let s = Start::choose(&langs(), Some(saved("cobol")), Some("cpp".into()));
        assert_eq!(
            (s.language.as_str(), s.draft.files[0].content.as_str()),
            ("cpp", "// cpp template")
        );
        assert!(!s.from_history && s.stdin.is_empty());
        let s = Start::choose(&langs(), None, Some("cobol".into()));
        assert_eq!(
            (s.language.as_str(), s.draft.files[0].content.as_str()),
            ("python", "// python template")
        );
    }
}
