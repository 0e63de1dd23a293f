//! The `mesher project ...` commands, as library functions the binary and tests share.

use crate::config::DatabaseUrl;
use crate::store::{self, CreatedProject, Project};
use anyhow::{Context, bail};
use serde_json::{Value, json};

fn dsn(project: &Project, listen: &str) -> String {
    format!("http://{}@{}/{}", project.ingest_key, listen, project.id)
}

fn listed(project: &Project, listen: &str) -> Value {
    json!({ "id": project.id, "name": project.name, "ingest_key": project.ingest_key, "dsn": dsn(project, listen) })
}

/// `project create NAME`: the new project as printed, with its token and DSN.
pub async fn create_project(url: &DatabaseUrl, name: &str, listen: &str) -> anyhow::Result<Value> {
    let name = name.trim();
    if name.is_empty() {
        bail!("a project name must not be empty");
    }
    let store = store::open(url)
        .await
        .with_context(|| format!("cannot open {url}"))?;
    let CreatedProject { project, token } = store.create_project(name).await?;
    let mut v = listed(&project, listen);
    v["token"] = json!(token);
    Ok(v)
}

/// `project list`: every project, without tokens.
pub async fn list_projects(url: &DatabaseUrl, listen: &str) -> anyhow::Result<Vec<Value>> {
    let store = store::open(url)
        .await
        .with_context(|| format!("cannot open {url}"))?;
    Ok(store
        .list_projects()
        .await?
        .iter()
        .map(|p| listed(p, listen))
        .collect())
}

/// `project rotate-token ID`: the new token (the old one stops working at once).
pub async fn rotate_token(url: &DatabaseUrl, id: i64) -> anyhow::Result<Value> {
    let store = store::open(url)
        .await
        .with_context(|| format!("cannot open {url}"))?;
    match store.rotate_token(id).await? {
        Some(CreatedProject { project, token }) => {
            Ok(json!({ "id": project.id, "name": project.name, "token": token }))
        }
        None => bail!("no project with id {id}"),
    }
}
