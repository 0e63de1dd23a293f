//! One minified frame mapped through a parsed source map, without I/O (SPEC §10,
//! "Mapping"): the original file, function, line and column, and the source lines around
//! it from the map's `sourcesContent`.

use serde::Serialize;
use sourcemap::{DecodedMap, SourceView};

/// Source lines shown either side of the frame's line.
pub(crate) const CONTEXT_LINES: u32 = 5;

/// Longest source line kept in a frame: a minified or generated line can be megabytes.
const MAX_LINE_CHARS: usize = 500;

/// A frame as the SDK sent it: the minified location.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Minified {
    /// The file's full URL or path, when sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) abs_path: Option<String>,
    /// The file as the SDK names it (Node and browser SDKs put the URL here too).
    #[serde(skip)]
    pub(crate) filename: Option<String>,
    /// The minified function's name (`a`, `Object.b`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) function: Option<String>,
    /// 1-based line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lineno: Option<i64>,
    /// 1-based column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) colno: Option<i64>,
}

impl Minified {
    /// Where the frame's code lives: `abs_path`, else `filename`.
    pub(crate) fn path(&self) -> Option<&str> {
        self.abs_path.as_deref().or(self.filename.as_deref())
    }
}

/// A parsed source map with what it was found by, shared by every event that uses it.
pub(crate) struct ParsedMap {
    /// The map (a regular or an indexed one).
    pub(crate) map: DecodedMap,
    /// The minified file, when it was uploaded: it names a frame's enclosing function.
    pub(crate) minified: Option<SourceView>,
    /// What the reader is told about the map used: its `~/` URL or its debug id.
    pub(crate) label: String,
    /// Bytes the cache counts for it.
    pub(crate) weight: usize,
}

impl ParsedMap {
    /// Parses `map` (and keeps `minified`, the file it maps); the error is the parser's.
    pub(crate) fn parse(
        map: &[u8],
        minified: Option<Vec<u8>>,
        label: String,
    ) -> Result<ParsedMap, String> {
        let decoded =
            DecodedMap::from_reader(map).map_err(|e| format!("invalid source map: {e}"))?;
        let minified_len = minified.as_ref().map_or(0, Vec::len);
        let minified =
            minified.map(|m| SourceView::from_string(String::from_utf8_lossy(&m).into_owned()));
        Ok(ParsedMap {
            map: decoded,
            minified,
            label,
            // The parsed form holds the sources' text and about as many bytes of tokens as
            // the mappings' text had: twice the map is a fair, cheap estimate.
            weight: map.len() * 2 + minified_len + 256,
        })
    }
}

