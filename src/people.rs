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

/// What `create` and `set-password` check before they open the database: the e-mail,
/// normalized; the password `given` (from stdin) checked, or a generated one (then
/// printed); and its hash.
struct NewPassword {
    email: String,
    generated: Option<String>,
    hash: String,
}

impl NewPassword {
    fn of(email: &str, given: Option<String>) -> anyhow::Result<NewPassword> {
        let email = user::normalize_email(email).map_err(usage)?;
        let (password, generated) = match given {
            Some(p) => {
                user::check_password(&p).map_err(usage)?;
                (p, None)
            }
            None => {
                let p = user::generate_password();
                (p.clone(), Some(p))
            }
        };
        let hash = user::hash_password(&password);
        Ok(NewPassword {
            email,
            generated,
            hash,
        })
    }

    /// The user as printed, with the password when it was generated.
    fn printed(&self, u: &User) -> Value {
        let mut v = shown(u);
        if let Some(p) = &self.generated {
            v["password"] = json!(p);
        }
        v
    }
}

/// `user create EMAIL [--admin]`: the user, with the generated password unless one was given.
pub async fn create_user(
    url: &DatabaseUrl,
    email: &str,
    admin: bool,
    given: Option<String>,
) -> anyhow::Result<Value> {
    let new = NewPassword::of(email, given)?;
    let store = open(url).await?;
    match store
        .create_user(&new.email, Some(&new.hash), admin)
        .await?
    {
        UserAdded::Added(u) => Ok(new.printed(&u)),
        UserAdded::Exists => Err(usage(format!("a user with e-mail {} exists", new.email))),
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
    let new = NewPassword::of(email, given)?;
    let store = open(url).await?;
    let u = store.set_password(&new.email, &new.hash).await?;
    let u = u.ok_or_else(|| usage(format!("no user with e-mail {}", new.email)))?;
    Ok(new.printed(&u))
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
    let change = store.set_member(project, &email, add).await?;
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
