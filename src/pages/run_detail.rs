//! `/runs/{id}`: one run with its output. Also where the no-JavaScript form lands.

use crate::api::runs::get_run;
use crate::components::output::{OutputView, StatusLine};
use crate::components::share::ShareButton;
use crate::model::RunStatus;
use crate::pages::not_found::NotFound;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let run = Resource::new(id, get_run);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match run.await {
                    Ok(Some(r)) => {
                        let lang = r.language.clone();
                        let running = r.status != RunStatus::Finished;
                        let unsaved = r.saved == Some(false);
                        let sig = Signal::stored(Some(r.clone()));
                        view! {
                            <section class="run-page">
                                <div class="toolbar">
                                    <h1>"Run " <code>{r.id.chars().take(8).collect::<String>()}</code></h1>
                                    <span class="lang-tag">{lang.clone()}</span>
                                    <a class="button" href=format!("/?lang={lang}")>"Back to the editor"</a>
                                    {(!running).then(|| view! { <ShareButton run_id=Signal::stored(Some(r.id.clone())) form=true back=format!("/runs/{}", r.id)/> })}
                                    {(r.code.is_some() || r.files.is_some()).then(|| view! {
                                        <a class="button" href=format!("/?from={}", r.id)>"Open in editor"</a>
                                    })}
                                </div>
                                {running.then(|| view! { <p class="note">"This run has not finished yet. Reload to see more."</p> })}
                                {unsaved.then(|| view! { <p class="note warning" role="alert">{crate::model::UNSAVED}</p> })}
                                <ProgramView run=r.clone()/>
                                <OutputView run=sig/>
                                <StatusLine run=sig message=Signal::stored(None::<String>)/>
                            </section>
                        }
                        .into_any()
                    }
                    Ok(None) => view! { <NotFound/> }.into_any(),
                    Err(_) => view! {
                        <section class="message-page">
                            <h1>"Service unavailable"</h1>
                            <p>"This run cannot be loaded right now. Please try again in a moment."</p>
                        </section>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

/// What made a user's run: its code or files (the entry marked), its arguments and the
/// limits it ran with. Nothing for a guest's run (it keeps none of it).
#[component]
fn ProgramView(run: crate::model::Run) -> impl IntoView {
    let files = match (&run.files, &run.code) {
        (Some(files), _) => files.clone(),
        (None, Some(code)) => vec![crate::model::SourceFile {
            name: String::new(),
            content: code.clone(),
        }],
        _ => return ().into_any(),
    };
    let main = run.main.clone().unwrap_or_default();
    let several = files.len() > 1;
    let files = files
        .into_iter()
        .map(|f| {
            let title = (several || !f.name.is_empty()).then(|| {
                let entry = (f.name == main).then_some(" (entry)");
                view! { <h3 class="file-name">{f.name.clone()}{entry}</h3> }
            });
            view! { {title}<pre class="code" data-file=f.name.clone()>{f.content}</pre> }
        })
        .collect_view();
    let args = run.args.as_deref().filter(|a| !a.is_empty()).map(
        |a| view! { <p class="args">"Arguments: " <code>{crate::model::join_args(a)}</code></p> },
    );
    let limits = run.limits.map(|l| {
        view! {
            <p class="limits">
                {format!(
                    "Limits: {} ms · {} MB",
                    l.time_ms.unwrap_or_default(),
                    l.memory_mb.unwrap_or_default()
                )}
            </p>
        }
    });
    view! {
        <section class="program" aria-label="Program">
            {files}
            {args}
            {limits}
        </section>
    }
    .into_any()
}
