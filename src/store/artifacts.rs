//! Source-map artifacts (SPEC §10): the chunks `sentry-cli` uploads, the bundles assembled
//! from them and their files, and the lookups the mapping makes.
//!
//! Everything is in the database, not in a directory beside it: one backup holds it, every
//! node sees an upload at once (PostgreSQL), and retention deletes it in the same place as
//! the events it maps. Chunks and files are zstd-compressed; a chunk is stored once by its
//! SHA-1 and deleted when its bundle is assembled.

use super::db::{transaction, with_db};
use super::{ProjectId, Store, StoreError};
use crate::model::Millis;
use crate::model::artifact::{ArtifactKind, BundleTarget, NewArtifact, StoredArtifact};
use sqlx::QueryBuilder;
use std::collections::HashMap;

/// Chunks uploaded but not assembled for this long are deleted by retention (a client
/// that died between its chunks and the assembly).
pub(crate) const STALE_CHUNK_MS: i64 = 24 * 3600 * 1000;
/// Bundles one retention statement deletes.
const PURGE_BUNDLES: i64 = 100;
/// Compressed files bigger than this are decompressed off the async threads.
const INLINE_DECOMPRESS: usize = 64 * 1024;

type FileRow = (String, String, Option<String>, Option<String>, Vec<u8>);

const FILE_COLUMNS: &str = "f.url, f.kind, f.debug_id, f.sourcemap, f.data";

