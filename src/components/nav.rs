//! The header: product name and navigation.

use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Nav() -> impl IntoView {
    view! {
        <header class="site-header">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"▶"</span>
                "Own-IDE"
            </a>
            <nav aria-label="Main">
                <A href="/">"Editor"</A>
            </nav>
        </header>
    }
}
