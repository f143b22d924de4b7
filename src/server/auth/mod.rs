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

/// The client address.
///
/// The rule, exactly: start with the socket peer as the candidate. While the candidate is
/// a trusted proxy (`TRUSTED_PROXIES`), look at the next `X-Forwarded-For` entry from the
/// right (all such headers, in order, read as one comma-separated list):
/// - an entry that parses as a bare IP address becomes the new candidate;
/// - an entry that does not (`1.2.3.4:80`, `[::1]:80`, garbage, an empty entry, a header
///   that is not text) ends the walk, and the candidate stays what it was, i.e. the
///   right-most trusted hop examined;
/// - no entries left also ends the walk.
///
/// The first candidate that is not trusted is the client. Entries to the left of it were
/// written by the client and can be anything, so they are never read; and an entry no
/// trusted proxy could have written ends the walk rather than being skipped, because
/// skipping it would let a client-written entry to its left be chosen (a fresh quota per
/// request). A proxy that writes ports therefore makes every client look like that proxy
/// (one shared count, never a forged one): configure it to write bare addresses.
/// IPv4-mapped IPv6 addresses count as their IPv4 address throughout.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    let mut client = peer.to_canonical();
    let values: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    // A value that is not text is one unparseable entry at its place in the list.
    let entries = values.iter().flat_map(|v| match std::str::from_utf8(v) {
        Ok(text) => text.split(',').map(Some).collect::<Vec<_>>(),
        Err(_) => vec![None],
    });
    let entries: Vec<Option<&str>> = entries.collect();
    for entry in entries.into_iter().rev() {
        if !is_trusted(&client) {
            break;
        }
        match entry.and_then(|e| e.trim_matches([' ', '\t']).parse::<IpAddr>().ok()) {
            Some(ip) => client = ip.to_canonical(),
            None => break,
        }
    }
    client
}

/// The block an address is counted under: an IPv4 address on its own, an IPv6 address by
/// its /64 (the block one subscriber usually holds, so that rotating addresses inside it
/// changes nothing). IPv4-mapped IPv6 addresses count as their IPv4 address. Every
/// per-IP counter (guest quota, log-in brake, registrations) keys on this.
pub fn ip_block(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The client for `peer` and these X-Forwarded-For header values, 127.0.0.1 and
    /// 10.0.0.2 being the trusted proxies.
    fn client(peer: &str, xff: &[&str]) -> IpAddr {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        client_ip(ip(peer), &h, &[ip("127.0.0.1"), ip("10.0.0.2")])
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        assert_eq!(client("10.0.0.9", &["1.2.3.4"]), ip("10.0.0.9"));
        assert_eq!(client("10.0.0.9", &[]), ip("10.0.0.9"));
    }

    #[test]
    fn forwarded_for_walks_from_the_right_past_trusted_proxies() {
        // Plain IPv4 and IPv6 entries.
        assert_eq!(client("127.0.0.1", &["1.2.3.4"]), ip("1.2.3.4"));
        assert_eq!(client("127.0.0.1", &["2001:db8::7"]), ip("2001:db8::7"));
        assert_eq!(client("127.0.0.1", &[" 2001:db8::7 "]), ip("2001:db8::7"));
        // The client's own left-hand entries are never read.
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, 1.2.3.4, 10.0.0.2"]),
            ip("1.2.3.4")
        );
        // Several headers are one list, in order.
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6", "1.2.3.4", "10.0.0.2"]),
            ip("1.2.3.4")
        );
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, 1.2.3.4", "10.0.0.2"]),
            ip("1.2.3.4")
        );
        // Only trusted hops all the way: the left-most of them.
        assert_eq!(client("127.0.0.1", &["10.0.0.2"]), ip("10.0.0.2"));
        // IPv4-mapped peers and entries count as IPv4.
        assert_eq!(client("::ffff:127.0.0.1", &["1.2.3.4"]), ip("1.2.3.4"));
        assert_eq!(client("127.0.0.1", &["::ffff:1.2.3.4"]), ip("1.2.3.4"));
    }

    #[test]
    fn an_unparseable_forwarded_for_entry_ends_the_walk() {
        // Each form: the right-most trusted hop examined before it is the client, and
        // the client-written entry to its left is never chosen.
        for bad in [
            "1.2.3.4:80",
            "[::1]:80",
            "[2001:db8::1]",
            "garbage",
            "",
            " ",
            "unknown",
        ] {
            let header = format!("6.6.6.6, {bad}");
            assert_eq!(client("127.0.0.1", &[&header]), ip("127.0.0.1"), "{bad:?}");
            let header = format!("6.6.6.6, {bad}, 10.0.0.2");
            assert_eq!(client("127.0.0.1", &[&header]), ip("10.0.0.2"), "{bad:?}");
        }
        // Empty entries: a trailing comma, two commas, an empty header among several.
        assert_eq!(client("127.0.0.1", &["6.6.6.6,"]), ip("127.0.0.1"));
        assert_eq!(client("127.0.0.1", &["6.6.6.6,,10.0.0.2"]), ip("10.0.0.2"));
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6", "", "10.0.0.2"]),
            ip("10.0.0.2")
        );
        // An unparseable entry left of the client is never reached.
        assert_eq!(client("127.0.0.1", &["junk, 1.2.3.4"]), ip("1.2.3.4"));
        // A header value that is not text.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6".parse().unwrap());
        h.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &h, &[ip("127.0.0.1")]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn ipv6_is_blocked_per_64() {
        assert_eq!(ip_block(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            ip_block(ip("2001:db8:1:2:aaaa::1")),
            ip_block(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            ip_block(ip("2001:db8:1:2::1")),
            ip_block(ip("2001:db8:1:3::1"))
        );
        assert_eq!(ip_block(ip("10.1.2.3")), "10.1.2.3");
        assert_eq!(ip_block(ip("::ffff:10.1.2.3")), "10.1.2.3");
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
