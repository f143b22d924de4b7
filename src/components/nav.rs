//! The header: product name, navigation, and who is signed in.

use crate::components::auth::Auth;
use crate::model::url::path_in_query;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn Nav() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let location = leptos_router::hooks::use_location();
    // "Log in" and "Register" bring the visitor back to the page they were on.
    let back = move |to: &str| {
        let here = location.pathname.get();
        if here == "/login" || here == "/register" || here == "/" {
            to.to_string()
        } else {
            format!("{to}?next={}", path_in_query(&here))
        }
    };
    view! {
        <header class="site-header">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"▶"</span>
                "Own-IDE"
            </a>
            <nav aria-label="Main">
                <A href="/" exact=true>"Editor"</A>
                <A href="/history">"History"</A>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match auth.user.await {
                            Ok(Some(user)) => view! {
                                <span class="user" data-testid="user">
                                    <span class="sr-only">"Signed in as "</span>{user.username}
                                </span>
                                <ActionForm action=auth.logout attr:class="logout-form">
                                    <button type="submit" class="button">"Log out"</button>
                                </ActionForm>
                            }
                            .into_any(),
                            _ => view! {
                                <A href=move || back("/login")>"Log in"</A>
                                <A href=move || back("/register")>"Register"</A>
                            }
                            .into_any(),
                        }
                    })}
                </Transition>
            </nav>
        </header>
    }
}
