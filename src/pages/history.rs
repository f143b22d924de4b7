//! `/history` (the signed-in user's runs, 20 a page, filter by language) and
//! `/history/{id}` (one saved run: code, input, output; open in the editor; delete).

use crate::api::history::{history_run, list_history, DeleteRun};
use crate::api::runs::get_languages;
use crate::components::code_editor::CodeEditor;
use crate::components::output::{OutputView, StatusLine, VerdictBadge};
use crate::components::share::ShareButton;
use crate::error::AppError;
use crate::model::url::{path_in_query, query_value};
use crate::model::{HistoryPage, LanguageInfo, Run};
use crate::pages::not_found::NotFound;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::{use_location, use_params_map, use_query_map};

/// "2026-11-26 10:42 UTC" from an RFC 3339 time.
pub fn when(rfc3339: &str) -> String {
    if rfc3339.len() < 16 {
        return rfc3339.to_string();
    }
    format!("{} UTC", rfc3339[..16].replace('T', " "))
}

/// What a page shows when the history cannot be read: log in, or try again later.
fn failure(e: AppError) -> AnyView {
    match e {
        AppError::Unauthorized(_) => {
            let loc = use_location();
            let back = format!(
                "{}{}",
                loc.pathname.get_untracked(),
                loc.search.get_untracked()
            );
            let to = if back.is_empty() || back == "?" {
                "/history".to_string()
            } else {
                back
            };
            view! { <Redirect path=format!("/login?next={}", path_in_query(&to))/> }.into_any()
        }
        e => {
            #[cfg(feature = "ssr")]
            if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
                resp.set_status(
                    http::StatusCode::from_u16(e.status())
                        .unwrap_or(http::StatusCode::SERVICE_UNAVAILABLE),
                );
            }
            view! {
                <section class="message-page" data-testid="history-unavailable">
                    <h1>"History is unavailable"</h1>
                    <p>{e.public().message}</p>
                    <p><a class="button primary" href="/">"Open the editor"</a></p>
                </section>
            }
            .into_any()
        }
    }
}

/// `/history`: the page of runs the query asks for, or what keeps it from being shown.
#[component]
pub fn HistoryList() -> impl IntoView {
    let query = use_query_map();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    };
    let language = move || query.read().get("language").filter(|l| !l.is_empty());
    let runs = Resource::new(move || (page(), language()), |(p, l)| list_history(p, l));
    let langs = Resource::new(|| (), |_| get_languages());
    view! {
        <Title text="History · Own-IDE"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading your runs…"</p> }>
            {move || Suspend::new(async move {
                let list = match runs.await {
                    Ok(list) => list,
                    Err(e) => return failure(e),
                };
                let langs = langs.await.unwrap_or_default();
                let current = language().unwrap_or_default();
                view! { <HistoryView list=list langs=langs current=current/> }.into_any()
            })}
        </Suspense>
    }
}

/// One page of runs under the language filter; `current` is the filtered language or "".
#[component]
fn HistoryView(list: HistoryPage, langs: Vec<LanguageInfo>, current: String) -> impl IntoView {
    let filtered = !current.is_empty();
    let pages = list.total.div_ceil(list.per_page).max(1);
    view! {
        <section class="history-page">
            <h1>"History"</h1>
            <Filters langs=langs current=current.clone() total=list.total/>
            {if list.items.is_empty() {
                view! {
                    <div class="empty-state" data-testid="history-empty">
                        <p>{if filtered { "No runs in this language yet." } else { "No runs yet. Your runs appear here after you press Run." }}</p>
                        <a class="button primary" href="/">"Open the editor"</a>
                    </div>
                }.into_any()
            } else {
                let rows = list.items.into_iter().map(|run| view! { <HistoryRow run=run/> }).collect_view();
                view! {
                    <ul class="history" aria-label="Your runs, newest first">{rows}</ul>
                    <Pagination page=list.page pages=pages language=current/>
                }.into_any()
            }}
        </section>
    }
}

/// The language filter (a plain GET form) and the number of runs it finds.
#[component]
fn Filters(langs: Vec<LanguageInfo>, current: String, total: u64) -> impl IntoView {
    let options = langs
        .iter()
        .map(|l| {
            let selected = l.id == current;
            view! { <option value=l.id.clone() selected=selected>{l.name.clone()}</option> }
        })
        .collect_view();
    view! {
        <form class="filters" method="get" action="/history">
            <label for="language-filter">"Language"</label>
            <select id="language-filter" name="language">
                <option value="" selected=current.is_empty()>"All languages"</option>
                {options}
            </select>
            <button class="button" type="submit">"Filter"</button>
            <span class="count" data-testid="history-total">
                {format!("{} run{}", total, if total == 1 { "" } else { "s" })}
            </span>
        </form>
    }
}

/// One run in the list: language, verdict, first line of code, duration, when; opens it.
#[component]
fn HistoryRow(run: Run) -> impl IntoView {
    let first = run.code.unwrap_or_default();
    let first = if first.is_empty() {
        "(empty)".to_string()
    } else {
        first
    };
    view! {
        <li>
            <a class="history-row" href=format!("/history/{}", run.id) data-testid="history-row">
                <span class="lang-tag">{run.language}</span>
                {match run.verdict {
                    Some(v) => view! { <VerdictBadge verdict=v/> }.into_any(),
                    None => view! { <span class="badge">"Running"</span> }.into_any(),
                }}
                <code class="first-line">{first}</code>
                <span class="duration">{run.time_ms.map(|t| format!("{t} ms")).unwrap_or_default()}</span>
                <span class="cpu-time">{run.cpu_time_ms.map(|t| format!("CPU {t} ms")).unwrap_or_default()}</span>
                <time class="when" datetime=run.created_at.clone()>{when(&run.created_at)}</time>
            </a>
        </li>
    }
}

