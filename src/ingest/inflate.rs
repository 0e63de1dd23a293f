//! A request body decompressed as it streams in: compressed pieces are written in as they
//! arrive, and the decompressed bytes come out into a writer the caller owns, one decoder
//! buffer at a time, so neither the compressed nor the decompressed body is ever held whole
//! and the caller's limits stop a compression bomb early.
//!
//! flate2's and brotli's write-side decoders (the crates `decode` already uses) rather than
//! async-compression: they push output into the caller's writer as it is produced, which is
//! all a streamed body needs, and async-compression would bring a second major version of
//! brotli into the build.

use super::decode::{DecodeError, Encoding};
use brotli::DecompressorWriter;
use flate2::write::{MultiGzDecoder, ZlibDecoder};
use std::io::{self, Write};

/// Why a streamed body could not be decompressed.
#[derive(Debug)]
pub(crate) enum InflateError {
    /// The bytes are not valid for their encoding.
    Decode(DecodeError),
    /// The caller's writer failed; its error, as it returned it.
    Sink(io::Error),
}

/// Decompresses a body written in pieces into `W`.
pub(crate) struct StreamDecoder<W: Write> {
    top: Stage<W>,
}

/// One layer of decoding; the outermost receives the body, the innermost is the writer.
enum Stage<W: Write> {
    Sink(W),
    Gzip(MultiGzDecoder<Box<Stage<W>>>),
    Deflate(ZlibDecoder<Box<Stage<W>>>),
    // Boxed: its state is ten times the others'.
    Brotli(Box<DecompressorWriter<Box<Stage<W>>>>),
}

/// A writer's error on its way out through the decoders, told apart from theirs.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct FromSink(io::Error);

/// Marks a decoder's own error as corrupt input of `encoding`; errors from further in
/// (the writer's, an inner decoder's) pass through as they are.
fn tag(encoding: Encoding) -> impl Fn(io::Error) -> io::Error {
    move |e| {
        let marked = e
            .get_ref()
            .is_some_and(|inner| inner.is::<FromSink>() || inner.is::<DecodeError>());
        if marked {
            e
        } else {
            io::Error::other(DecodeError::Corrupt {
                encoding: encoding.name().to_owned(),
                detail: e.to_string(),
            })
        }
    }
}

impl<W: Write> Write for Stage<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stage::Sink(w) => w.write(buf).map_err(|e| io::Error::other(FromSink(e))),
            Stage::Gzip(d) => d.write(buf).map_err(tag(Encoding::Gzip)),
            Stage::Deflate(d) => d.write(buf).map_err(tag(Encoding::Deflate)),
            Stage::Brotli(d) => d.write(buf).map_err(tag(Encoding::Brotli)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stage::Sink(w) => w.flush().map_err(|e| io::Error::other(FromSink(e))),
            Stage::Gzip(d) => d.flush().map_err(tag(Encoding::Gzip)),
            Stage::Deflate(d) => d.flush().map_err(tag(Encoding::Deflate)),
            Stage::Brotli(d) => d.flush().map_err(tag(Encoding::Brotli)),
        }
    }
}

impl<W: Write> Stage<W> {
    /// Ends the input: checks the compressed stream is complete and flushes its rest.
    fn finish(self) -> io::Result<W> {
        match self {
            Stage::Sink(w) => Ok(w),
            Stage::Gzip(d) => d.finish().map_err(tag(Encoding::Gzip))?.finish(),
            Stage::Deflate(d) => d.finish().map_err(tag(Encoding::Deflate))?.finish(),
            Stage::Brotli(mut d) => {
                d.close().map_err(tag(Encoding::Brotli))?;
                match (*d).into_inner() {
                    Ok(inner) => inner.finish(),
                    Err(_) => Err(tag(Encoding::Brotli)(io::Error::other(
                        "the stream did not end",
                    ))),
                }
            }
        }
    }
}

/// An error from the stages: a writer's, or a decoder's (tagged by [`tag`]).
fn classify(e: io::Error) -> InflateError {
    match e.downcast::<FromSink>() {
        Ok(FromSink(e)) => InflateError::Sink(e),
        Err(e) => match e.downcast::<DecodeError>() {
            Ok(d) => InflateError::Decode(d),
            // Every decoder error is tagged; this is only a fallback.
            Err(e) => InflateError::Decode(DecodeError::Corrupt {
                encoding: "the request body's encoding".into(),
                detail: e.to_string(),
            }),
        },
    }
}

