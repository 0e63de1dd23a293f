//! Uploaded source-map artifacts (SPEC §10): the files of the artifact bundles `sentry-cli`
//! uploads, as stored and as the mapping reads them back, and the limits of an upload.

/// The largest artifact bundle accepted, assembled (before unzipping).
pub const MAX_BUNDLE_BYTES: u64 = 100 * 1024 * 1024;
/// The most files one bundle may hold.
pub const MAX_BUNDLE_FILES: usize = 2_000;
/// The size of one chunk, as advertised to `sentry-cli`; a bigger chunk is refused.
pub const CHUNK_SIZE: usize = 8 * 1024 * 1024;

/// What an uploaded file is, from the bundle manifest's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// `minified_source`: the code the browser or Node runs.
    MinifiedSource,
    /// `source_map`.
    SourceMap,
    /// `source`: an original file.
    Source,
    /// Anything else (`indexed_ram_bundle`, unknown types).
    Other,
}

impl ArtifactKind {
    /// The kind a manifest's `type` names.
    pub fn from_manifest(kind: &str) -> ArtifactKind {
        match kind {
            "minified_source" => ArtifactKind::MinifiedSource,
            "source_map" => ArtifactKind::SourceMap,
            "source" => ArtifactKind::Source,
            _ => ArtifactKind::Other,
        }
    }

    /// The name stored in the `kind` column (the manifest's own names).
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::MinifiedSource => "minified_source",
            ArtifactKind::SourceMap => "source_map",
            ArtifactKind::Source => "source",
            ArtifactKind::Other => "other",
        }
    }
}

/// One uploaded file, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredArtifact {
    /// Its URL as the bundle gives it, `~/`-prefixed: `~/static/app.min.js`.
    pub url: String,
    /// What it is.
    pub kind: ArtifactKind,
    /// Its debug ID, a lowercase UUID with dashes, when `sourcemaps inject` gave it one.
    pub debug_id: Option<String>,
    /// The `Sourcemap` header of a minified file (the map's name, relative to it), as given.
    pub sourcemap: Option<String>,
    /// The file's content, decompressed.
    pub data: Vec<u8>,
}

/// A file of a bundle being stored: as [`StoredArtifact`], its content zstd-compressed
/// (off the async threads, by whoever builds it).
#[derive(Clone, Debug)]
pub struct NewArtifact {
    /// Its `~/`-prefixed URL.
    pub url: String,
    /// What it is.
    pub kind: ArtifactKind,
    /// Its debug ID, normalized ([`normalize_debug_id`]).
    pub debug_id: Option<String>,
    /// A minified file's `Sourcemap` header.
    pub sourcemap: Option<String>,
    /// The content, zstd-compressed.
    pub compressed: Vec<u8>,
}

/// Where a bundle belongs: the projects it was uploaded for, its release and dist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleTarget {
    /// The projects (one row set each).
    pub projects: Vec<crate::model::project::ProjectId>,
    /// The SHA-1 of the bundle's zip, lowercase hex.
    pub checksum: String,
    /// `--release`, if given.
    pub release: Option<String>,
    /// `--dist`, if given.
    pub dist: Option<String>,
}

/// A debug ID in its stored form, a lowercase UUID with dashes; `None` when `id` is not a
/// UUID (with or without dashes, any case).
pub fn normalize_debug_id(id: &str) -> Option<String> {
    let hex: String = id.trim().chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_ids_are_lowercase_with_dashes() {
        let id = "089E8826-3931-541e-b77c-60b202dbbea1";
        assert_eq!(
            normalize_debug_id(id).as_deref(),
            Some("089e8826-3931-541e-b77c-60b202dbbea1")
        );
        assert_eq!(
            normalize_debug_id("089e88263931541eb77c60b202dbbea1").as_deref(),
            Some("089e8826-3931-541e-b77c-60b202dbbea1")
        );
        assert_eq!(normalize_debug_id("not-a-uuid"), None);
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [
            ArtifactKind::MinifiedSource,
            ArtifactKind::SourceMap,
            ArtifactKind::Source,
            ArtifactKind::Other,
        ] {
            assert_eq!(ArtifactKind::from_manifest(kind.as_str()), kind);
        }
    }
}
