//! SPEC §9: the `mesher user …` and `mesher member …` commands, run as a user runs them
//! (the real binary, a temporary SQLite file; one test on a real PostgreSQL cluster).

mod common;

use common::WAIT;
use common::postgres::TestPostgres;
use common::process::{ServerProcess, bin, free_port, sqlite_url};
use mesher::DatabaseUrl;
use mesher::model::user::verify_password;
use serde_json::{Value, json};
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The most any one test may take.
const LIMIT: Duration = Duration::from_secs(90);

/// Runs a test body, failing it when it takes longer than [`LIMIT`].
async fn bounded(body: impl Future<Output = ()>) {
    tokio::time::timeout(LIMIT, body)
        .await
        .expect("the test finished in time");
}

/// What one run of the binary did.
#[derive(Debug)]
struct Ran {
    code: i32,
    out: String,
    err: String,
}

impl Ran {
    /// Asserts exit 0 and answers stdout's JSON lines.
    fn lines(&self) -> Vec<Value> {
        assert_eq!(self.code, 0, "exit code; stderr: {}", self.err);
        self.out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    /// Asserts exit 0 and exactly one JSON line on stdout, and answers it.
    fn one(&self) -> Value {
        let lines = self.lines();
        assert_eq!(lines.len(), 1, "one line: {:?}", self.out);
        lines.into_iter().next().unwrap()
    }

    /// As [`refused`](Self::refused), once the log lines (`<timestamp>  INFO …`) are taken
    /// out of stderr: on PostgreSQL every command logs the migrator's notice (see
    /// `postgres_a_refusal_prints_only_its_message`).
    fn refused_besides_logs(&self, what: &str, context: &str) {
        let err: String = self
            .err
            .lines()
            .filter(|l| !(l.starts_with("20") && l.contains(" INFO ")))
            .map(|l| format!("{l}\n"))
            .collect();
        Ran {
            code: self.code,
            out: self.out.clone(),
            err,
        }
        .refused(what, context);
    }

    /// Asserts a refusal: exit 2, nothing on stdout, one line on stderr naming `what`.
    fn refused(&self, what: &str, context: &str) {
        assert_eq!(self.code, 2, "{context}: exit code; {self:?}");
        assert_eq!(self.out, "", "{context}: stdout");
        assert!(!self.err.contains("panicked"), "{context}: {}", self.err);
        assert_eq!(
            self.err.trim_end().lines().count(),
            1,
            "{context}: one line on stderr: {:?}",
            self.err
        );
        assert!(
            self.err.starts_with("error: ") && self.err.contains(what),
            "{context}: stderr {:?} should name {what:?}",
            self.err
        );
    }
}

/// `mesher ARGS`, with `stdin` written to its standard input (else none).
async fn mesher(args: &[&str], stdin: Option<&str>) -> Ran {
    let mut child = Command::new(bin())
        .args(args)
        .env_remove("MESHER_LISTEN")
        .env_remove("MESHER_DATABASE_URL")
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mesher starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        pipe.write_all(text.as_bytes())
            .await
            .expect("stdin written");
        drop(pipe);
    }
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the command finished in time")
        .expect("the command ran");
    Ran {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A database the commands act on: a temporary SQLite file, or a PostgreSQL URL.
struct Db {
    url: String,
    /// The SQLite file (None on PostgreSQL).
    file: Option<PathBuf>,
    _dir: Option<TempDir>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        Db {
            url: sqlite_url(dir.path()),
            file: Some(dir.path().join("mesher.db")),
            _dir: Some(dir),
        }
    }

    fn postgres(pg: &TestPostgres) -> Db {
        Db {
            url: pg.url(),
            file: None,
            _dir: None,
        }
    }

    /// `mesher ARGS --database-url URL`.
    async fn run(&self, args: &[&str]) -> Ran {
        self.run_with_stdin(args, None).await
    }

    /// As [`run`](Self::run), with `stdin` on its standard input.
    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Ran {
        let mut all = args.to_vec();
        all.extend(["--database-url", &self.url]);
        mesher(&all, stdin).await
    }

    /// `project create NAME`: the new project's id.
    async fn project(&self, name: &str) -> i64 {
        let p = self.run(&["project", "create", name]).await.one();
        p["id"].as_i64().expect("project id")
    }

    /// `user create EMAIL` with a generated password: the printed user.
    async fn user(&self, email: &str) -> Value {
        self.run(&["user", "create", email]).await.one()
    }

    /// `user list`.
    async fn users(&self) -> Vec<Value> {
        self.run(&["user", "list"]).await.lines()
    }

    /// `member list PROJECT`.
    async fn members(&self, project: i64) -> Vec<Value> {
        self.run(&["member", "list", &project.to_string()])
            .await
            .lines()
    }

    /// The e-mails `user list` shows.
    async fn user_emails(&self) -> Vec<String> {
        emails(&self.users().await)
    }

    /// The e-mails `member list PROJECT` shows.
    async fn member_emails(&self, project: i64) -> Vec<String> {
        emails(&self.members(project).await)
    }

    /// What a person and the database can see of the accounts: `user list`, `member list`
    /// of each of `projects`, and (SQLite) every row of the account tables, password hashes
    /// included.
    async fn state(&self, projects: &[i64]) -> String {
        let mut s = format!("{:?}\n", self.users().await);
        for p in projects {
            s += &format!("{p}: {:?}\n", self.members(*p).await);
        }
        if self.file.is_some() {
            for (table, columns) in [
                ("users", "id, email, admin, password_hash, created_at"),
                ("members", "project_id, user_id"),
                ("sessions", "token_hash, user_id, created, last_used"),
                ("api_tokens", "id, user_id, name, token_hash, created"),
                ("projects", "id, name"),
            ] {
                s += &format!("{table}: {:?}\n", self.rows(table, columns));
            }
        }
        s
    }

    /// The SQLite file, opened beside the commands.
    fn open_file(&self) -> rusqlite::Connection {
        let file = self.file.as_ref().expect("a SQLite database");
        rusqlite::Connection::open(file).expect("the SQLite file opens")
    }

    /// Every row of `table` (the `columns`, each shown as text), in order.
    fn rows(&self, table: &str, columns: &str) -> Vec<String> {
        let db = self.open_file();
        let sql = format!("SELECT {columns} FROM {table} ORDER BY 1, 2");
        let mut stmt = db.prepare(&sql).expect("query prepares");
        let n = stmt.column_count();
        stmt.query_map([], |row| {
            let mut cells = Vec::with_capacity(n);
            for i in 0..n {
                let v: rusqlite::types::Value = row.get(i)?;
                cells.push(format!("{v:?}"));
            }
            Ok(cells.join("|"))
        })
        .expect("query runs")
        .collect::<Result<_, _>>()
        .expect("rows read")
    }

    /// The stored password hash of `email` (SQLite).
    fn password_hash(&self, email: &str) -> String {
        self.open_file()
            .query_row(
                "SELECT password_hash FROM users WHERE email = ?1",
                [email],
                |r| r.get(0),
            )
            .expect("the user's hash")
    }

    /// Rows of `table` whose `user_id` is `user` (SQLite).
    fn count_of_user(&self, table: &str, user: i64) -> i64 {
        self.open_file()
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE user_id = ?1"),
                [user],
                |r| r.get(0),
            )
            .expect("count")
    }