/// A frame as the reader sees it (SPEC §10, "What a reader sees").
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct ShownFrame {
    /// Original file when mapped, else as sent.
    pub(crate) filename: Option<String>,
    /// Original function when known, else as sent.
    pub(crate) function: Option<String>,
    /// 1-based line.
    pub(crate) lineno: Option<i64>,
    /// 1-based column.
    pub(crate) colno: Option<i64>,
    /// Whether the frame is the application's own code.
    pub(crate) in_app: bool,
    /// The frame's source line.
    pub(crate) context_line: Option<String>,
    /// Up to five lines before it.
    pub(crate) pre_context: Vec<String>,
    /// Up to five lines after it.
    pub(crate) post_context: Vec<String>,
    /// Whether a source map gave this frame.
    pub(crate) mapped: bool,
    /// The frame as sent, when mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) minified: Option<Minified>,
    /// The map used (its `~/` URL or debug id), when mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) map: Option<String>,
    /// Why a JavaScript frame could not be mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// Whether `path` is a library's or the bundler's code rather than the application's.
pub(crate) fn is_library(path: &str) -> bool {
    path.contains("node_modules/") || path.contains("webpack/bootstrap")
}

/// Whether a frame at `path` is minified JavaScript worth mapping: a `.js`-like file
/// (the query and fragment aside). Node's own modules (`node:internal/...`) are not.
pub(crate) fn is_javascript(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    !path.starts_with("node:")
        && [".js", ".mjs", ".cjs", ".jsx"]
            .iter()
            .any(|ext| path.ends_with(ext))
}

/// Maps `frame` through `parsed`; the error says why it could not be.
pub(crate) fn map_frame(
    frame: &Minified,
    sent_in_app: Option<bool>,
    parsed: &ParsedMap,
) -> Result<ShownFrame, String> {
    let (Some(line), Some(col)) = (frame.lineno, frame.colno) else {
        return Err("the frame has no line and column to look up".into());
    };
    // Source maps count from 0, stack traces from 1.
    let (line0, col0) = (to_u32(line - 1), to_u32(col - 1));
    let token = parsed
        .map
        .lookup_token(line0, col0)
        .filter(|t| t.get_source().is_some())
        // A regular map's nearest token may lie on an earlier line, which says nothing of
        // this one (an indexed map's tokens count lines within their section).
        .filter(|t| !matches!(parsed.map, DecodedMap::Regular(_)) || t.get_dst_line() == line0)
        .ok_or_else(|| format!("the source map has no mapping for line {line}, column {col}"))?;
    let source = token.get_source().map(str::to_owned);
    let (src_line, src_col) = (token.get_src_line(), token.get_src_col());
    let mut shown = ShownFrame {
        in_app: sent_in_app.unwrap_or(true) && !source.as_deref().is_some_and(is_library),
        filename: source.as_deref().map(source_name),
        function: function_name(frame, parsed, line0, col0),
        lineno: Some(i64::from(src_line) + 1),
        colno: Some(i64::from(src_col) + 1),
        mapped: true,
        // Node SDKs send the file's path as `filename` only.
        minified: Some(Minified {
            abs_path: frame.path().map(str::to_owned),
            ..frame.clone()
        }),
        map: Some(parsed.label.clone()),
        ..ShownFrame::default()
    };
    if let Some(view) = token.get_source_view() {
        add_context(&mut shown, view, src_line);
    }
    Ok(shown)
}

/// How a map's `sources` entry is shown: relative to the project, as people name their
/// files. Bundlers write it relative to the map's own directory (`../src/cart.js`,
/// `../../../srv/app/src/cart.js`) or under a `webpack://<name>/` prefix; the leading
/// `./` and `../` steps and the prefix say where the build ran, not which file it is.
fn source_name(source: &str) -> String {
    let mut name = source;
    if let Some(rest) = name.strip_prefix("webpack://") {
        name = rest.split_once('/').map_or(rest, |(_, path)| path);
    }
    while let Some(rest) = name.strip_prefix("./").or_else(|| name.strip_prefix("../")) {
        name = rest;
    }
    if name.is_empty() { source } else { name }.to_owned()
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The enclosing function's original name: found through the minified file when it was
/// uploaded (the map names the identifier after the nearest `function` keyword before the
/// frame's position); else the minified name as sent, which at least tells frames apart.
fn function_name(frame: &Minified, parsed: &ParsedMap, line: u32, col: u32) -> Option<String> {
    let sent = frame.function.as_deref()?;
    // Node names a method call `Object.a` or `Foo.a`: the last part is the function.
    let short = sent.rsplit('.').next().unwrap_or(sent);
    parsed
        .map
        .get_original_function_name(line, col, Some(short), parsed.minified.as_ref())
        .map(str::to_owned)
        .or_else(|| Some(sent.to_owned()))
}

/// The line at `line` (0-based) and up to [`CONTEXT_LINES`] either side.
fn add_context(shown: &mut ShownFrame, view: &SourceView, line: u32) {
    let text = |i: u32| view.get_line(i).map(clip);
    shown.context_line = view.get_line(line).map(clip);
    shown.pre_context = (line.saturating_sub(CONTEXT_LINES)..line)
        .filter_map(text)
        .collect();
    shown.post_context = (line + 1..=line.saturating_add(CONTEXT_LINES))
        .map_while(text)
        .collect();
}

fn clip(line: &str) -> String {
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `src/cart.js` minified to one line by hand: `function a(n){throw new Error(n)}`.
    const SOURCE: &str = "// cart\n\nexport function addToCart(item) {\n  if (!item) {\n    throw new Error(\"no item\");\n  }\n  return item;\n}\n";
    const MINIFIED: &str =
        "function a(n){throw new Error(n)}\n//# sourceMappingURL=app.min.js.map\n";

    fn map() -> String {
        let mut b = sourcemap::SourceMapBuilder::new(Some("app.min.js"));
        let src = b.add_source("../src/cart.js");
        b.set_source_contents(src, Some(SOURCE));
        // `function` at 0:0 ← 2:0; `a` at 0:9 ← 2:16 named addToCart; `throw` at 0:14 ← 4:4.
        b.add_raw(0, 0, 2, 0, Some(src), None, false);
        let name = b.add_name("addToCart");
        b.add_raw(0, 9, 2, 16, Some(src), Some(name), false);
        b.add_raw(0, 14, 4, 4, Some(src), None, false);
        let mut out = Vec::new();
        b.into_sourcemap().to_writer(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn frame(function: &str, col: i64) -> Minified {
        Minified {
            abs_path: Some("https://shop.example/static/app.min.js".into()),
            filename: None,
            function: Some(function.into()),
            lineno: Some(1),
            colno: Some(col),
        }
    }

    fn parsed(minified: bool) -> ParsedMap {
        let min = minified.then(|| MINIFIED.as_bytes().to_vec());
        ParsedMap::parse(map().as_bytes(), min, "~/static/app.min.js.map".into()).unwrap()
    }

    #[test]
    fn a_frame_maps_to_the_original_file_line_column_and_source_lines() {
        let shown = map_frame(&frame("a", 15), None, &parsed(true)).unwrap();
        assert_eq!(shown.filename.as_deref(), Some("src/cart.js"));
        assert_eq!((shown.lineno, shown.colno), (Some(5), Some(5)));
        assert_eq!(shown.function.as_deref(), Some("addToCart"));
        assert_eq!(
            shown.context_line.as_deref(),
            Some("    throw new Error(\"no item\");")
        );
        assert_eq!(shown.pre_context.len(), 4);
        assert_eq!(shown.pre_context[2], "export function addToCart(item) {");
        assert_eq!(shown.post_context, ["  }", "  return item;", "}", ""]);
        assert!(shown.mapped && shown.in_app);
        assert_eq!(shown.map.as_deref(), Some("~/static/app.min.js.map"));
        assert_eq!(shown.minified.unwrap().colno, Some(15));
    }

    #[test]
    fn without_the_minified_file_the_function_keeps_its_minified_name() {
        let shown = map_frame(&frame("Object.a", 15), None, &parsed(false)).unwrap();
        assert_eq!(shown.function.as_deref(), Some("Object.a"));
        assert_eq!(shown.lineno, Some(5));
    }

    #[test]
    fn a_dotted_name_is_looked_up_by_its_last_part() {
        let shown = map_frame(&frame("Object.a", 15), None, &parsed(true)).unwrap();
        assert_eq!(shown.function.as_deref(), Some("addToCart"));
    }

    #[test]
    fn a_source_is_named_as_in_the_project_not_as_seen_from_the_build() {
        assert_eq!(source_name("../src/cart.js"), "src/cart.js");
        assert_eq!(
            source_name("../../../srv/app/src/cart.js"),
            "srv/app/src/cart.js"
        );
        assert_eq!(source_name("webpack:///./src/cart.js"), "src/cart.js");
        assert_eq!(source_name("webpack://shop/./src/cart.js"), "src/cart.js");
        assert_eq!(source_name("src/cart.js"), "src/cart.js");
        assert_eq!(source_name("/abs/cart.js"), "/abs/cart.js");
        assert_eq!(source_name("../"), "../");
    }

    #[test]
    fn a_map_that_is_not_json_is_an_invalid_source_map() {
        let err = ParsedMap::parse(b"not json", None, "x".into())
            .err()
            .unwrap();
        assert!(err.starts_with("invalid source map: "), "{err}");
    }

    #[test]
    fn a_frame_without_a_column_or_outside_the_map_says_why() {
        let mut f = frame("a", 15);
        f.colno = None;
        assert!(
            map_frame(&f, None, &parsed(true))
                .unwrap_err()
                .contains("no line and column")
        );
        let mut far = frame("a", 1);
        far.lineno = Some(40);
        assert!(
            map_frame(&far, None, &parsed(true))
                .unwrap_err()
                .contains("line 40")
        );
    }

    #[test]
    fn node_modules_and_webpack_bootstrap_are_not_in_app() {
        assert!(is_library("webpack:///node_modules/lodash/get.js"));
        assert!(is_library("webpack/bootstrap 1234"));
        assert!(!is_library("../src/cart.js"));
    }

    #[test]
    fn javascript_files_are_told_from_others() {
        assert!(is_javascript("https://shop.example/app.min.js?v=3"));
        assert!(is_javascript("/srv/app/dist/index.cjs"));
        assert!(!is_javascript("node:internal/process/task_queues"));
        assert!(!is_javascript("/srv/app/checkout.py"));
    }

    #[test]
    fn a_long_line_is_clipped() {
        let long = "x".repeat(2000);
        assert_eq!(clip(&long).chars().count(), MAX_LINE_CHARS + 1);
    }
}
