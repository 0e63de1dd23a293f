//! An envelope read as it streams in: bytes are fed in pieces of any size, and only the
//! header lines and the payloads of the items chosen to be kept are held, so an envelope of
//! 100 MiB of attachments costs no more memory than its event.
//!
//! A state machine over the format in [`super::envelope`], whose rules and error messages
//! it uses: the same input gives the same envelope or the same error however it is split.

use super::envelope::{
    ENVELOPE_HEADER, Envelope, EnvelopeError, Item, ItemHeader, empty, err, is_blank, json_object,
};
use bytes::BytesMut;
use serde_json::{Map, Value};

/// How much a scanner holds and reads before it refuses an envelope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The whole envelope (as fed, that is after decompression).
    pub envelope: usize,
    /// One kept item's payload.
    pub item: usize,
    /// One header line (the envelope's or an item's).
    pub line: usize,
    /// The kept payloads of one envelope together.
    pub kept: usize,
}

impl Limits {
    /// No limits (a body already in memory: the tests' whole-body parse).
    #[cfg(test)]
    pub(crate) const NONE: Limits = Limits {
        envelope: usize::MAX,
        item: usize::MAX,
        line: usize::MAX,
        kept: usize::MAX,
    };
}

/// Why a scanner stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScanError {
    /// The envelope breaks the format (400).
    #[error(transparent)]
    Malformed(#[from] EnvelopeError),
    /// Over one of the [`Limits`] (413); the message names it.
    #[error("{0}")]
    TooLarge(String),
}

