//! One error type for the whole app. It knows its HTTP status and the sentence a person
//! reads; driver errors are logged on the server and never reach a client.

use crate::model::PublicError;
use serde::{Deserialize, Serialize};

/// Every failure a request can end in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("Not found.")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// 409 with its own code: the request does not fit the state of what it names.
    #[error("{message}")]
    ConflictWith { code: String, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Unprocessable { code: String, message: String },
    /// 429: the guest quota is used up, or too many failed log-ins.
    #[error("{message}")]
    TooMany {
        code: String,
        message: String,
        retry_after: u64,
    },
    #[error("{message}")]
    Unavailable {
        code: String,
        message: String,
        retry_after: u64,
    },
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
}

impl AppError {
    /// A 422 with its own code, for a well-formed request with a bad value.
    pub fn invalid(code: &str, message: impl Into<String>) -> Self {
        AppError::Unprocessable {
            code: code.into(),
            message: message.into(),
        }
    }

    /// A 409 with its own code.
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        AppError::ConflictWith {
            code: code.into(),
            message: message.into(),
        }
    }

    /// A 503 naming what is unavailable.
    pub fn unavailable(code: &str, message: impl Into<String>, retry_after: u64) -> Self {
        AppError::Unavailable {
            code: code.into(),
            message: message.into(),
            retry_after,
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::Unauthorized(_) => 401,
            AppError::NotFound => 404,
            AppError::Conflict(_) | AppError::ConflictWith { .. } => 409,
            AppError::PayloadTooLarge(_) => 413,
            AppError::UnsupportedMediaType(_) => 415,
            AppError::Unprocessable { .. } => 422,
            AppError::TooMany { .. } => 429,
            AppError::Unavailable { .. } => 503,
            AppError::Internal => 500,
        }
    }

    /// The snake_case code of the JSON error body.
    pub fn code(&self) -> String {
        match self {
            AppError::BadRequest(_) => "bad_request".into(),
            AppError::Unauthorized(_) => "unauthorized".into(),
            AppError::NotFound => "not_found".into(),
            AppError::Conflict(_) => "conflict".into(),
            AppError::PayloadTooLarge(_) => "payload_too_large".into(),
            AppError::UnsupportedMediaType(_) => "unsupported_media_type".into(),
            AppError::Unprocessable { code, .. }
            | AppError::ConflictWith { code, .. }
            | AppError::Unavailable { code, .. }
            | AppError::TooMany { code, .. } => code.clone(),
            AppError::Internal => "internal_error".into(),
        }
    }

    /// Seconds a client should wait before trying again, where that is known.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::TooMany { retry_after, .. } | AppError::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// What the client is shown.
    pub fn public(&self) -> PublicError {
        PublicError {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

/// Server functions return `AppError` too, so pages get the same codes and sentences
/// as the API (and, without JavaScript, through the form-redirect round trip).
impl leptos::server_fn::error::FromServerFnError for AppError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match value {
            E::Request(_) | E::Response(_) => AppError::unavailable(
                "network",
                "Could not reach the server. Check your connection and try again.",
                5,
            ),
            E::Args(_) | E::Deserialization(_) | E::MissingArg(_) => {
                AppError::BadRequest("The form was not filled in as expected.".into())
            }
            _ => AppError::Internal,
        }
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let status =
                StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({ "error": self.public() });
            let mut response = (status, axum::Json(body)).into_response();
            if let Some(secs) = self.retry_after() {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_match_the_api() {
        assert_eq!(AppError::invalid("unknown_language", "x").status(), 422);
        assert_eq!(
            AppError::invalid("unknown_language", "x").code(),
            "unknown_language"
        );
        assert_eq!(
            AppError::unavailable("docker_unavailable", "x", 5).retry_after(),
            Some(5)
        );
        assert_eq!(AppError::Internal.status(), 500);
        assert!(!AppError::Internal.to_string().contains("panic"));
    }
}
