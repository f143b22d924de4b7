//! The HTML shell, the root component and the route table.

use crate::components::auth::Auth;
use crate::components::nav::Nav;
use crate::pages::auth::{LoginPage, RegisterPage};
use crate::pages::history::{HistoryList, HistoryRun};
use crate::pages::shared::SharedPage;
use crate::pages::{editor::EditorPage, not_found::NotFound, run_detail::RunPage};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <meta name="description" content="Own-IDE: write Python, C++, Java or JavaScript and run it in a locked-down sandbox."/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <script type="module" src="/editor/editor.js"></script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The app: header, and the page for the current route.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/own-ide.css"/>
        <Title text="Own-IDE"/>
        <Router>
            <Frame/>
        </Router>
    }
}

/// Inside the router (the account actions read form errors from the URL there).
#[component]
fn Frame() -> impl IntoView {
    Auth::provide();
    // Effects run only in the browser, after hydration: tests and styles can rely on it.
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <div class="app">
            <Nav/>
            <main class="main">
                <Routes fallback=|| view! { <NotFound/> }>
                    // Async everywhere: the whole page is rendered before the first byte
                    // is sent, so it is complete without JavaScript, and its status (302
                    // to /login, 404, 503) is known. Every resource here is fast.
                    <Route path=path!("/") view=EditorPage ssr=SsrMode::Async/>
                    <Route path=path!("/runs/:id") view=RunPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/register") view=RegisterPage ssr=SsrMode::Async/>
                    <Route path=path!("/history") view=HistoryList ssr=SsrMode::Async/>
                    <Route path=path!("/history/:id") view=HistoryRun ssr=SsrMode::Async/>
                    <Route path=path!("/s/:slug") view=SharedPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </div>
    }
}
