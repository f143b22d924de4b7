//! Server functions for running code from the pages.

use crate::model::{LanguageInfo, Run};
use leptos::prelude::*;

/// The language table, for the picker.
#[server(prefix = "/fn", endpoint = "languages")]
pub async fn get_languages() -> Result<Vec<LanguageInfo>, crate::error::AppError> {
    crate::api::respond(
        async move {
            let state = expect_context::<crate::server::state::AppState>();
            let cfg = state.runs.engine().config();
            Ok(crate::server::sandbox::LANGUAGES
                .iter()
                .map(|l| l.info(cfg))
                .collect())
        }
        .await,
    )
}

/// A run the caller may see (guests: made with their cookie).
#[server(prefix = "/fn", endpoint = "run")]
pub async fn get_run(id: String) -> Result<Option<Run>, crate::error::AppError> {
    crate::api::respond(
        async move {
            use crate::server::{auth::Caller, state::AppState};
            let state = expect_context::<AppState>();
            let caller = caller().await?;
            let _ = &caller as &Caller;
            Ok(state.runs.get(&id, &caller.owner()).await)
        }
        .await,
    )
}

/// The form path that works without JavaScript: runs the code, waits for it, and sends
/// the browser to the run's page, which shows the result.
#[server(prefix = "/fn", endpoint = "run_form")]
pub async fn run_form(
    language: String,
    code: String,
    stdin: Option<String>,
) -> Result<(), crate::error::AppError> {
    crate::api::respond(
        async move {
            use crate::server::{runs::NewRun, state::AppState};
            let state = expect_context::<AppState>();
            let caller = caller().await?;
            let submitted = state
                .runs
                .submit(
                    &caller,
                    NewRun {
                        language: language.clone(),
                        code: Some(code),
                        stdin,
                        ..NewRun::default()
                    },
                )
                .await;
            match submitted {
                Ok(s) => {
                    let run = s.live.wait().await;
                    leptos_axum::redirect(&format!("/runs/{}", run.id));
                }
                Err(refused) => {
                    let msg = refused.error.public().message;
                    leptos_axum::redirect(&format!(
                        "/?lang={}&error={}",
                        crate::model::url::query_value(&language),
                        crate::model::url::query_value(&msg)
                    ));
                }
            }
            Ok(())
        }
        .await,
    )
}

/// The caller of the current request, as the identity middleware found it.
#[cfg(feature = "ssr")]
pub async fn caller() -> Result<crate::server::auth::Caller, crate::error::AppError> {
    use axum::Extension;
    leptos_axum::extract::<Extension<crate::server::auth::Caller>>()
        .await
        .map(|Extension(c)| c)
        .map_err(|_| crate::error::AppError::Internal)
}
