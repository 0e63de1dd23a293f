//! A real OpenID Connect provider on loopback for the SSO tests: PyPI's
//! `oidc-provider-mock` (tests/requirements.txt, run with `MESHER_TEST_PYTHON`). Any client
//! id and secret are accepted; `PUT /users/<sub>` sets the claims its ID token carries; its
//! authorization page is a form where a subject is typed in and "Authorize" pressed.

use super::WAIT;
use super::process::free_port;
use reqwest::StatusCode;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The Python that has `oidc-provider-mock` (scripts/test.sh sets it up in
/// target/oidc-venv, apart from the SDK's: its Flask would switch on the SDK's Flask
/// integration).
fn python() -> String {
    std::env::var("MESHER_TEST_OIDC_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/oidc-venv/bin/python").to_owned()
    })
}

/// `oidc-provider-mock` on a free port, killed when dropped.
pub(crate) struct Provider {
    pub base: String,
    _child: Child,
}

impl Provider {
    pub(crate) async fn start() -> Provider {
        let port = free_port();
        let child = Command::new(python())
            .args(["-m", "oidc_provider_mock", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python with oidc-provider-mock starts (tests/requirements.txt)");
        let base = format!("http://127.0.0.1:{port}");
        let discovery = format!("{base}/.well-known/openid-configuration");
        tokio::time::timeout(WAIT, async {
            loop {
                if let Ok(r) = reqwest::get(&discovery).await
                    && r.status() == StatusCode::OK
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the identity provider starts within 10 s");
        Provider {
            base,
            _child: child,
        }
    }

    /// Sets the claims the provider puts in `sub`'s ID token.
    pub(crate) async fn user(&self, sub: &str, claims: Value) {
        let r = reqwest::Client::new()
            .put(format!("{}/users/{sub}", self.base))
            .json(&claims)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}
