//! People (SPEC §9): users, their e-mail addresses and passwords, and the secrets that act
//! for them (sessions, API tokens). Pure: hashing is CPU work, not I/O.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use serde::Serialize;

/// A user's id.
pub type UserId = i64;

/// A user as shown (never with a password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// User id.
    pub id: UserId,
    /// Their e-mail address, lowercased.
    pub email: String,
    /// Whether they may use every project and the admin routes.
    pub admin: bool,
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Longest password accepted (Argon2 hashes any length; this bounds the work a request can
/// ask for).
pub const MAX_PASSWORD_CHARS: usize = 1_024;

/// Longest e-mail address (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;

/// Why an account's input was refused; the message is shown to the user as is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// Not an e-mail address.
    #[error("'{0}' is not an e-mail address")]
    Email(String),
    /// A password too short or too long.
    #[error("a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
    Password,
}

/// `email` lowercased and trimmed, if it looks like an address: one `@` with text on both
/// sides, a dot in the domain, no spaces or control characters.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let e = email.trim().to_lowercase();
    let bad = || AccountError::Email(email.to_owned());
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    let plausible = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && e.chars().count() <= MAX_EMAIL_CHARS
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if plausible { Ok(e) } else { Err(bad()) }
}

/// The domain of a normalized address.
pub fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

/// Checks a chosen password's length.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(AccountError::Password)
    }
}

/// A generated password: 24 characters from a 56-letter alphabet without look-alikes
/// (about 139 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The Argon2id hash of `password` (PHC string, with its own random salt), with the
/// crate's default cost (19 MiB, 2 passes: OWASP's recommendation).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode as a salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2id with default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches a stored hash (false for a hash that cannot be read).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to verify against when the e-mail is unknown, so that an unknown address costs
/// the same time as a wrong password and the answer's timing tells nothing.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("not a password anyone has"))
}

/// A new session secret (the cookie's value): 64 hex digits.
pub fn new_session_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A new API token: `mshr_` and 48 hex digits.
pub fn new_api_token() -> String {
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    format!("mshr_{}", hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lowercased_and_malformed_ones_refused() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a b@x.io",
            "a@b@x.io",
            "ada@.io",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(email_domain("ada@example.com"), "example.com");
    }

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterx", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn passwords_need_ten_characters_and_generated_ones_have_more() {
        assert_eq!(check_password("123456789"), Err(AccountError::Password));
        assert!(check_password("1234567890").is_ok());
        let p = generate_password();
        assert!(p.chars().count() >= 20 && check_password(&p).is_ok());
        assert_ne!(p, generate_password());
        assert!(new_api_token().starts_with("mshr_") && new_api_token().len() >= 45);
    }
}
