//! The merge task (with Redis only): merges this node's committed changes with the other
//! nodes' notices and hands the stream dispatcher one ordered flow per project.
//!
//! It keeps, per project, the last seq handed on (the cursor). An event at the cursor or
//! below is a copy and skipped; one further ahead first has the gap read from the
//! database. So whatever the order in which local commits and remote notices arrive, and
//! whether a notice was lost while Redis was away, every node's streams get each event
//! once, in seq order, from its stored row.

use super::{Notice, Packet};
use crate::bus::DomainMessage;
use crate::store::{ProjectId, Store, StoreError};
use crate::stream::Hub;
use crate::task::Service;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the Redis subscriber hands the merge.
#[derive(Debug)]
pub(crate) enum Remote {
    /// Another node's notices.
    Packet(Packet),
    /// The subscription is (re)established: catch up on what was missed.
    Subscribed,
}

/// Stored events read per database query while filling a gap.
const FILL_PAGE: u32 = 500;
/// How often projects whose gap could not be read (database down) are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Per-project cursors and the database to fill gaps from.
pub(crate) struct Sequencer {
    store: Store,
    hub: Arc<Hub>,
    out: mpsc::Sender<DomainMessage>,
    cursors: HashMap<ProjectId, i64>,
    /// Whether the projects of the start have their cursors.
    started: bool,
    /// Projects with stored events not yet handed on (a fill failed), and how far they go.
    behind: HashMap<ProjectId, i64>,
}

impl Sequencer {
    /// Starts every known project's cursor at its latest seq: a stream that connects later
    /// starts there too, and its `since` replay covers anything earlier.
    pub(crate) async fn new(
        store: Store,
        hub: Arc<Hub>,
        out: mpsc::Sender<DomainMessage>,
    ) -> Result<Sequencer, StoreError> {
        let mut s = Sequencer {
            store,
            hub,
            out,
            cursors: HashMap::new(),
            started: false,
            behind: HashMap::new(),
        };
        s.learn_projects().await?;
        Ok(s)
    }

    /// Adds cursors for projects created since (by the CLI, on any node): their first seq is 1.
    async fn learn_projects(&mut self) -> Result<(), StoreError> {
        for p in self.store.list_projects().await? {
            if !self.cursors.contains_key(&p.id) {
                let start = if !self.started {
                    self.store.latest_seq(p.id).await?
                } else {
                    0
                };
                self.cursors.insert(p.id, start);
            }
        }
        self.started = true;
        Ok(())
    }

    fn cursor(&self, project: ProjectId) -> i64 {
        // A project unknown at start was created later: none of its events was handed on.
        self.cursors.get(&project).copied().unwrap_or(0)
    }

    /// Hands on a locally committed event, after any gap before it.
    pub(crate) async fn local_event(&mut self, e: Arc<crate::store::StoredEvent>) {
        let c = self.cursor(e.project_id);
        if e.seq <= c {
            return;
        }
        if e.seq > c + 1 {
            self.fill(e.project_id, e.seq).await;
            return;
        }
        self.cursors.insert(e.project_id, e.seq);
        let _ = self.out.send(DomainMessage::EventStored(e)).await;
    }

