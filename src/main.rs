//! The `mesher` binary: parses the command line and calls the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use mesher::config::{DatabaseArgs, PublicAddress, ServeConfig};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: the request path allocates and frees per event
/// (JSON values, strings), and `malloc`/`free` were ≈ 8% of the server's samples.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Mesher: a self-hosted error-event server with live dashboards.
#[derive(Parser)]
#[command(name = "mesher", version, about)]
struct Cli {
    /// Log format on stderr: `text` for people, `json` (one object per line) for log
    /// collectors. The level comes from RUST_LOG (default info).
    #[arg(
        long,
        global = true,
        env = "MESHER_LOG_FORMAT",
        default_value = "text",
        value_name = "FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP API, WebSocket ingest and stream).
    Serve(Box<ServeConfig>),
    /// Manage projects (works while a server runs on the same database).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage webhooks, told when an issue is new, regressed or changes state (works while a
    /// server runs on the same database; it acts on a change within a second).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Manage users who sign in (works while a server runs; in effect within 5 s).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage who may use a project (works while a server runs; in effect within 5 s).
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print it as one JSON line, with a generated password shown once.
    Create {
        /// Their e-mail address.
        email: String,
        /// May use every project and the admin routes.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print every user, one JSON line each.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Set a user's password (generated, or from stdin) and end their sessions.
    SetPassword {
        /// Their e-mail address.
        email: String,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Remove a user with their sessions, API tokens and memberships.
    Remove {
        /// Their e-mail address.
        email: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Let a user use a project.
    Add {
        /// The project's id.
        project_id: i64,
        /// The user's e-mail address.
        email: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// End a user's membership of a project.
    Remove {
        /// The project's id.
        project_id: i64,
        /// The user's e-mail address.
        email: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print a project's members, one JSON line each.
    List {
        /// The project's id.
        project_id: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Add a webhook and print it as one JSON line, with its secret.
    Add {
        /// The project whose issues it is told of.
        project_id: i64,
        /// Where alerts are POSTed (http:// or https://).
        #[arg(value_parser = parse_url)]
        url: String,
        /// What it is told of: a comma list of new, regressed, resolved, archived,
        /// unresolved, discarded.
        #[arg(long, default_value = mesher::model::webhook::DEFAULT_TRIGGERS, value_parser = parse_on, value_name = "LIST")]
        on: String,
        /// The body: `json` (alerts as JSON) or `slack` (a Slack incoming-webhook message).
        #[arg(long, default_value = "json", value_parser = mesher::model::webhook::WebhookFormat::parse, value_name = "FORMAT")]
        format: mesher::model::webhook::WebhookFormat,
        /// The key of the HMAC-SHA256 signature (`X-Mesher-Signature`); made when not given.
        #[arg(long, value_name = "S")]
        secret: Option<String>,
        /// Address ranges the URL may name although they are loopback, private, link-local,
        /// shared, unspecified, multicast or broadcast (the server checks its own list at
        /// each delivery); repeatable, or comma-separated.
        #[arg(long = "webhook-allow-cidr", env = "MESHER_WEBHOOK_ALLOW_CIDR", value_name = "CIDR",
              value_delimiter = ',', value_parser = mesher::alerts::target::Cidr::parse_arg)]
        webhook_allow_cidr: Vec<mesher::alerts::target::Cidr>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print every webhook, one JSON line each (without secrets).
    List {
        /// Only this project's.
        #[arg(long, value_name = "ID")]
        project: Option<i64>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Remove a webhook (its waiting alerts go with it).
    Remove {
        /// The webhook's id.
        id: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn parse_url(s: &str) -> Result<String, String> {
    mesher::model::webhook::validate_url(s).map(|()| s.to_owned())
}

/// Checks the list at parse time (a bad one is a usage error, exit 2, like any bad flag).
fn parse_on(s: &str) -> Result<String, String> {
    mesher::model::webhook::parse_triggers(s).map(|_| s.to_owned())
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project and print it as one JSON line, with its token and DSN.
    Create {
        /// The project's name.
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
        /// The address `serve` publishes, written into the DSN.
        #[command(flatten)]
        address: PublicAddress,
    },
    /// Print every project, one JSON line each (without tokens).
    List {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The address `serve` publishes, written into the DSN.
        #[command(flatten)]
        address: PublicAddress,
    },
    /// Replace a project's token and print the new one; running servers refuse the old one
    /// within 5 s and close the streams it opened.
    RotateToken {
        /// The project's id.
        id: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Replace a project's ingest key and print the project with its new key and DSN
    /// (without the token); running servers refuse the old key within 5 s.
    RotateKey {
        /// The project's id.
        id: i64,
        #[command(flatten)]
        database: DatabaseArgs,
        /// The address `serve` publishes, written into the DSN.
        #[command(flatten)]
        address: PublicAddress,
    },
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received; draining");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match run().await {
        Err(e) if e.downcast_ref::<mesher::admin::UsageError>().is_some() => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
        other => other,
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match cli.command {
        Command::Serve(config) => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            mesher::run(*config, listener, shutdown_signal()).await
        }
        Command::Project(cmd) => project(cmd).await,
        Command::Webhook(cmd) => webhook(cmd).await,
        Command::User(cmd) => user(cmd).await,
        Command::Member(cmd) => member(cmd).await,
    }
}

/// The log filter without `RUST_LOG`: info, but not PostgreSQL's notices (the migrator's
/// "relation already exists, skipping" at every start and every CLI command).
const DEFAULT_LOG: &str = "info,sqlx::postgres::notice=warn";

/// Logs on stderr, at `RUST_LOG`'s level (default info), as text or JSON lines.
fn init_logs(format: LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// `mesher project …`: each prints its JSON lines on stdout.
async fn project(cmd: ProjectCommand) -> anyhow::Result<()> {
    use mesher::admin;
    let printed = match cmd {
        ProjectCommand::Create {
            name,
            database,
            address,
        } => {
            vec![admin::create_project(&database.database_url, &name, &address.public_url()).await?]
        }
        ProjectCommand::List { database, address } => {
            admin::list_projects(&database.database_url, &address.public_url()).await?
        }
        ProjectCommand::RotateToken { id, database } => {
            vec![admin::rotate_token(&database.database_url, id).await?]
        }
        ProjectCommand::RotateKey {
            id,
            database,
            address,
        } => vec![admin::rotate_key(&database.database_url, id, &address.public_url()).await?],
    };
    printed.iter().for_each(|v| println!("{v}"));
    Ok(())
}

/// `mesher webhook …`: each prints its JSON lines on stdout.
async fn webhook(cmd: WebhookCommand) -> anyhow::Result<()> {
    use mesher::admin;
    let printed = match cmd {
        WebhookCommand::Add {
            project_id,
            url,
            on,
            format,
            secret,
            webhook_allow_cidr,
            database,
        } => {
            let on =
                mesher::model::webhook::parse_triggers(&on).map_err(mesher::admin::UsageError)?;
            let added = admin::add_webhook(
                &database.database_url,
                project_id,
                &url,
                &on,
                format,
                secret.as_deref(),
                &webhook_allow_cidr,
            );
            vec![added.await?]
        }
        WebhookCommand::List { project, database } => {
            admin::list_webhooks(&database.database_url, project).await?
        }
        WebhookCommand::Remove { id, database } => {
            vec![admin::remove_webhook(&database.database_url, id).await?]
        }
    };
    printed.iter().for_each(|v| println!("{v}"));
    Ok(())
}

/// The first line of stdin, without its line end, when `wanted`.
fn stdin_password(wanted: bool) -> anyhow::Result<Option<String>> {
    if !wanted {
        return Ok(None);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(Some(line.trim_end_matches(['\n', '\r']).to_owned()))
}

/// `mesher user …`: each prints its JSON lines on stdout.
async fn user(cmd: UserCommand) -> anyhow::Result<()> {
    use mesher::people;
    let printed = match cmd {
        UserCommand::Create {
            email,
            admin,
            password_stdin,
            database,
        } => {
            let given = stdin_password(password_stdin)?;
            vec![people::create_user(&database.database_url, &email, admin, given).await?]
        }
        UserCommand::List { database } => people::list_users(&database.database_url).await?,
        UserCommand::SetPassword {
            email,
            password_stdin,
            database,
        } => {
            let given = stdin_password(password_stdin)?;
            vec![people::set_password(&database.database_url, &email, given).await?]
        }
        UserCommand::Remove { email, database } => {
            vec![people::remove_user(&database.database_url, &email).await?]
        }
    };
    printed.iter().for_each(|v| println!("{v}"));
    Ok(())
}

/// `mesher member …`: each prints its JSON lines on stdout.
async fn member(cmd: MemberCommand) -> anyhow::Result<()> {
    use mesher::people;
    let printed = match cmd {
        MemberCommand::Add {
            project_id,
            email,
            database,
        } => {
            vec![people::change_member(&database.database_url, project_id, &email, true).await?]
        }
        MemberCommand::Remove {
            project_id,
            email,
            database,
        } => {
            vec![people::change_member(&database.database_url, project_id, &email, false).await?]
        }
        MemberCommand::List {
            project_id,
            database,
        } => people::list_members(&database.database_url, project_id).await?,
    };
    printed.iter().for_each(|v| println!("{v}"));
    Ok(())
}
