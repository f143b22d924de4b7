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
                                </div>
                                {running.then(|| view! { <p class="note">"This run has not finished yet. Reload to see more."</p> })}
                                {unsaved.then(|| view! { <p class="note warning" role="alert">{crate::model::UNSAVED}</p> })}
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
