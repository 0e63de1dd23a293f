//! The mapper over uploaded files held in memory.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

const SOURCE: &str = "// cart\n\nexport function addToCart(item) {\n  if (!item) {\n    throw new Error(\"no item\");\n  }\n  return item;\n}\n";
const MINIFIED: &str = "function a(n){throw new Error(n)}\n//# sourceMappingURL=app.min.js.map\n";

fn map_json() -> Vec<u8> {
    let mut b = sourcemap::SourceMapBuilder::new(Some("app.min.js"));
    let src = b.add_source("../src/cart.js");
    b.set_source_contents(src, Some(SOURCE));
    b.add_raw(0, 0, 2, 0, Some(src), None, false);
    let name = b.add_name("addToCart");
    b.add_raw(0, 9, 2, 16, Some(src), Some(name), false);
    b.add_raw(0, 14, 4, 4, Some(src), None, false);
    let mut out = Vec::new();
    b.into_sourcemap().to_writer(&mut out).unwrap();
    out
}

#[derive(Default)]
struct Memory {
    /// (release, url) → file.
    by_url: Vec<(String, Artifact)>,
    /// (debug id, is_map) → file.
    by_id: Vec<(String, Artifact)>,
    reads: AtomicUsize,
}

impl ArtifactSource for Memory {
    async fn by_debug_id(&self, _: i64, id: &str, want: Want) -> Result<Option<Artifact>, String> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let is_map = want == Want::SourceMap;
        Ok(self
            .by_id
            .iter()
            .find(|(i, a)| i == id && a.is_map == is_map)
            .map(|(_, a)| a.clone()))
    }
    async fn by_url(
        &self,
        _: i64,
        release: &str,
        _: Option<&str>,
        url: &str,
    ) -> Result<Option<Artifact>, String> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .by_url
            .iter()
            .find(|(r, a)| r == release && a.url == url)
            .map(|(_, a)| a.clone()))
    }
    async fn changed_at(&self, _: i64) -> Result<Option<i64>, String> {
        Ok((!self.by_url.is_empty() || !self.by_id.is_empty()).then_some(1))
    }
}

fn minified_file() -> Artifact {
    Artifact {
        url: "~/static/app.min.js".into(),
        data: MINIFIED.into(),
        ..Artifact::default()
    }
}

fn map_file(data: Vec<u8>) -> Artifact {
    Artifact {
        url: "~/static/app.min.js.map".into(),
        is_map: true,
        data,
        ..Artifact::default()
    }
}

fn event(release: Option<&str>, image: bool) -> SentEvent {
    let release = release.map_or(String::new(), |r| format!(r#""release":"{r}","#));
    let image = if image {
        r#","debug_meta":{"images":[{"type":"sourcemap","code_file":"https://shop.example/static/app.min.js","debug_id":"d-1"}]}"#
    } else {
        ""
    };
    SentEvent::read(&format!(
        r#"{{{release}"platform":"javascript","exception":{{"values":[{{"type":"Error","value":"no item","stacktrace":{{"frames":[
        {{"filename":"/srv/app/checkout.py","function":"pay","lineno":3}},
        {{"filename":"https://shop.example/static/app.min.js","function":"a","lineno":1,"colno":15,"in_app":true}}]}}}}]}}{image}}}"#
    ))
}

fn run<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn a_frame_is_mapped_by_release_and_url_and_a_python_frame_is_left_alone() {
    let source = Memory {
        by_url: vec![
            ("1.2".into(), minified_file()),
            ("1.2".into(), map_file(map_json())),
        ],
        ..Memory::default()
    };
    let mapper = Mapper::new(source, DEFAULT_CACHE_BYTES);
    let shown = run(mapper.map_event(1, &event(Some("1.2"), false)));
    let [python, js] = &shown[0].frames[..] else {
        panic!("two frames")
    };
    assert!(!python.mapped && python.error.is_none());
    assert!(js.mapped, "{js:?}");
    assert_eq!(js.filename.as_deref(), Some("src/cart.js"));
    assert_eq!(js.function.as_deref(), Some("addToCart"));
    assert_eq!(js.lineno, Some(5));
    assert_eq!(js.map.as_deref(), Some("~/static/app.min.js.map"));
}

