//! JavaScript frames mapped back to their sources (SPEC §10, "Mapping"): the pure parts
//! (`mapping`: one frame through a parsed map; `resolve`: which uploaded files to look
//! up; `event`: what an event sent) and the cache of parsed maps (`cache`); [`Mapper`]
//! ties them to the uploaded artifacts ([`ArtifactSource`], the store in the server).

pub(crate) mod cache;
pub mod event;
mod ingest;
pub(crate) mod mapping;
pub(crate) mod resolve;
mod store;

use cache::{Found, Key, MapCache};
use event::{SentEvent, SentFrame};
use mapping::{ParsedMap, ShownFrame};
use resolve::Lookup;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which uploaded file of a debug id is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// The minified file.
    MinifiedSource,
    /// Its source map.
    SourceMap,
}

/// An uploaded file, as mapping needs it.
#[derive(Clone, Debug, Default)]
pub struct Artifact {
    /// Its `~/` URL.
    pub url: String,
    /// Whether it is a source map (else minified code, or anything else).
    pub is_map: bool,
    /// Its debug id, when it has one.
    pub debug_id: Option<String>,
    /// The `Sourcemap` header of a minified file.
    pub sourcemap: Option<String>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Where uploaded files are read from (the store; a map in memory in unit tests).
pub trait ArtifactSource: Send + Sync + 'static {
    /// The file of `want` kind with `debug_id`.
    fn by_debug_id(
        &self,
        project: i64,
        debug_id: &str,
        want: Want,
    ) -> impl Future<Output = Result<Option<Artifact>, String>> + Send;
    /// The file uploaded as `url` in `release` (and `dist`).
    fn by_url(
        &self,
        project: i64,
        release: &str,
        dist: Option<&str>,
        url: &str,
    ) -> impl Future<Output = Result<Option<Artifact>, String>> + Send;
    /// When the project's files last changed; `None` when it has none.
    fn changed_at(&self, project: i64) -> impl Future<Output = Result<Option<i64>, String>> + Send;
}

/// The default bound of the parsed maps' cache (`--sourcemap-cache-mb`).
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// Most different maps one event's frames are looked up in: a bundle's frames share one,
/// and each new one may cost database reads (SPEC §8: no event costs much).
const MAX_MAPS_PER_EVENT: usize = 8;

/// How long a project's "has it uploaded files, and when did they change" is believed:
/// ingest asks it of every JavaScript event, so it is a memory read, refreshed this often.
const PROJECT_FRESH_FOR: Duration = Duration::from_secs(2);

/// One exception as the reader sees it.
#[derive(Clone, Debug, Serialize)]
pub struct ShownException {
    #[serde(rename = "type")]
    ty: Option<String>,
    value: Option<String>,
    frames: Vec<ShownFrame>,
}

/// Maps events' frames through the uploaded maps, with the cache.
pub struct Mapper<S> {
    source: S,
    cache: Mutex<MapCache>,
    /// Per project: its artifacts' last change (`None`: none) and when that was read.
    projects: Mutex<HashMap<i64, (Option<i64>, Instant)>>,
}

impl<S: ArtifactSource> Mapper<S> {
    /// A mapper reading `source`, caching at most `budget` bytes of parsed maps.
    pub fn new(source: S, budget: usize) -> Mapper<S> {
        Mapper {
            source,
            cache: Mutex::new(MapCache::new(budget)),
            projects: Mutex::new(HashMap::new()),
        }
    }

    /// Changes the cache's bound.
    pub fn set_budget(&self, budget: usize) {
        self.cache.lock().expect("cache lock").set_budget(budget);
    }

    /// Bytes of parsed maps the cache holds.
    pub fn cached_bytes(&self) -> usize {
        self.cache.lock().expect("cache lock").held()
    }

