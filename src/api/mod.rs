//! Server functions: the pages' door to the services. Thin: parse, call, map errors.

pub mod auth;
pub mod history;
pub mod runs;
pub mod shares;

/// Gives a server function's expected refusal its own HTTP status (401, 404, 409, 413,
/// 422, 429, 503, with `Retry-After`), so logs and monitors see a 500 only for a real
/// fault. A plain form post (no JavaScript) is left alone: Leptos answers it with a
/// redirect back to the form, which a status would break.
#[cfg(feature = "ssr")]
pub(crate) fn respond<T>(
    result: Result<T, crate::error::AppError>,
) -> Result<T, crate::error::AppError> {
    use leptos::prelude::use_context;
    if let Err(e) = &result {
        let plain_form = use_context::<http::request::Parts>().is_some_and(|parts| {
            parts
                .headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
        });
        if let (false, Some(res)) = (plain_form, use_context::<leptos_axum::ResponseOptions>()) {
            if let Ok(status) = http::StatusCode::from_u16(e.status()) {
                res.set_status(status);
            }
            if let Some(secs) = e.retry_after() {
                res.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            }
        }
    }
    result
}
