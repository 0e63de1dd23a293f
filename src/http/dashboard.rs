//! `GET /`: the live dashboard page (SPEC §6), with its script and style sheet.
//!
//! The files are compiled in (`assets/`), so the binary serves the dashboard with no
//! files beside it and no network: no CDN, no external fonts. The page's script and style
//! are separate routes so that the Content-Security-Policy can forbid every inline script
//! and style; the page may only load from, and connect to, its own origin.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;

const PAGE: &str = include_str!("../../assets/dashboard.html");
const SCRIPT: &str = include_str!("../../assets/dashboard.js");
const EVENT_SCRIPT: &str = include_str!("../../assets/event.js");
const STYLE: &str = include_str!("../../assets/dashboard.css");

/// The policy without `connect-src`, which names the page's own host (see [`csp`]).
const CSP_BASE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The Content-Security-Policy of the page. `'self'` covers the same-origin WebSocket in
/// browsers that implement CSP 3; older ones need the ws:/wss: origin spelled out, so it is
/// taken from `Host` when that is a plain host name or address (anything else gets
/// `'self'` alone).
pub fn csp(host: Option<&str>) -> String {
    let host = host.filter(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    });
    match host {
        Some(h) => format!("{CSP_BASE}; connect-src 'self' ws://{h} wss://{h}"),
        None => format!("{CSP_BASE}; connect-src 'self'"),
    }
}

/// Headers every dashboard answer carries.
fn common(content_type: &'static str) -> [(header::HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ]
}

/// `GET /`: the page.
pub async fn page(headers: HeaderMap) -> impl IntoResponse {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let policy = HeaderValue::from_str(&csp(host))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    (
        common("text/html; charset=utf-8"),
        [
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        PAGE,
    )
}

/// `GET /assets/dashboard.js`: the page's script (an ES module).
pub async fn script() -> impl IntoResponse {
    (common("text/javascript; charset=utf-8"), SCRIPT)
}

/// `GET /assets/event.js`: the issue view's event renderer, imported by the page's script.
pub async fn event_script() -> impl IntoResponse {
    (common("text/javascript; charset=utf-8"), EVENT_SCRIPT)
}

/// `GET /assets/dashboard.css`: the page's style sheet.
pub async fn style() -> impl IntoResponse {
    (common("text/css; charset=utf-8"), STYLE)
}

#[cfg(test)]
mod tests {
    use super::csp;

    #[test]
    fn the_policy_names_only_this_host() {
        assert!(
            csp(Some("127.0.0.1:8080"))
                .ends_with("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080")
        );
        assert!(csp(Some("[::1]:80")).contains("ws://[::1]:80"));
        for odd in [None, Some(""), Some("evil.com; script-src *"), Some("a b")] {
            assert!(csp(odd).ends_with("connect-src 'self'"), "{odd:?}");
        }
        assert!(csp(None).contains("script-src 'self';"));
    }
}