impl Store {
    /// The newest uploaded file of `kind` with `debug_id` (a lowercase UUID with dashes) in
    /// `project`.
    pub async fn artifact_by_debug_id(
        &self,
        project: ProjectId,
        debug_id: &str,
        kind: ArtifactKind,
    ) -> Result<Option<StoredArtifact>, StoreError> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM artifact_files f \
             JOIN artifact_bundles b ON b.id = f.bundle_id \
             WHERE f.project_id = $1 AND f.debug_id = $2 AND f.kind = $3 \
             ORDER BY b.created_at DESC, b.id DESC LIMIT 1"
        );
        let row: Option<FileRow> = with_db!(self, db => sqlx::query_as(&sql)
            .bind(project)
            .bind(debug_id)
            .bind(kind.as_str())
            .fetch_optional(&db.pool)
            .await?);
        artifact(row).await
    }

    /// The file uploaded as `url` (`~/static/app.min.js`) for `release` and `dist` (none:
    /// bundles uploaded without one) in `project`; of several, the newest bundle's.
    pub async fn artifact_by_url(
        &self,
        project: ProjectId,
        release: &str,
        dist: Option<&str>,
        url: &str,
    ) -> Result<Option<StoredArtifact>, StoreError> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM artifact_files f \
             JOIN artifact_bundles b ON b.id = f.bundle_id \
             WHERE f.project_id = $1 AND f.release = $2 AND f.url = $3 \
               AND f.dist IS NOT DISTINCT FROM $4 \
             ORDER BY b.created_at DESC, b.id DESC LIMIT 1"
        );
        let row: Option<FileRow> = with_db!(self, db => sqlx::query_as(&sql)
            .bind(project)
            .bind(db.fit_text(release))
            .bind(db.fit_text(url))
            .bind(dist.map(|d| db.fit_text(d)))
            .fetch_optional(&db.pool)
            .await?);
        artifact(row).await
    }

    /// When `project`'s newest bundle was stored (or stored again); `None` when it has
    /// none. A cache of "no artifact here" stays right while this does not change.
    pub async fn artifacts_changed_at(
        &self,
        project: ProjectId,
    ) -> Result<Option<Millis>, StoreError> {
        const SQL: &str = "SELECT MAX(created_at) FROM artifact_bundles WHERE project_id = $1";
        let at: Option<i64> = with_db!(self, db => sqlx::query_scalar(SQL)
            .bind(project)
            .fetch_one(&db.pool)
            .await?);
        Ok(at.map(Millis))
    }

    /// The project `name_or_id` names for an upload (`--project`): its id, else its name;
    /// `Err` with how many when a name is given to several projects.
    pub async fn project_named(
        &self,
        name_or_id: &str,
    ) -> Result<Result<Option<ProjectId>, usize>, StoreError> {
        if let Ok(id) = name_or_id.parse::<ProjectId>()
            && self.project_exists(id).await?
        {
            return Ok(Ok(Some(id)));
        }
        let ids: Vec<i64> = with_db!(self, db => sqlx::query_scalar(
                "SELECT id FROM projects WHERE name = $1 ORDER BY id LIMIT 2",
            )
            .bind(db.fit_text(name_or_id))
            .fetch_all(&db.pool)
            .await?);
        Ok(match ids[..] {
            [] => Ok(None),
            [id] => Ok(Some(id)),
            _ => Err(ids.len()),
        })
    }

    /// The uncompressed size of each of `sha1s` already stored; those missing are not in
    /// the map.
    pub async fn chunk_sizes(&self, sha1s: &[String]) -> Result<HashMap<String, i64>, StoreError> {
        if sha1s.is_empty() {
            return Ok(HashMap::new());
        }
        with_db!(self, db => {
            let mut q = QueryBuilder::new("SELECT sha1, size FROM artifact_chunks WHERE sha1 IN (");
            let mut list = q.separated(", ");
            for s in sha1s {
                list.push_bind(s.as_str());
            }
            q.push(")");
            let rows: Vec<(String, i64)> = q.build_query_as().fetch_all(&db.pool).await?;
            Ok(rows.into_iter().collect())
        })
    }

    /// Stores chunks given as `(sha1, uncompressed size, zstd data)`; one already stored is
    /// left as it is.
    pub async fn put_chunks(&self, chunks: &[(String, i64, Vec<u8>)]) -> Result<(), StoreError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let now = Millis::now().0;
        transaction!(self, db, tx => {
            for (sha1, size, data) in chunks {
                sqlx::query(
                    "INSERT INTO artifact_chunks (sha1, size, data, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (sha1) DO NOTHING",
                )
                .bind(sha1.as_str())
                .bind(*size)
                .bind(data.as_slice())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        })
    }

    /// The zstd data of `sha1s`, in their order; `None` if one is missing.
    pub async fn chunk_data(&self, sha1s: &[String]) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let mut found: HashMap<String, Vec<u8>> = HashMap::new();
        for batch in sha1s.chunks(64) {
            let rows: Vec<(String, Vec<u8>)> = with_db!(self, db => {
                let mut q = QueryBuilder::new("SELECT sha1, data FROM artifact_chunks WHERE sha1 IN (");
                let mut list = q.separated(", ");
                for s in batch {
                    list.push_bind(s.as_str());
                }
                q.push(")");
                q.build_query_as().fetch_all(&db.pool).await?
            });
            found.extend(rows);
        }
        Ok(sha1s.iter().map(|s| found.get(s).cloned()).collect())
    }

    /// Moves the bundles with `target`'s checksum, release and dist to now, as a new upload
    /// of the same bundle; whether every project of `target` had one.
    pub async fn touch_bundle(&self, target: &BundleTarget) -> Result<bool, StoreError> {
        let now = Millis::now().0;
        transaction!(self, db, tx => {
            let mut all = true;
            for project in &target.projects {
                let touched = sqlx::query(
                    "UPDATE artifact_bundles SET created_at = $1 WHERE project_id = $2 \
                     AND checksum = $3 AND release IS NOT DISTINCT FROM $4 \
                     AND dist IS NOT DISTINCT FROM $5",
                )
                .bind(now)
                .bind(*project)
                .bind(target.checksum.as_str())
                .bind(target.release.as_deref().map(|r| db.fit_text(r)))
                .bind(target.dist.as_deref().map(|d| db.fit_text(d)))
                .execute(&mut *tx)
                .await?;
                all &= touched.rows_affected() > 0;
            }
            Ok(all)
        })
    }

    /// Stores an assembled bundle's files for each project of `target`, and deletes the
    /// chunks it was made of, in one transaction.
    pub async fn store_bundle(
        &self,
        target: &BundleTarget,
        files: &[NewArtifact],
        chunks: &[String],
    ) -> Result<(), StoreError> {
        let now = Millis::now().0;
        transaction!(self, db, tx => {
            let release = target.release.as_deref().map(|r| db.fit_text(r).into_owned());
            let dist = target.dist.as_deref().map(|d| db.fit_text(d).into_owned());
            for project in &target.projects {
                let bundle: i64 = sqlx::query_scalar(
                    "INSERT INTO artifact_bundles (project_id, checksum, release, dist, files, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(*project)
                .bind(target.checksum.as_str())
                .bind(release.as_deref())
                .bind(dist.as_deref())
                .bind(files.len() as i64)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                for f in files {
                    sqlx::query(
                        "INSERT INTO artifact_files (bundle_id, project_id, release, dist, url, \
                         kind, debug_id, sourcemap, data) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(bundle)
                    .bind(*project)
                    .bind(release.as_deref())
                    .bind(dist.as_deref())
                    .bind(db.fit_text(&f.url))
                    .bind(f.kind.as_str())
                    .bind(f.debug_id.as_deref())
                    .bind(f.sourcemap.as_deref().map(|s| db.fit_text(s)))
                    .bind(f.compressed.as_slice())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for sha1 in chunks {
                sqlx::query("DELETE FROM artifact_chunks WHERE sha1 = $1")
                    .bind(sha1.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }

    /// Deletes bundles stored (or last uploaded again) before `cutoff`, with their files,
    /// and chunks left unassembled for [`STALE_CHUNK_MS`]; answers how many bundles.
    pub async fn purge_artifacts(&self, cutoff: Millis) -> Result<u64, StoreError> {
        let mut bundles = 0;
        loop {
            let deleted = self.purge_bundles(cutoff).await?;
            bundles += deleted;
            if deleted < PURGE_BUNDLES as u64 {
                break;
            }
        }
        let stale = Millis::now().0 - STALE_CHUNK_MS;
        with_db!(self, db => {
            sqlx::query("DELETE FROM artifact_chunks WHERE created_at < $1")
                .bind(stale)
                .execute(db.write_pool())
                .await?;
        });
        Ok(bundles)
    }

    /// Deletes up to [`PURGE_BUNDLES`] old bundles and their files.
    async fn purge_bundles(&self, cutoff: Millis) -> Result<u64, StoreError> {
        transaction!(self, db, tx => {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM artifact_bundles WHERE created_at < $1 ORDER BY id LIMIT $2",
            )
            .bind(cutoff.0)
            .bind(PURGE_BUNDLES)
            .fetch_all(&mut *tx)
            .await?;
            for id in &ids {
                sqlx::query("DELETE FROM artifact_files WHERE bundle_id = $1")
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM artifact_bundles WHERE id = $1")
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(ids.len() as u64)
        })
    }
}

/// A file row to its artifact, decompressed (a big one on a blocking thread).
async fn artifact(row: Option<FileRow>) -> Result<Option<StoredArtifact>, StoreError> {
    let Some((url, kind, debug_id, sourcemap, data)) = row else {
        return Ok(None);
    };
    let data = if data.len() <= INLINE_DECOMPRESS {
        zstd::decode_all(&data[..])
    } else {
        tokio::task::spawn_blocking(move || zstd::decode_all(&data[..]))
            .await
            .map_err(super::rows::corrupt)?
    }
    .map_err(super::rows::corrupt)?;
    Ok(Some(StoredArtifact {
        url,
        kind: ArtifactKind::from_manifest(&kind),
        debug_id,
        sourcemap,
        data,
    }))
}
