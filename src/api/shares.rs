//! Server functions for shared runs: read one (the page `/s/{slug}`, a fork in the
//! editor), and create one from a form (the no-JavaScript path; the browser client uses
//! `POST /api/v1/runs/{id}/share`).

use crate::error::AppError;
use crate::model::SharedRun;
use leptos::prelude::*;

/// The share behind `slug`, for anyone; `None` when there is none.
#[server(prefix = "/fn", endpoint = "share")]
pub async fn get_share(slug: String) -> Result<Option<SharedRun>, AppError> {
    crate::api::respond(
        async move {
            use crate::server::state::AppState;
            let state = expect_context::<AppState>();
            state.shares.get(&slug).await
        }
        .await,
    )
}

/// Shares run `id` and sends the browser to the shared page, which shows the link; a
/// refusal goes back to `back` (a path of this site) with the reason.
#[server(prefix = "/fn", endpoint = "share_form")]
pub async fn share_form(id: String, back: Option<String>) -> Result<(), AppError> {
    crate::api::respond(
        async move {
            use crate::server::state::AppState;
            let state = expect_context::<AppState>();
            let caller = crate::api::runs::caller().await?;
            match state.shares.create(&caller, &id).await {
                Ok(created) => leptos_axum::redirect(&format!("/s/{}?new=1", created.share.slug)),
                Err(refused) => {
                    let back = back
                        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
                        .unwrap_or_else(|| "/".into());
                    let back = back.split(['?', '#']).next().unwrap_or("/").to_string();
                    leptos_axum::redirect(&format!(
                        "{back}?error={}",
                        crate::model::url::query_value(&refused.error.public().message)
                    ));
                }
            }
            Ok(())
        }
        .await,
    )
}
