//! Who is calling: a guest (cookie plus client IP) or a user. Every route sees a `Caller`.

use super::runs::Owner;
use super::state::AppState;
use crate::error::AppError;
use crate::model::UserInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use tower_sessions::Session;

/// The identity of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Guest {
        guest_id: String,
        ip: IpAddr,
    },
    User {
        id: String,
        username: String,
        ip: IpAddr,
    },
}

impl Caller {
    /// The owner key under which this caller's runs are kept.
    pub fn owner(&self) -> Owner {
        match self {
            Caller::Guest { guest_id, .. } => Owner::Guest(guest_id.clone()),
            Caller::User { id, .. } => Owner::User(id.clone()),
        }
    }

    /// The client address the request came from.
    pub fn ip(&self) -> IpAddr {
        match self {
            Caller::Guest { ip, .. } | Caller::User { ip, .. } => *ip,
        }
    }

    pub fn is_guest(&self) -> bool {
        matches!(self, Caller::Guest { .. })
    }
}

/// Reads one cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The client address: the socket peer, or, only when that peer is a trusted proxy, the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Right-most,
/// not left-most: entries to the left of the last untrusted hop were written by the
/// client and can be anything, so trusting them would let a guest pick its own IP (and
/// a fresh quota) per request. With one trusted proxy both rules agree on honest traffic.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    chain
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

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

/// Requests for files (the wasm bundle, scripts, styles) need no identity.
fn is_asset(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path.starts_with("/editor/")
        || path.starts_with("/favicon")
        || path == "/robots.txt"
}

/// The guest identity a session carries (a new one if it has none yet): it stays the
/// same across log-in and log-out, so the guest quota cannot be reset by either.
async fn guest_id_of(session: &Session) -> String {
    session
        .get::<SessionData>(SESSION_KEY)
        .await
        .ok()
        .flatten()
        .map(|d| d.guest_id)
        .unwrap_or_else(new_guest_id)
}

fn new_guest_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A stable guest id for a session cookie whose store cannot be read right now: a hash
/// of the cookie value, so that the guest is counted the same way on every request.
fn fallback_guest_id(headers: &HeaderMap) -> String {
    use sha2::{Digest, Sha256};
    match cookie(headers, SESSION_COOKIE) {
        Some(v) => {
            let digest = Sha256::digest(v.as_bytes());
            digest[..16].iter().map(|b| format!("{b:02x}")).collect()
        }
        None => new_guest_id(),
    }
}

/// Middleware: works out the caller (bearer token, else the browser session), and puts
/// a guest identity into a new session on first contact.
pub async fn identify(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if is_asset(req.uri().path()) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let ip = client_ip(peer, req.headers(), &state.config.trusted_proxies);

    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(token) = token else {
            return AppError::Unauthorized(
                "Use the Authorization header as: Bearer <access token>.".into(),
            )
            .into_response();
        };
        return match state.accounts.verify_token(token) {
            Ok(user) => {
                req.extensions_mut().insert(Caller::User {
                    id: user.id,
                    username: user.username,
                    ip,
                });
                next.run(req).await
            }
            Err(e) => e.into_response(),
        };
    }

    let session = req.extensions().get::<Session>().cloned();
    let mut fresh = None;
    let caller = match &session {
        None => Caller::Guest {
            guest_id: fallback_guest_id(req.headers()),
            ip,
        },
        Some(session) => match session.get::<SessionData>(SESSION_KEY).await {
            Ok(Some(SessionData {
                user: Some(user), ..
            })) => Caller::User {
                id: user.id,
                username: user.username,
                ip,
            },
            Ok(Some(data)) => Caller::Guest {
                guest_id: data.guest_id,
                ip,
            },
            Ok(None) => {
                let data = SessionData {
                    guest_id: new_guest_id(),
                    user: None,
                };
                let guest_id = data.guest_id.clone();
                if session.insert(SESSION_KEY, data).await.is_ok() {
                    fresh = Some(session.clone());
                }
                Caller::Guest { guest_id, ip }
            }
            Err(e) => {
                // The session store (MongoDB) is down: the visitor is served as a guest
                // whose identity is derived from the cookie, and nothing is written.
                tracing::warn!(error = %e, "session store unavailable; serving as guest");
                Caller::Guest {
                    guest_id: fallback_guest_id(req.headers()),
                    ip,
                }
            }
        },
    };
    req.extensions_mut().insert(caller);
    let res = next.run(req).await;
    if let Some(session) = fresh {
        // Save the new session here, so that a down store only means "no cookie this
        // time" instead of the session layer turning the page into an error.
        if session.is_modified() && session.save().await.is_err() {
            session.clear().await;
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4".parse().unwrap());
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(client_ip(peer, &h, &[]), peer);
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 127.0.0.1".parse().unwrap(),
        );
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn cookies_are_found() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; own_ide_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
