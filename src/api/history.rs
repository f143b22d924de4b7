//! Server functions for the history pages.

use crate::error::AppError;
use crate::model::{HistoryPage, Run};
use leptos::prelude::*;

/// One page of the signed-in user's runs (20 a page), newest first. Only the first line
/// of each program is sent: the list needs no more.
#[server(prefix = "/fn", endpoint = "history")]
pub async fn list_history(page: u64, language: Option<String>) -> Result<HistoryPage, AppError> {
    crate::api::respond(
        async move {
            use crate::server::state::AppState;
            let state = expect_context::<AppState>();
            let caller = crate::api::runs::caller().await?;
            let page = page.to_string();
            let mut list = state
                .runs
                .history(&caller, Some(&page), None, language.as_deref())
                .await?;
            for run in &mut list.items {
                run.code = run.code.as_deref().map(first_line);
                run.stdin = None;
                run.stdout.clear();
                run.stderr.clear();
                run.compile_output.clear();
            }
            Ok(list)
        }
        .await,
    )
}

/// The first non-empty line of a program, cut to 100 characters.
pub fn first_line(code: &str) -> String {
    let line = code.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.trim_end();
    if line.chars().count() > 100 {
        format!("{}…", line.chars().take(100).collect::<String>())
    } else {
        line.to_string()
    }
}

/// One of the signed-in user's saved runs; `None` when it is not theirs or not there.
#[server(prefix = "/fn", endpoint = "history_run")]
pub async fn history_run(id: String) -> Result<Option<Run>, AppError> {
    crate::api::respond(
        async move {
            use crate::server::state::AppState;
            let state = expect_context::<AppState>();
            let caller = crate::api::runs::caller().await?;
            state.runs.saved(&caller, &id).await
        }
        .await,
    )
}

/// Deletes one of the signed-in user's runs and goes back to the history.
///
/// Only a request with `confirmed=yes` deletes. The page sets it once the browser has
/// asked with `confirm()`; a browser without JavaScript sends the form without it and
/// is sent to the run's page with a confirmation step (`?delete=1`) instead.
#[server(prefix = "/fn", endpoint = "history_delete")]
pub async fn delete_run(id: String, confirmed: Option<String>) -> Result<(), AppError> {
    crate::api::respond(
        async move {
            use crate::server::state::AppState;
            let state = expect_context::<AppState>();
            let caller = crate::api::runs::caller().await?;
            if confirmed.as_deref() != Some("yes") {
                // Only the owner of a saved run is asked: anyone else gets what a delete would give.
                if state.runs.saved(&caller, &id).await?.is_none() {
                    return Err(AppError::NotFound);
                }
                leptos_axum::redirect(&format!("/history/{id}?delete=1"));
                return Ok(());
            }
            state.runs.delete(&caller, &id).await?;
            leptos_axum::redirect("/history");
            Ok(())
        }
        .await,
    )
}
