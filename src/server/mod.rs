//! Server-only code: configuration, state, the REST API and the services behind it.

pub mod accounts;
pub mod auth;
pub mod config;
pub mod csrf;
pub mod facades;
pub mod health;
pub mod heartbeat;
pub mod limits;
pub mod mongo;
pub mod net;
pub mod quota;
pub mod redis;
pub mod rest;
pub mod runs;
pub mod sandbox;
pub mod shares;
pub mod state;
pub mod store;

use axum::routing::get;
use axum::Router;
use state::AppState;

/// The API and health routes with identity and limits applied; pages are added by main.
pub fn api_router(state: AppState) -> Router {
    Router::new()
        .merge(rest::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            identify_state(&state),
            auth::identify,
        ))
        .layer(session_layer(&state))
        // Outermost, so that a refused cross-site request reads and writes no session.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::refuse_cross_site,
        ))
        // Beside /api/v1, with their own identity layers (no browser session).
        .merge(facades::routes(&state))
        .with_state(state)
}

/// An executor's routes: health and metrics only (it serves no pages and no API).
pub fn executor_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

/// What the identity middleware needs from the state.
fn identify_state(state: &AppState) -> auth::Identify {
    auth::Identify {
        accounts: state.accounts.clone(),
        trusted_proxies: state.config.trusted_proxies.clone().into(),
    }
}

/// Browser sessions: stored in MongoDB, cookie `HttpOnly`, `SameSite=Lax`, `Secure` when
/// configured, kept for 30 days of inactivity.
fn session_layer(
    state: &AppState,
) -> tower_sessions::SessionManagerLayer<accounts::sessions::MongoSessionStore> {
    tower_sessions::SessionManagerLayer::new(state.sessions.clone())
        .with_name(auth::SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_secure(state.config.cookie_secure)
        .with_path("/")
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::days(30),
        ))
}

/// The whole app: pages (server-rendered, hydrated), server functions, API and health.
pub fn app_router(state: AppState) -> Router {
    use crate::app::{shell, App};
    use leptos::prelude::provide_context;
    use leptos_axum::{generate_route_list, LeptosRoutes};
    let routes = generate_route_list(App);
    let ctx_state = state.clone();
    let context = move || provide_context(ctx_state.clone());
    let pages: Router = Router::new()
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let opts = state.leptos_options.clone();
            move || shell(opts.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(axum::middleware::from_fn_with_state(
            identify_state(&state),
            auth::identify,
        ))
        .layer(session_layer(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::refuse_cross_site,
        ))
        .with_state(state.clone());
    api_router(state)
        .merge(pages)
        .layer(tower_http::compression::CompressionLayer::new())
}
