//! The web client: the static files of `web/`, embedded in the binary at
//! build time (or read from `Config.web_dir` when set, for development),
//! served at `/` with their content types, an ETag and `no-cache` (the
//! browser revalidates, and gets 304 while nothing changed).

use std::path::Path as FsPath;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::error::Error;

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// `/`, `/<file>` and `/<folder>/<file>` for the client's folders (`js/`
/// its modules, `icons/` the app icons, `vendor/` third-party code);
/// `/j/<code>` (a join code's link) and `/tv/<code>` (the party's big-screen
/// view) are the client's page too, which reads the code from its path. API, WebSocket and operator routes are more
/// specific and win; an unknown file is a problem+json 404.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/j/{code}", get(index))
        .route("/tv/{code}", get(index))
        .route("/{file}", get(top_file))
        .route("/js/{file}", get(folder_file))
        .route("/icons/{file}", get(folder_file))
        .route("/vendor/{file}", get(folder_file))
}

async fn index(State(st): State<AppState>, headers: HeaderMap) -> Response {
    serve(&st, "index.html", &headers).await
}

async fn top_file(
    State(st): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&st, &file, &headers).await
}

/// A file in one of the folders `routes` lists: the request path is its
/// path under `web/` (`serve` still checks every segment).
async fn folder_file(State(st): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    serve(&st, uri.path().trim_start_matches('/'), &headers).await
}

/// Only plain names: letters, digits, `.`, `-`, `_`, no leading dot.
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn content_type(path: &str) -> &'static str {
    match FsPath::new(path).extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn load(st: &AppState, path: &str) -> Option<Vec<u8>> {
    match &st.config.web_dir {
        Some(dir) => tokio::fs::read(dir.join(path)).await.ok(),
        None => WEB.get_file(path).map(|f| f.contents().to_vec()),
    }
}

async fn serve(st: &AppState, path: &str, headers: &HeaderMap) -> Response {
    if !path.split('/').all(safe_segment) {
        return Error::NotFound("file").into_response();
    }
    let Some(body) = load(st, path).await else {
        return Error::NotFound("file").into_response();
    };
    let digest = Sha256::digest(&body);
    let etag = format!(
        "\"{}\"",
        digest[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if path.ends_with(".html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: https:; \
                 style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
                 frame-ancestors 'none'",
            ),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_client_is_complete() {
        for f in [
            "index.html",
            "app.js",
            "style.css",
            "manifest.webmanifest",
            "js/session.js",
            "icons/icon-192.png",
        ] {
            assert!(WEB.get_file(f).is_some(), "{f} is embedded");
        }
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(
            content_type("vendor/qrcode.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("manifest.webmanifest"),
            "application/manifest+json"
        );
    }

    #[test]
    fn paths_are_plain_names() {
        assert!(safe_segment("app.js"));
        assert!(!safe_segment(".."));
        assert!(!safe_segment(".env"));
        assert!(!safe_segment("a%2fb"));
        assert!(!safe_segment(""));
    }
}
