//! Projects and their credentials.

use super::db::with_db;
use super::{
    CreatedProject, Project, ProjectCredentials, ProjectId, Store, StoreError, hash_token,
    new_ingest_key, new_token, rows,
};
use crate::model::Millis;

/// A project's columns as [`rows::project`] reads them.
const PROJECT_COLUMNS: &str = "id, name, ingest_key";

impl Store {
    /// Creates a project with a fresh ingest key and token.
    pub async fn create_project(&self, name: &str) -> Result<CreatedProject, StoreError> {
        let ingest_key = new_ingest_key();
        let token = new_token();
        let (id, name): (i64, String) = with_db!(self, db => {
            let name = db.fit_text(name).into_owned();
            let id = sqlx::query_scalar(
                "INSERT INTO projects (name, ingest_key, token_hash, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(&name)
            .bind(&ingest_key)
            .bind(hash_token(&token))
            .bind(Millis::now().0)
            .fetch_one(db.write_pool())
            .await?;
            (id, name)
        });
        let project = Project {
            id,
            name,
            ingest_key,
        };
        Ok(CreatedProject { project, token })
    }

    /// Every project, by id.
    pub async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY id");
        with_db!(self, db => {
            let rows = sqlx::query(&sql).fetch_all(&db.pool).await?;
            rows.iter().map(rows::project).collect()
        })
    }

    /// Replaces a project's token; `None` for an unknown project.
    pub async fn rotate_token(&self, id: ProjectId) -> Result<Option<CreatedProject>, StoreError> {
        let token = new_token();
        let project = self
            .update_project("token_hash", hash_token(&token), id)
            .await?;
        Ok(project.map(|project| CreatedProject { project, token }))
    }

    /// Replaces a project's ingest key; the project with its new key, `None` when unknown.
    pub async fn rotate_ingest_key(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        self.update_project("ingest_key", new_ingest_key(), id)
            .await
    }

    /// Sets one credential column of a project; the project after, `None` when unknown.
    async fn update_project(
        &self,
        column: &'static str,
        value: String,
        id: ProjectId,
    ) -> Result<Option<Project>, StoreError> {
        let sql =
            format!("UPDATE projects SET {column} = $1 WHERE id = $2 RETURNING {PROJECT_COLUMNS}");
        with_db!(self, db => {
            let row = sqlx::query(&sql)
                .bind(&value)
                .bind(id)
                .fetch_optional(db.write_pool())
                .await?;
            row.as_ref().map(rows::project).transpose()
        })
    }

    /// Every project's `(id, ingest key, SHA-256 of the token)`, in one query: what the key
    /// directory (`crate::credentials`) reloads.
    pub async fn project_credentials(&self) -> Result<Vec<ProjectCredentials>, StoreError> {
        const SQL: &str = "SELECT id, ingest_key, token_hash FROM projects";
        with_db!(self, db => Ok(sqlx::query_as(SQL).fetch_all(&db.pool).await?))
    }

    /// The project an ingest key belongs to.
    pub async fn project_by_ingest_key(&self, key: &str) -> Result<Option<ProjectId>, StoreError> {
        self.project_where("ingest_key", key).await
    }

    /// The project whose token hashes to `token_hash`.
    pub async fn project_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ProjectId>, StoreError> {
        self.project_where("token_hash", token_hash).await
    }

    /// The project whose `column` holds `value`.
    async fn project_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<ProjectId>, StoreError> {
        let sql = format!("SELECT id FROM projects WHERE {column} = $1");
        with_db!(self, db => Ok(sqlx::query_scalar(&sql)
            .bind(db.fit_text(value))
            .fetch_optional(&db.pool)
            .await?))
    }

    /// Whether a project exists.
    pub async fn project_exists(&self, id: ProjectId) -> Result<bool, StoreError> {
        Ok(self.last_seq_of(id).await?.is_some())
    }

    /// The project's latest seq (0 before its first event).
    pub async fn latest_seq(&self, project: ProjectId) -> Result<i64, StoreError> {
        Ok(self.last_seq_of(project).await?.unwrap_or(0))
    }

    /// The project's last seq; `None` when there is no such project.
    async fn last_seq_of(&self, id: ProjectId) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "SELECT last_seq FROM projects WHERE id = $1";
        with_db!(self, db => Ok(sqlx::query_scalar(SQL).bind(id).fetch_optional(&db.pool).await?))
    }
}
