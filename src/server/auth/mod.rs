//! Who is calling: a guest (cookie plus client IP) or a user. Every route sees a `Caller`.

use super::runs::Owner;
use super::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};

/// Name of the cookie that identifies a guest.
pub const GUEST_COOKIE: &str = "own_ide_guest";

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
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
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

fn valid_guest_id(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Middleware: works out the caller, issues the guest cookie on first contact.
pub async fn identify(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let ip = client_ip(peer, req.headers(), &state.config.trusted_proxies);
    let existing = cookie(req.headers(), GUEST_COOKIE)
        .filter(|v| valid_guest_id(v))
        .map(str::to_string);
    let issued = existing.is_none();
    let guest_id = existing.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let caller = Caller::Guest {
        guest_id: guest_id.clone(),
        ip,
    };
    req.extensions_mut().insert(caller);
    let mut res = next.run(req).await;
    if issued {
        let secure = if state.config.cookie_secure {
            "; Secure"
        } else {
            ""
        };
        let c = format!(
            "{GUEST_COOKIE}={guest_id}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}"
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
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
            "a=1; own_ide_guest=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, GUEST_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