impl<W: Write> StreamDecoder<W> {
    /// Undoes `encodings` (in the order they were applied, as
    /// [`super::decode::encodings`] lists them) into `sink`.
    pub(crate) fn new(encodings: &[Encoding], sink: W) -> StreamDecoder<W> {
        // The first encoding applied is undone last, next to the writer.
        let top = encodings.iter().fold(Stage::Sink(sink), |inner, encoding| {
            let inner = Box::new(inner);
            match encoding {
                Encoding::Gzip => Stage::Gzip(MultiGzDecoder::new(inner)),
                Encoding::Deflate => Stage::Deflate(ZlibDecoder::new(inner)),
                Encoding::Brotli => {
                    Stage::Brotli(Box::new(DecompressorWriter::new(inner, 32 * 1024)))
                }
            }
        });
        StreamDecoder { top }
    }

    /// Decompresses the next piece of the body.
    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> Result<(), InflateError> {
        while !bytes.is_empty() {
            match self.top.write(bytes) {
                Ok(0) => {
                    return Err(InflateError::Decode(DecodeError::Corrupt {
                        encoding: self.name().into(),
                        detail: "data after the end of the compressed stream".into(),
                    }));
                }
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(())
    }

    /// The end of the body: checks every compressed stream is complete; answers the writer.
    pub(crate) fn finish(self) -> Result<W, InflateError> {
        self.top.finish().map_err(classify)
    }

    /// The outermost encoding's name.
    fn name(&self) -> &'static str {
        match self.top {
            Stage::Sink(_) => "identity",
            Stage::Gzip(_) => Encoding::Gzip.name(),
            Stage::Deflate(_) => Encoding::Deflate.name(),
            Stage::Brotli(_) => Encoding::Brotli.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::encodings;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    fn br(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        brotli::CompressorWriter::new(&mut out, 4096, 5, 22)
            .write_all(data)
            .unwrap();
        out
    }

    /// Decodes `body` written `piece` bytes at a time.
    fn inflate(encoding: &str, body: &[u8], piece: usize) -> Result<Vec<u8>, InflateError> {
        let mut d = StreamDecoder::new(&encodings(Some(encoding)).unwrap(), Vec::new());
        for chunk in body.chunks(piece) {
            d.write(chunk)?;
        }
        d.finish()
    }

    fn text() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect()
    }

    #[test]
    fn each_encoding_in_pieces_of_any_size() {
        let text = text();
        let two_members = [gzip(&text[..100]), gzip(&text[100..])].concat();
        let cases = [
            ("identity", text.clone()),
            ("gzip", gzip(&text)),
            ("x-gzip", two_members),
            ("deflate", zlib(&text)),
            ("br", br(&text)),
            ("gzip, br", br(&gzip(&text))),
        ];
        for (encoding, body) in cases {
            for piece in [1, 7, 4096, body.len()] {
                assert_eq!(
                    inflate(encoding, &body, piece).unwrap(),
                    text,
                    "{encoding} in pieces of {piece}"
                );
            }
        }
    }

    #[test]
    fn corrupt_and_truncated_input_is_refused() {
        let text = text();
        for (encoding, body) in [("gzip", gzip(&text)), ("br", br(&text))] {
            let cut = &body[..body.len() - 4];
            match inflate(encoding, cut, 1000) {
                Err(InflateError::Decode(DecodeError::Corrupt { .. })) => {}
                other => panic!("{encoding} cut short: {other:?}"),
            }
        }
        for encoding in ["gzip", "deflate", "br"] {
            match inflate(encoding, b"not compressed at all", 5) {
                Err(InflateError::Decode(DecodeError::Corrupt { encoding: e, .. })) => {
                    assert_eq!(e, encodings(Some(encoding)).unwrap()[0].name())
                }
                other => panic!("{encoding}: {other:?}"),
            }
        }
    }

    /// A writer that takes `room` bytes, then fails.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.room {
                return Err(io::Error::other("full"));
            }
            self.room -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_writers_error_comes_out_as_it_was() {
        // A bomb: 8 MiB of zeros in a few KiB; the writer stops it at 1 MiB.
        let bomb = gzip(&vec![0; 8 << 20]);
        for (encoding, body) in [
            ("identity", vec![0; 2 << 20]),
            ("gzip", bomb.clone()),
            ("gzip, gzip", gzip(&bomb)),
        ] {
            let mut d =
                StreamDecoder::new(&encodings(Some(encoding)).unwrap(), Full { room: 1 << 20 });
            let e = body
                .chunks(64 * 1024)
                .try_for_each(|c| d.write(c))
                .expect_err(encoding);
            match e {
                InflateError::Sink(e) => assert_eq!(e.to_string(), "full"),
                other => panic!("{encoding}: {other:?}"),
            }
        }
    }
}
