//! Secrets as logs and errors show them (SPEC §8): a database URL's password, and the
//! credential values of a logged request's query, as `***`.

/// `url` with the password of its user part, and any `password=` query value, shown as
/// `***` (`postgres://mesher:***@db/mesher`): a database URL as logs and errors show it.
pub(crate) fn redact_url(url: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    if let Some((scheme, after)) = url.split_once("://") {
        out.push_str(scheme);
        out.push_str("://");
        rest = after;
        // The last `@` ends the user part: a password may hold `/`, `?` or `@` unescaped.
        if let Some((user_info, host)) = after.rsplit_once('@') {
            match user_info.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(user_info),
            }
            out.push('@');
            rest = host;
        }
    }
    match rest.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_params(query, &["password", "sslpassword"]));
        }
        None => out.push_str(rest),
    }
    if out == url {
        std::borrow::Cow::Borrowed(url)
    } else {
        std::borrow::Cow::Owned(out)
    }
}

/// Query parameters whose values are credentials, shown as `***` in logged requests.
const SECRET_PARAMS: [&str; 3] = ["token", "sentry_key", "sentry_secret"];

/// A query string with the values of the parameters named in `names` shown as `***`;
/// everything else as it was sent.
fn redact_params<'a>(query: &'a str, names: &[&str]) -> std::borrow::Cow<'a, str> {
    let secret = |pair: &str| {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        let name = form_urlencoded::parse(name.as_bytes())
            .next()
            .map(|(n, _)| n.into_owned())
            .unwrap_or_default();
        names.iter().any(|s| s.eq_ignore_ascii_case(&name))
    };
    if !query.split('&').any(secret) {
        return std::borrow::Cow::Borrowed(query);
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret(pair) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    std::borrow::Cow::Owned(pairs.join("&"))
}

/// A request's path and query as logged: credential values shown as `***`.
fn redact_uri(uri: &axum::http::Uri) -> std::borrow::Cow<'_, str> {
    match uri.query() {
        None => std::borrow::Cow::Borrowed(uri.path()),
        Some(q) => std::borrow::Cow::Owned(format!(
            "{}?{}",
            uri.path(),
            redact_params(q, &SECRET_PARAMS)
        )),
    }
}

/// The request log's span (tower-http's, with the query's credentials redacted).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RequestSpan;

impl<B> tower_http::trace::MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> tracing::Span {
        // tower-http's own target, so that `RUST_LOG=tower_http=debug` shows it as before.
        tracing::debug_span!(
            target: "tower_http::trace::make_span",
            "request",
            method = %request.method(),
            uri = %redact_uri(request.uri()),
            version = ?request.version(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted() {
        for (url, shown) in [
            (
                "postgres://mesher:s3cret@db:5432/mesher",
                "postgres://mesher:***@db:5432/mesher",
            ),
            (
                "postgresql://u:p%40ss@h/db?sslmode=require&password=x",
                "postgresql://u:***@h/db?sslmode=require&password=***",
            ),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:a/b?c@h/db", "postgres://u:***@h/db"),
            ("postgres://mesher@db/mesher", "postgres://mesher@db/mesher"),
            ("sqlite://mesher.db", "sqlite://mesher.db"),
            ("sqlite:data/x.db", "sqlite:data/x.db"),
            (
                "redis://:pw@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn credential_params_are_redacted() {
        let uri: axum::http::Uri =
            "/api/1/store/?sentry_version=7&sentry_key=abc&token=t%20x&level=error&TOKEN=x&token"
                .parse()
                .unwrap();
        assert_eq!(
            redact_uri(&uri),
            "/api/1/store/?sentry_version=7&sentry_key=***&token=***&level=error&TOKEN=***&token"
        );
        let plain: axum::http::Uri = "/stream/projects/1?level=error".parse().unwrap();
        assert_eq!(redact_uri(&plain), "/stream/projects/1?level=error");
        assert_eq!(
            redact_params("sentry%5Fkey=k&x=1", &SECRET_PARAMS),
            "sentry%5Fkey=***&x=1"
        );
    }
}
