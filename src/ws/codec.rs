//! RFC 6455 framing for the server side of the live stream. Pure: bytes in, bytes out.
//!
//! Written here rather than taken from a WebSocket crate because of what the fan-out
//! measured (docs/benchmarks-history.md, issue 11): framing each broadcast once, as shared
//! bytes written to every subscriber, needs the whole frame (header + payload) as one value,
//! and the crates
//! we tried (tungstenite through axum, fastwebsockets) frame per connection and keep an
//! 8–128 KiB read buffer per connection. Server → client frames are never masked, so one
//! encoding serves every subscriber; client → server frames are small and always masked.

use bytes::{BufMut, Bytes, BytesMut};

/// Opcode of a text frame.
pub(crate) const TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub(crate) const BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub(crate) const CLOSE: u8 = 0x8;
/// Opcode of a ping.
pub(crate) const PING: u8 = 0x9;
/// Opcode of a pong.
pub(crate) const PONG: u8 = 0xA;

/// Close code: normal closure.
pub(crate) const CLOSE_NORMAL: u16 = 1000;
/// Close code: the server is going away (shutdown).
pub(crate) const CLOSE_AWAY: u16 = 1001;
/// Close code: protocol error.
pub(crate) const CLOSE_PROTOCOL: u16 = 1002;
/// Close code: a text message that is not UTF-8.
pub(crate) const CLOSE_INVALID: u16 = 1007;
/// Close code: a message over the size limit.
pub(crate) const CLOSE_SIZE: u16 = 1009;

/// Longest header of an unmasked server frame (2 + 8 bytes of length).
const MAX_HEADER: usize = 10;

/// A whole unmasked server frame (FIN set) carrying `payload`.
pub(crate) fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(MAX_HEADER + payload.len());
    out.put_u8(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(payload);
    out.freeze()
}

/// The length of the header [`encode`] puts before a payload of `len` bytes.
pub(crate) fn header_len(len: usize) -> usize {
    match len {
        n if n < 126 => 2,
        n if n <= usize::from(u16::MAX) => 4,
        _ => MAX_HEADER,
    }
}

/// A text frame.
pub(crate) fn text(payload: &str) -> Bytes {
    encode(TEXT, payload.as_bytes())
}

/// A close frame with a code and a reason (at most 123 bytes of it are sent).
pub(crate) fn close(code: u16, reason: &str) -> Bytes {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Vec::with_capacity(2 + cut);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    encode(CLOSE, &payload)
}

/// One message from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClientMessage {
    /// A text message, valid UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping, to be answered with a pong carrying the same payload.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// A close frame, with its code when it had one.
    Close(Option<u16>),
}

/// Why the client's bytes end the connection, and with which close code.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProtocolError {
    /// RFC 6455 §5: masking, reserved bits, opcodes, control frames, continuation order.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A text message that is not UTF-8.
    #[error("text frame is not valid UTF-8")]
    InvalidUtf8,
    /// A message larger than the limit.
    #[error("message too large")]
    TooLarge,
}

impl ProtocolError {
    /// The close code that tells the client.
    pub(crate) fn close_code(&self) -> u16 {
        match self {
            ProtocolError::Protocol(_) => CLOSE_PROTOCOL,
            ProtocolError::InvalidUtf8 => CLOSE_INVALID,
            ProtocolError::TooLarge => CLOSE_SIZE,
        }
    }
}

/// Cuts client frames out of the bytes read, reassembling fragmented messages.
///
/// Holds no buffer until the client sends something, and gives back large ones after a
/// message: an idle stream connection costs a few dozen bytes here.
#[derive(Debug)]
pub(crate) struct Decoder {
    buf: Vec<u8>,
    /// A fragmented data message in progress: its opcode and the payload so far.
    partial: Option<(u8, Vec<u8>)>,
    max_message: usize,
}

