//! An artifact bundle unpacked: the zip `sentry-cli` builds, with its `manifest.json`
//! (`files: {path: {url, type, headers: {debug-id, sourcemap}}}`), read with the `zip`
//! crate and each file zstd-compressed as it is read, so that at most one file is held
//! decompressed at a time.

use crate::model::artifact::{ArtifactKind, MAX_BUNDLE_FILES, NewArtifact, normalize_debug_id};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{Cursor, Read};

/// The most one bundle's files may add up to once unzipped (a zip of 100 MiB can hold far
/// more; this stops a zip bomb).
const MAX_UNPACKED: u64 = 512 * 1024 * 1024;
/// The zstd level of stored files: as the events' raw copies.
const LEVEL: i32 = 3;

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    files: BTreeMap<String, ManifestFile>,
}

#[derive(Deserialize)]
struct ManifestFile {
    url: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl ManifestFile {
    /// A header by name, any case (`sentry-cli` writes `debug-id` and `Sourcemap`).
    fn header(&self, names: &[&str]) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v.as_str())
    }
}

/// The files of the bundle `zip`, or why it cannot be read (said to `sentry-cli` as the
/// assembly's `detail`).
pub(crate) fn unpack(zip: &[u8]) -> Result<Vec<NewArtifact>, String> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(zip)).map_err(|e| format!("not a zip archive: {e}"))?;
    let manifest: Manifest = {
        let entry = archive
            .by_name("manifest.json")
            .map_err(|_| "the bundle has no manifest.json".to_owned())?;
        serde_json::from_reader(entry.take(16 * 1024 * 1024))
            .map_err(|e| format!("manifest.json: {e}"))?
    };
    if manifest.files.len() > MAX_BUNDLE_FILES {
        return Err(format!(
            "the bundle has {} files; at most {MAX_BUNDLE_FILES} are accepted",
            manifest.files.len()
        ));
    }
    let mut unpacked = 0u64;
    let mut files = Vec::with_capacity(manifest.files.len());
    for (path, file) in &manifest.files {
        let entry = archive
            .by_name(path)
            .map_err(|_| format!("manifest.json names {path}, which the bundle lacks"))?;
        let mut data = Vec::new();
        entry
            .take(MAX_UNPACKED - unpacked + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("{path}: {e}"))?;
        unpacked += data.len() as u64;
        if unpacked > MAX_UNPACKED {
            return Err(format!(
                "the bundle's files add up to over {} MiB",
                MAX_UNPACKED >> 20
            ));
        }
        files.push(NewArtifact {
            url: file.url.clone(),
            kind: ArtifactKind::from_manifest(file.kind.as_deref().unwrap_or("")),
            debug_id: file
                .header(&["debug-id", "debug_id"])
                .and_then(normalize_debug_id),
            sourcemap: file
                .header(&["sourcemap", "x-sourcemap"])
                .map(str::to_owned),
            compressed: zstd::bulk::compress(&data, LEVEL).map_err(|e| e.to_string())?,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn bundle(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, data) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn files_come_with_their_kind_debug_id_and_sourcemap_header() {
        let manifest = br#"{"org":"o","files":{
            "files/_/_/app.min.js":{"url":"~/app.min.js","type":"minified_source",
              "headers":{"debug-id":"089E8826-3931-541e-b77c-60b202dbbea1","Sourcemap":"app.min.js.map"}},
            "files/_/_/app.min.js.map":{"url":"~/app.min.js.map","type":"source_map",
              "headers":{"debug-id":"089e8826-3931-541e-b77c-60b202dbbea1"}}}}"#;
        let zip = bundle(&[
            ("manifest.json", manifest),
            ("files/_/_/app.min.js", b"a()"),
            ("files/_/_/app.min.js.map", b"{}"),
        ]);
        let files = unpack(&zip).unwrap();
        assert_eq!(files.len(), 2);
        let js = &files[0];
        assert_eq!(js.url, "~/app.min.js");
        assert_eq!(js.kind, ArtifactKind::MinifiedSource);
        assert_eq!(
            js.debug_id.as_deref(),
            Some("089e8826-3931-541e-b77c-60b202dbbea1")
        );
        assert_eq!(js.sourcemap.as_deref(), Some("app.min.js.map"));
        assert_eq!(zstd::decode_all(&js.compressed[..]).unwrap(), b"a()");
        assert_eq!(files[1].kind, ArtifactKind::SourceMap);
    }

    #[test]
    fn a_bundle_of_more_than_2000_files_is_refused() {
        let names: Vec<String> = (0..=MAX_BUNDLE_FILES).map(|i| format!("f{i}")).collect();
        let files: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    serde_json::json!({"url": format!("~/{n}"), "type": "source"}),
                )
            })
            .collect();
        let manifest = serde_json::json!({ "files": files }).to_string();
        let mut entries: Vec<(&str, &[u8])> = vec![("manifest.json", manifest.as_bytes())];
        entries.extend(names.iter().map(|n| (n.as_str(), &b"x"[..])));
        let err = unpack(&bundle(&entries)).unwrap_err();
        assert!(err.contains("at most 2000"), "{err}");
    }

    #[test]
    fn a_bundle_that_cannot_be_read_says_why() {
        assert!(unpack(b"not a zip").unwrap_err().contains("not a zip"));
        let zip = bundle(&[("other.txt", b"x")]);
        assert!(unpack(&zip).unwrap_err().contains("manifest.json"));
        let zip = bundle(&[(
            "manifest.json",
            br#"{"files":{"a":{"url":"~/a","type":"source"}}}"#,
        )]);
        assert!(unpack(&zip).unwrap_err().contains("lacks"));
    }
}
