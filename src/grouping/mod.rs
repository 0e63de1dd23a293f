//! Grouping events into issues (pure): normalization and the fingerprint chain.

pub mod fingerprint;
pub mod normalize;

pub use fingerprint::{Fingerprint, FingerprintSource, culprit, fingerprint, title};
pub use normalize::normalize;
