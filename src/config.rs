//! Configuration: command-line flags, each with an environment variable (SPEC §1).

use clap::Args;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Where the data lives. Shown (`Display`, `Debug`) with its password as `***`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://path` (or `sqlite:path`); the file is created if missing.
    Sqlite(String),
    /// `postgres://...` or `postgresql://...`.
    Postgres(String),
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let scheme = s.split_once(':').map(|(scheme, _)| scheme).unwrap_or("");
        match scheme {
            "sqlite" => {
                let path = s.trim_start_matches("sqlite:").trim_start_matches("//");
                if path.is_empty() {
                    return Err("a sqlite URL needs a file path, e.g. sqlite://mesher.db".into());
                }
                Ok(DatabaseUrl::Sqlite(s.to_owned()))
            }
            "postgres" | "postgresql" => Ok(DatabaseUrl::Postgres(s.to_owned())),
            "" => Err(format!(
                "'{}' is not a database URL: expected sqlite://PATH or postgres://USER@HOST/DB",
                crate::redact::redact_url(s)
            )),
            other => Err(format!(
                "unknown database scheme '{other}': expected sqlite:// or postgres://"
            )),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(u) | DatabaseUrl::Postgres(u) => {
                f.write_str(&crate::redact::redact_url(u))
            }
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (variant, u) = match self {
            DatabaseUrl::Sqlite(u) => ("Sqlite", u),
            DatabaseUrl::Postgres(u) => ("Postgres", u),
        };
        f.debug_tuple(variant)
            .field(&crate::redact::redact_url(u))
            .finish()
    }
}

/// Parses a URL that may hold a password (`--database-url`, `--smtp-url`) with `parse`,
/// but a refusal shows the value with its password as `***` (clap's own message would
/// repeat the value as given).
#[derive(Clone, Copy, Debug)]
struct SecretUrlParser<T>(fn(&str) -> Result<T, String>);

/// `--database-url`'s parser.
const DATABASE_URL_PARSER: SecretUrlParser<DatabaseUrl> = SecretUrlParser(|s| s.parse());

/// `--smtp-url`'s parser.
const SMTP_URL_PARSER: SecretUrlParser<String> = SecretUrlParser(parse_smtp_url);

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for SecretUrlParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let name = arg.map_or_else(|| "--database-url <URL>".to_owned(), |a| a.to_string());
        let refuse = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '{name}': {why}\n"),
            )
            .with_cmd(cmd)
        };
        let s = value
            .to_str()
            .ok_or_else(|| refuse("the URL is not UTF-8".into()))?;
        (self.0)(s).map_err(|e| refuse(format!("'{}': {e}", crate::redact::redact_url(s))))
    }
}

/// The default database: `mesher.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://mesher.db";
/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `--database-url`, shared by `serve` and the `project` commands.
#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// Database URL: sqlite://PATH (file created if missing) or postgres://...
    #[arg(long, env = "MESHER_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, value_name = "URL",
          value_parser = DATABASE_URL_PARSER)]
    pub database_url: DatabaseUrl,
}

/// The address `serve` publishes, read as `serve` reads it (`--listen`, `--public-url` and
/// their environment variables): what the `project` commands write into a DSN.
#[derive(Args, Clone, Debug)]
pub struct PublicAddress {
    /// The server's address (`serve --listen`); the DSN names `http://ADDR` unless
    /// --public-url is given.
    #[arg(long, env = "MESHER_LISTEN", default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// The server's address as SDKs and people reach it (`serve --public-url`), written
    /// into the DSN; default `http://<listen address>`.
    #[arg(long, env = "MESHER_PUBLIC_URL", value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
}

impl PublicAddress {
    /// `--public-url`, or `http://<listen address>`: what `serve` publishes.
    pub fn public_url(&self) -> String {
        public_url(self.public_url.as_deref(), self.listen)
    }
}

/// `given`, or `http://<listen>`.
fn public_url(given: Option<&str>, listen: SocketAddr) -> String {
    given.map_or_else(|| format!("http://{listen}"), str::to_owned)
}