    /// The project's artifacts' last change (`None`: it has none), from memory when read
    /// within [`PROJECT_FRESH_FOR`]; a failed read keeps the last answer.
    pub async fn project_stamp(&self, project: i64) -> Option<i64> {
        let now = Instant::now();
        let known = self
            .projects
            .lock()
            .expect("projects lock")
            .get(&project)
            .copied();
        if let Some((stamp, read)) = known
            && now.duration_since(read) < PROJECT_FRESH_FOR
        {
            return stamp;
        }
        let stamp = match self.source.changed_at(project).await {
            Ok(stamp) => stamp,
            Err(e) => {
                tracing::warn!(project, error = %e, "reading whether a project has source maps");
                known.and_then(|(stamp, _)| stamp)
            }
        };
        self.projects
            .lock()
            .expect("projects lock")
            .insert(project, (stamp, now));
        stamp
    }

    /// Every exception of `event` with its frames mapped where a map is found.
    pub async fn map_event(&self, project: i64, event: &SentEvent) -> Vec<ShownException> {
        let stamp = if has_javascript(event) {
            self.project_stamp(project).await
        } else {
            None
        };
        let mut looked_up = Vec::new();
        let mut shown = Vec::with_capacity(event.exceptions.len());
        for exception in &event.exceptions {
            let mut frames = Vec::with_capacity(exception.frames.len());
            for frame in &exception.frames {
                let pass = (stamp, &mut looked_up);
                frames.push(self.map_frame(project, pass, event, frame).await);
            }
            shown.push(ShownException {
                ty: exception.ty.clone(),
                value: exception.value.clone(),
                frames,
            });
        }
        shown
    }

    async fn map_frame(
        &self,
        project: i64,
        (stamp, looked_up): (Option<i64>, &mut Vec<Lookup>),
        event: &SentEvent,
        frame: &SentFrame,
    ) -> ShownFrame {
        let minified = frame.minified();
        let Some(path) = minified.path().filter(|p| wants_mapping(p, frame.in_app())) else {
            return frame.shown();
        };
        let found = match lookup_for(event, &minified) {
            Err(why) => Err(why),
            Ok(lookup) if stamp.is_none() => Err(not_found(&lookup)),
            // Each new lookup may read the database: an event names a bounded number.
            Ok(lookup) if !looked_up.contains(&lookup) && looked_up.len() >= MAX_MAPS_PER_EVENT => {
                Err(format!(
                    "the event names more than {MAX_MAPS_PER_EVENT} source maps"
                ))
            }
            Ok(lookup) => {
                if !looked_up.contains(&lookup) {
                    looked_up.push(lookup.clone());
                }
                self.find(project, stamp, lookup).await
            }
        };
        let mapped = found.and_then(|map| mapping::map_frame(&minified, frame.in_app(), &map));
        mapped.unwrap_or_else(|why| ShownFrame {
            error: Some(why),
            in_app: frame.in_app().unwrap_or(true) && !mapping::is_library(path),
            ..frame.shown()
        })
    }

    /// The map `lookup` finds: from the cache, else loaded once by the first asker.
    async fn find(&self, project: i64, stamp: Option<i64>, lookup: Lookup) -> Found {
        let key: Key = (project, lookup);
        let slot = self
            .cache
            .lock()
            .expect("cache lock")
            .slot(&key, stamp, Instant::now());
        if let Some(found) = slot.get() {
            return found.clone();
        }
        let found = slot
            .get_or_init(|| self.load(project, &key.1))
            .await
            .clone();
        self.cache.lock().expect("cache lock").filled(&key);
        found
    }

    async fn load(&self, project: i64, lookup: &Lookup) -> Found {
        let (map, minified, label) = match lookup {
            Lookup::DebugId(id) => self.load_by_debug_id(project, id).await?,
            Lookup::Url {
                release,
                dist,
                candidates,
            } => {
                self.load_by_url(project, release, dist.as_deref(), candidates)
                    .await?
            }
        };
        // A big map takes a while to parse: off the async threads.
        let parsed = tokio::task::spawn_blocking(move || ParsedMap::parse(&map, minified, label))
            .await
            .map_err(|e| format!("parsing the source map failed: {e}"))??;
        Ok(Arc::new(parsed))
    }

