//! The browser session's contents (guest identity, signed-in user) and the two changes
//! made to it: starting a signed-in session and ending it.

use crate::error::AppError;
use crate::model::UserInfo;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

/// Name of the session cookie (tower-sessions). It carries the guest identity too.
pub const SESSION_COOKIE: &str = "own_ide_session";
/// The key under which [`SessionData`] is kept in the session.
pub const SESSION_KEY: &str = "own_ide";

/// What the browser session holds: the guest identity from first contact, and the user
/// once someone logs in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    pub guest_id: String,
    #[serde(default)]
    pub user: Option<UserInfo>,
}

fn session_unavailable() -> AppError {
    AppError::unavailable(
        "session_unavailable",
        "Signing in is not possible right now because the session store (MongoDB) is not available. Please try again shortly.",
        5,
    )
}

/// Makes `session` a signed-in session of `user`: a new session id (so that an id seen
/// before log-in is worthless after it), the same guest identity, saved at once.
pub async fn start_session(session: &Session, user: &UserInfo) -> Result<(), AppError> {
    let guest_id = guest_id_of(session).await;
    let data = SessionData {
        guest_id,
        user: Some(user.clone()),
    };
    session
        .cycle_id()
        .await
        .map_err(|_| session_unavailable())?;
    session
        .insert(SESSION_KEY, data)
        .await
        .map_err(|_| session_unavailable())?;
    session.save().await.map_err(|_| session_unavailable())
}

/// Ends a signed-in session: the stored session is destroyed, and a new guest session
/// with the same guest identity takes its place.
pub async fn end_session(session: &Session) {
    let guest_id = guest_id_of(session).await;
    if let Err(e) = session.flush().await {
        tracing::warn!(error = %e, "could not delete a session from the store");
    }
    let _ = session
        .insert(
            SESSION_KEY,
            SessionData {
                guest_id,
                user: None,
            },
        )
        .await;
}

/// The guest identity a session carries (a new one if it has none yet): it stays the
/// same across log-in and log-out, so the guest quota cannot be reset by either.
pub(super) async fn guest_id_of(session: &Session) -> String {
    session
        .get::<SessionData>(SESSION_KEY)
        .await
        .ok()
        .flatten()
        .map(|d| d.guest_id)
        .unwrap_or_else(new_guest_id)
}

pub(super) fn new_guest_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A stable guest id for a session cookie whose store cannot be read right now: a hash
/// of the cookie value, so that the guest is counted the same way on every request.
pub(super) fn fallback_guest_id(headers: &HeaderMap) -> String {
    use sha2::{Digest, Sha256};
    match super::cookie(headers, SESSION_COOKIE) {
        Some(v) => {
            let digest = Sha256::digest(v.as_bytes());
            digest[..16].iter().map(|b| format!("{b:02x}")).collect()
        }
        None => new_guest_id(),
    }
}