/// Options of `mesher serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on (HTTP API, WebSocket ingest and stream, dashboard).
    #[arg(long, env = "MESHER_LISTEN", default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,

    /// Events accepted per project per 60 s window; over it, 429 with Retry-After. 0 turns
    /// the limit off.
    #[arg(
        long,
        env = "MESHER_RATE_LIMIT",
        default_value_t = 1000,
        value_name = "N"
    )]
    pub rate_limit: u32,

    /// Days to keep events; a background task deletes older ones (and issues left empty).
    #[arg(long, env = "MESHER_RETENTION_DAYS", default_value_t = 90, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retention_days: u32,

    /// Messages each stream connection's outbox holds; when full the oldest is dropped and
    /// the client is told `{"type":"lagged","dropped":N}`.
    #[arg(long, env = "MESHER_MAX_BUFFER", default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_buffer: u32,

    /// Milliseconds between drain passes that flush whatever a stream outbox still holds.
    #[arg(long, env = "MESHER_DRAIN_INTERVAL_MS", default_value_t = 250, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub drain_interval_ms: u64,

    /// Milliseconds a stream write may take before the connection is closed.
    #[arg(long, env = "MESHER_WRITE_TIMEOUT_MS", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub write_timeout_ms: u64,

    /// Milliseconds a request body may go without sending a byte; then it is answered 408
    /// and its connection closed.
    #[arg(long, env = "MESHER_BODY_TIMEOUT_MS", default_value_t = 30_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub body_timeout_ms: u64,

    /// Milliseconds a connection may take to send a complete request head, counted from
    /// its accept or its previous response (so also how long a keep-alive connection may
    /// sit idle; at most 75 s); then it is closed.
    #[arg(long, env = "MESHER_HEADER_TIMEOUT_MS", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=75_000))]
    pub header_timeout_ms: u64,

    /// Open client connections at most (HTTP, /ingest and stream WebSockets); past it a new
    /// connection is answered 503 with Retry-After and closed. Lowered at start when the
    /// open-file limit cannot hold it.
    #[arg(long, env = "MESHER_MAX_CONNECTIONS", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Milliseconds between WebSocket pings to each stream client.
    #[arg(long, env = "MESHER_HEARTBEAT_INTERVAL_MS", default_value_t = 30_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub heartbeat_interval_ms: u64,

    /// Milliseconds to wait for the pong before closing the stream connection.
    #[arg(long, env = "MESHER_HEARTBEAT_TIMEOUT_MS", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub heartbeat_timeout_ms: u64,

    /// Most events one group-commit transaction holds.
    #[arg(long, env = "MESHER_COMMIT_BATCH", default_value_t = 512, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub commit_batch: u32,

    /// Microseconds a group commit waits for more requests after a busy one (8 requests
    /// or more), so that concurrent clients share fewer, larger transactions; 0 never
    /// waits. Default: 300 on PostgreSQL (a transaction there costs round trips, not the
    /// server's CPU), 0 on SQLite.
    #[arg(long, env = "MESHER_COMMIT_DELAY_US", value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub commit_delay_us: Option<u32>,

    /// Write requests waiting for the storage writer before ingestion answers 503.
    #[arg(long, env = "MESHER_WRITE_QUEUE", default_value_t = 1024, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub write_queue: u32,

    /// Redis for fan-out across nodes (redis://HOST:PORT[/DB]): every node sharing one
    /// PostgreSQL database and this Redis delivers every project's news to its own streams.
    #[arg(long, env = "MESHER_REDIS_URL", value_name = "URL", value_parser = parse_redis_url)]
    pub redis_url: Option<String>,

    /// The dashboard's address as people reach it (the links in Slack alerts); default
    /// `http://<listen address>`.
    #[arg(long, env = "MESHER_PUBLIC_URL", value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// The SMTP server e-mail alerts go through: `smtp://[user:pass@]host:port`
    /// (`?tls=required` for STARTTLS) or `smtps://…` for TLS. Default: no e-mail.
    #[arg(long, env = "MESHER_SMTP_URL", value_name = "URL", value_parser = SMTP_URL_PARSER,
          requires = "smtp_from")]
    pub smtp_url: Option<String>,

    /// The sender of e-mail alerts, e.g. `Mesher <mesher@example.com>`.
    #[arg(long, env = "MESHER_SMTP_FROM", value_name = "ADDRESS", value_parser = parse_smtp_from)]
    pub smtp_from: Option<String>,

    /// The OpenID Connect provider for "Sign in with SSO": its issuer URL (discovery at
    /// `<issuer>/.well-known/openid-configuration`). Needs the client id and secret.
    #[arg(long, env = "MESHER_OIDC_ISSUER", value_name = "URL", value_parser = parse_oidc_issuer,
          requires_all = ["oidc_client_id", "oidc_client_secret"])]
    pub oidc_issuer: Option<String>,

    /// Mesher's client id at the OpenID Connect provider.
    #[arg(
        long,
        env = "MESHER_OIDC_CLIENT_ID",
        value_name = "ID",
        requires = "oidc_issuer"
    )]
    pub oidc_client_id: Option<String>,

    /// Mesher's client secret at the OpenID Connect provider.
    #[arg(
        long,
        env = "MESHER_OIDC_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        requires = "oidc_issuer"
    )]
    pub oidc_client_secret: Option<String>,

    /// E-mail domains (comma list) whose people get an account at their first SSO sign-in.
    /// Default: none, so only users made beforehand (`user create`) sign in by SSO.
    #[arg(long, env = "MESHER_OIDC_ALLOW_DOMAIN", value_name = "DOMAIN", value_delimiter = ',',
          value_parser = parse_domain, requires = "oidc_issuer")]
    pub oidc_allow_domain: Vec<String>,

    /// Address ranges webhooks may reach although they are loopback, private, link-local,
    /// shared, unspecified, multicast or broadcast (e.g. 10.0.0.0/8 for an in-house
    /// receiver); repeatable, or comma-separated. Default: none.
    #[arg(long = "webhook-allow-cidr", env = "MESHER_WEBHOOK_ALLOW_CIDR", value_name = "CIDR",
          value_delimiter = ',', value_parser = crate::alerts::target::Cidr::parse_arg)]
    pub webhook_allow_cidr: Vec<crate::alerts::target::Cidr>,

    /// Memory for parsed source maps, in MiB: maps used least recently are dropped past it
    /// (a parsed map takes about twice its size).
    #[arg(
        long,
        env = "MESHER_SOURCEMAP_CACHE_MB",
        default_value_t = 256,
        value_name = "MIB"
    )]
    pub sourcemap_cache_mb: u32,

    /// How long a failing webhook delivery is retried before it is given up (24 h; tests
    /// shorten it).
    #[arg(skip = std::time::Duration::from_secs(86_400))]
    pub alert_retry_for: std::time::Duration,

    /// How long a stream opened without a token waits for its `auth` message (10 s;
    /// tests shorten it).
    #[arg(skip = std::time::Duration::from_secs(10))]
    pub stream_auth_timeout: std::time::Duration,
}