/// `1 MiB (1048576 bytes)`, or `1000 bytes` for a size that is no whole number of MiB.
pub(crate) fn size(bytes: usize) -> String {
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB ({bytes} bytes)", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// At most this much is reserved up front for a kept payload: its `length` is the client's
/// word, the bytes may never come.
const MAX_RESERVE: usize = 1 << 20;

/// The item whose payload is being read.
#[derive(Debug)]
struct Current {
    n: usize,
    ty: String,
    /// `length`, for a sized payload.
    length: Option<usize>,
    /// Payload bytes read so far (kept or not).
    read: usize,
    /// The payload, when the item is kept.
    kept: Option<BytesMut>,
}

#[derive(Debug)]
enum State {
    /// Reading the first line.
    EnvelopeHeader,
    /// The first line was blank: the body is empty unless something other than whitespace
    /// follows, which makes the blank first line the error.
    BlankStart,
    /// Between items: reading an item's header line (or a blank line, skipped).
    ItemHeader,
    /// Reading a payload.
    Payload(Current),
    /// A sized payload has been read: a newline (`\n` or `\r\n`) or the end must follow;
    /// `cr` once the `\r` of a `\r\n` has been seen.
    AfterPayload { item: Current, cr: bool },
}

/// The incremental envelope reader.
#[derive(Debug)]
pub(crate) struct Scanner {
    limits: Limits,
    /// Which item types to keep the payload of; the others' are skipped as they stream by.
    keep: fn(&str) -> bool,
    state: State,
    /// The header line being read, without its newline.
    line: Vec<u8>,
    header: Option<Map<String, Value>>,
    items: Vec<Item>,
    /// Items seen, kept or not.
    count: usize,
    /// Bytes fed.
    total: usize,
    /// Payload bytes kept.
    kept: usize,
}

impl Scanner {
    /// A scanner that keeps the payloads of the item types `keep` chooses.
    pub(crate) fn new(limits: Limits, keep: fn(&str) -> bool) -> Scanner {
        Scanner {
            limits,
            keep,
            state: State::EnvelopeHeader,
            line: Vec::new(),
            header: None,
            items: Vec::new(),
            count: 0,
            total: 0,
            kept: 0,
        }
    }

    /// Reads the next piece of the envelope.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), ScanError> {
        self.total = self.total.saturating_add(bytes.len());
        if self.total > self.limits.envelope {
            return Err(ScanError::TooLarge(format!(
                "the envelope is larger than {} after decompression",
                size(self.limits.envelope)
            )));
        }
        while !bytes.is_empty() {
            let used = self.step(bytes)?;
            bytes = &bytes[used..];
        }
        Ok(())
    }

    /// The end of the body: the envelope, or what is wrong with its end.
    pub(crate) fn finish(mut self) -> Result<Envelope, ScanError> {
        let state = std::mem::replace(&mut self.state, State::ItemHeader);
        match state {
            State::EnvelopeHeader if is_blank(&self.line) => return Err(empty().into()),
            State::EnvelopeHeader => self.header = Some(json_object(&self.line, ENVELOPE_HEADER)?),
            State::BlankStart => return Err(empty().into()),
            // A header line at the very end has an empty payload.
            State::ItemHeader => {
                self.end_item_header()?;
                self.finish_payload()?;
            }
            other => {
                self.state = other;
                self.finish_payload()?;
            }
        }
        Ok(Envelope {
            header: self.header.unwrap_or_default(),
            items: self.items,
        })
    }

    /// A payload cut by the end of the body.
    fn finish_payload(&mut self) -> Result<(), ScanError> {
        match std::mem::replace(&mut self.state, State::ItemHeader) {
            State::Payload(item) => match item.length {
                Some(len) => Err(err(format!(
                    "item {} ({}): 'length' is {len} but only {} bytes follow",
                    item.n, item.ty, item.read
                ))
                .into()),
                None => {
                    self.end_item(item);
                    Ok(())
                }
            },
            State::AfterPayload { item, cr: false } => {
                self.end_item(item);
                Ok(())
            }
            State::AfterPayload { item, cr: true } => Err(longer(&item)),
            _ => Ok(()),
        }
    }

    /// Reads from the start of `bytes` (never empty) in the current state; answers how
    /// many bytes it used. Each state's step sets the next state (the current one is taken
    /// out, so that a step owns its item).
    fn step(&mut self, bytes: &[u8]) -> Result<usize, ScanError> {
        match std::mem::replace(&mut self.state, State::ItemHeader) {
            State::EnvelopeHeader => self.step_envelope_header(bytes),
            State::BlankStart => self.step_blank_start(bytes),
            State::ItemHeader => self.step_item_header(bytes),
            State::Payload(item) => self.step_payload(item, bytes),
            State::AfterPayload { item, cr } => self.step_after_payload(item, cr, bytes),
        }
    }

    /// The first line: the envelope header, or a blank line.
    fn step_envelope_header(&mut self, bytes: &[u8]) -> Result<usize, ScanError> {
        self.state = State::EnvelopeHeader;
        let (used, ended) = self.take_line(bytes, || ENVELOPE_HEADER.to_owned())?;
        if ended {
            if is_blank(&self.line) {
                self.state = State::BlankStart;
            } else {
                self.header = Some(json_object(&self.line, ENVELOPE_HEADER)?);
                self.line.clear();
                self.state = State::ItemHeader;
            }
        }
        Ok(used)
    }

    /// After a blank first line: only whitespace may follow.
    fn step_blank_start(&mut self, bytes: &[u8]) -> Result<usize, ScanError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            self.state = State::BlankStart;
            return Ok(bytes.len());
        }
        Err(json_object(&self.line, ENVELOPE_HEADER)
            .err()
            .unwrap_or_else(empty)
            .into())
    }

    /// An item's header line (or a blank line between items).
    fn step_item_header(&mut self, bytes: &[u8]) -> Result<usize, ScanError> {
        let n = self.count + 1;
        let (used, ended) = self.take_line(bytes, || format!("the header of item {n}"))?;
        if ended {
            self.end_item_header()?;
        }
        Ok(used)
    }

    /// A payload's bytes: up to its `length`, or, unsized, up to the next newline.
    fn step_payload(&mut self, mut item: Current, bytes: &[u8]) -> Result<usize, ScanError> {
        let (used, ended) = match item.length {
            Some(len) => {
                let take = (len - item.read).min(bytes.len());
                (take, item.read + take == len)
            }
            None => match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (bytes.len(), false),
            },
        };
        // An unsized payload's newline is not part of it.
        let data = &bytes[..used - usize::from(ended && item.length.is_none())];
        self.keep_bytes(&mut item, data)?;
        item.read += data.len();
        self.state = match (ended, item.length) {
            (false, _) => State::Payload(item),
            (true, Some(_)) => State::AfterPayload { item, cr: false },
            (true, None) => {
                self.end_item(item);
                State::ItemHeader
            }
        };
        Ok(used)
    }

    /// After a sized payload: its newline (`\n` or `\r\n`).
    fn step_after_payload(
        &mut self,
        item: Current,
        cr: bool,
        bytes: &[u8],
    ) -> Result<usize, ScanError> {
        match bytes[0] {
            b'\n' => {
                self.end_item(item);
                Ok(1)
            }
            b'\r' if !cr => {
                self.state = State::AfterPayload { item, cr: true };
                Ok(1)
            }
            _ => Err(longer(&item)),
        }
    }

    /// Adds `bytes` up to a newline to the header line; answers how many bytes it used and
    /// whether the line ended.
    fn take_line(
        &mut self,
        bytes: &[u8],
        what: impl Fn() -> String,
    ) -> Result<(usize, bool), ScanError> {
        let (data, used, ended) = match bytes.iter().position(|b| *b == b'\n') {
            Some(i) => (&bytes[..i], i + 1, true),
            None => (bytes, bytes.len(), false),
        };
        if self.line.len() + data.len() > self.limits.line {
            return Err(ScanError::TooLarge(format!(
                "{} is larger than {}",
                what(),
                size(self.limits.line)
            )));
        }
        self.line.extend_from_slice(data);
        Ok((used, ended))
    }

    /// The item header line has been read: starts its payload (a blank line is skipped).
    fn end_item_header(&mut self) -> Result<(), ScanError> {
        if is_blank(&self.line) {
            self.line.clear();
            self.state = State::ItemHeader;
            return Ok(());
        }
        let n = self.count + 1;
        let header = ItemHeader::parse(&self.line, n)?;
        self.line.clear();
        self.count = n;
        let keep = (self.keep)(&header.ty);
        let item = Current {
            n,
            kept: keep
                .then(|| BytesMut::with_capacity(header.length.unwrap_or(0).min(MAX_RESERVE))),
            ty: header.ty,
            length: header.length,
            read: 0,
        };
        // A kept payload that says it is too large is refused before it is read.
        if keep && let Some(len) = item.length {
            self.check_kept(&item, len)?;
        }
        self.state = match item.length {
            Some(0) => State::AfterPayload { item, cr: false },
            _ => State::Payload(item),
        };
        Ok(())
    }

    /// Keeps `bytes` of `item`'s payload when it is kept.
    fn keep_bytes(&mut self, item: &mut Current, bytes: &[u8]) -> Result<(), ScanError> {
        if item.kept.is_none() || bytes.is_empty() {
            return Ok(());
        }
        // A sized payload was checked whole when its header was read.
        if item.length.is_none() {
            self.check_kept(item, item.read + bytes.len())?;
        }
        self.kept += bytes.len();
        if let Some(buf) = item.kept.as_mut() {
            buf.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Refuses a kept payload of `len` bytes over a limit (`self.kept` does not count it yet).
    fn check_kept(&self, item: &Current, len: usize) -> Result<(), ScanError> {
        if len > self.limits.item {
            return Err(ScanError::TooLarge(format!(
                "envelope item {} ({}) is larger than {}",
                item.n,
                item.ty,
                size(self.limits.item)
            )));
        }
        let before = self.kept - item.read;
        if before.saturating_add(len) > self.limits.kept {
            return Err(ScanError::TooLarge(format!(
                "envelope item {} ({}): the envelope's {} items together are larger than {}",
                item.n,
                item.ty,
                item.ty,
                size(self.limits.kept)
            )));
        }
        Ok(())
    }

    /// The item's payload is complete.
    fn end_item(&mut self, item: Current) {
        if let Some(payload) = item.kept {
            self.items.push(Item {
                n: item.n,
                ty: item.ty,
                payload: payload.freeze(),
            });
        }
    }
}

/// A sized payload followed by something other than a newline.
fn longer(item: &Current) -> ScanError {
    err(format!(
        "item {} ({}): the payload is longer than its 'length' of {}",
        item.n,
        item.ty,
        item.length.unwrap_or(0)
    ))
    .into()
}

/// Parses a whole envelope body, keeping every item: the [`Scanner`] fed in one piece
/// (the tests' reference for a body fed in pieces).
#[cfg(test)]
pub(crate) fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
    let mut scanner = Scanner::new(Limits::NONE, |_| true);
    let scanned = scanner.feed(body).and_then(|()| scanner.finish());
    scanned.map_err(|e| match e {
        ScanError::Malformed(e) => e,
        // Without limits nothing is too large.
        ScanError::TooLarge(msg) => err(msg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// What an envelope holds, comparably.
    type Summary = (Map<String, Value>, Vec<(usize, String, Vec<u8>)>);

    fn summary(e: Envelope) -> Summary {
        let items = e
            .items
            .into_iter()
            .map(|i| (i.n, i.ty, i.payload.to_vec()))
            .collect();
        (e.header, items)
    }

    fn scan(
        pieces: &[&[u8]],
        limits: Limits,
        keep: fn(&str) -> bool,
    ) -> Result<Summary, ScanError> {
        let mut s = Scanner::new(limits, keep);
        for p in pieces {
            s.feed(p)?;
        }
        s.finish().map(summary)
    }

    fn whole(body: &[u8]) -> Result<Summary, ScanError> {
        parse(body).map(summary).map_err(ScanError::from)
    }

    /// Bodies good and bad: every rule of the format, and every way an item can end.
    fn corpus() -> Vec<Vec<u8>> {
        let bodies: &[&[u8]] = &[
            b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
              {\"type\":\"attachment\",\"length\":10}\n\xef\xbb\xbfHello\r\n\n\
              {\"type\":\"event\"}\n{\"message\":\"hi\"}\n",
            b"{}\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"session\"}\n",
            b"{}\n{\"type\":\"event\",\"length\":2}\n{}",
            b"{}\n{\"type\":\"event\"}\n{\"message\":\"last\"}",
            b"{}",
            b"{}\n",
            b"{}\r\n\r\n{\"type\":\"event\",\"length\":5}\r\n{\n}\n\r\n\n\n",
            b"{}\n{\"type\":\"event\",\"length\":3}\nabc\r\n{\"type\":\"session\"}",
            b"{}\n{\"type\":\"attachment\"}",
            b"{}\n{\"type\":\"attachment\",\"length\":0}",
            b"{}\n{\"type\":\"attachment\",\"length\":4}\nab",
            b"{}\n{\"type\":\"event\",\"length\":2}\n{}\r",
            b"{}\n{\"type\":\"event\",\"length\":2}\n{}\rx",
            b"{}\n{\"type\":\"event\",\"length\":2}\n{}\r\r\n",
            b"",
            b"  \n\t\n  ",
            b"\n{}",
            b"   \n\n  x",
            b"\x0c\n{}",
            b"not json\n",
            b"[1]\n",
            b"{}\n{\"length\":2}\n{}\n",
            b"{}\n{\"type\":\"event\"}\n{}\n{oops\n",
            b"{}\n{\"type\":\"event\",\"length\":50}\n{}\n",
            b"{}\n{\"type\":\"event\",\"length\":1}\n{}\n",
            b"{}\n{\"type\":\"event\",\"length\":\"2\"}\n{}\n",
            b"{}\n{\"type\":\"event\",\"length\":-1}\n{}\n",
            b"{}\n{\"type\":7}\n{}\n",
            b"{}\n{\"type\":\"session\"}\n{}\n{\"type\":\"event\"}\n{\"platform\":\"python\"}\n",
        ];
        bodies.iter().map(|b| b.to_vec()).collect()
    }

    #[test]
    fn any_split_gives_what_the_whole_body_gives() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for body in corpus() {
            let want = whole(&body);
            let name = String::from_utf8_lossy(&body).into_owned();
            // In two pieces, at every boundary.
            for at in 0..=body.len() {
                let (a, b) = body.split_at(at);
                assert_eq!(
                    scan(&[a, b], Limits::NONE, |_| true),
                    want,
                    "{name:?} split at {at}"
                );
            }
            // Byte by byte.
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(
                scan(&bytes, Limits::NONE, |_| true),
                want,
                "{name:?} byte by byte"
            );
            // In random pieces, empty ones too.
            for _ in 0..50 {
                let mut pieces = Vec::new();
                let mut rest = &body[..];
                while !rest.is_empty() {
                    let (p, r) = rest.split_at(rng.random_range(0..=rest.len().min(9)));
                    pieces.push(p);
                    rest = r;
                }
                assert_eq!(
                    scan(&pieces, Limits::NONE, |_| true),
                    want,
                    "{name:?} {pieces:?}"
                );
            }
        }
    }

    #[test]
    fn skipped_items_keep_their_numbers_and_leave_nothing() {
        for body in corpus() {
            let want = whole(&body).map(|(h, items)| {
                let events = items.into_iter().filter(|i| i.1 == "event").collect();
                (h, events)
            });
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(
                scan(&bytes, Limits::NONE, |ty| ty == "event"),
                want,
                "{:?}",
                String::from_utf8_lossy(&body)
            );
        }
        let (_, items) =
            whole(b"{}\n{\"type\":\"session\"}\n{}\n{\"type\":\"event\"}\n{}\n").unwrap();
        assert_eq!(items[1].0, 2);
    }

    const SMALL: Limits = Limits {
        envelope: 2000,
        item: 16,
        line: 40,
        kept: 24,
    };

    fn too_large(body: &[u8]) -> String {
        let bytes: Vec<&[u8]> = body.chunks(3).collect();
        match scan(&bytes, SMALL, |ty| ty == "event") {
            Err(ScanError::TooLarge(msg)) => msg,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn large_items_that_are_not_kept_stream_by() {
        let big = "x".repeat(500);
        let body = format!(
            "{{}}\n{{\"type\":\"attachment\",\"length\":500}}\n{big}\n\
             {{\"type\":\"event\"}}\n{{\"a\":1}}\n{{\"type\":\"log\"}}\n{big}\n"
        );
        let (_, items) = scan(&[body.as_bytes()], SMALL, |ty| ty == "event").unwrap();
        assert_eq!(items, [(2, "event".to_owned(), b"{\"a\":1}".to_vec())]);
    }

    #[test]
    fn limits_name_what_is_too_large() {
        assert_eq!(
            too_large(b"{}\n{\"type\":\"session\"}\n{}\n{\"type\":\"event\",\"length\":17}\n"),
            "envelope item 2 (event) is larger than 16 bytes"
        );
        assert_eq!(
            too_large(b"{}\n{\"type\":\"event\"}\n{\"message\":\"seventeen\"}\n"),
            "envelope item 1 (event) is larger than 16 bytes"
        );
        assert_eq!(
            too_large(
                b"{}\n{\"type\":\"event\"}\n0123456789\n{\"type\":\"event\",\"length\":15}\n"
            ),
            "envelope item 2 (event): the envelope's event items together are larger than 24 bytes"
        );
        assert_eq!(
            too_large(
                b"{}\n{\"type\":\"event\"}\n0123456789\n{\"type\":\"event\"}\n0123456789abcdef\n"
            ),
            "envelope item 2 (event): the envelope's event items together are larger than 24 bytes"
        );
        assert_eq!(
            too_large(b"{\"dsn\":\"0123456789abcdef0123456789abcdef\"}\n"),
            "the envelope header (first line) is larger than 40 bytes"
        );
        assert_eq!(
            too_large(b"{}\n{\"type\":\"attachment\",\"filename\":\"ab.txt\"}\n"),
            "the header of item 1 is larger than 40 bytes"
        );
        assert_eq!(
            too_large(&[b"{}\n{\"type\":\"log\"}\n".as_slice(), &[b'x'; 2000]].concat()),
            "the envelope is larger than 2000 bytes after decompression"
        );
        assert_eq!(size(1 << 20), "1 MiB (1048576 bytes)");
        assert_eq!(size(100 << 20), "100 MiB (104857600 bytes)");
    }
}

/// The envelope format's rules, read through [`parse`].
#[cfg(test)]
mod format {
    use super::*;
    use crate::sentry::envelope::*;

    fn types(e: &Envelope) -> Vec<(String, String)> {
        e.items
            .iter()
            .map(|i| {
                (
                    i.ty.clone(),
                    String::from_utf8_lossy(&i.payload).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn items_with_and_without_length() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
            {\"type\":\"attachment\",\"length\":10}\n\xef\xbb\xbfHello\r\n\n\
            {\"type\":\"event\"}\n{\"message\":\"hi\"}\n";
        let e = parse(body).unwrap();
        assert_eq!(e.header["event_id"], "9ec79c33ec9942ab8353589fcb2e04dc");
        assert_eq!(e.items.len(), 2);
        assert_eq!(e.items[0].ty, "attachment");
        assert_eq!(e.items[0].payload[..], b"\xef\xbb\xbfHello\r\n"[..]);
        assert_eq!(e.items[1].ty, "event");
        assert_eq!(e.items[1].payload[..], b"{\"message\":\"hi\"}"[..]);
    }

    #[test]
    fn empty_payloads_and_no_trailing_newline() {
        let e = parse(b"{}\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"session\"}\n")
            .unwrap();
        assert_eq!(types(&e), pairs(&[("attachment", ""), ("session", "")]));
        let e = parse(b"{}\n{\"type\":\"event\",\"length\":2}\n{}").unwrap();
        assert_eq!(types(&e), pairs(&[("event", "{}")]));
        let e = parse(b"{}\n{\"type\":\"event\"}\n{\"message\":\"last\"}").unwrap();
        assert_eq!(types(&e), pairs(&[("event", "{\"message\":\"last\"}")]));
        let e = parse(b"{}").unwrap();
        assert!(e.items.is_empty());
        let e = parse(b"{}\n").unwrap();
        assert!(e.items.is_empty());
    }

    #[test]
    fn a_sized_payload_may_hold_newlines() {
        let e = parse(b"{}\n{\"type\":\"event\",\"length\":5}\n{\n}\n\n").unwrap();
        assert_eq!(e.items[0].payload[..], b"{\n}\n\n"[..5]);
    }

    #[test]
    fn malformed_envelopes_say_what_is_wrong() {
        let msg = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert_eq!(
            msg(b""),
            "malformed envelope: the body is empty; an envelope starts with a JSON header line"
        );
        assert!(
            msg(b"not json\n").starts_with(
                "malformed envelope: the envelope header (first line) is not valid JSON"
            )
        );
        assert_eq!(
            msg(b"[1]\n"),
            "malformed envelope: the envelope header (first line) must be a JSON object"
        );
        assert_eq!(
            msg(b"{}\n{\"length\":2}\n{}\n"),
            "malformed envelope: item 1: the item header has no 'type'"
        );
        assert!(
            msg(b"{}\n{\"type\":\"event\"}\n{}\n{oops\n")
                .starts_with("malformed envelope: the header of item 2 is not valid JSON")
        );
        assert_eq!(
            msg(b"{}\n{\"type\":\"event\",\"length\":50}\n{}\n"),
            "malformed envelope: item 1 (event): 'length' is 50 but only 3 bytes follow"
        );
        assert_eq!(
            msg(b"{}\n{\"type\":\"event\",\"length\":1}\n{}\n"),
            "malformed envelope: item 1 (event): the payload is longer than its 'length' of 1"
        );
        assert_eq!(
            msg(b"{}\n{\"type\":\"event\",\"length\":\"2\"}\n{}\n"),
            "malformed envelope: item 1: 'length' must be a number"
        );
        assert_eq!(
            msg(b"{}\n{\"type\":\"event\",\"length\":-1}\n{}\n"),
            "malformed envelope: item 1: 'length' must be a whole number ≥ 0"
        );
        assert_eq!(
            msg(b"{}\n{\"type\":7}\n{}\n"),
            "malformed envelope: item 1: 'type' must be a non-empty string"
        );
    }
}
