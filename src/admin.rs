//! The `mesher project ...` and `mesher webhook ...` commands, as library functions the
//! binary and tests share.

use crate::config::DatabaseUrl;
use crate::model::webhook::WebhookAdded;
use crate::store::{self, CreatedProject, Project};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use std::str::FromStr;

fn listed(project: &Project, server: &str) -> Value {
    json!({ "id": project.id, "name": project.name, "ingest_key": project.ingest_key, "dsn": crate::model::project::dsn(project, server) })
}

/// Opens the store, saying on stderr when that created a new SQLite file, so that a
/// command run from the wrong directory is noticed at once.
async fn open(url: &DatabaseUrl) -> anyhow::Result<store::Store> {
    let fresh = match url {
        DatabaseUrl::Sqlite(u) => SqliteConnectOptions::from_str(u)
            .ok()
            .map(|o| o.get_filename().to_owned())
            .filter(|path| !path.exists()),
        DatabaseUrl::Postgres(_) => None,
    };
    let store = store::open(url)
        .await
        .with_context(|| format!("cannot open {url}"))?;
    if let Some(path) = fresh.filter(|path| path.exists()) {
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        // A log line, so that `--log-format json` keeps stderr all JSON.
        tracing::warn!("created a new database at {}", path.display());
    }
    Ok(store)
}

/// `project create NAME`: the new project as printed, with its token and DSN. `server` is
/// the address `serve` publishes: its public URL, or its listen address (see `dsn`).
pub async fn create_project(url: &DatabaseUrl, name: &str, server: &str) -> anyhow::Result<Value> {
    let name = name.trim();
    if name.is_empty() {
        bail!("a project name must not be empty");
    }
    let store = open(url).await?;
    let CreatedProject { project, token } = store.create_project(name).await?;
    let mut v = listed(&project, server);
    v["token"] = json!(token);
    Ok(v)
}

/// `project list`: every project, without tokens (`server` as for `create_project`).
pub async fn list_projects(url: &DatabaseUrl, server: &str) -> anyhow::Result<Vec<Value>> {
    let store = open(url).await?;
    Ok(store
        .list_projects()
        .await?
        .iter()
        .map(|p| listed(p, server))
        .collect())
}

/// `project rotate-token ID`: the new token (running servers refuse the old one within
/// 5 s, and close the streams it opened).
pub async fn rotate_token(url: &DatabaseUrl, id: i64) -> anyhow::Result<Value> {
    let store = open(url).await?;
    match store.rotate_token(id).await? {
        Some(CreatedProject { project, token }) => {
            Ok(json!({ "id": project.id, "name": project.name, "token": token }))
        }
        None => Err(UsageError(format!("no project with id {id}")).into()),
    }
}

/// `project rotate-key ID`: the project with its new ingest key and DSN, as `project
/// create` prints it but without the token (running servers refuse the old key within
/// 5 s, and close the `/ingest` sockets it opened). `server` as for `create_project`.
pub async fn rotate_key(url: &DatabaseUrl, id: i64, server: &str) -> anyhow::Result<Value> {
    let store = open(url).await?;
    match store.rotate_ingest_key(id).await? {
        Some(project) => Ok(listed(&project, server)),
        None => Err(UsageError(format!("no project with id {id}")).into()),
    }
}

/// A command's input was wrong (unknown project or webhook): the binary exits with
/// status 2, as for a bad flag, and nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `webhook add PROJECT_ID URL`: the new webhook as printed, with its secret (made when
/// not given). `allow` is `--webhook-allow-cidr`: a URL whose host is a forbidden address
/// outside it, or `localhost`, is refused before the database is opened.
pub async fn add_webhook(
    url: &DatabaseUrl,
    project: i64,
    target: &str,
    on: &[crate::model::IssueAction],
    format: crate::model::webhook::WebhookFormat,
    secret: Option<&str>,
    allow: &[crate::alerts::target::Cidr],
) -> anyhow::Result<Value> {
    crate::alerts::target::check_url(target, allow).map_err(UsageError)?;
    let store = open(url).await?;
    let secret = match secret {
        Some("") => return Err(UsageError("--secret must not be empty".into()).into()),
        Some(s) => s.to_owned(),
        None => store::new_token(),
    };
    match store
        .create_webhook(project, target, on, format, &secret)
        .await?
    {
        WebhookAdded::Added(hook) => Ok(hook.to_json(true)),
        WebhookAdded::NoProject => Err(UsageError(format!("no project with id {project}")).into()),
        WebhookAdded::Full => Err(UsageError(crate::model::webhook::too_many()).into()),
    }
}

/// `webhook list [--project ID]`: every webhook, without secrets.
pub async fn list_webhooks(url: &DatabaseUrl, project: Option<i64>) -> anyhow::Result<Vec<Value>> {
    let store = open(url).await?;
    Ok(store
        .list_webhooks(project)
        .await?
        .iter()
        .map(|h| h.to_json(false))
        .collect())
}

/// `webhook remove ID`: `{"id": ID, "removed": true}`.
pub async fn remove_webhook(url: &DatabaseUrl, id: i64) -> anyhow::Result<Value> {
    let store = open(url).await?;
    if store.remove_webhook(id).await? {
        Ok(json!({ "id": id, "removed": true }))
    } else {
        Err(UsageError(format!("no webhook with id {id}")).into())
    }
}
