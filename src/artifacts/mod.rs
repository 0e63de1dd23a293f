//! Source-map uploads from the unmodified `sentry-cli` (SPEC §10): its chunks checked
//! against their SHA-1 and stored once, and artifact bundles assembled from them. The
//! HTTP side is `http::artifacts`; what is stored, `store::artifacts`.
//!
//! Assembly runs inline in the `assemble` request, which `sentry-cli` makes once its chunks
//! are up: a bundle is at most 100 MiB, and the unzipping and compressing run on a blocking
//! thread. So the answer is `ok` (or `error`) at once, never `assembling`.

mod bundle;

use crate::model::artifact::{BundleTarget, CHUNK_SIZE, MAX_BUNDLE_BYTES};
use crate::store::{Store, StoreError};
use serde::Serialize;
use sha1::{Digest, Sha1};
use std::io::Read;

/// The most chunks one chunk-upload request may carry, as advertised.
pub(crate) const CHUNKS_PER_REQUEST: usize = 64;
/// The largest chunk-upload request body, as advertised (the route's own limit adds room
/// for the multipart framing).
pub(crate) const MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;
/// The zstd level of stored chunks.
const LEVEL: i32 = 3;

/// An upload refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    /// The request is wrong (400): a chunk whose content is not its name's SHA-1, too big,
    /// not gzip, a malformed checksum.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One uploaded chunk as it came: its name (the SHA-1 it claims), whether it is gzip
/// (`file_gzip`), its bytes.
pub(crate) struct UploadedChunk {
    /// The part's filename: the chunk's SHA-1.
    pub(crate) name: String,
    /// Sent as `file_gzip` (else `file`, as is).
    pub(crate) gzip: bool,
    /// The part's bytes.
    pub(crate) data: bytes::Bytes,
}

/// The options `sentry-cli` reads before an upload (`GET …/chunk-upload/`); `url` is where
/// it posts the chunks, relative so that it sends its token there too.
pub(crate) fn chunk_options(org: &str) -> serde_json::Value {
    serde_json::json!({
        "url": format!("/api/0/organizations/{}/chunk-upload/", encode_segment(org)),
        "chunkSize": CHUNK_SIZE,
        "chunksPerRequest": CHUNKS_PER_REQUEST,
        "maxFileSize": MAX_BUNDLE_BYTES,
        "maxRequestSize": MAX_REQUEST_SIZE,
        "concurrency": 4,
        "hashAlgorithm": "sha1",
        "compression": ["gzip"],
        "accept": ["release_files", "artifact_bundles", "artifact_bundles_v2"],
    })
}

/// A path segment percent-encoded (an org slug is any text to Mesher).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether `s` is a SHA-1 as `sentry-cli` writes it: 40 lowercase hex digits.
pub(crate) fn is_sha1(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks each chunk against its name (after gunzip), then stores the new ones
/// compressed; a chunk already stored is not stored again.
pub(crate) async fn receive_chunks(
    store: &Store,
    chunks: Vec<UploadedChunk>,
) -> Result<usize, UploadError> {
    let count = chunks.len();
    let checked = tokio::task::spawn_blocking(move || {
        chunks
            .into_iter()
            .map(check_chunk)
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| UploadError::Invalid(format!("chunk check failed: {e}")))??;
    store.put_chunks(&checked).await?;
    Ok(count)
}

/// One chunk checked: `(sha1, size, zstd data)`.
fn check_chunk(chunk: UploadedChunk) -> Result<(String, i64, Vec<u8>), UploadError> {
    let name = chunk.name.trim().to_ascii_lowercase();
    if !is_sha1(&name) {
        return Err(UploadError::Invalid(format!(
            "chunk '{}': its filename must be its SHA-1 (40 hex digits)",
            chunk.name
        )));
    }
    let data = if chunk.gzip || chunk.data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&chunk.data[..])
            .take(CHUNK_SIZE as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| UploadError::Invalid(format!("chunk {name}: not valid gzip: {e}")))?;
        out
    } else {
        chunk.data.to_vec()
    };
    if data.len() > CHUNK_SIZE {
        return Err(UploadError::Invalid(format!(
            "chunk {name}: over the chunk size of {CHUNK_SIZE} bytes"
        )));
    }
    let actual = hex::encode(Sha1::digest(&data));
    if actual != name {
        return Err(UploadError::Invalid(format!(
            "chunk {name}: its content's SHA-1 is {actual}"
        )));
    }
    let compressed = zstd::bulk::compress(&data, LEVEL)
        .map_err(|e| UploadError::Invalid(format!("chunk {name}: {e}")))?;
    Ok((name, data.len() as i64, compressed))
}

/// An assembly's state, as `sentry-cli` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AssembleState {
    /// Chunks are missing: upload them, then ask again.
    NotFound,
    /// The bundle is stored.
    Ok,
    /// The bundle cannot be stored; `detail` says why.
    Error,
}

