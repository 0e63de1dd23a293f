//! Request bodies: `Content-Encoding` gzip, deflate (zlib, as HTTP means it) or br, and the
//! 1 MiB limit measured after decompression, so that a small compressed bomb is refused.
//! (The envelope route streams its body instead: `inflate`.)

use bytes::Bytes;
use std::io::Read;

/// The largest body accepted, after decompression.
pub(crate) const MAX_BODY: usize = 1 << 20;
/// The largest body read off the wire (a compressed body of incompressible data can be a
/// little larger than its content).
pub(crate) const MAX_RAW_BODY: usize = MAX_BODY + 64 * 1024;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Over [`MAX_BODY`] after decompression.
    #[error("request body is larger than 1 MiB (1048576 bytes) after decompression")]
    TooLarge,
    /// An encoding other than gzip, deflate, br or identity.
    #[error("unsupported Content-Encoding '{0}': use gzip, deflate or br")]
    Unsupported(String),
    /// More codings stacked than [`MAX_ENCODINGS`].
    #[error("Content-Encoding names more than 2 codings: at most 2 of gzip, deflate, br")]
    TooManyEncodings,
    /// The bytes are not valid for the encoding.
    #[error("request body is not valid {encoding}: {detail}")]
    Corrupt {
        /// The encoding that failed.
        encoding: String,
        /// The decoder's complaint.
        detail: String,
    },
}

fn read_limited(reader: impl Read, encoding: &str) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    reader
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt {
            encoding: encoding.to_owned(),
            detail: e.to_string(),
        })?;
    if out.len() > MAX_BODY {
        return Err(DecodeError::TooLarge);
    }
    Ok(out.into())
}

/// A `Content-Encoding` Mesher undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// `gzip` or `x-gzip` (several members allowed).
    Gzip,
    /// `deflate`: zlib, as HTTP means it.
    Deflate,
    /// `br`.
    Brotli,
}

impl Encoding {
    /// Its name in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate (zlib)",
            Encoding::Brotli => "br",
        }
    }
}

/// Codings one body may stack (SPEC §8): an SDK applies one, a proxy perhaps another;
/// each more is only work for the server.
pub(crate) const MAX_ENCODINGS: usize = 2;

/// The encodings a `Content-Encoding` header value lists, in the order they were applied
/// (so they are undone last first); `identity` and empty entries drop out. Reading stops
/// at the first unknown coding or the third one, so a long header costs nothing more.
pub(crate) fn encodings(content_encoding: Option<&str>) -> Result<Vec<Encoding>, DecodeError> {
    let mut found = Vec::with_capacity(MAX_ENCODINGS);
    let names = content_encoding.unwrap_or("").split(',').map(str::trim);
    for name in names.filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity")) {
        let encoding = if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            Encoding::Gzip
        } else if name.eq_ignore_ascii_case("deflate") {
            Encoding::Deflate
        } else if name.eq_ignore_ascii_case("br") {
            Encoding::Brotli
        } else {
            let shown: String = name.chars().take(64).collect();
            return Err(DecodeError::Unsupported(shown.to_ascii_lowercase()));
        };
        if found.len() == MAX_ENCODINGS {
            return Err(DecodeError::TooManyEncodings);
        }
        found.push(encoding);
    }
    Ok(found)
}

/// Undoes `codings` (as [`encodings`] lists them) on `raw`, each decoder made when its
/// turn comes.
pub(crate) fn decode_body(codings: &[Encoding], raw: Bytes) -> Result<Bytes, DecodeError> {
    let mut body = raw;
    for &encoding in codings.iter().rev() {
        let name = encoding.name();
        body = match encoding {
            Encoding::Gzip => read_limited(flate2::read::MultiGzDecoder::new(&body[..]), name)?,
            Encoding::Deflate => read_limited(flate2::read::ZlibDecoder::new(&body[..]), name)?,
            Encoding::Brotli => read_limited(brotli::Decompressor::new(&body[..], 4096), name)?,
        };
    }
    if body.len() > MAX_BODY {
        return Err(DecodeError::TooLarge);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn decodes_each_encoding() {
        let text = b"{\"message\":\"hi\"}";
        assert_eq!(
            decode_body(&[Encoding::Gzip], gzip(text).into()).unwrap(),
            &text[..]
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(text).unwrap();
        assert_eq!(
            decode_body(&[Encoding::Deflate], z.finish().unwrap().into()).unwrap(),
            &text[..]
        );
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(text)
            .unwrap();
        assert_eq!(
            decode_body(&[Encoding::Brotli], br.into()).unwrap(),
            &text[..]
        );
        assert_eq!(
            decode_body(&[], Bytes::from_static(text)).unwrap(),
            &text[..]
        );
    }

    #[test]
    fn limits_after_decompression() {
        let bomb = gzip(&vec![b' '; MAX_BODY + 1]);
        assert!(bomb.len() < 10_000);
        assert_eq!(
            decode_body(&[Encoding::Gzip], bomb.into()),
            Err(DecodeError::TooLarge)
        );
        let exact = gzip(&vec![b' '; MAX_BODY]);
        assert_eq!(
            decode_body(&[Encoding::Gzip], exact.into()).unwrap().len(),
            MAX_BODY
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert!(matches!(
            decode_body(&[Encoding::Gzip], Bytes::from_static(b"not gzip")),
            Err(DecodeError::Corrupt { .. })
        ));
        assert_eq!(
            encodings(Some("zstd")),
            Err(DecodeError::Unsupported("zstd".into()))
        );
    }

    #[test]
    fn at_most_two_codings() {
        assert_eq!(
            encodings(Some("gzip, identity, br")).unwrap(),
            [Encoding::Gzip, Encoding::Brotli]
        );
        assert_eq!(
            encodings(Some("gzip, gzip, gzip")),
            Err(DecodeError::TooManyEncodings)
        );
        // A header of 20,000 entries is refused at the third, before any decoder exists.
        let stacked = vec!["gzip"; 20_000].join(",");
        assert_eq!(
            encodings(Some(&stacked)),
            Err(DecodeError::TooManyEncodings)
        );
    }
}
