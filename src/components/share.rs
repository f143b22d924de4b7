//! The Share button (editor, run pages): creates a share of a finished run, copies its
//! link and shows it in a small toast, where it can also be selected by hand when the
//! clipboard is refused. On pages that are not a form themselves it is a form too, so
//! that it works without JavaScript (the server then shows the link on the shared page).

use crate::model::QuotaInfo;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// What the toast says.
#[derive(Clone, Debug, PartialEq)]
enum Note {
    /// The link, and whether it is on the clipboard (made in the browser only).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    Link {
        url: String,
        copied: bool,
    },
    Error(String),
}

/// Shares `run_id` (disabled while it is `None`). `form`: post a form without
/// JavaScript, coming back to `back` on a refusal. `quota`: a guest's runs left, which a
/// share uses up like a run (a user's stays `None`).
#[component]
pub fn ShareButton(
    #[prop(into)] run_id: Signal<Option<String>>,
    #[prop(optional)] form: bool,
    #[prop(optional, into)] back: String,
    #[prop(optional)] quota: Option<RwSignal<Option<QuotaInfo>>>,
) -> impl IntoView {
    // A refusal of the form path comes back as ?error=.
    let refused = form
        .then(|| use_query_map().read_untracked().get("error"))
        .flatten();
    let note = RwSignal::new(refused.map(Note::Error));
    let busy = RwSignal::new(false);
    #[cfg(not(feature = "hydrate"))]
    let _ = quota;
    let click = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        if let Some(id) = run_id.get_untracked() {
            busy.set(true);
            leptos::task::spawn_local(async move {
                let (result, left) = client::share(&id).await;
                if let (Some(q), Some(left)) = (quota, left) {
                    if q.get_untracked().is_some() {
                        q.set(Some(left));
                    }
                }
                note.set(Some(result));
                busy.set(false);
            });
        }
    };
    let button = move || {
        view! {
            <button
                type=if form { "submit" } else { "button" }
                class="button share"
                data-testid="share"
                disabled=move || run_id.get().is_none() || busy.get()
                on:click=click
            >
                "Share"
            </button>
        }
    };
    let control = if form {
        view! {
            <form class="share-form" method="post" action="/fn/share_form">
                <input type="hidden" name="id" value=move || run_id.get().unwrap_or_default()/>
                <input type="hidden" name="back" value=back/>
                {button()}
            </form>
        }
        .into_any()
    } else {
        view! { <span class="js-only">{button()}</span> }.into_any()
    };
    view! {
        {control}
        {move || note.get().map(|n| view! { <Toast note=n on_close=move || note.set(None)/> })}
    }
}

#[component]
fn Toast(note: Note, on_close: impl Fn() + 'static) -> impl IntoView {
    let body = match note {
        Note::Link { url, copied } => view! {
            <label for="share-toast-link">{if copied { "Link copied:" } else { "Copy this link:" }}</label>
            <input id="share-toast-link" class="share-link" readonly value=url.clone() prop:value=url
                on:focus=move |ev| {
                    #[cfg(feature = "hydrate")]
                    {
                        use wasm_bindgen::JsCast;
                        if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                            input.select();
                        }
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = ev;
                }/>
        }
        .into_any(),
        Note::Error(message) => view! { <span class="toast-error">{message}</span> }.into_any(),
    };
    view! {
        <div class="toast" role="status" data-testid="share-toast">
            {body}
            <button type="button" class="toast-close" aria-label="Close" on:click=move |_| on_close()>"×"</button>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod client {
    use super::Note;
    use crate::model::{PublicError, QuotaInfo, ShareLink};
    use wasm_bindgen::JsValue;

    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: PublicError,
    }

    /// `POST /api/v1/runs/{id}/share`, then the link onto the clipboard; with the
    /// rate-limit count the answer carried.
    pub async fn share(id: &str) -> (Note, Option<QuotaInfo>) {
        let sent = gloo_net::http::Request::post(&format!("/api/v1/runs/{id}/share"))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(_) => {
                let offline = "Could not reach the server. Check your connection and try again.";
                return (Note::Error(offline.into()), None);
            }
        };
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.parse::<u64>().ok());
        let left = match (
            header("x-ratelimit-limit"),
            header("x-ratelimit-remaining"),
            header("x-ratelimit-reset"),
        ) {
            (Some(limit), Some(remaining), Some(reset)) => Some(QuotaInfo {
                limit: limit as u32,
                remaining: remaining as u32,
                reset_seconds: reset,
            }),
            _ => None,
        };
        if resp.status() != 201 {
            let status = resp.status();
            let message = resp
                .json::<ErrorBody>()
                .await
                .map(|b| b.error.message)
                .unwrap_or_else(|_| format!("The server answered {status}."));
            return (Note::Error(message), left);
        }
        let Ok(link) = resp.json::<ShareLink>().await else {
            return (
                Note::Error("The server sent an unexpected answer.".into()),
                left,
            );
        };
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        let url = format!("{origin}/s/{}", link.slug);
        let copied = copy(&url).await;
        (Note::Link { url, copied }, left)
    }

    /// `navigator.clipboard.writeText(text)`; false when the browser refuses it.
    async fn copy(text: &str) -> bool {
        use js_sys::{Function, Promise, Reflect};
        use wasm_bindgen::JsCast;
        let Some(window) = web_sys::window() else {
            return false;
        };
        let clipboard =
            Reflect::get(&window.navigator(), &"clipboard".into()).unwrap_or(JsValue::UNDEFINED);
        let Ok(write) =
            Reflect::get(&clipboard, &"writeText".into()).and_then(|f| f.dyn_into::<Function>())
        else {
            return false;
        };
        let Ok(promise) = write
            .call1(&clipboard, &text.into())
            .and_then(|p| p.dyn_into::<Promise>())
        else {
            return false;
        };
        wasm_bindgen_futures::JsFuture::from(promise).await.is_ok()
    }
}