#[test]
fn a_frame_is_mapped_by_debug_id_and_the_map_is_read_once() {
    let file = Artifact {
        debug_id: Some("d-1".into()),
        ..minified_file()
    };
    let map = Artifact {
        debug_id: Some("d-1".into()),
        ..map_file(map_json())
    };
    let source = Memory {
        by_id: vec![("d-1".into(), file), ("d-1".into(), map)],
        ..Memory::default()
    };
    let mapper = Mapper::new(source, DEFAULT_CACHE_BYTES);
    for _ in 0..3 {
        let shown = run(mapper.map_event(1, &event(None, true)));
        assert_eq!(shown[0].frames[1].function.as_deref(), Some("addToCart"));
    }
    assert_eq!(
        mapper.source.reads.load(Ordering::SeqCst),
        2,
        "map and minified file, once"
    );
    assert!(mapper.cached_bytes() > 0);
}

#[test]
fn unmapped_frames_say_why() {
    let bad = Memory {
        by_url: vec![
            ("1.2".into(), minified_file()),
            ("1.2".into(), map_file(b"<html>".to_vec())),
        ],
        ..Memory::default()
    };
    let mapper = Mapper::new(bad, DEFAULT_CACHE_BYTES);
    let why = |e: &SentEvent| {
        run(mapper.map_event(1, e))[0].frames[1]
            .error
            .clone()
            .unwrap()
    };
    assert!(why(&event(Some("1.2"), false)).starts_with("invalid source map: "));
    assert_eq!(
        why(&event(Some("9.9"), false)),
        "no artifact for ~/static/app.min.js in release 9.9"
    );
    assert_eq!(why(&event(None, true)), "no source map for debug id d-1");
    assert!(why(&event(None, false)).contains("has no release"));
    let nothing = Mapper::new(Memory::default(), DEFAULT_CACHE_BYTES);
    let shown = run(nothing.map_event(1, &event(Some("1.2"), false)));
    assert_eq!(
        shown[0].frames[1].error.as_deref(),
        Some("no artifact for ~/static/app.min.js in release 1.2")
    );
}

#[test]
fn an_event_naming_many_maps_looks_up_a_bounded_number() {
    let frames: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"filename":"https://x.example/b{i}.js","lineno":1,"colno":1}}"#))
        .collect();
    let data = format!(
        r#"{{"release":"1","exception":{{"values":[{{"type":"E","stacktrace":{{"frames":[{}]}}}}]}}}}"#,
        frames.join(",")
    );
    let source = Memory {
        by_url: vec![("1.2".into(), minified_file())],
        ..Memory::default()
    };
    let mapper = Mapper::new(source, DEFAULT_CACHE_BYTES);
    let shown = run(mapper.map_event(1, &SentEvent::read(&data)));
    let errors: Vec<&str> = shown[0]
        .frames
        .iter()
        .filter_map(|f| f.error.as_deref())
        .collect();
    assert_eq!(errors.len(), 20);
    assert_eq!(
        errors.iter().filter(|e| e.contains("more than 8")).count(),
        12
    );
    // Each looked-up file tried its two names (the URL and its ~/ path).
    assert_eq!(mapper.source.reads.load(Ordering::SeqCst), 16);
}

#[test]
fn events_asking_for_one_map_at_once_share_one_parse() {
    let file = Artifact {
        debug_id: Some("d-1".into()),
        ..minified_file()
    };
    let map = Artifact {
        debug_id: Some("d-1".into()),
        ..map_file(map_json())
    };
    let source = Memory {
        by_id: vec![("d-1".into(), file), ("d-1".into(), map)],
        ..Memory::default()
    };
    let mapper = Mapper::new(source, DEFAULT_CACHE_BYTES);
    let event = event(None, true);
    let (a, b, c) = run(async {
        tokio::join!(
            mapper.map_event(1, &event),
            mapper.map_event(1, &event),
            mapper.map_event(1, &event)
        )
    });
    for shown in [a, b, c] {
        assert!(shown[0].frames[1].mapped);
    }
    assert_eq!(
        mapper.source.reads.load(Ordering::SeqCst),
        2,
        "one load for three"
    );
}
