//! Own-IDE: a web IDE and code-execution service. The library holds the Leptos app
//! (shared by server and browser) and, behind the `ssr` feature, the server.

// The editor's view is one deeply nested Leptos type; computing its layout in an
// optimised build goes past the default depth of 128.
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod components;
pub mod error;
pub mod model;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod server;

/// Browser entry: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