/// Buffers above this size are released once empty.
const KEEP_CAPACITY: usize = 4096;

impl Decoder {
    /// A decoder refusing messages over `max_message` bytes.
    pub(crate) fn new(max_message: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            partial: None,
            max_message,
        }
    }

    /// Appends bytes read from the socket.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    pub(crate) fn next_message(&mut self) -> Result<Option<ClientMessage>, ProtocolError> {
        loop {
            let Some((fin, opcode, payload)) = self.frame()? else {
                if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
                    self.buf = Vec::new();
                }
                return Ok(None);
            };
            match opcode {
                CLOSE => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    if payload.len() == 1 {
                        return Err(ProtocolError::Protocol(
                            "a close frame's payload of one byte",
                        ));
                    }
                    if payload.len() > 2 && std::str::from_utf8(&payload[2..]).is_err() {
                        return Err(ProtocolError::InvalidUtf8);
                    }
                    return Ok(Some(ClientMessage::Close(code)));
                }
                PING => return Ok(Some(ClientMessage::Ping(payload))),
                PONG => return Ok(Some(ClientMessage::Pong)),
                TEXT | BINARY => {
                    if self.partial.is_some() {
                        return Err(ProtocolError::Protocol(
                            "a new message began before the fragmented one ended",
                        ));
                    }
                    if fin {
                        return finish(opcode, payload).map(Some);
                    }
                    self.partial = Some((opcode, payload));
                }
                0x0 => {
                    let Some((first, mut so_far)) = self.partial.take() else {
                        return Err(ProtocolError::Protocol(
                            "a continuation frame without a message",
                        ));
                    };
                    so_far.extend_from_slice(&payload);
                    if fin {
                        return finish(first, so_far).map(Some);
                    }
                    self.partial = Some((first, so_far));
                }
                _ => return Err(ProtocolError::Protocol("unknown opcode")),
            }
        }
    }

    /// The next frame, unmasked: (FIN, opcode, payload).
    fn frame(&mut self) -> Result<Option<(bool, u8, Vec<u8>)>, ProtocolError> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, opcode) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
        let (masked, len7) = (b[1] & 0x80 != 0, b[1] & 0x7F);
        if rsv != 0 {
            return Err(ProtocolError::Protocol(
                "reserved bits set (no extension was agreed)",
            ));
        }
        if !masked {
            return Err(ProtocolError::Protocol("client frames must be masked"));
        }
        let control = opcode & 0x8 != 0;
        if control && (!fin || len7 > 125) {
            return Err(ProtocolError::Protocol(
                "control frames must be whole and at most 125 bytes",
            ));
        }
        let (len, at) = match len7 {
            126 if b.len() < 4 => return Ok(None),
            126 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() < 10 => return Ok(None),
            127 => (
                u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")),
                10,
            ),
            n => (u64::from(n), 2),
        };
        let so_far = self.partial.as_ref().map_or(0, |(_, p)| p.len()) as u64;
        // Refused before its payload is buffered: memory stays bounded by the limit.
        if !control && len.saturating_add(so_far) > self.max_message as u64 {
            return Err(ProtocolError::TooLarge);
        }
        let len = len as usize;
        if b.len() < at + 4 + len {
            return Ok(None);
        }
        let mask: [u8; 4] = b[at..at + 4].try_into().expect("4 bytes");
        let start = at + 4;
        let payload: Vec<u8> = b[start..start + len]
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i & 3])
            .collect();
        self.buf.drain(..start + len);
        Ok(Some((fin, opcode, payload)))
    }
}