fn parse_smtp_url(s: &str) -> Result<String, String> {
    if !(s.starts_with("smtp://") || s.starts_with("smtps://")) {
        return Err("expected smtp://[user:pass@]host:port or smtps://…".into());
    }
    let timeout = std::time::Duration::from_secs(1);
    crate::alerts::mail::Mailer::new(s, "check@localhost", timeout).map(|_| s.to_owned())
}

fn parse_smtp_from(s: &str) -> Result<String, String> {
    s.parse::<lettre::message::Mailbox>()
        .map(|_| s.to_owned())
        .map_err(|e| format!("not an e-mail address: {e}"))
}

fn parse_oidc_issuer(s: &str) -> Result<String, String> {
    if !(s.starts_with("https://") || s.starts_with("http://")) {
        return Err("expected the provider's issuer URL, https://…".into());
    }
    crate::model::webhook::validate_url(s)?;
    Ok(s.to_owned())
}

fn parse_domain(s: &str) -> Result<String, String> {
    let d = s.trim().trim_start_matches('@').to_ascii_lowercase();
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if d.len() <= 253 && d.contains('.') && d.split('.').all(label) {
        Ok(d)
    } else {
        Err(format!("'{s}' is not an e-mail domain (like example.com)"))
    }
}

fn parse_public_url(s: &str) -> Result<String, String> {
    crate::model::webhook::validate_url(s)?;
    Ok(s.trim_end_matches('/').to_owned())
}

fn parse_redis_url(s: &str) -> Result<String, String> {
    match s.split_once("://") {
        Some(("redis", rest)) if !rest.is_empty() => redis::Client::open(s)
            .map(|_| s.to_owned())
            .map_err(|e| format!("invalid Redis URL: {e}")),
        Some((scheme, _)) => Err(format!(
            "unknown Redis scheme '{scheme}': expected redis://HOST:PORT"
        )),
        None => Err("expected redis://HOST:PORT".to_owned()),
    }
}

impl ServeConfig {
    /// `--public-url`, or `http://<listen address>`.
    pub fn public_url(&self) -> String {
        public_url(self.public_url.as_deref(), self.listen)
    }

    /// Defaults (as with no flags and no environment), for tests and embedding.
    pub fn new(listen: SocketAddr, database_url: DatabaseUrl) -> ServeConfig {
        ServeConfig {
            listen,
            database: DatabaseArgs { database_url },
            rate_limit: 1000,
            retention_days: 90,
            max_buffer: 100,
            drain_interval_ms: 250,
            write_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            header_timeout_ms: 10_000,
            max_connections: 10_000,
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 10_000,
            commit_batch: 512,
            commit_delay_us: None,
            write_queue: 1024,
            redis_url: None,
            public_url: None,
            smtp_url: None,
            smtp_from: None,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_allow_domain: Vec::new(),
            webhook_allow_cidr: Vec::new(),
            sourcemap_cache_mb: 256,
            alert_retry_for: std::time::Duration::from_secs(86_400),
            stream_auth_timeout: std::time::Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            "sqlite://x.db".parse::<DatabaseUrl>(),
            Ok(DatabaseUrl::Sqlite("sqlite://x.db".into()))
        );
        assert!(matches!(
            "postgres://u@h/db".parse::<DatabaseUrl>(),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert_eq!(
            "mysql://h/db".parse::<DatabaseUrl>().unwrap_err(),
            "unknown database scheme 'mysql': expected sqlite:// or postgres://"
        );
        assert!("mesher.db".parse::<DatabaseUrl>().is_err());
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn redis_urls() {
        assert_eq!(
            parse_redis_url("redis://127.0.0.1:6379"),
            Ok("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            parse_redis_url("http://x"),
            Err("unknown Redis scheme 'http': expected redis://HOST:PORT".into())
        );
        assert!(parse_redis_url("localhost:6379").is_err());
    }
}
