//! An event as stored and read back, and the views of it the APIs and the stream send.

use super::{Level, Millis, RawJson};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A stored event as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Owning project.
    pub project_id: i64,
    /// Per-project sequence number.
    pub seq: i64,
    /// Its issue.
    pub issue_id: i64,
    /// Event id.
    pub id: String,
    /// Level.
    pub level: Level,
    /// Message, if any.
    pub message: Option<String>,
    /// Environment.
    pub environment: String,
    /// Release, if any.
    pub release: Option<String>,
    /// Event time (the client's, or when received).
    pub timestamp: Millis,
    /// When the server received it (for retention and the ingest-to-delivery latency).
    pub received: Millis,
    /// Title (as an issue title would be).
    pub title: String,
    /// Culprit.
    pub culprit: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Exception, stack trace, breadcrumbs, user, sdk, extra, fingerprint (a JSON object).
    pub detail: DetailJson,
}

/// An event's detail as its JSON object's text: written once when the event is stored and
/// bound as is, never built into a `Value` tree on the ingest path (measured: building
/// and re-serializing the tree was a tenth of ingesting a Sentry SDK event). Parsed only
/// where it is listed.
#[derive(Clone, Debug, PartialEq)]
pub struct DetailJson(RawJson);

impl DetailJson {
    /// The detail of a value that serializes to a JSON object.
    pub fn of<T: Serialize + ?Sized>(detail: &T) -> Result<DetailJson, serde_json::Error> {
        serde_json::value::to_raw_value(detail).map(|raw| DetailJson(RawJson::from_raw(raw)))
    }

    /// Stored text, checked to be JSON (a non-object reads as an empty object).
    pub fn from_text(text: String) -> Result<DetailJson, serde_json::Error> {
        RawValue::from_string(text).map(|raw| DetailJson(RawJson::from_raw(raw)))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The object (empty if the text is not an object).
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl Default for DetailJson {
    fn default() -> DetailJson {
        DetailJson::from_text("{}".to_owned()).expect("{} is JSON")
    }
}

/// An event's stored bytes as received, as JSON text kept as it is (numbers keep every
/// digit they were sent with). Bytes that are not UTF-8 (a skipped field may hold some)
/// read with U+FFFD in their place.
pub fn received_json(bytes: Vec<u8>) -> Result<Box<RawValue>, serde_json::Error> {
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    RawValue::from_string(text)
}

/// The stream's `event` object (SPEC §4).
#[derive(Serialize)]
pub struct EventSummary<'a> {
    id: &'a str,
    level: Level,
    message: Option<&'a str>,
    environment: &'a str,
    release: Option<&'a str>,
    timestamp: Millis,
    title: &'a str,
    culprit: &'a str,
    tags: &'a BTreeMap<String, String>,
}

/// A listed event: the stream's object plus `seq`, `issue_id` and the stored detail.
#[derive(Serialize)]
pub struct ListedEvent<'a> {
    seq: i64,
    issue_id: i64,
    #[serde(flatten)]
    summary: EventSummary<'a>,
    #[serde(flatten)]
    detail: Map<String, Value>,
}

impl StoredEvent {
    /// The stream's `event` object.
    pub fn summary(&self) -> EventSummary<'_> {
        EventSummary {
            id: &self.id,
            level: self.level,
            message: self.message.as_deref(),
            environment: &self.environment,
            release: self.release.as_deref(),
            timestamp: self.timestamp,
            title: &self.title,
            culprit: &self.culprit,
            tags: &self.tags,
        }
    }

    /// The object the events APIs list.
    pub fn listed(&self) -> ListedEvent<'_> {
        ListedEvent {
            seq: self.seq,
            issue_id: self.issue_id,
            summary: self.summary(),
            detail: self.detail.to_map(),
        }
    }
}

/// How an issue's events spread over one tag's values (SPEC §3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagBreakdown {
    /// The tag (or `environment`, `release`).
    pub key: String,
    /// Events that carry it.
    pub total: i64,
    /// The most frequent values, most frequent first (ties by value).
    pub values: Vec<TagValue>,
}

/// One value of a tag and how many events carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagValue {
    /// The value.
    pub value: String,
    /// Events with it.
    pub count: i64,
}

/// Most values listed per tag.
pub const TOP_TAG_VALUES: usize = 10;

/// Where a page of an issue's events starts: how the issue view steps to older and newer
/// events without counting offsets (a seek on `events_by_issue`, however many events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventPage {
    /// The newest events, newest first.
    Newest,
    /// Events with a seq below this one, newest first.
    Before(i64),
    /// Events with a seq above this one, oldest first (the next newer ones).
    After(i64),
}
