//! Who is calling: a guest (cookie plus client IP) or a user. Every route sees a `Caller`.
//! `identity` holds the plain types, `session` the browser session's contents, and
//! `middleware` the layer that finds the caller of each request.

pub mod identity;
pub mod middleware;
pub mod session;

pub use identity::{Caller, Owner};
pub use middleware::{identify, Identify};
pub use session::{end_session, start_session, SessionData, SESSION_COOKIE, SESSION_KEY};

use axum::http::{header, HeaderMap};
use std::net::IpAddr;

/// Reads one cookie from the request headers (RFC 6265 parsing, by the `cookie` crate).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
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

/// The guest identity of a client that keeps no cookie (API clients of the Judge0 and
/// Piston faces): one per address block, so that such a client finds its own runs again
/// and is counted per IP, as the quota already counts every guest.
pub fn ip_guest_id(ip: IpAddr) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(crate::server::net::ip_block(ip).as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("ip-{hex}")
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
    fn guests_without_cookies_are_their_address_block() {
        let id = |s: &str| ip_guest_id(ip(s));
        assert_eq!(id("10.0.0.1"), id("10.0.0.1"));
        assert_ne!(id("10.0.0.1"), id("10.0.0.2"));
        // IPv6 by /64, as the quota counts it; IPv4-mapped as IPv4.
        assert_eq!(id("2001:db8::1"), id("2001:db8::ffff"));
        assert_ne!(id("2001:db8::1"), id("2001:db8:0:1::1"));
        assert_eq!(id("::ffff:10.0.0.1"), id("10.0.0.1"));
        assert!(id("10.0.0.1").starts_with("ip-"));
    }

    #[test]
    fn cookies_are_found() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; own_ide_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
