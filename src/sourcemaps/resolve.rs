//! Which uploaded files a frame's map is looked up by, without I/O (SPEC §10, "Mapping"):
//! the event's debug ids, else its release and the frame's URL path as `~/path`; and the
//! map a minified file names.

/// How a frame's source map is found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Lookup {
    /// A `sourcemap` debug image of the event names the frame's file.
    DebugId(String),
    /// The event's release (and dist) and the frame's file as uploaded names (`~/…`),
    /// the likeliest first.
    Url {
        /// The event's release.
        release: String,
        /// The event's dist.
        dist: Option<String>,
        /// Names the minified file may have been uploaded under.
        candidates: Vec<String>,
    },
}

/// Most `~/` names tried for one file path: a path deeper than this is matched by its
/// last directories only.
const MAX_CANDIDATES: usize = 8;

/// The names an uploaded file at `path` (a frame's `abs_path` or `filename`) may have.
///
/// A URL gives its path: `https://shop.example/static/app.min.js?v=2` →
/// `~/static/app.min.js` (after the URL itself, for an upload with a full `--url-prefix`);
/// `app:///dist/x.js` → `~/dist/x.js`. A file path (Node without a URL rewrite, e.g.
/// `/srv/shop/dist/app.js`) has no fixed root: `sentry-cli` names an uploaded file by its
/// path below the uploaded directory, which is a suffix of where the bundle runs, so each
/// suffix is tried, longest first (`~/srv/shop/dist/app.js`, `~/shop/dist/app.js`,
/// `~/dist/app.js`, `~/app.js`).
pub(crate) fn url_candidates(path: &str) -> Vec<String> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if let Some((scheme, rest)) = path.split_once("://")
        && scheme != "file"
    {
        let local = rest.find('/').map_or("", |at| &rest[at + 1..]);
        let mut names = Vec::new();
        if scheme == "http" || scheme == "https" {
            names.push(path.to_owned());
        }
        names.push(format!("~/{local}"));
        return names;
    }
    let local = path
        .strip_prefix("file://")
        .unwrap_or(path)
        .replace('\\', "/");
    let parts: Vec<&str> = local.split('/').filter(|p| !p.is_empty()).collect();
    let from = parts.len().saturating_sub(MAX_CANDIDATES);
    (from..parts.len())
        .map(|i| format!("~/{}", parts[i..].join("/")))
        .collect()
}

/// Where a minified file's map is, from its `Sourcemap` header or its
/// `//# sourceMappingURL=` comment, resolved against the file's own `~/` URL
/// (`~/static/app.min.js` + `app.min.js.map` → `~/static/app.min.js.map`). `None` when it
/// names none.
pub(crate) fn map_reference(file_url: &str, header: Option<&str>, data: &[u8]) -> Option<String> {
    let named = match header.filter(|h| !h.is_empty()) {
        Some(h) => h.to_owned(),
        None => match sourcemap::locate_sourcemap_reference_slice(data).ok()?? {
            sourcemap::SourceMapRef::Ref(url) | sourcemap::SourceMapRef::LegacyRef(url) => url,
        },
    };
    Some(join_url(file_url, &named))
}

/// `reference` read relative to `base`, as a browser would.
fn join_url(base: &str, reference: &str) -> String {
    if reference.contains("://") || reference.starts_with("~/") || reference.starts_with("data:") {
        return reference.to_owned();
    }
    if let Some(absolute) = reference.strip_prefix('/') {
        return format!("~/{absolute}");
    }
    let dir = base.rfind('/').map_or("", |at| &base[..=at]);
    let mut parts: Vec<&str> = dir.split('/').collect();
    parts.pop(); // the empty part after the last '/'
    for piece in reference.split('/') {
        match piece {
            "." => {}
            ".." if parts.len() > 1 => {
                parts.pop();
            }
            ".." => {}
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The source map inside a `data:` URL (`data:application/json;base64,…`), or an error
/// fit for the frame.
pub(crate) fn data_url_map(url: &str) -> Option<Result<Vec<u8>, String>> {
    let rest = url.strip_prefix("data:")?;
    Some(sourcemap::decode_data_url(url).map_or_else(
        |e| Err(format!("invalid source map: {e}")),
        |map| {
            let mut out = Vec::new();
            map.to_writer(&mut out)
                .map(|()| out)
                .map_err(|e| format!("invalid source map: {e} ({} bytes)", rest.len()))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_path_becomes_a_tilde_name() {
        assert_eq!(
            url_candidates("https://shop.example/static/app.min.js?v=2#x"),
            [
                "https://shop.example/static/app.min.js",
                "~/static/app.min.js"
            ]
        );
        assert_eq!(url_candidates("app:///dist/x.js"), ["~/dist/x.js"]);
    }

    #[test]
    fn a_file_path_tries_every_suffix_longest_first() {
        assert_eq!(
            url_candidates("/srv/shop/dist/app.js"),
            [
                "~/srv/shop/dist/app.js",
                "~/shop/dist/app.js",
                "~/dist/app.js",
                "~/app.js"
            ]
        );
        assert_eq!(url_candidates("file:///a/b.js"), ["~/a/b.js", "~/b.js"]);
        assert_eq!(
            url_candidates("C:\\app\\b.js"),
            ["~/C:/app/b.js", "~/app/b.js", "~/b.js"]
        );
        let deep = format!("/{}x.js", "d/".repeat(20));
        assert_eq!(url_candidates(&deep).len(), MAX_CANDIDATES);
    }

    #[test]
    fn the_map_is_named_by_the_header_or_the_comment_relative_to_the_file() {
        let data = b"function a(){}\n//# sourceMappingURL=app.min.js.map\n";
        assert_eq!(
            map_reference("~/static/app.min.js", None, data).as_deref(),
            Some("~/static/app.min.js.map")
        );
        assert_eq!(
            map_reference("~/static/app.min.js", Some("../maps/app.map"), data).as_deref(),
            Some("~/maps/app.map")
        );
        assert_eq!(
            map_reference("~/static/app.min.js", Some("/m/app.map"), data).as_deref(),
            Some("~/m/app.map")
        );
        assert_eq!(map_reference("~/app.min.js", None, b"function a(){}"), None);
    }

    #[test]
    fn an_inline_map_is_read_from_its_data_url() {
        let map = r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA"}"#;
        let url = format!(
            "data:application/json;base64,{}",
            data_encoding_base64(map.as_bytes())
        );
        let bytes = data_url_map(&url).unwrap().unwrap();
        assert!(String::from_utf8(bytes).unwrap().contains("a.js"));
        assert!(data_url_map("~/x.map").is_none());
    }

    /// A tiny base64 encoder for the test (the crates used here only decode).
    fn data_encoding_base64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
        out
    }
}
