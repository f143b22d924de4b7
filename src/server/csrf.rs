//! Cross-site request refusal. A page on another site can make a visitor's browser post a
//! form here: log the visitor into the attacker's account (so that the visitor's code
//! lands in the attacker's history), log them out, start runs on their quota, or delete
//! their runs. Every state-changing request (any method but GET, HEAD, OPTIONS and TRACE:
//! server functions under `/fn/*`, the no-JavaScript form posts, log-in, log-out, delete,
//! and `/api/v1` writes) is therefore checked here, before a session is read or written,
//! and a cross-site one gets `403 cross_site` and changes nothing.
//!
//! The rule:
//! - A request with an `Authorization` header is not checked: a browser sends one only
//!   when the page's own script sets it, which another site's script cannot do for us
//!   (it is not a CORS-safelisted header, and this app grants no CORS), and `identify`
//!   then ignores the session cookie. Bearer-token API clients are unaffected.
//! - `Sec-Fetch-Site`, when present, decides: `same-origin` and `none` (the user typed or
//!   bookmarked the address) pass; `same-site`, `cross-site` and anything unknown are
//!   refused. `same-site` is refused too because a sibling subdomain (another tenant,
//!   a forgotten staging host) could be hostile, and `SameSite=Lax` cookies are sent to
//!   us from there.
//! - Otherwise `Origin`, when present, must name this host: its host and port (the
//!   scheme's default port left out) equal to the request's `Host` (or the authority of
//!   an HTTP/2 request; `X-Forwarded-Host` instead when the peer is a trusted proxy).
//!   `Origin: null` (sandboxed frames, some redirects) and any other scheme are refused.
//!   An `Origin` with no host to compare it with is refused (fail closed).
//! - Neither header: allowed. Non-browser clients (curl, scripts) send neither and carry
//!   no visitor's credentials. Every current browser sends `Origin` on a cross-origin
//!   POST (Chrome and Safari always have for forms; Firefox since version 70) and
//!   `Sec-Fetch-Site` on every request (Chrome 76, Firefox 90, Safari 16.4), so only
//!   a browser older than that could be led to post without either; for those the
//!   `SameSite=Lax` session cookie still keeps a cross-site POST from being signed in.

use super::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// Why a request was judged cross-site, for the server log.
#[derive(Debug, PartialEq, Eq)]
pub enum CrossSite {
    /// `Sec-Fetch-Site` said so (its value).
    FetchSite(String),
    /// `Origin` names another host (its value).
    Origin(String),
    /// `Origin` is present but the request names no host to compare it with.
    NoHost,
}

/// Judges one request: `Some(reason)` when it must be refused.
pub fn cross_site(
    method: &Method,
    headers: &HeaderMap,
    authority: Option<&str>,
    peer_is_trusted_proxy: bool,
) -> Option<CrossSite> {
    if matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || headers.contains_key(header::AUTHORIZATION)
    {
        return None;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("").trim().to_ascii_lowercase();
        return match site.as_str() {
            "same-origin" | "none" => None,
            _ => Some(CrossSite::FetchSite(site)),
        };
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin_text = origin.to_str().unwrap_or("").trim();
    let Some((scheme, host)) = origin_host(origin_text) else {
        return Some(CrossSite::Origin(origin_text.into()));
    };
    let forwarded = peer_is_trusted_proxy
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next());
    let target = forwarded
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .or(authority);
    let Some(target) = target else {
        return Some(CrossSite::NoHost);
    };
    if same_host(scheme, &host, target) {
        None
    } else {
        Some(CrossSite::Origin(origin_text.into()))
    }
}

/// `https://Example.com:443` -> ("https", "example.com"); the scheme's default port is
/// dropped. `None` for `null`, other schemes, or anything with a path.
fn origin_host(origin: &str) -> Option<(&'static str, String)> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => "http",
        "https" => "https",
        _ => return None,
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    Some((
        scheme,
        without_default_port(scheme, &rest.to_ascii_lowercase()),
    ))
}

fn without_default_port(scheme: &str, authority: &str) -> String {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_string()
}

fn same_host(scheme: &str, origin_host: &str, target: &str) -> bool {
    let target = without_default_port(scheme, &target.trim().to_ascii_lowercase());
    !target.is_empty() && target == origin_host
}

