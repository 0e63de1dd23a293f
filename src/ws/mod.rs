//! The WebSocket protocol for the live stream: the opening handshake and framing.
//! The stream's connections speak it directly over the upgraded socket, so that a
//! broadcast is framed once and its bytes written to every subscriber.

pub(crate) mod codec;
pub(crate) mod handshake;

/// The longest a WebSocket's closing frame may take to write at shutdown.
pub(crate) const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