    /// Starts a session and makes an API token for `user`, as signing in would (the store's
    /// own calls, from this process).
    async fn sign_in(&self, user: i64, secret: &str) {
        let url: DatabaseUrl = self.url.parse().expect("database url");
        let store = mesher::store::open(&url).await.expect("store opens");
        store
            .create_session(user, &format!("session-{secret}"))
            .await
            .expect("session stored");
        store
            .create_api_token(user, "ci", &format!("token-{secret}"))
            .await
            .expect("API token stored");
    }
}

fn emails(users: &[Value]) -> Vec<String> {
    users
        .iter()
        .map(|u| u["email"].as_str().expect("email").to_owned())
        .collect()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn id(user: &Value) -> i64 {
    user["id"].as_i64().expect("user id")
}

#[tokio::test]
async fn user_create_prints_the_user_with_a_generated_password_and_a_lowercased_email() {
    bounded(async {
        let db = Db::sqlite();
        let ada = db.run(&["user", "create", " Ada@Example.COM "]).await.one();
        assert_eq!(keys(&ada), ["admin", "email", "id", "password"]);
        assert_eq!(ada["email"], "ada@example.com");
        assert_eq!(ada["admin"], false);
        assert!(ada["id"].is_i64());
        let password = ada["password"].as_str().expect("password is a string");
        assert!(password.chars().count() >= 20, "{password:?}");
        assert!(
            password.chars().all(|c| c.is_ascii_graphic()),
            "{password:?}"
        );

        let root = db
            .run(&["user", "create", "Root@Example.com", "--admin"])
            .await
            .one();
        assert_eq!(root["email"], "root@example.com");
        assert_eq!(root["admin"], true);
        assert_ne!(root["id"], ada["id"]);
        let other = root["password"].as_str().unwrap();
        assert!(other.chars().count() >= 20);
        assert_ne!(other, password, "each generated password is new");

        // The e-mail is stored lowercased, not only printed so.
        let stored: Vec<String> = db.rows("users", "email, admin");
        assert_eq!(
            stored,
            [
                "Text(\"ada@example.com\")|Integer(0)",
                "Text(\"root@example.com\")|Integer(1)"
            ]
        );
        assert!(verify_password(
            password,
            &db.password_hash("ada@example.com")
        ));
        assert!(verify_password(
            other,
            &db.password_hash("root@example.com")
        ));
    })
    .await;
}

#[tokio::test]
async fn user_create_with_password_stdin_keeps_that_password_and_prints_none() {
    bounded(async {
        let db = Db::sqlite();
        let bob = db
            .run_with_stdin(
                &["user", "create", "bob@example.com", "--password-stdin"],
                Some("correct horse battery\n"),
            )
            .await
            .one();
        assert_eq!(keys(&bob), ["admin", "email", "id"]);
        assert_eq!(bob["email"], "bob@example.com");
        assert_eq!(bob["admin"], false);
        let hash = db.password_hash("bob@example.com");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery\n", &hash));

        // --admin with it; a CRLF line end is not part of the password; exactly 10
        // characters is enough, counted as characters (10 'é' are 20 bytes).
        let carol = db
            .run_with_stdin(
                &[
                    "user",
                    "create",
                    "carol@example.com",
                    "--password-stdin",
                    "--admin",
                ],
                Some("1234567890\r\nsecond line ignored\n"),
            )
            .await
            .one();
        assert_eq!(
            carol,
            json!({"id": carol["id"], "email": "carol@example.com", "admin": true})
        );
        assert!(verify_password(
            "1234567890",
            &db.password_hash("carol@example.com")
        ));
        let accented = "é".repeat(10);
        db.run_with_stdin(
            &["user", "create", "dan@example.com", "--password-stdin"],
            Some(&accented),
        )
        .await
        .one();
        assert!(verify_password(
            &accented,
            &db.password_hash("dan@example.com")
        ));
    })
    .await;
}

#[tokio::test]
async fn passwords_are_stored_only_as_argon2id_hashes() {
    bounded(async {
        let db = Db::sqlite();
        let generated = db.user("ada@example.com").await["password"]
            .as_str()
            .unwrap()
            .to_owned();
        let chosen = "a chosen passphrase";
        for email in ["bob@example.com", "carol@example.com"] {
            db.run_with_stdin(&["user", "create", email, "--password-stdin"], Some(chosen))
                .await
                .one();
        }
        let hashes = db.rows("users", "email, password_hash");
        assert_eq!(hashes.len(), 3);
        for (email, password) in [
            ("ada@example.com", generated.as_str()),
            ("bob@example.com", chosen),
            ("carol@example.com", chosen),
        ] {
            let hash = db.password_hash(email);
            assert!(hash.starts_with("$argon2id$"), "{email}: {hash}");
            assert!(!hash.contains(password), "{email}: {hash}");
            assert!(verify_password(password, &hash), "{email}");
        }
        assert_ne!(
            db.password_hash("bob@example.com"),
            db.password_hash("carol@example.com"),
            "each hash has its own salt"
        );
        // Nowhere in the database's files either (the file and its WAL).
        let dir = db.file.as_ref().unwrap().parent().unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            for password in [generated.as_str(), chosen] {
                assert!(
                    !bytes
                        .windows(password.len())
                        .any(|w| w == password.as_bytes()),
                    "{} holds a password in clear",
                    path.display()
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn user_list_prints_one_json_line_per_user_without_secrets() {
    bounded(async {
        let db = Db::sqlite();
        assert_eq!(db.run(&["user", "list"]).await.out, "", "no users yet");
        let ada = db.user("ada@example.com").await;
        let root = db
            .run(&["user", "create", "root@example.com", "--admin"])
            .await
            .one();
        let listed = db.run(&["user", "list"]).await;
        assert_eq!(listed.out.lines().count(), 2, "{}", listed.out);
        assert_eq!(
            listed.lines(),
            [
                json!({"id": ada["id"], "email": "ada@example.com", "admin": false}),
                json!({"id": root["id"], "email": "root@example.com", "admin": true}),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn user_set_password_replaces_the_password_and_ends_every_session() {
    bounded(async {
        let db = Db::sqlite();
        let ada = db.user("ada@example.com").await;
        let old = ada["password"].as_str().unwrap().to_owned();
        let bob = db.user("bob@example.com").await;
        db.sign_in(id(&ada), "ada-1").await;
        db.sign_in(id(&ada), "ada-2").await;
        db.sign_in(id(&bob), "bob").await;
        assert_eq!(db.count_of_user("sessions", id(&ada)), 2);

        let set = db
            .run(&["user", "set-password", "ADA@example.com"])
            .await
            .one();
        assert_eq!(keys(&set), ["admin", "email", "id", "password"]);
        assert_eq!(set["id"], ada["id"]);
        assert_eq!(set["email"], "ada@example.com");
        assert_eq!(set["admin"], false);
        let new = set["password"].as_str().unwrap();
        assert!(new.chars().count() >= 20);
        assert_ne!(new, old);
        let hash = db.password_hash("ada@example.com");
        assert!(hash.starts_with("$argon2id$") && !hash.contains(new));
        assert!(verify_password(new, &hash));
        assert!(!verify_password(&old, &hash), "the old password is gone");
        assert_eq!(db.count_of_user("sessions", id(&ada)), 0, "sessions end");
        assert_eq!(
            db.count_of_user("sessions", id(&bob)),
            1,
            "another user's session stays"
        );

        db.sign_in(id(&ada), "ada-3").await;
        let set = db
            .run_with_stdin(
                &[
                    "user",
                    "set-password",
                    "ada@example.com",
                    "--password-stdin",
                ],
                Some("my own passphrase\n"),
            )
            .await
            .one();
        assert_eq!(
            set,
            json!({"id": ada["id"], "email": "ada@example.com", "admin": false})
        );
        let hash = db.password_hash("ada@example.com");
        assert!(verify_password("my own passphrase", &hash));
        assert!(!verify_password(new, &hash));
        assert_eq!(db.count_of_user("sessions", id(&ada)), 0);
        assert_eq!(
            db.user_emails().await,
            ["ada@example.com", "bob@example.com"]
        );
    })
    .await;
}

#[tokio::test]
async fn user_remove_removes_the_user_their_sessions_tokens_and_memberships() {
    bounded(async {
        let db = Db::sqlite();
        let shop = db.project("shop").await;
        let blog = db.project("blog").await;
        let ada = db.user("ada@example.com").await;
        let bob = db.user("bob@example.com").await;
        for (project, email) in [
            (shop, "ada@example.com"),
            (blog, "ada@example.com"),
            (shop, "bob@example.com"),
        ] {
            db.run(&["member", "add", &project.to_string(), email])
                .await
                .one();
        }
        db.sign_in(id(&ada), "ada").await;
        db.sign_in(id(&bob), "bob").await;

        let removed = db.run(&["user", "remove", "Ada@Example.com"]).await.one();
        assert_eq!(removed, json!({"removed": "ada@example.com"}));
        assert_eq!(db.user_emails().await, ["bob@example.com"]);
        assert_eq!(db.member_emails(shop).await, ["bob@example.com"]);
        assert!(db.members(blog).await.is_empty());
        for table in ["sessions", "api_tokens", "members"] {
            assert_eq!(db.count_of_user(table, id(&ada)), 0, "{table} of ada");
        }
        assert_eq!(db.count_of_user("sessions", id(&bob)), 1);
        assert_eq!(db.count_of_user("api_tokens", id(&bob)), 1);

        // Removed means gone: a second remove is refused, and the address is free again
        // (a new user, not the old one's memberships).
        db.run(&["user", "remove", "ada@example.com"])
            .await
            .refused("no user with e-mail ada@example.com", "second remove");
        let again = db.user("ada@example.com").await;
        assert_ne!(again["id"], ada["id"]);
        assert_eq!(db.member_emails(shop).await, ["bob@example.com"]);
    })
    .await;
}

#[tokio::test]
async fn member_add_remove_and_list_and_adding_twice_changes_nothing() {
    bounded(async {
        let db = Db::sqlite();
        let shop = db.project("shop").await;
        let blog = db.project("blog").await;
        let (s, b) = (shop.to_string(), blog.to_string());
        assert!(db.members(shop).await.is_empty());
        let zoe = db.user("zoe@example.com").await;
        let ada = db
            .run(&["user", "create", "ada@example.com", "--admin"])
            .await
            .one();
        db.user("bob@example.com").await;

        let added = db
            .run(&["member", "add", &s, "Zoe@Example.com"])
            .await
            .one();
        assert_eq!(
            added,
            json!({"project_id": shop, "email": "zoe@example.com", "member": true})
        );
        db.run(&["member", "add", &s, "ada@example.com"])
            .await
            .one();
        db.run(&["member", "add", &b, "bob@example.com"])
            .await
            .one();
        let listed = db.run(&["member", "list", &s]).await;
        assert_eq!(listed.out.lines().count(), 2);
        assert_eq!(
            listed.lines(),
            [
                json!({"id": ada["id"], "email": "ada@example.com", "admin": true}),
                json!({"id": zoe["id"], "email": "zoe@example.com", "admin": false}),
            ],
            "one JSON line per member"
        );
        assert_eq!(db.member_emails(blog).await, ["bob@example.com"]);

        // Adding again: accepted, no change.
        let before = db.state(&[shop, blog]).await;
        let again = db
            .run(&["member", "add", &s, "zoe@example.com"])
            .await
            .one();
        assert_eq!(again, added);
        assert_eq!(db.state(&[shop, blog]).await, before);

        let removed = db
            .run(&["member", "remove", &s, "ZOE@example.com"])
            .await
            .one();
        assert_eq!(
            removed,
            json!({"project_id": shop, "email": "zoe@example.com", "member": false})
        );
        assert_eq!(db.member_emails(shop).await, ["ada@example.com"]);
        assert_eq!(db.member_emails(blog).await, ["bob@example.com"]);
        assert_eq!(
            db.user_emails().await,
            ["zoe@example.com", "ada@example.com", "bob@example.com"],
            "the user stays"
        );

        // Removing one who is not a member: no change.
        let before = db.state(&[shop, blog]).await;
        db.run(&["member", "remove", &s, "zoe@example.com"])
            .await
            .one();
        db.run(&["member", "remove", &b, "ada@example.com"])
            .await
            .one();
        assert_eq!(db.state(&[shop, blog]).await, before);
    })
    .await;
}

#[tokio::test]
async fn a_malformed_email_is_refused_with_exit_2_and_changes_nothing() {
    bounded(async {
        let db = Db::sqlite();
        let shop = db.project("shop").await;
        let s = shop.to_string();
        db.user("ada@example.com").await;
        db.run(&["member", "add", &s, "ada@example.com"])
            .await
            .one();
        let before = db.state(&[shop]).await;
        for bad in [
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a b@example.com",
            "a@b@example.com",
            "ada@.com",
            "",
        ] {
            let runs: [(&[&str], Option<&str>); 7] = [
                (&["user", "create", bad], None),
                (&["user", "create", bad, "--admin"], None),
                (
                    &["user", "create", bad, "--password-stdin"],
                    Some("long enough password\n"),
                ),
                (&["user", "set-password", bad], None),
                (&["user", "remove", bad], None),
                (&["member", "add", &s, bad], None),
                (&["member", "remove", &s, bad], None),
            ];
            for (args, stdin) in runs {
                db.run_with_stdin(args, stdin)
                    .await
                    .refused("is not an e-mail address", &format!("{args:?}"));
            }
        }
        assert_eq!(db.state(&[shop]).await, before);
    })
    .await;
}

#[tokio::test]
async fn a_duplicate_user_is_refused_in_any_case_and_changes_nothing() {
    bounded(async {
        let db = Db::sqlite();
        let ada = db.user("ada@example.com").await;
        let password = ada["password"].as_str().unwrap().to_owned();
        let before = db.state(&[]).await;
        for (args, stdin) in [
            (&["user", "create", "ada@example.com"][..], None),
            (&["user", "create", "ADA@Example.COM", "--admin"][..], None),
            (
                &["user", "create", " ada@example.com", "--password-stdin"][..],
                Some("another long password\n"),
            ),
        ] {
            db.run_with_stdin(args, stdin).await.refused(
                "a user with e-mail ada@example.com exists",
                &format!("{args:?}"),
            );
        }
        assert_eq!(db.state(&[]).await, before);
        assert!(verify_password(
            &password,
            &db.password_hash("ada@example.com")
        ));
        assert_eq!(
            db.users().await,
            [json!({"id": ada["id"], "email": "ada@example.com", "admin": false})]
        );
    })
    .await;
}

#[tokio::test]
async fn a_password_under_10_characters_from_stdin_is_refused_and_changes_nothing() {
    bounded(async {
        let db = Db::sqlite();
        let ada = db.user("ada@example.com").await;
        db.sign_in(id(&ada), "ada").await;
        let before = db.state(&[]).await;
        let nine_accented = "é".repeat(9);
        for short in [
            "",
            "\n",
            "123456789\n",
            "12345678\r\n",
            nine_accented.as_str(),
        ] {
            for args in [
                &["user", "create", "bob@example.com", "--password-stdin"][..],
                &[
                    "user",
                    "set-password",
                    "ada@example.com",
                    "--password-stdin",
                ][..],
            ] {
                db.run_with_stdin(args, Some(short))
                    .await
                    .refused("10", &format!("{args:?} with {short:?}"));
            }
        }
        // No stdin at all (closed at once) is no password either.
        db.run(&["user", "create", "bob@example.com", "--password-stdin"])
            .await
            .refused("10", "closed stdin");
        assert_eq!(
            db.state(&[]).await,
            before,
            "no user, hash or session changed"
        );
        assert_eq!(db.count_of_user("sessions", id(&ada)), 1);
    })
    .await;
}

#[tokio::test]
async fn an_unknown_user_is_refused_by_set_password_remove_and_member_commands() {
    bounded(async {
        let db = Db::sqlite();
        let shop = db.project("shop").await;
        let s = shop.to_string();
        db.user("ada@example.com").await;
        db.run(&["member", "add", &s, "ada@example.com"])
            .await
            .one();
        let before = db.state(&[shop]).await;
        let runs: [(&[&str], Option<&str>); 5] = [
            (&["user", "set-password", "nobody@example.com"], None),
            (
                &[
                    "user",
                    "set-password",
                    "Nobody@example.com",
                    "--password-stdin",
                ],
                Some("long enough password\n"),
            ),
            (&["user", "remove", "nobody@example.com"], None),
            (&["member", "add", &s, "NOBODY@example.com"], None),
            (&["member", "remove", &s, "nobody@example.com"], None),
        ];
        for (args, stdin) in runs {
            db.run_with_stdin(args, stdin).await.refused(
                "no user with e-mail nobody@example.com",
                &format!("{args:?}"),
            );
        }
        assert_eq!(db.state(&[shop]).await, before);
    })
    .await;
}

#[tokio::test]
async fn an_unknown_project_is_refused_by_member_add_remove_and_list() {
    bounded(async {
        let db = Db::sqlite();
        let shop = db.project("shop").await;
        db.user("ada@example.com").await;
        db.run(&["member", "add", &shop.to_string(), "ada@example.com"])
            .await
            .one();
        let before = db.state(&[shop]).await;
        for missing in ["99", "0"] {
            let runs: [&[&str]; 4] = [
                &["member", "add", missing, "ada@example.com"],
                &["member", "add", missing, "nobody@example.com"],
                &["member", "remove", missing, "ada@example.com"],
                &["member", "list", missing],
            ];
            for args in runs {
                db.run(args).await.refused(
                    &format!("no project with id {missing}"),
                    &format!("{args:?}"),
                );
            }
        }
        assert_eq!(db.state(&[shop]).await, before);
    })
    .await;
}

#[tokio::test]
async fn the_commands_work_while_a_server_runs_on_the_same_database() {
    bounded(async {
        let db = Db::sqlite();
        let shop = db.project("shop").await;
        let _server = ServerProcess::start(&db.url, free_port(), &[]).await;
        db.user("ada@example.com").await;
        assert_eq!(db.user_emails().await, ["ada@example.com"]);
        db.run(&["member", "add", &shop.to_string(), "ada@example.com"])
            .await
            .one();
        assert_eq!(db.member_emails(shop).await, ["ada@example.com"]);
        db.run(&["user", "set-password", "ada@example.com"])
            .await
            .one();
        db.run(&["user", "remove", "ada@example.com"]).await.one();
        assert!(db.users().await.is_empty());
        assert!(db.members(shop).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn postgres_user_create_list_and_member_add() {
    bounded(async {
        let pg = tokio::task::spawn_blocking(TestPostgres::start_new)
            .await
            .expect("postgres starts");
        let db = Db::postgres(&pg);
        let shop = db.project("shop").await;
        let s = shop.to_string();

        let ada = db
            .run(&["user", "create", "Ada@Example.com", "--admin"])
            .await
            .one();
        assert_eq!(keys(&ada), ["admin", "email", "id", "password"]);
        assert_eq!(ada["email"], "ada@example.com");
        assert_eq!(ada["admin"], true);
        assert!(ada["password"].as_str().unwrap().chars().count() >= 20);
        let bob = db
            .run_with_stdin(
                &["user", "create", "bob@example.com", "--password-stdin"],
                Some("bob's own password\n"),
            )
            .await
            .one();
        assert_eq!(keys(&bob), ["admin", "email", "id"]);
        assert_eq!(
            db.users().await,
            [
                json!({"id": ada["id"], "email": "ada@example.com", "admin": true}),
                json!({"id": bob["id"], "email": "bob@example.com", "admin": false}),
            ]
        );

        // The hash, read back through the store.
        let store = mesher::store::open(&DatabaseUrl::Postgres(pg.url()))
            .await
            .expect("postgres store opens");
        let (_, hash) = store
            .user_by_email("bob@example.com")
            .await
            .unwrap()
            .expect("bob is stored");
        let hash = hash.expect("bob has a password hash");
        assert!(hash.starts_with("$argon2id$") && !hash.contains("bob's own password"));
        assert!(verify_password("bob's own password", &hash));

        for _ in 0..2 {
            db.run(&["member", "add", &s, "BOB@example.com"])
                .await
                .one();
        }
        assert_eq!(db.member_emails(shop).await, ["bob@example.com"]);

        let before = db.state(&[shop]).await;
        db.run(&["user", "create", "ada@example.com"])
            .await
            .refused_besides_logs("exists", "duplicate");
        db.run(&["member", "add", "99", "bob@example.com"])
            .await
            .refused_besides_logs("no project with id 99", "unknown project");
        db.run(&["member", "list", "99"])
            .await
            .refused_besides_logs("no project with id 99", "unknown project list");
        db.run(&["member", "add", &s, "nobody@example.com"])
            .await
            .refused_besides_logs("no user with e-mail nobody@example.com", "unknown user");
        assert_eq!(db.state(&[shop]).await, before);

        db.run(&["user", "remove", "bob@example.com"]).await.one();
        assert_eq!(db.user_emails().await, ["ada@example.com"]);
        assert!(db.members(shop).await.is_empty());

        drop(store);
        tokio::task::spawn_blocking(move || drop(pg))
            .await
            .expect("postgres stops");
    })
    .await;
}

/// On PostgreSQL too a refusal is its one line: the migrator's notice (`relation
/// "_sqlx_migrations" already exists, skipping`) is not logged at the default level.
#[tokio::test]
async fn postgres_a_refusal_prints_only_its_message() {
    bounded(async {
        let pg = tokio::task::spawn_blocking(TestPostgres::start_new)
            .await
            .expect("postgres starts");
        let db = Db::postgres(&pg);
        db.user("ada@example.com").await;
        db.run(&["user", "create", "ada@example.com"])
            .await
            .refused("a user with e-mail ada@example.com exists", "duplicate");
        db.run(&["member", "list", "99"])
            .await
            .refused("no project with id 99", "unknown project");
        tokio::task::spawn_blocking(move || drop(pg))
            .await
            .expect("postgres stops");
    })
    .await;
}