/// The body of the refusal, in the API's error shape.
fn refused() -> Response {
    let body = serde_json::json!({ "error": {
        "code": "cross_site",
        "message": "This request came from another site and was refused. Open the page on this site and try again.",
    }});
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// Middleware: refuses cross-site state-changing requests (see the module notes).
pub async fn refuse_cross_site(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let peer: Option<IpAddr> = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let trusted = peer.is_some_and(|p| {
        state
            .config
            .trusted_proxies
            .iter()
            .any(|t| t.to_canonical() == p)
    });
    let authority = req.uri().authority().map(|a| a.as_str().to_string());
    if let Some(why) = cross_site(req.method(), req.headers(), authority.as_deref(), trusted) {
        tracing::info!(path = %req.uri().path(), reason = ?why, "refused a cross-site request");
        return refused();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(method: Method, pairs: &[(&str, &str)], trusted: bool) -> Option<CrossSite> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        cross_site(&method, &h, None, trusted)
    }

    fn post(pairs: &[(&str, &str)]) -> Option<CrossSite> {
        judge(Method::POST, pairs, false)
    }

    #[test]
    fn fetch_site_decides_when_present() {
        for ok in ["same-origin", "none", "Same-Origin"] {
            assert_eq!(post(&[("sec-fetch-site", ok)]), None, "{ok}");
        }
        for bad in ["cross-site", "same-site", "weird"] {
            assert!(post(&[("sec-fetch-site", bad)]).is_some(), "{bad}");
        }
        // Even with an Origin that matches: a sibling subdomain is refused.
        assert!(post(&[
            ("sec-fetch-site", "same-site"),
            ("origin", "https://ide.example"),
            ("host", "ide.example"),
        ])
        .is_some());
    }

    #[test]
    fn origin_must_name_this_host() {
        let same = [("origin", "https://ide.example"), ("host", "ide.example")];
        assert_eq!(post(&same), None);
        assert_eq!(
            post(&[
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000")
            ]),
            None
        );
        assert_eq!(
            post(&[
                ("origin", "https://IDE.example:443"),
                ("host", "ide.example")
            ]),
            None
        );
        assert_eq!(
            post(&[("origin", "http://[::1]:3000"), ("host", "[::1]:3000")]),
            None
        );
        for (origin, host) in [
            ("https://evil.example", "ide.example"),
            ("https://ide.example.evil.example", "ide.example"),
            ("http://127.0.0.1:3001", "127.0.0.1:3000"),
            ("https://ide.example:8443", "ide.example"),
            ("null", "ide.example"),
            ("file://", "ide.example"),
            ("https://ide.example/path", "ide.example"),
            ("https://user@ide.example", "ide.example"),
        ] {
            assert!(
                post(&[("origin", origin), ("host", host)]).is_some(),
                "{origin} vs {host}"
            );
        }
        // An Origin with nothing to compare it to.
        assert_eq!(
            post(&[("origin", "https://ide.example")]),
            Some(CrossSite::NoHost)
        );
    }

    #[test]
    fn forwarded_host_counts_only_from_a_trusted_proxy() {
        let pairs = [
            ("origin", "https://ide.example"),
            ("host", "127.0.0.1:3000"),
            ("x-forwarded-host", "ide.example"),
        ];
        assert_eq!(judge(Method::POST, &pairs, true), None);
        assert!(judge(Method::POST, &pairs, false).is_some());
        let forged = [
            ("origin", "https://evil.example"),
            ("host", "ide.example"),
            ("x-forwarded-host", "evil.example"),
        ];
        assert!(judge(Method::POST, &forged, false).is_some());
    }

    #[test]
    fn reads_bearer_calls_and_header_less_clients_pass() {
        let evil = [
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ];
        assert_eq!(judge(Method::GET, &evil, false), None);
        assert_eq!(judge(Method::HEAD, &evil, false), None);
        assert!(judge(Method::DELETE, &evil, false).is_some());
        assert!(judge(Method::PUT, &evil, false).is_some());
        let bearer = [
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
            ("authorization", "Bearer abc"),
        ];
        assert_eq!(post(&bearer), None);
        assert_eq!(post(&[]), None);
        assert_eq!(post(&[("referer", "https://evil.example/")]), None);
    }
}
