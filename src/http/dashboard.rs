//! `GET /`: the live dashboard page (SPEC §6), with its ES modules and style sheet.
//!
//! The files are compiled in (`assets/`), so the binary serves the dashboard with no
//! files beside it and no network: no CDN, no external fonts, no build step. The page's
//! style sheet and ES modules are files of their own under `/assets/` (one table, one
//! route) so that the Content-Security-Policy can forbid every inline script and style;
//! the page may only load from, and connect to, its own origin (`script-src 'self'` covers
//! the modules' imports).

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../assets/dashboard.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// `(path, content type, the file)`, the file compiled in from `assets/<path>`.
macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        (
            $path,
            $content_type,
            include_bytes!(concat!("../../assets/", $path)),
        )
    };
}

/// Every file the page loads, by its path under `/assets/`: the style sheet, the entry
/// module (`dashboard.js`) and the modules it imports. Only these are served: not the unit
/// tests (`tests/js/`), nor the type-checking setup (`tools/js/`). The unit test
/// `every_module_is_served` keeps this list and the imports in `assets/` in step.
const ASSETS: &[(&str, &str, &[u8])] = &[
    asset!("dashboard.css", CSS),
    asset!("dashboard.js", JS),
    asset!("event.js", JS),
    asset!("js/accounts.js", JS),
    asset!("js/actions.js", JS),
    asset!("js/api.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/connection.js", JS),
    asset!("js/copy.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/feed.js", JS),
    asset!("js/filters.js", JS),
    asset!("js/format.js", JS),
    asset!("js/issue.js", JS),
    asset!("js/list.js", JS),
    asset!("js/mine.js", JS),
    asset!("js/notices.js", JS),
    asset!("js/overview.js", JS),
    asset!("js/people.js", JS),
    asset!("js/routing.js", JS),
    asset!("js/schedule.js", JS),
    asset!("js/search.js", JS),
    asset!("js/settings.js", JS),
    asset!("js/setup.js", JS),
];

/// The policy without `connect-src`, which names the page's own host (see [`csp`]).
const CSP_BASE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The Content-Security-Policy of the page. `'self'` covers the same-origin WebSocket in
/// browsers that implement CSP 3; older ones need the ws:/wss: origin spelled out, so it is
/// taken from `Host` when that is a plain host name or address (anything else gets
/// `'self'` alone).
pub(crate) fn csp(host: Option<&str>) -> String {
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
pub(crate) async fn page(headers: HeaderMap) -> impl IntoResponse {
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

/// `GET /assets/<path>`: one of [`ASSETS`], or a 404 like any unknown route.
pub(crate) async fn asset(Path(path): Path<String>, uri: Uri) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some(&(_, content_type, body)) => (common(content_type), body).into_response(),
        None => super::ops::not_found(uri).await.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, csp};
    use std::path::Path;

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");

    /// The files under `assets/` that the page may load: scripts (not unit tests) and styles.
    fn files(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("assets/ is readable") {
            let path = entry.expect("a directory entry").path();
            let name = path.to_string_lossy().into_owned();
            if path.is_dir() {
                files(&path, out);
            } else if (name.ends_with(".js") && !name.ends_with(".test.js"))
                || name.ends_with(".css")
            {
                out.push(name[ROOT.len() + 1..].replace('\\', "/"));
            }
        }
    }

    /// The module specifiers a script imports (`import … from "…"`, `export … from "…"`,
    /// `import "…"`).
    fn imports(source: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for marker in ["from \"", "import \""] {
            let mut rest = source;
            while let Some(at) = rest.find(marker) {
                rest = &rest[at + marker.len()..];
                let end = rest.find('"').expect("a closed specifier");
                out.push(&rest[..end]);
            }
        }
        out
    }

    #[test]
    fn every_module_is_served() {
        let mut on_disk = Vec::new();
        files(Path::new(ROOT), &mut on_disk);
        on_disk.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|(p, _, _)| p.to_string()).collect();
        served.sort();
        assert_eq!(on_disk, served, "assets/ and the ASSETS table differ");
        for (path, content_type, body) in ASSETS {
            let expected = if path.ends_with(".js") {
                super::JS
            } else {
                super::CSS
            };
            assert_eq!(*content_type, expected, "{path}");
            let source = std::str::from_utf8(body).expect("UTF-8");
            for spec in imports(source) {
                // Relative to the importing module, within /assets/.
                let mut parts: Vec<&str> = path.split('/').collect();
                parts.pop();
                for part in spec.split('/') {
                    match part {
                        "." => {}
                        ".." => assert!(parts.pop().is_some(), "{path} imports {spec}"),
                        part => parts.push(part),
                    }
                }
                let target = parts.join("/");
                assert!(
                    spec.starts_with('.') && served.contains(&target),
                    "{path} imports {spec}, which is not served"
                );
            }
        }
        let page = super::PAGE;
        for (at, _) in page.match_indices("/assets/") {
            let rest = &page[at + "/assets/".len()..];
            let name = &rest[..rest.find('"').expect("a closed attribute")];
            assert!(served.iter().any(|p| p == name), "the page loads {name}");
        }
    }

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
