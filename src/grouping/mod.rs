//! Grouping events into issues (pure): normalization and the fingerprint chain.

pub(crate) mod fingerprint;
pub(crate) mod normalize;

pub(crate) use fingerprint::{culprit, fingerprint, legacy_fingerprint, title};
