//! Server entry: read configuration, build the state, serve pages and the API.

use own_ide::server::config::Config;
use own_ide::server::state::AppState;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,own_ide=info".into()),
        )
        .init();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if config.secret_generated {
        tracing::warn!("SECRET_KEY is not set: using a random key, so sessions and tokens will not survive a restart");
    }
    let leptos_options = match leptos::config::get_configuration(None) {
        Ok(c) => c.leptos_options,
        Err(e) => {
            eprintln!("cannot read the Leptos configuration (run through cargo-leptos or set LEPTOS_* variables): {e}");
            std::process::exit(2);
        }
    };
    let addr = config.listen_addr;
    let state = match AppState::build(config, leptos_options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let removed = state.engine.remove_leftovers().await;
    if removed > 0 {
        tracing::info!(
            removed,
            "removed sandbox containers left by an earlier process"
        );
    }
    for (name, ok) in state.readiness().await {
        if !ok {
            tracing::warn!(
                dependency = name,
                "not reachable at start-up; retrying on later requests"
            );
        }
    }
    let engine = state.engine.clone();
    let app = own_ide::server::app_router(state);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    };
    tracing::info!("Own-IDE listening on http://{addr}");
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    engine.shutdown().await;
    if let Err(e) = served {
        eprintln!("server error: {e}");
        std::process::exit(1);
    }
}
