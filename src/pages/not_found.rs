//! The 404 page, in the same frame as every other page.

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="message-page">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. It may have been deleted, or it belongs to someone else."</p>
            <p><a class="button primary" href="/">"Open the editor"</a></p>
        </section>
    }
}
