//! Percent-encoding for the values the pages put in links and the server puts in
//! redirects. Two rules, one per kind of value; both decode back to the original.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`): safe for any
/// query value, whatever it holds (`&`, `=`, `#`, `+`, spaces, non-ASCII).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A local path carried in a query value (`?next=/history`): as [`QUERY_VALUE`], but `/`
/// stays as it is, which RFC 3986 allows in a query, so the address bar stays readable.
/// The path's own `?`, `&` and `=` are encoded, so they cannot end the value early.
const PATH_IN_QUERY: &AsciiSet = &QUERY_VALUE.remove(b'/');

/// Encodes a value for a query string (`?language=c%2B%2B`).
pub fn query_value(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Encodes a local path (with its own query) for a query value such as `next`.
pub fn path_in_query(s: &str) -> String {
    utf8_percent_encode(s, PATH_IN_QUERY).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::percent_decode_str;

    const AWKWARD: &str = "/history?page=2&language=c++ #x%é~._-";

    #[test]
    fn query_value_keeps_only_unreserved() {
        assert_eq!(query_value("Ada_Lovelace-1.0~"), "Ada_Lovelace-1.0~");
        assert_eq!(
            query_value(AWKWARD),
            "%2Fhistory%3Fpage%3D2%26language%3Dc%2B%2B%20%23x%25%C3%A9~._-"
        );
    }

    #[test]
    fn path_in_query_keeps_slashes_but_not_separators() {
        assert_eq!(path_in_query("/history"), "/history");
        assert_eq!(
            path_in_query(AWKWARD),
            "/history%3Fpage%3D2%26language%3Dc%2B%2B%20%23x%25%C3%A9~._-"
        );
    }

    #[test]
    fn both_decode_to_the_original() {
        for encode in [query_value, path_in_query] {
            let decoded = percent_decode_str(&encode(AWKWARD))
                .decode_utf8()
                .map(|s| s.into_owned());
            assert_eq!(decoded.as_deref(), Ok(AWKWARD));
        }
    }
}