    /// Reads and hands on `project`'s events after its cursor, up to `upto`.
    async fn fill(&mut self, project: ProjectId, upto: i64) {
        // Measured (docs/BENCHMARKS.md, "Many nodes"): a node reading every other node's events
        // whether or not anyone watched them fell seconds behind. A stream that joins later
        // starts
        // at the latest seq, so an unwatched project only needs its cursor moved.
        if !self.hub.is_watched(project) {
            let c = self.cursors.entry(project).or_insert(0);
            *c = (*c).max(upto);
            self.behind.remove(&project);
            return;
        }
        let mut cursor = self.cursor(project);
        while cursor < upto {
            let page = match self.store.events_since(project, cursor, FILL_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(project, error = %e, "could not read events to deliver; will retry");
                    let want = self.behind.entry(project).or_insert(upto);
                    *want = (*want).max(upto);
                    break;
                }
            };
            let Some(last) = page.last() else { break };
            let full = page.len() == FILL_PAGE as usize;
            let last_seq = last.seq;
            for e in page.into_iter().filter(|e| e.seq <= upto) {
                cursor = e.seq;
                self.cursors.insert(project, cursor);
                if self
                    .out
                    .send(DomainMessage::EventStored(Arc::new(e)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if !full || last_seq >= upto {
                break;
            }
        }
        if cursor >= upto {
            self.behind.remove(&project);
        }
    }

    /// Acts on another node's packet. Event notices are merged per project first, so a
    /// packet of many events costs one database read per project, not one per event.
    pub(crate) async fn packet(&mut self, p: Packet) {
        let mut latest: HashMap<ProjectId, i64> = HashMap::new();
        let mut others = Vec::new();
        for n in p.notices {
            match n {
                Notice::Event { project, seq } => {
                    let l = latest.entry(project).or_insert(seq);
                    *l = (*l).max(seq);
                }
                other => others.push(other),
            }
        }
        for (project, seq) in latest {
            self.notice(Notice::Event { project, seq }).await;
        }
        for n in others {
            self.notice(n).await;
        }
    }

    /// Acts on another node's notice.
    pub(crate) async fn notice(&mut self, n: Notice) {
        match n {
            Notice::Event { project, seq } => {
                if seq > self.cursor(project) {
                    self.fill(project, seq).await;
                }
            }
            Notice::Issue {
                issue,
                action,
                origin,
            } => match self.store.get_issue(issue).await {
                Ok(Some(issue)) => {
                    let _ = self
                        .out
                        .send(DomainMessage::IssueChanged {
                            action,
                            issue,
                            origin,
                        })
                        .await;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(issue, error = %e, "could not read a changed issue"),
            },
            Notice::Merged {
                issue,
                merged,
                origin,
            } => match self.store.get_issue(issue).await {
                Ok(Some(issue)) => {
                    let msg = DomainMessage::IssuesMerged {
                        issue,
                        merged,
                        origin,
                    };
                    let _ = self.out.send(msg).await;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(issue, error = %e, "could not read a merged issue"),
            },
            Notice::Count { project } => self.send_count(project).await,
        }
    }

    async fn send_count(&self, project: ProjectId) {
        match self.store.unresolved_count(project).await {
            // The count read now is the true one, whichever node changed it.
            Ok(count) => {
                let _ = self
                    .out
                    .send(DomainMessage::CountChanged {
                        project_id: project,
                        count,
                    })
                    .await;
            }
            Err(e) => tracing::warn!(project, error = %e, "could not read the unresolved count"),
        }
    }

    /// After (re)subscribing: everything every project stored since its cursor, and the
    /// counts, which may have changed unseen.
    pub(crate) async fn catch_up(&mut self) {
        if let Err(e) = self.learn_projects().await {
            tracing::warn!(error = %e, "could not list projects to catch up");
        }
        let projects: Vec<ProjectId> = self.cursors.keys().copied().collect();
        for project in projects {
            match self.store.latest_seq(project).await {
                Ok(latest) if latest > self.cursor(project) => {
                    self.fill(project, latest).await;
                    self.send_count(project).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(project, error = %e, "could not catch up; will retry");
                    self.behind.insert(project, i64::MAX);
                }
            }
        }
    }

    /// Tries again the projects whose gap could not be read.
    pub(crate) async fn retry_behind(&mut self) {
        let behind: Vec<(ProjectId, i64)> = self.behind.iter().map(|(p, s)| (*p, *s)).collect();
        for (project, upto) in behind {
            let upto = if upto == i64::MAX {
                match self.store.latest_seq(project).await {
                    Ok(l) => l,
                    Err(_) => continue,
                }
            } else {
                upto
            };
            self.fill(project, upto).await;
        }
    }
}

/// The merge task: local commits (`local`) are announced to the other nodes (`publish`,
/// never waiting for Redis) and, with the other nodes' notices (`remote`), handed to the
/// dispatcher (`out`) in seq order. It owns both receivers: a restarted merge continues
/// with them.
pub(crate) struct Merge {
    /// Where gaps are read from.
    pub store: Store,
    /// Whose watched projects need their gaps filled.
    pub hub: Arc<Hub>,
    /// This node's committed changes (from the bus).
    pub local: mpsc::Receiver<DomainMessage>,
    /// The other nodes' notices (from the Redis subscriber).
    pub remote: mpsc::Receiver<Remote>,
    /// The dispatcher's queue.
    pub out: mpsc::Sender<DomainMessage>,
    /// The Redis publisher's queue.
    pub publish: mpsc::Sender<Notice>,
}

impl Service for Merge {
    fn run(&mut self) -> impl Future<Output = ()> + Send + '_ {
        run(self)
    }
}

/// Runs the merge until both inputs close.
async fn run(merge: &mut Merge) {
    let Merge {
        store,
        hub,
        local,
        remote,
        out,
        publish,
    } = merge;
    let mut seq = loop {
        match Sequencer::new(store.clone(), hub.clone(), out.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "merge cannot read the projects yet; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    };
    let mut retry = tokio::time::interval(RETRY_EVERY);
    loop {
        tokio::select! {
            msg = local.recv() => {
                let Some(msg) = msg else { return };
                // A full queue means Redis is slow or away: the other nodes will read
                // the database when the next notice or the reconnection comes.
                let _ = publish.try_send(Notice::of(&msg));
                match msg {
                    DomainMessage::EventStored(e) => seq.local_event(e).await,
                    other => {
                        let _ = out.send(other).await;
                    }
                }
            }
            r = remote.recv() => match r {
                Some(Remote::Packet(p)) => seq.packet(p).await,
                Some(Remote::Subscribed) => seq.catch_up().await,
                None => return,
            },
            _ = retry.tick() => seq.retry_behind().await,
        }
    }
}
