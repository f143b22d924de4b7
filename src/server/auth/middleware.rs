//! The identity middleware: every request leaves it with a `Caller` (bearer token, else
//! the browser session, which gets a guest identity on first contact).

use super::client_ip;
use super::identity::Caller;
use super::session::{fallback_guest_id, new_guest_id, SessionData, SESSION_KEY};
use crate::error::AppError;
use crate::server::accounts::Accounts;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tower_sessions::Session;

/// What the middleware needs: token checks and the proxies whose forwarded-for is believed.
#[derive(Clone)]
pub struct Identify {
    pub accounts: Arc<Accounts>,
    pub trusted_proxies: Arc<[IpAddr]>,
}

/// Requests for files (the wasm bundle, scripts, styles) need no identity.
fn is_asset(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path.starts_with("/editor/")
        || path.starts_with("/api-docs/")
        || path.starts_with("/favicon")
        || path == "/robots.txt"
}

/// A health probe: it needs no identity, and a load balancer's probes would otherwise
/// store a session (a MongoDB document) each. (Any other first contact, an API read
/// included, gets its guest cookie, as the API contract says.)
fn is_health_probe(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    (method == Method::GET || method == Method::HEAD)
        && matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Middleware: works out the caller (bearer token, else the browser session), and puts
/// a guest identity into a new session on first contact.
pub async fn identify(State(state): State<Identify>, mut req: Request, next: Next) -> Response {
    if is_asset(req.uri().path()) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let ip = client_ip(peer, req.headers(), &state.trusted_proxies);

    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        return match bearer_caller(&state, value, ip) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                next.run(req).await
            }
            Err(e) => e.into_response(),
        };
    }
    let session = req.extensions().get::<Session>().cloned();
    // A health probe by a new visitor has nothing to keep: no session is stored for it.
    let keep_new = !is_health_probe(req.method(), req.uri().path());
    let (caller, fresh) = match &session {
        None => (guest_of_cookie(req.headers(), ip), None),
        Some(session) => session_caller(session, req.headers(), ip, keep_new).await,
    };
    req.extensions_mut().insert(caller);
    // The REST API never changes a session, so a new one is stored while the request is
    // answered rather than after (a cookie-less client's `?wait=true` run no longer
    // waits for the session store's write at its end).
    let early = match &fresh {
        Some(session) if req.uri().path().starts_with("/api/v1/") => {
            let session = session.clone();
            Some(tokio::spawn(async move { session.save().await.is_ok() }))
        }
        _ => None,
    };
    let res = next.run(req).await;
    if let Some(session) = fresh {
        // Save the new session here, so that a down store only means "no cookie this
        // time" instead of the session layer turning the page into an error.
        let saved = match early {
            Some(saving) => saving.await.unwrap_or(false),
            None => !session.is_modified() || session.save().await.is_ok(),
        };
        if !saved {
            session.clear().await;
        }
    }
    res
}

/// The user a bearer token names, or the 401 that says what is wrong with the header.
fn bearer_caller(
    state: &Identify,
    value: &axum::http::HeaderValue,
    ip: IpAddr,
) -> Result<Caller, AppError> {
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            AppError::Unauthorized("Use the Authorization header as: Bearer <access token>.".into())
        })?;
    let user = state.accounts.verify_token(token)?;
    Ok(Caller::User {
        id: user.id,
        username: user.username,
        ip,
    })
}

/// A guest known only by a hash of the session cookie (no session store to ask).
fn guest_of_cookie(headers: &HeaderMap, ip: IpAddr) -> Caller {
    Caller::Guest {
        guest_id: fallback_guest_id(headers),
        ip,
    }
}

/// The caller a browser session names; on first contact a new guest identity, with the
/// session to save once the request is answered (unless `keep_new` is false: then the new
/// guest is served once and nothing is stored).
async fn session_caller(
    session: &Session,
    headers: &HeaderMap,
    ip: IpAddr,
    keep_new: bool,
) -> (Caller, Option<Session>) {
    match session.get::<SessionData>(SESSION_KEY).await {
        Ok(Some(SessionData {
            user: Some(user), ..
        })) => (
            Caller::User {
                id: user.id,
                username: user.username,
                ip,
            },
            None,
        ),
        Ok(Some(data)) => (
            Caller::Guest {
                guest_id: data.guest_id,
                ip,
            },
            None,
        ),
        Ok(None) if !keep_new => (
            Caller::Guest {
                guest_id: new_guest_id(),
                ip,
            },
            None,
        ),
        Ok(None) => {
            let data = SessionData {
                guest_id: new_guest_id(),
                user: None,
            };
            let guest_id = data.guest_id.clone();
            let fresh = session
                .insert(SESSION_KEY, data)
                .await
                .is_ok()
                .then(|| session.clone());
            (Caller::Guest { guest_id, ip }, fresh)
        }
        Err(e) => {
            // The session store (MongoDB) is down: the visitor is served as a guest
            // whose identity is derived from the cookie, and nothing is written.
            tracing::warn!(error = %e, "session store unavailable; serving as guest");
            (guest_of_cookie(headers, ip), None)
        }
    }
}