/// Newer and older pages, keeping the language filter.
#[component]
fn Pagination(page: u64, pages: u64, language: String) -> impl IntoView {
    let link = move |p: u64| {
        if language.is_empty() {
            format!("/history?page={p}")
        } else {
            format!("/history?page={p}&language={}", query_value(&language))
        }
    };
    view! {
        <nav class="pagination" aria-label="Pages">
            {(page > 1).then(|| view! { <a class="button" rel="prev" href=link(page - 1)>"← Newer"</a> })}
            <span aria-current="page">{format!("Page {} of {}", page, pages)}</span>
            {(page < pages).then(|| view! { <a class="button" rel="next" href=link(page + 1)>"Older →"</a> })}
        </nav>
    }
}

/// `/history/{id}`: one saved run, to reopen in the editor or delete.
#[component]
pub fn HistoryRun() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let run = Resource::new(id, history_run);
    let delete = ServerAction::<DeleteRun>::new();
    view! {
        <Title text="Run · Own-IDE"/>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match run.await {
                    Ok(Some(r)) => view! { <SavedRun run=r delete=delete/> }.into_any(),
                    Ok(None) => view! { <NotFound/> }.into_any(),
                    Err(e) => failure(e),
                }
            })}
        </Suspense>
    }
}

/// A saved run: its actions, code, input and output.
#[component]
fn SavedRun(run: Run, delete: ServerAction<DeleteRun>) -> impl IntoView {
    let code = RwSignal::new(run.code.clone().unwrap_or_default());
    let lines = run.code.as_deref().unwrap_or_default().lines().count();
    let lang = run.language.clone();
    let stdin = run.stdin.clone().unwrap_or_default();
    let id = run.id.clone();
    let created_at = run.created_at.clone();
    let finished = run.verdict.is_some();
    let sig = Signal::stored(Some(run));
    let delete_error = move || {
        delete
            .value()
            .get()
            .and_then(|v| v.err())
            .map(|e| e.public().message)
    };
    view! {
        <section class="run-page history-run">
            <div class="toolbar">
                <h1>"Run " <code>{id.chars().take(8).collect::<String>()}</code></h1>
                <span class="lang-tag">{lang.clone()}</span>
                <time class="when" datetime=created_at.clone()>{when(&created_at)}</time>
                <span class="spacer"></span>
                <a class="button primary" href=format!("/?from={id}") data-testid="open-in-editor">"Open in editor"</a>
                {finished.then(|| view! { <ShareButton run_id=Signal::stored(Some(id.clone())) form=true back=format!("/history/{id}")/> })}
                <DeleteForm id=id.clone() delete=delete/>
            </div>
            <ConfirmDelete id=id delete=delete/>
            {move || delete_error().map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
            <h2 class="pane-title">"Code"</h2>
            <div class=format!("saved-code {}", height_class(lines))>
                <CodeEditor code=code language=Signal::stored(lang) read_only=true name="code-view"/>
            </div>
            <h2 class="pane-title">"Input (stdin)"</h2>
            <pre class="stdin-view">{if stdin.is_empty() { "(none)".to_string() } else { stdin }}</pre>
            <h2 class="pane-title">"Output"</h2>
            <OutputView run=sig/>
            <StatusLine run=sig message=Signal::stored(None::<String>)/>
        </section>
    }
}

/// The Delete button. Once hydrated, the browser's confirm() asks before the form goes
/// out and the form says so ("confirmed=yes"); without JavaScript it goes without, and
/// the server asks on the page instead ([`ConfirmDelete`]).
#[component]
fn DeleteForm(id: String, delete: ServerAction<DeleteRun>) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move || hydrated.set(true));
    view! {
        <ActionForm action=delete attr:class="delete-form" on:submit=move |ev| {
            #[cfg(feature = "hydrate")]
            {
                let ok = web_sys::window()
                    .and_then(|w| w.confirm_with_message("Delete this run from your history? This cannot be undone.").ok())
                    .unwrap_or(false);
                if !ok { ev.prevent_default(); }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = ev;
        }>
            <input type="hidden" name="id" value=id/>
            <input type="hidden" name="confirmed" value=move || if hydrated.get() { "yes" } else { "" }/>
            <button class="button danger" type="submit">"Delete"</button>
        </ActionForm>
    }
}

/// The question the server puts on the page (`?delete=1`) when Delete came without
/// JavaScript: delete for good, or cancel back to the run.
#[component]
fn ConfirmDelete(id: String, delete: ServerAction<DeleteRun>) -> impl IntoView {
    let query = use_query_map();
    let asking = move || query.read().get("delete").is_some_and(|v| v == "1");
    move || {
        let (id, back) = (id.clone(), format!("/history/{id}"));
        asking().then(move || view! {
            <div class="confirm-box" role="alertdialog" aria-labelledby="confirm-delete-title">
                <p id="confirm-delete-title"><strong>"Delete this run from your history?"</strong>" This cannot be undone."</p>
                <ActionForm action=delete attr:class="confirm-actions">
                    <input type="hidden" name="id" value=id/>
                    <input type="hidden" name="confirmed" value="yes"/>
                    <button class="button danger" type="submit">"Delete for good"</button>
                    <a class="button" href=back>"Cancel"</a>
                </ActionForm>
            </div>
        })
    }
}

/// The saved-code viewer is about as tall as the code, not a fixed box (a few steps, so
/// that the heights live in the style sheet).
fn height_class(lines: usize) -> &'static str {
    match lines {
        0..=3 => "lines-few",
        4..=12 => "lines-some",
        _ => "lines-many",
    }
}
