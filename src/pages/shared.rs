//! `/s/{slug}`: a shared run, read-only, rendered completely on the server (highlighted
//! code, input, output, verdict) with link-preview meta tags, and "Open in editor",
//! which starts a new draft from it (`/?fork={slug}`).

use crate::api::runs::get_languages;
use crate::api::shares::get_share;
use crate::components::output::{OutputView, StatusLine};
use crate::model::highlight::highlight;
use crate::model::SharedRun;
use crate::pages::history::when;
use crate::pages::not_found::NotFound;
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn SharedPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let share = Resource::new(slug, get_share);
    let langs = Resource::new(|| (), |_| get_languages());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match share.await {
                    Ok(Some(s)) => {
                        let name = langs
                            .await
                            .ok()
                            .and_then(|l| l.into_iter().find(|l| l.id == s.language))
                            .map(|l| l.name)
                            .unwrap_or_else(|| s.language.clone());
                        view! { <SharedView share=s language_name=name/> }.into_any()
                    }
                    Ok(None) => view! { <NotFound/> }.into_any(),
                    Err(e) => {
                        #[cfg(feature = "ssr")]
                        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
                            resp.set_status(
                                http::StatusCode::from_u16(e.status())
                                    .unwrap_or(http::StatusCode::SERVICE_UNAVAILABLE),
                            );
                        }
                        view! {
                            <section class="message-page">
                                <h1>"Service unavailable"</h1>
                                <p>{e.public().message}</p>
                                <p><a class="button primary" href="/">"Open the editor"</a></p>
                            </section>
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// The shared run: title and preview tags, the actions, code, input, output.
#[component]
fn SharedView(share: SharedRun, language_name: String) -> impl IntoView {
    let query = use_query_map();
    let just_made = query.read_untracked().get("new").is_some();
    let title = format!("{language_name} program");
    let preview = share.first_lines(3);
    let preview = if preview.is_empty() {
        title.clone()
    } else {
        preview
    };
    let slug = share.slug.clone();
    let stdin = share.stdin.clone();
    let shared_at = share.shared_at.clone();
    let expires = share.expires_at.clone();
    let run = Signal::stored(Some(share.as_run()));
    let several = share.files.as_ref().is_some_and(|f| f.len() > 1);
    let code = program_files(&share)
        .into_iter()
        .enumerate()
        .map(|(i, (name, content))| {
            let lines = code_lines(&share.language, &content);
            // The entry file keeps the test id the single-file page always had.
            let testid = (i == 0).then_some("shared-code");
            let label = match &name {
                Some(n) => format!("Code of {n}"),
                None => "Code".to_string(),
            };
            let head = name.clone().filter(|_| several).map(|n| {
                view! {
                    <h3 class="file-name">
                        {n}{(i == 0).then(|| view! { " " <span class="entry-note">"(entry file)"</span> })}
                    </h3>
                }
            });
            view! {
                {head}
                <pre class="code-view" data-testid=testid data-file=name aria-label=label><code>{lines}</code></pre>
            }
        })
        .collect_view();
    view! {
        <Title text=format!("{title} · Own-IDE")/>
        <Meta property="og:title" content=format!("{title} · Own-IDE")/>
        <Meta property="og:description" content=preview.clone()/>
        <Meta property="og:type" content="website"/>
        <Meta property="og:site_name" content="Own-IDE"/>
        <Meta name="twitter:card" content="summary"/>
        <Meta name="twitter:title" content=format!("{title} · Own-IDE")/>
        <Meta name="twitter:description" content=preview/>
        <section class="run-page shared-run">
            <div class="toolbar">
                <h1>{title}</h1>
                <span class="lang-tag">{share.language.clone()}</span>
                <span class="spacer"></span>
                <a class="button primary" href=format!("/?fork={slug}") data-testid="fork">"Open in editor"</a>
            </div>
            {just_made.then(|| view! { <LinkNote slug=slug.clone()/> })}
            <h2 class="pane-title">{if several { "Files" } else { "Code" }}</h2>
            <div class="shared-files">{code}</div>
            <h2 class="pane-title">"Input (stdin)"</h2>
            <pre class="stdin-view" data-testid="shared-stdin">{if stdin.is_empty() { "(none)".to_string() } else { stdin }}</pre>
            <h2 class="pane-title">"Output"</h2>
            <OutputView run=run/>
            <StatusLine run=run message=Signal::stored(None::<String>)/>
            <p class="shared-when muted">
                "Shared " <time datetime=shared_at.clone()>{when(&shared_at)}</time>
                {expires.map(|e| view! { " · the link works until " <time datetime=e.clone()>{when(&e)}</time> })}
                " · read-only: opening it in the editor makes your own copy."
            </p>
        </section>
    }
}

/// The program's files to show, the entry first, each with its name; a program of one
/// file is its code (no name to show).
fn program_files(share: &SharedRun) -> Vec<(Option<String>, String)> {
    match &share.files {
        Some(files) if !files.is_empty() => {
            let main = share.main.as_deref().unwrap_or(&files[0].name);
            let (entry, rest): (Vec<_>, Vec<_>) = files.iter().partition(|f| f.name == main);
            entry
                .into_iter()
                .chain(rest)
                .map(|f| (Some(f.name.clone()), f.content.clone()))
                .collect()
        }
        _ => vec![(None, share.code.clone())],
    }
}

/// One file's code, highlighted as the language's, line by line.
fn code_lines(language: &str, code: &str) -> impl IntoView {
    highlight(language, code)
        .into_iter()
        .map(|line| {
            let pieces = line
                .into_iter()
                .map(|(kind, text)| match kind.class() {
                    Some(class) => view! { <span class=class>{text}</span> }.into_any(),
                    None => text.into_any(),
                })
                .collect_view();
            view! { <span class="line">{pieces}"\n"</span> }
        })
        .collect_view()
}

/// Shown right after a share was made without JavaScript: the link to copy.
#[component]
fn LinkNote(slug: String) -> impl IntoView {
    let path = format!("/s/{slug}");
    let link = RwSignal::new(path.clone());
    // In the browser the full address is known.
    Effect::new(move || {
        #[cfg(feature = "hydrate")]
        if let Some(origin) = web_sys::window().and_then(|w| w.location().origin().ok()) {
            link.set(format!("{origin}{path}"));
        }
    });
    view! {
        <div class="share-note" role="status">
            <label for="share-link">"Link created. Copy it to share this run:"</label>
            <input id="share-link" class="share-link" readonly value=move || link.get() prop:value=move || link.get()/>
        </div>
    }
}
