//! The server side of the RFC 6455 opening handshake.

use axum::http::{HeaderMap, HeaderValue, Method, header};

/// Checks that a request asks for a WebSocket (RFC 6455 §4.2.1) and returns the
/// `Sec-WebSocket-Accept` value to answer it with; the error says what is missing.
pub(crate) fn accept_key(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, String> {
    if method != Method::GET {
        return Err("a WebSocket upgrade must be a GET request".into());
    }
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err(
            "this route is a WebSocket: send 'Connection: Upgrade' and 'Upgrade: websocket'".into(),
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("'Sec-WebSocket-Version' must be 13".into());
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("the 'Sec-WebSocket-Key' header is missing")?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(HeaderValue::from_str(&accept).expect("base64 is a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_rfc_example_is_accepted() {
        let h = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert_eq!(
            accept_key(&Method::GET, &h).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn what_is_missing_is_named() {
        let plain = headers(&[]);
        assert!(
            accept_key(&Method::GET, &plain)
                .unwrap_err()
                .contains("Upgrade")
        );
        let old = headers(&[
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "8"),
        ]);
        assert!(accept_key(&Method::GET, &old).unwrap_err().contains("13"));
        let keyless = headers(&[
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
        ]);
        assert!(
            accept_key(&Method::GET, &keyless)
                .unwrap_err()
                .contains("Key")
        );
        assert!(
            accept_key(&Method::POST, &keyless)
                .unwrap_err()
                .contains("GET")
        );
    }
}
