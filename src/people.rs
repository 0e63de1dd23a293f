//! The `mesher user …` and `mesher member …` commands (SPEC §9), as library functions the
//! binary and tests share. Each refusal is an [`UsageError`] (exit 2) and changes nothing.

use crate::admin::UsageError;
use crate::config::DatabaseUrl;
use crate::model::user::{self, User};
use crate::store::{self, MemberChange, ProjectId, Store, UserAdded};
use anyhow::Context;
use serde_json::{Value, json};

async fn open(url: &DatabaseUrl) -> anyhow::Result<Store> {
    store::open(url)
        .await
        .with_context(|| format!("cannot open {url}"))
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

fn shown(u: &User) -> Value {
    json!({ "id": u.id, "email": u.email, "admin": u.admin })
}

/// The password to set: `given` (read from stdin) checked, or a generated one, which is
/// then printed.
fn password(given: Option<String>) -> anyhow::Result<(String, bool)> {
    match given {
        Some(p) => {
            user::check_password(&p).map_err(usage)?;
            Ok((p, false))
        }
        None => Ok((user::generate_password(), true)),
    }
}

/// `user create EMAIL [--admin]`: the user, with the generated password unless one was given.
pub async fn create_user(
    url: &DatabaseUrl,
    email: &str,
    admin: bool,
    given: Option<String>,
) -> anyhow::Result<Value> {
    let email = user::normalize_email(email).map_err(usage)?;
    let (password, generated) = password(given)?;
    let store = open(url).await?;
    let hash = user::hash_password(&password);
    match store.create_user(&email, Some(&hash), admin).await? {
        UserAdded::Added(u) => {
            let mut v = shown(&u);
            if generated {
                v["password"] = json!(password);
            }
            Ok(v)
        }
        UserAdded::Exists => Err(usage(format!("a user with e-mail {email} exists"))),
    }
}

/// `user list`: every user.
pub async fn list_users(url: &DatabaseUrl) -> anyhow::Result<Vec<Value>> {
    Ok(open(url)
        .await?
        .list_users()
        .await?
        .iter()
        .map(shown)
        .collect())
}

/// `user set-password EMAIL`: as `create`; every session of the user ends.
pub async fn set_password(
    url: &DatabaseUrl,
    email: &str,
    given: Option<String>,
) -> anyhow::Result<Value> {
    let email = user::normalize_email(email).map_err(usage)?;
    let (password, generated) = password(given)?;
    let store = open(url).await?;
    let hash = user::hash_password(&password);
    let u = store.set_password(&email, &hash).await?;
    let u = u.ok_or_else(|| usage(format!("no user with e-mail {email}")))?;
    let mut v = shown(&u);
    if generated {
        v["password"] = json!(password);
    }
    Ok(v)
}

/// `user remove EMAIL`: with their sessions, API tokens and memberships.
pub async fn remove_user(url: &DatabaseUrl, email: &str) -> anyhow::Result<Value> {
    let email = user::normalize_email(email).map_err(usage)?;
    match open(url).await?.remove_user(&email).await? {
        true => Ok(json!({ "removed": email })),
        false => Err(usage(format!("no user with e-mail {email}"))),
    }
}

/// `member add|remove PROJECT_ID EMAIL`.
pub async fn change_member(
    url: &DatabaseUrl,
    project: ProjectId,
    email: &str,
    add: bool,
) -> anyhow::Result<Value> {
    let email = user::normalize_email(email).map_err(usage)?;
    let store = open(url).await?;
    let change = match add {
        true => store.add_member(project, &email).await?,
        false => store.remove_member(project, &email).await?,
    };
    match change {
        MemberChange::Done => Ok(json!({ "project_id": project, "email": email, "member": add })),
        MemberChange::NoProject => Err(usage(format!("no project with id {project}"))),
        MemberChange::NoUser => Err(usage(format!("no user with e-mail {email}"))),
    }
}

/// `member list PROJECT_ID`: the project's members.
pub async fn list_members(url: &DatabaseUrl, project: ProjectId) -> anyhow::Result<Vec<Value>> {
    let store = open(url).await?;
    if !store.project_exists(project).await? {
        return Err(usage(format!("no project with id {project}")));
    }
    Ok(store
        .list_members(project)
        .await?
        .iter()
        .map(shown)
        .collect())
}