/// The answer to an assembly.
#[derive(Debug, Serialize)]
pub(crate) struct AssembleAnswer {
    /// Where the bundle is.
    pub(crate) state: AssembleState,
    /// The chunks still to upload.
    #[serde(rename = "missingChunks")]
    pub(crate) missing_chunks: Vec<String>,
    /// Why it failed.
    pub(crate) detail: Option<String>,
}

impl AssembleAnswer {
    fn state(state: AssembleState, missing_chunks: Vec<String>) -> AssembleAnswer {
        AssembleAnswer {
            state,
            missing_chunks,
            detail: None,
        }
    }

    fn error(detail: String) -> AssembleAnswer {
        AssembleAnswer {
            state: AssembleState::Error,
            missing_chunks: Vec::new(),
            detail: Some(detail),
        }
    }
}

/// Assembles the bundle `target.checksum` from `chunks` (in order): `ok` when it is stored
/// (or was already, for the same projects, release and dist), `not_found` with the chunks
/// still to upload, `error` with why it cannot be stored.
pub(crate) async fn assemble(
    store: &Store,
    target: &BundleTarget,
    chunks: &[String],
) -> Result<AssembleAnswer, UploadError> {
    if !is_sha1(&target.checksum) || !chunks.iter().all(|c| is_sha1(c)) {
        return Err(UploadError::Invalid(
            "checksum and chunks must be SHA-1s (40 lowercase hex digits)".into(),
        ));
    }
    if store.touch_bundle(target).await? {
        return Ok(AssembleAnswer::state(AssembleState::Ok, Vec::new()));
    }
    let sizes = store.chunk_sizes(chunks).await?;
    let mut missing: Vec<String> = chunks
        .iter()
        .filter(|c| !sizes.contains_key(*c))
        .cloned()
        .collect();
    missing.dedup();
    if !missing.is_empty() || chunks.is_empty() {
        return Ok(AssembleAnswer::state(AssembleState::NotFound, missing));
    }
    let total: u64 = chunks.iter().map(|c| sizes[c].max(0) as u64).sum();
    if total > MAX_BUNDLE_BYTES {
        return Ok(AssembleAnswer::error(format!(
            "the bundle is {total} bytes; at most {MAX_BUNDLE_BYTES} (100 MiB) are accepted"
        )));
    }
    let Some(data) = store.chunk_data(chunks).await? else {
        // Taken by a concurrent assembly meanwhile: ask for them again.
        return Ok(AssembleAnswer::state(
            AssembleState::NotFound,
            chunks.to_vec(),
        ));
    };
    let checksum = target.checksum.clone();
    let files = tokio::task::spawn_blocking(move || join_and_unpack(data, &checksum))
        .await
        .map_err(|e| UploadError::Invalid(format!("assembly failed: {e}")))?;
    let files = match files {
        Ok(files) => files,
        Err(detail) => return Ok(AssembleAnswer::error(detail)),
    };
    let mut used = chunks.to_vec();
    used.sort();
    used.dedup();
    store.store_bundle(target, &files, &used).await?;
    Ok(AssembleAnswer::state(AssembleState::Ok, Vec::new()))
}

/// The chunks decompressed and joined, checked against the bundle's checksum, unzipped.
fn join_and_unpack(
    chunks: Vec<Vec<u8>>,
    checksum: &str,
) -> Result<Vec<crate::model::artifact::NewArtifact>, String> {
    let mut zip = Vec::new();
    for chunk in chunks {
        zip.extend(zstd::decode_all(&chunk[..]).map_err(|e| format!("stored chunk: {e}"))?);
    }
    let actual = hex::encode(Sha1::digest(&zip));
    if actual != checksum {
        return Err(format!(
            "the chunks joined have the SHA-1 {actual}, not the checksum {checksum}"
        ));
    }
    bundle::unpack(&zip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_checked_against_its_name_after_gunzip() {
        use std::io::Write;
        let content = b"some bytes of a bundle";
        let sha = hex::encode(Sha1::digest(content));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(content).unwrap();
        let gzipped = bytes::Bytes::from(gz.finish().unwrap());
        let chunk = |name: &str, data: bytes::Bytes| UploadedChunk {
            name: name.into(),
            gzip: true,
            data,
        };
        let (name, size, _) = check_chunk(chunk(&sha, gzipped.clone())).unwrap();
        assert_eq!((name.as_str(), size), (sha.as_str(), content.len() as i64));
        let wrong = "0".repeat(40);
        let err = check_chunk(chunk(&wrong, gzipped)).unwrap_err().to_string();
        assert!(err.contains(&wrong) && err.contains(&sha), "{err}");
        assert!(check_chunk(chunk("abc", bytes::Bytes::new())).is_err());
    }

    #[test]
    fn org_slugs_are_encoded_in_the_chunk_url() {
        assert_eq!(
            chunk_options("my org")["url"],
            "/api/0/organizations/my%20org/chunk-upload/"
        );
    }
}
