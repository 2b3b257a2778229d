//! `Error` → RFC 9457 problem+json. The one place HTTP statuses are chosen.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{Error, ErrorCode};

pub fn status_of(code: ErrorCode, e: &Error) -> StatusCode {
    match (code, e) {
        (_, Error::Malformed(_)) => StatusCode::BAD_REQUEST,
        (_, Error::MethodNotAllowed) => StatusCode::METHOD_NOT_ALLOWED,
        (_, Error::WebSocketVersion) => StatusCode::UPGRADE_REQUIRED,
        (ErrorCode::Invalid, _) => StatusCode::UNPROCESSABLE_ENTITY,
        (ErrorCode::Unauthorized, _) => StatusCode::UNAUTHORIZED,
        (ErrorCode::Forbidden, _) => StatusCode::FORBIDDEN,
        (ErrorCode::NotFound, _) => StatusCode::NOT_FOUND,
        (ErrorCode::Conflict, _) => StatusCode::CONFLICT,
        (ErrorCode::RateLimited, _) => StatusCode::TOO_MANY_REQUESTS,
        (ErrorCode::TooLarge, _) => StatusCode::PAYLOAD_TOO_LARGE,
        (ErrorCode::Unavailable, _) => StatusCode::SERVICE_UNAVAILABLE,
        (ErrorCode::Internal, _) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = status_of(code, &self);
        if let Error::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let mut body = json!({
            "type": format!("https://audotics.dev/problems/{}", code.as_str()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
            "code": code,
        });
        if let Error::Invalid { field, .. } = &self {
            body["field"] = json!(field);
        }
        let mut res = (status, body.to_string()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if code == ErrorCode::Unauthorized {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Error::TooManyRequests { retry_after } = &self {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Error::WebSocketVersion = self {
            res.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        res
    }
}
