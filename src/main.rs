//! Server entry: read configuration, build the state, serve pages and the API.

use own_ide::server::config::{Config, Role};
use own_ide::server::state::AppState;
use std::future::IntoFuture;

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
    let role = state.config.role;
    let removed = if role.executes() {
        state.engine.remove_leftovers().await
    } else {
        0
    };
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
    let (state_runs, grace) = (state.runs.clone(), state.config.shutdown_grace);
    let app = match role {
        Role::Executor => own_ide::server::executor_router(state),
        Role::All | Role::Web => own_ide::server::app_router(state),
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    };
    tracing::info!(?role, "Own-IDE listening on http://{addr}");
    // On SIGTERM or Ctrl-C: no new runs, runs in progress get SHUTDOWN_GRACE_SECONDS to
    // finish (then they are stopped), every final state is written, and only then do
    // the open connections close (a client waiting for its run gets the result).
    let (runs, grace) = (state_runs, grace);
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing the runs in progress");
        runs.shutdown(grace).await;
        let _ = drained_tx.send(());
    })
    .into_future();
    // Connections left open after that (a stream waiting on another instance's run)
    // do not hold the process for long.
    let served = tokio::select! {
        served = served => served,
        _ = async {
            let _ = drained_rx.await;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        } => Ok(()),
    };
    engine.shutdown().await;
    if let Err(e) = served {
        eprintln!("server error: {e}");
        std::process::exit(1);
    }
}

/// Resolves on SIGTERM (how service managers and container runtimes stop a process) or
/// Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
