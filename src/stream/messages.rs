//! Server → client stream messages, encoded once into shared bytes (SPEC §4).

use super::protocol::ServerMessage;
use crate::bus::DomainMessage;
use crate::model::{Level, Millis};
use crate::store::StoredEvent;
use crate::ws::codec;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One encoded message: a whole WebSocket text frame (header and JSON), shared by every
/// subscriber that gets it. Server frames are not masked, so the bytes are the same for all.
#[derive(Debug)]
pub struct WireFrame {
    /// The frame as it goes on the wire.
    pub wire: Bytes,
    /// Where the JSON starts in `wire`.
    header: u8,
    /// For `event` messages, the event's seq (replay skips what it already sent).
    pub seq: Option<i64>,
    /// For `event` messages, when the server received the event (ingest-to-delivery latency).
    pub received: Option<Millis>,
}

impl WireFrame {
    /// Encodes `v` once.
    pub fn json(v: &Value, seq: Option<i64>) -> WireFrame {
        WireFrame::encode(v, seq)
    }

    /// Encodes any serializable message once, without building a `Value` tree first.
    pub fn encode<T: serde::Serialize + ?Sized>(v: &T, seq: Option<i64>) -> WireFrame {
        let text = serde_json::to_string(v).expect("stream messages serialize");
        WireFrame {
            header: codec::header_len(text.len()) as u8,
            wire: codec::text(&text),
            seq,
            received: None,
        }
    }

    /// The JSON text.
    pub fn text(&self) -> &[u8] {
        &self.wire[usize::from(self.header)..]
    }
}

/// The filter-relevant fields of an event message.
#[derive(Debug, Clone)]
pub struct EventFields {
    /// Level.
    pub level: Level,
    /// Environment.
    pub environment: String,
    /// Release.
    pub release: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// `{"type":"event",...}` for a stored event.
pub(crate) fn event_frame(e: &StoredEvent) -> WireFrame {
    /// `{"type":"event","seq":…,"issue_id":…,"event":{…}}`, in that order.
    #[derive(serde::Serialize)]
    struct EventMessage<'a> {
        r#type: &'static str,
        seq: i64,
        issue_id: i64,
        event: crate::store::EventSummary<'a>,
    }
    WireFrame {
        received: Some(e.received),
        ..WireFrame::encode(
            &EventMessage {
                r#type: "event",
                seq: e.seq,
                issue_id: e.issue_id,
                event: e.summary(),
            },
            Some(e.seq),
        )
    }
}

/// The frame for a domain message (counts are coalesced elsewhere and encoded with
/// [`count_frame`]).
pub(crate) fn domain_frame(msg: &DomainMessage) -> WireFrame {
    match msg {
        DomainMessage::EventStored(e) => event_frame(e),
        DomainMessage::IssueChanged { action, issue, .. } => WireFrame::json(
            &json!({ "type": "issue", "action": action, "issue": issue }),
            None,
        ),
        DomainMessage::IssuesMerged { issue, merged, .. } => WireFrame::json(
            &json!({ "type": "issue", "action": "merged", "issue": issue, "merged": merged }),
            None,
        ),
        DomainMessage::CountChanged { project_id, count } => count_frame(*project_id, *count),
    }
}

/// `{"type":"issue_count",...}`.
pub(crate) fn count_frame(project_id: i64, count: i64) -> WireFrame {
    WireFrame::encode(&ServerMessage::IssueCount { project_id, count }, None)
}

/// `{"type":"lagged","dropped":N}`.
pub(crate) fn lagged(dropped: u64) -> WireFrame {
    WireFrame::encode(&ServerMessage::Lagged { dropped }, None)
}
