//! Single sign-on by OpenID Connect (SPEC §9): the authorization-code flow with PKCE,
//! `state` and `nonce`, ending in the one claim Mesher needs, a verified e-mail.
//!
//! The flow's secrets (state, nonce, PKCE verifier) travel in a short-lived HttpOnly
//! cookie rather than in server memory, so the callback may reach any node behind a
//! load balancer. The cookie holds nothing an attacker could use: it only lets the
//! browser that started a sign-in finish it (the `state` must match), and the ID token
//! must carry its `nonce`.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a started sign-in may take to come back (the flow cookie's lifetime).
pub(crate) const FLOW_LIFETIME: Duration = Duration::from_secs(600);
/// How long the provider's discovery document (and so its signing keys) is reused.
const METADATA_FOR: Duration = Duration::from_secs(3600);
/// Each call to the provider (discovery, keys, token exchange) gets this long.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest local path a sign-in may return to.
const MAX_NEXT: usize = 1024;

/// `--oidc-*`: the provider and who may come in through it.
/// No `Debug`: it holds the client secret.
#[derive(Clone)]
pub(crate) struct SsoSettings {
    /// The issuer URL; its discovery document is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Mesher's client id at the provider.
    pub client_id: String,
    /// Mesher's client secret at the provider.
    pub client_secret: String,
    /// E-mail domains whose unknown users are created at their first sign-in.
    pub allow_domains: Vec<String>,
    /// `<public-url>/auth/oidc/callback`.
    pub redirect_uri: String,
}

/// Why a sign-in by SSO did not sign anyone in; each is shown as a page.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SsoError {
    /// Discovery or the keys could not be fetched.
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider sent the user back with an error (denied, for one).
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// No flow cookie: the sign-in was not started in this browser, or took over 10 minutes.
    #[error("this sign-in was not started here or took too long; start again")]
    NoFlow,
    /// The `state` sent back is not the one this browser was given.
    #[error("the sign-in's state does not match the one this browser was given; start again")]
    StateMismatch,
    /// The callback came without a code.
    #[error("the identity provider sent no authorization code")]
    NoCode,
    /// The provider did not take the code (used, expired, or not ours).
    #[error("the identity provider did not accept the sign-in code (expired or used?): {0}")]
    CodeRefused(String),
    /// The ID token is missing, forged, expired or for another nonce or client.
    #[error("the identity provider's ID token could not be verified: {0}")]
    BadIdToken(String),
    /// The ID token names no e-mail.
    #[error("the identity provider sent no e-mail address (is the 'email' scope allowed?)")]
    NoEmail,
    /// The e-mail is not marked verified.
    #[error("the e-mail address {0} is not verified at the identity provider")]
    Unverified(String),
    /// No user has this e-mail and its domain is not in `--oidc-allow-domain`.
    #[error("there is no Mesher account for {0}, and its domain may not create one; ask an admin")]
    NotAllowed(String),
}

impl SsoError {
    /// The page's HTTP status.
    pub(crate) fn status(&self) -> u16 {
        match self {
            SsoError::Unreachable(_) | SsoError::CodeRefused(_) => 502,
            SsoError::Unverified(_) | SsoError::NotAllowed(_) | SsoError::Refused(_) => 403,
            _ => 400,
        }
    }
}

/// One sign-in in progress, kept in the browser's flow cookie.
#[derive(Debug, PartialEq)]
pub(crate) struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    /// The local path to return to, e.g. `/#project=1&issue=7`.
    pub next: String,
}

impl Flow {
    /// The cookie value: four dot-separated fields, the path hex-encoded (cookie-safe).
    pub(crate) fn to_cookie(&self) -> String {
        let next = hex::encode(self.next.as_bytes());
        format!("{}.{}.{}.{next}", self.state, self.nonce, self.verifier)
    }

    /// Reads a cookie value written by [`Flow::to_cookie`].
    pub(crate) fn from_cookie(value: &str) -> Option<Flow> {
        let mut parts = value.split('.');
        let (state, nonce, verifier, next) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let next = String::from_utf8(hex::decode(next).ok()?).ok()?;
        let ok = parts.next().is_none() && [state, nonce, verifier].iter().all(|p| !p.is_empty());
        ok.then(|| Flow {
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            verifier: verifier.to_owned(),
            next: safe_next(Some(&next)),
        })
    }