    async fn load_by_debug_id(&self, project: i64, id: &str) -> Result<Loaded, String> {
        let map = self
            .source
            .by_debug_id(project, id, Want::SourceMap)
            .await?
            .ok_or_else(|| format!("no source map for debug id {id}"))?;
        let minified = self
            .source
            .by_debug_id(project, id, Want::MinifiedSource)
            .await?;
        let label = if map.url.is_empty() {
            format!("debug id {id}")
        } else {
            format!("{} (debug id {id})", map.url)
        };
        Ok((map.data, minified.map(|m| m.data), label))
    }

    async fn load_by_url(
        &self,
        project: i64,
        release: &str,
        dist: Option<&str>,
        candidates: &[String],
    ) -> Result<Loaded, String> {
        let mut file = None;
        for url in candidates {
            if let Some(found) = self.source.by_url(project, release, dist, url).await? {
                file = Some(found);
                break;
            }
        }
        let missing = |url: &str| format!("no artifact for {url} in release {release}");
        let file = file.ok_or_else(|| missing(first_tilde(candidates)))?;
        if file.is_map {
            return Ok((file.data, None, file.url));
        }
        let reference = resolve::map_reference(&file.url, file.sourcemap.as_deref(), &file.data)
            .unwrap_or_else(|| format!("{}.map", file.url));
        if let Some(inline) = resolve::data_url_map(&reference) {
            return Ok((inline?, Some(file.data), format!("{} (inline)", file.url)));
        }
        if let Some(map) = self
            .source
            .by_url(project, release, dist, &reference)
            .await?
        {
            return Ok((map.data, Some(file.data), map.url));
        }
        if let Some(id) = &file.debug_id
            && let Some(map) = self
                .source
                .by_debug_id(project, id, Want::SourceMap)
                .await?
        {
            return Ok((
                map.data,
                Some(file.data),
                format!("{} (debug id {id})", map.url),
            ));
        }
        Err(missing(&reference))
    }
}

/// A map's bytes, the minified file's and the label the reader is shown.
type Loaded = (Vec<u8>, Option<Vec<u8>>, String);

/// Whether any frame of `event` is JavaScript worth mapping (a check in memory).
fn has_javascript(event: &SentEvent) -> bool {
    event.exceptions.iter().flat_map(|e| &e.frames).any(|f| {
        let m = f.minified();
        m.path().is_some_and(|p| wants_mapping(p, f.in_app()))
    })
}

/// JavaScript frames are mapped, but a library's file the SDK marked as not the app's
/// (Node's `node_modules`, not bundled) has no map to find.
fn wants_mapping(path: &str, in_app: Option<bool>) -> bool {
    mapping::is_javascript(path) && !(in_app == Some(false) && mapping::is_library(path))
}

/// How the frame's map is found: its debug image, else the release and its URL.
fn lookup_for(event: &SentEvent, frame: &mapping::Minified) -> Result<Lookup, String> {
    let named = |p: &Option<String>| {
        p.as_deref()
            .and_then(|p| event.debug_images.iter().find(|(file, _)| file == p))
    };
    if let Some((_, id)) = named(&frame.abs_path).or_else(|| named(&frame.filename)) {
        return Ok(Lookup::DebugId(id.clone()));
    }
    let path = frame.path().unwrap_or_default();
    match &event.release {
        Some(release) => Ok(Lookup::Url {
            release: release.clone(),
            dist: event.dist.clone(),
            candidates: resolve::url_candidates(path),
        }),
        None => Err(format!(
            "no debug id for {path} and the event has no release"
        )),
    }
}

/// The error a lookup gives when the project has no uploaded files at all.
fn not_found(lookup: &Lookup) -> String {
    match lookup {
        Lookup::DebugId(id) => format!("no source map for debug id {id}"),
        Lookup::Url {
            release,
            candidates,
            ..
        } => {
            format!(
                "no artifact for {} in release {release}",
                first_tilde(candidates)
            )
        }
    }
}

fn first_tilde(candidates: &[String]) -> &str {
    candidates
        .iter()
        .find(|c| c.starts_with("~/"))
        .or(candidates.first())
        .map_or("", String::as_str)
}

#[cfg(test)]
mod tests;
