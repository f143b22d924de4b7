//! Server functions for accounts: who is signed in, log in, register, log out, and the
//! guest's remaining runs. They call the same services as `/api/v1`.

use crate::error::AppError;
use crate::model::{QuotaInfo, UserInfo};
use leptos::prelude::*;

/// Where to go after signing in: only paths on this site (no `//host` tricks).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.contains(['\r', '\n']) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// The signed-in user, or `None` for a guest.
#[server(prefix = "/fn", endpoint = "me")]
pub async fn current_user() -> Result<Option<UserInfo>, AppError> {
    crate::api::respond(
        async move {
            use crate::server::auth::Caller;
            Ok(match crate::api::runs::caller().await? {
                Caller::User { id, username, .. } => Some(UserInfo { id, username }),
                Caller::Guest { .. } => None,
            })
        }
        .await,
    )
}

/// A guest's runs left today; `None` for users (no daily limit) or when unknown.
#[server(prefix = "/fn", endpoint = "quota")]
pub async fn my_quota() -> Result<Option<QuotaInfo>, AppError> {
    crate::api::respond(
        async move {
            use crate::server::{auth::Caller, state::AppState};
            let state = expect_context::<AppState>();
            Ok(match crate::api::runs::caller().await? {
                Caller::Guest { guest_id, ip } => state.runs.quota().peek(&guest_id, ip).await.ok(),
                Caller::User { .. } => None,
            })
        }
        .await,
    )
}

#[cfg(feature = "ssr")]
async fn session() -> Result<tower_sessions::Session, AppError> {
    leptos_axum::extract::<tower_sessions::Session>()
        .await
        .map_err(|_| AppError::Internal)
}

/// Logs in with a username and password and goes to `next`.
#[server(prefix = "/fn", endpoint = "login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    crate::api::respond(
        async move {
            use crate::server::{auth, state::AppState};
            let state = expect_context::<AppState>();
            let caller = crate::api::runs::caller().await?;
            let ip = caller.ip();
            let user = state.accounts.login(&username, &password, ip).await?;
            auth::start_session(&session().await?, &user).await?;
            leptos_axum::redirect(&safe_next(next.as_deref()));
            Ok(())
        }
        .await,
    )
}

/// Creates an account, signs it in and goes to `next`.
#[server(prefix = "/fn", endpoint = "register")]
pub async fn register(
    username: String,
    password: String,
    confirm: String,
    next: Option<String>,
) -> Result<(), AppError> {
    crate::api::respond(
        async move {
            use crate::server::{auth, state::AppState};
            let state = expect_context::<AppState>();
            if password != confirm {
                return Err(AppError::invalid(
                    "password_mismatch",
                    "The two passwords do not match.",
                ));
            }
            let ip = crate::api::runs::caller().await?.ip();
            let user = state.accounts.register(&username, &password, ip).await?;
            auth::start_session(&session().await?, &user).await?;
            leptos_axum::redirect(&safe_next(next.as_deref()));
            Ok(())
        }
        .await,
    )
}

/// Logs out: the session is destroyed, and the browser goes to the editor.
#[server(prefix = "/fn", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    crate::api::respond(
        async move {
            crate::server::auth::end_session(&session().await?).await;
            leptos_axum::redirect("/");
            Ok(())
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/history?page=2")), "/history?page=2");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
