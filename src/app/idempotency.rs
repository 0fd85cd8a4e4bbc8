//! One idempotency policy for every request that carries a client key: Redeem (order and
//! codes), Purchase (reference) and TopUp (reference). The key finds the earlier request; a
//! fingerprint over the *canonical* command decides whether this one is its retry.
//!
//! The canonical form is the parsed command (codes normalized, text trimmed, maps sorted)
//! serialized field by field in declaration order. Wire bytes are never hashed: protobuf map
//! fields encode in hash order, so two encodings of one request differ, within one process and
//! across replicas.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{AppError, ErrorReason};

/// The digest of a command's canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of `command`, a `kind` of request (so that commands of two RPCs never
    /// share one).
    pub(crate) fn of<C: Serialize>(kind: &str, command: &C) -> Result<Self, AppError> {
        let mut hasher = Sha256::new();
        hasher.update(kind.as_bytes());
        hasher.update([0]);
        serde_json::to_writer(&mut hasher, command)
            .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("canonical form")))?;
        Ok(Self(hex::encode(hasher.finalize())))
    }

    /// A fingerprint as stored beside the request it was taken of.
    pub(crate) fn stored(text: String) -> Self {
        Self(text)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a key reused with a different request is refused.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conflict {
    pub(crate) reason: ErrorReason,
    pub(crate) message: &'static str,
}

/// The answer to a request whose key an earlier request holds: the earlier result when both are
/// the same request, otherwise ALREADY_EXISTS with the conflict's reason.
pub(crate) fn replay<T>(
    earlier: T,
    earlier_fingerprint: &Fingerprint,
    request: &Fingerprint,
    conflict: Conflict,
) -> Result<T, AppError> {
    if earlier_fingerprint == request {
        Ok(earlier)
    } else {
        Err(AppError::Duplicate {
            reason: conflict.reason,
            message: conflict.message.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    #[derive(Serialize)]
    struct Command {
        order: String,
        metadata: BTreeMap<String, String>,
    }

    fn command(entries: impl IntoIterator<Item = (String, String)>) -> Command {
        Command {
            order: "o-1".into(),
            metadata: entries.into_iter().collect(),
        }
    }

    const CONFLICT: Conflict = Conflict {
        reason: ErrorReason::DuplicateOrder,
        message: "different",
    };

    #[test]
    fn a_map_in_any_order_has_one_fingerprint() {
        let entries: Vec<(String, String)> = (0..16)
            .map(|n| (format!("key{n}"), n.to_string()))
            .collect();
        // A HashMap iterates in a per-instance random order, like protobuf map encoding.
        let first: HashMap<String, String> = entries.iter().cloned().collect();
        let second: HashMap<String, String> = entries.iter().rev().cloned().collect();
        assert_eq!(
            Fingerprint::of("redeem", &command(first)).unwrap(),
            Fingerprint::of("redeem", &command(second)).unwrap()
        );
    }

    #[test]
    fn any_difference_or_another_kind_changes_it() {
        let base = Fingerprint::of("redeem", &command([("a".into(), "1".into())])).unwrap();
        let other_value = Fingerprint::of("redeem", &command([("a".into(), "2".into())])).unwrap();
        let other_kind = Fingerprint::of("purchase", &command([("a".into(), "1".into())])).unwrap();
        assert_ne!(base, other_value);
        assert_ne!(base, other_kind);
    }

    #[test]
    fn replays_the_same_request_and_refuses_another() {
        let one = Fingerprint::stored("a".into());
        let two = Fingerprint::stored("b".into());
        assert_eq!(replay(7, &one, &one, CONFLICT).unwrap(), 7);
        match replay(7, &one, &two, CONFLICT) {
            Err(AppError::Duplicate { reason, .. }) => {
                assert_eq!(reason, ErrorReason::DuplicateOrder)
            }
            other => panic!("expected a duplicate, got {other:?}"),
        }
    }
}