fn finish(opcode: u8, payload: Vec<u8>) -> Result<ClientMessage, ProtocolError> {
    if opcode == TEXT {
        String::from_utf8(payload)
            .map(ClientMessage::Text)
            .map_err(|_| ProtocolError::InvalidUtf8)
    } else {
        Ok(ClientMessage::Binary(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser sends it.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    #[test]
    fn server_frames_have_the_three_header_sizes() {
        assert_eq!(&text("hi")[..], &[0x81, 2, b'h', b'i']);
        let mid = encode(TEXT, &[b'x'; 300]);
        assert_eq!(&mid[..4], &[0x81, 126, 1, 44]);
        assert_eq!(mid.len(), 304);
        assert_eq!(header_len(300), 4);
        let big = encode(BINARY, &vec![0; 70_000]);
        assert_eq!(&big[..2], &[0x82, 127]);
        assert_eq!(u64::from_be_bytes(big[2..10].try_into().unwrap()), 70_000);
        assert_eq!(header_len(70_000), 10);
        assert_eq!(
            &close(1001, "bye")[..],
            &[0x88, 5, 0x03, 0xE9, b'b', b'y', b'e']
        );
    }

    #[test]
    fn messages_are_decoded_whole_across_reads_and_fragments() {
        let mut d = Decoder::new(1024);
        let frame = masked(0x81, br#"{"type":"ping"}"#);
        d.extend(&frame[..3]);
        assert_eq!(
            d.next_message(),
            Ok(None),
            "half a frame waits for the rest"
        );
        d.extend(&frame[3..]);
        assert_eq!(
            d.next_message(),
            Ok(Some(ClientMessage::Text(r#"{"type":"ping"}"#.into())))
        );

        d.extend(&masked(0x01, b"hel"));
        d.extend(&masked(0x89, b"p")); // a ping between fragments is allowed
        d.extend(&masked(0x80, b"lo"));
        assert_eq!(
            d.next_message(),
            Ok(Some(ClientMessage::Ping(b"p".to_vec())))
        );
        assert_eq!(
            d.next_message(),
            Ok(Some(ClientMessage::Text("hello".into())))
        );
        d.extend(&masked(0x88, &[0x03, 0xE8]));
        assert_eq!(d.next_message(), Ok(Some(ClientMessage::Close(Some(1000)))));
        d.extend(&masked(0x8A, b""));
        assert_eq!(d.next_message(), Ok(Some(ClientMessage::Pong)));
        d.extend(&masked(0x82, &[1, 2]));
        assert_eq!(
            d.next_message(),
            Ok(Some(ClientMessage::Binary(vec![1, 2])))
        );
        let long = "y".repeat(1000);
        d.extend(&masked(0x81, long.as_bytes()));
        assert_eq!(d.next_message(), Ok(Some(ClientMessage::Text(long))));
    }

    #[test]
    fn bad_frames_get_their_close_codes() {
        let err = |bytes: Vec<u8>| {
            let mut d = Decoder::new(1024);
            d.extend(&bytes);
            d.next_message().unwrap_err().close_code()
        };
        assert_eq!(err(masked(0x81, &[b'{', 0xff, 0xfe, b'}'])), 1007);
        assert_eq!(err(masked(0x81, &[b'x'; 2000])), 1009);
        // The size is refused from the header alone, before the payload arrives.
        assert_eq!(err(masked(0x81, &[b'x'; 2000])[..4].to_vec()), 1009);
        let mut two = masked(0x01, &[b'x'; 600]);
        two.extend(masked(0x80, &[b'x'; 600]));
        assert_eq!(err(two), 1009, "the limit is on the whole message");
        assert_eq!(err(vec![0x81, 0x02, b'h', b'i']), 1002, "unmasked");
        assert_eq!(err(masked(0xC1, b"x")), 1002, "reserved bit");
        assert_eq!(err(masked(0x80, b"x")), 1002, "continuation of nothing");
        assert_eq!(err(masked(0x09, b"x")), 1002, "fragmented ping");
        assert_eq!(err(masked(0x83, b"x")), 1002, "unknown opcode");
        let mut interleaved = masked(0x01, b"a");
        interleaved.extend(masked(0x81, b"b"));
        assert_eq!(err(interleaved), 1002);
    }
}
