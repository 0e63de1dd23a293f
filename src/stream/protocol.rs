//! The stream's messages as types (SPEC §4): what a client may send, and what the server
//! sends besides events and issues (`stream::messages` frames those, once per broadcast).
//!
//! A client message is read as JSON first and its `type` checked by hand before it is
//! turned into a [`ClientRequest`]: the error a client gets names what it sent ("invalid
//! JSON: …", "unknown message type 'x'"), which serde's own errors for a tagged enum would
//! not.

use crate::ws::codec;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientRequest {
    /// `{"type":"ping"}`, answered with a pong message.
    Ping,
    /// `{"type":"subscribe","filters":{…}}`: replaces the connection's filters (absent or
    /// null filters accept everything).
    Subscribe {
        /// The filters as sent, validated by `Filters::from_json`.
        #[serde(default)]
        filters: Value,
    },
    /// `{"type":"auth","token":"…"}`: the token, when the upgrade carried none.
    Auth {
        /// The token, when it is a string.
        #[serde(default, deserialize_with = "string_or_none")]
        token: Option<String>,
    },
}

/// The types a client may send, as `type` spells them.
const KNOWN: [&str; 3] = ["ping", "subscribe", "auth"];

/// Any JSON value, kept only when it is a string.
fn string_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

impl ClientRequest {
    /// Reads a text message; `Err` holds the error text to send back.
    pub(crate) fn parse(text: &str) -> Result<ClientRequest, String> {
        let msg: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        match msg.get("type").and_then(Value::as_str) {
            None => Err("a message needs a string 'type': subscribe or ping".to_owned()),
            Some(t) if !KNOWN.contains(&t) => Err(format!(
                "unknown message type '{t}': expected subscribe or ping"
            )),
            // Every field of a known type has a default: this does not fail.
            Some(_) => serde_json::from_value(msg).map_err(|e| format!("invalid message: {e}")),
        }
    }
}

/// A message from the server that is not an event or an issue.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerMessage<'a> {
    /// The hello: the connection's id, its filters and the project's latest seq.
    Subscribed {
        /// The project watched.
        project_id: i64,
        /// The connection's id, as `X-Mesher-Origin` names it.
        conn_id: String,
        /// The filters in effect.
        filters: Value,
        /// The latest seq when the connection joined its room.
        seq: i64,
    },
    /// The answer to a subscribe: the filters now in effect.
    FiltersUpdated {
        /// The filters in effect.
        filters: Value,
    },
    /// The answer to a ping message.
    Pong,
    /// A client message that could not be used.
    Error {
        /// What was wrong with it.
        error: &'a str,
    },
    /// Messages were dropped from a full outbox before this one.
    Lagged {
        /// How many.
        dropped: u64,
    },
    /// A project's unresolved issue count.
    IssueCount {
        /// The project.
        project_id: i64,
        /// Its unresolved issues.
        count: i64,
    },
}

impl ServerMessage<'_> {
    /// The JSON text.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("stream messages serialize")
    }

    /// A whole WebSocket text frame carrying it.
    pub(crate) fn frame(&self) -> Bytes {
        codec::text(&self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_requests_are_read_by_type_with_extra_fields_ignored() {
        assert_eq!(
            ClientRequest::parse(r#"{"type":"ping","id":7}"#),
            Ok(ClientRequest::Ping)
        );
        assert_eq!(
            ClientRequest::parse(r#"{"type":"subscribe"}"#),
            Ok(ClientRequest::Subscribe {
                filters: Value::Null
            })
        );
        assert_eq!(
            ClientRequest::parse(r#"{"type":"subscribe","filters":{"level":"error"}}"#),
            Ok(ClientRequest::Subscribe {
                filters: json!({"level": "error"})
            })
        );
        assert_eq!(
            ClientRequest::parse(r#"{"type":"auth","token":5}"#),
            Ok(ClientRequest::Auth { token: None })
        );
        assert_eq!(
            ClientRequest::parse(r#"{"type":"auth","token":"t"}"#),
            Ok(ClientRequest::Auth {
                token: Some("t".into())
            })
        );
    }

    #[test]
    fn unusable_client_messages_get_texts_that_name_what_was_sent() {
        assert_eq!(
            ClientRequest::parse("{nope"),
            Err("invalid JSON: key must be a string at line 1 column 2".into())
        );
        assert_eq!(
            ClientRequest::parse(r#"{"type":3}"#),
            Err("a message needs a string 'type': subscribe or ping".into())
        );
        assert_eq!(
            ClientRequest::parse("[1]"),
            Err("a message needs a string 'type': subscribe or ping".into())
        );
        assert_eq!(
            ClientRequest::parse(r#"{"type":"dance"}"#),
            Err("unknown message type 'dance': expected subscribe or ping".into())
        );
    }

    #[test]
    fn server_messages_put_the_type_first_and_keep_field_order() {
        let hello = ServerMessage::Subscribed {
            project_id: 3,
            conn_id: "c1".into(),
            filters: json!({}),
            seq: 9,
        };
        assert_eq!(
            hello.to_json(),
            r#"{"type":"subscribed","project_id":3,"conn_id":"c1","filters":{},"seq":9}"#
        );
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(
            ServerMessage::Error { error: "no" }.to_json(),
            r#"{"type":"error","error":"no"}"#
        );
        assert_eq!(
            ServerMessage::Lagged { dropped: 2 }.to_json(),
            r#"{"type":"lagged","dropped":2}"#
        );
        assert_eq!(
            ServerMessage::IssueCount {
                project_id: 1,
                count: 4
            }
            .to_json(),
            r#"{"type":"issue_count","project_id":1,"count":4}"#
        );
        assert_eq!(
            ServerMessage::FiltersUpdated { filters: json!({}) }.to_json(),
            r#"{"type":"filters_updated","filters":{}}"#
        );
    }
}