    /// Whether the callback's `state` is this flow's.
    pub(crate) fn state_is(&self, state: &str) -> bool {
        constant_time_eq(self.state.as_bytes(), state.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A local path to return to after signing in: `next` when it is one (starts with one `/`,
/// no scheme or host, printable), else `/`. Keeps the flow from redirecting off-site.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= MAX_NEXT
                && n.chars().all(|c| c.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The OpenID Connect client: the settings and the provider's cached metadata.
pub(crate) struct Sso {
    settings: SsoSettings,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl Sso {
    /// A client for `settings`; the provider is first asked at the first sign-in, so that
    /// the server starts while the provider is away.
    pub(crate) fn new(settings: SsoSettings) -> Sso {
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer send us anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .expect("a client with no redirects builds");
        Sso {
            settings,
            http,
            metadata: Mutex::new(None),
        }
    }

    /// Whether an unknown user with this (normalized) e-mail may be created.
    pub(crate) fn may_create(&self, email: &str) -> bool {
        let domain = crate::model::user::email_domain(email);
        self.settings
            .allow_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// The provider's metadata, discovered at most once an hour.
    async fn metadata(&self, refresh: bool) -> Result<CoreProviderMetadata, SsoError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, m)) = cached.as_ref()
            && !refresh
            && at.elapsed() < METADATA_FOR
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| SsoError::Unreachable(e.to_string()))?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| SsoError::Unreachable(error_chain(&e)))?;
        *cached = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    fn client(&self, metadata: CoreProviderMetadata) -> Result<SsoClient, SsoError> {
        let redirect = RedirectUrl::new(self.settings.redirect_uri.clone())
            .map_err(|e| SsoError::Unreachable(format!("bad redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: the provider's URL to send the browser to, and the flow to keep
    /// in its cookie.
    pub(crate) async fn begin(&self, next: String) -> Result<(String, Flow), SsoError> {
        let client = self.client(self.metadata(false).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let flow = Flow {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next,
        };
        Ok((url.to_string(), flow))
    }

    /// Finishes a sign-in whose `state` was checked: exchanges the code, verifies the ID
    /// token (signature, issuer, audience, expiry, nonce) and returns its verified e-mail.
    pub(crate) async fn finish(&self, flow: &Flow, code: &str) -> Result<String, SsoError> {
        let client = self.client(self.metadata(false).await?)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SsoError::Unreachable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()));
        let tokens = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => SsoError::CodeRefused(r.to_string()),
                other => SsoError::Unreachable(error_chain(&other)),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SsoError::BadIdToken("the token response has no ID token".into()))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(c) => c.clone(),
            // The provider may have rotated its keys since discovery: fetch them once more.
            Err(_) => {
                let client = self.client(self.metadata(true).await?)?;
                id_token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|e| SsoError::BadIdToken(e.to_string()))?
                    .clone()
            }
        };
        let email = claims.email().ok_or(SsoError::NoEmail)?.as_str();
        let email = crate::model::user::normalize_email(email).map_err(|_| SsoError::NoEmail)?;
        match claims.email_verified() {
            Some(true) => Ok(email),
            _ => Err(SsoError::Unverified(email)),
        }
    }
}

type SsoClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// An error and its causes on one line (reqwest's own message hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_survives_its_cookie_and_a_tampered_one_is_refused() {
        let flow = Flow {
            state: "s-1_x".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            next: "/#project=1&issue=7".into(),
        };
        let back = Flow::from_cookie(&flow.to_cookie()).expect("reads back");
        assert_eq!(back, flow);
        assert!(back.state_is("s-1_x"));
        assert!(!back.state_is("s-1_y"));
        assert!(!back.state_is("s-1_x1"));
        assert_eq!(Flow::from_cookie("a.b.c"), None);
        assert_eq!(Flow::from_cookie("a.b.c.zz"), None);
        assert_eq!(Flow::from_cookie("a..c.2f"), None);
        assert_eq!(Flow::from_cookie("a.b.c.2f.e"), None);
    }

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(
            safe_next(Some("/#project=1&issue=7")),
            "/#project=1&issue=7"
        );
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "",
            "/a b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(2000)))), "/");
    }
}
