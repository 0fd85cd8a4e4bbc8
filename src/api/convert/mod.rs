//! Translation between proto messages and domain types. Parsing collects every violation with
//! its proto field path; nothing here decides business rules.

pub mod admin;
pub mod checkout;
pub mod coupon;
pub mod ledger;
pub mod policy;
pub mod quota;
pub mod stats;
pub mod voucher;

use crate::domain::{Problem, Timestamp};

/// A proto timestamp as a domain one; `None` when out of range.
pub fn timestamp_from_pb(ts: &prost_types::Timestamp) -> Option<Timestamp> {
    Timestamp::from_parts(ts.seconds, ts.nanos)
}

/// A domain timestamp as a proto one.
pub fn timestamp_to_pb(ts: Timestamp) -> prost_types::Timestamp {
    let (seconds, nanos) = ts.to_parts();
    prost_types::Timestamp { seconds, nanos }
}

/// Strings without blanks, trimmed.
fn clean(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A proto field mask's paths, checked against the ones an update accepts.
pub fn mask_paths(
    mask: Option<&prost_types::FieldMask>,
    allowed: &[&'static str],
    violations: &mut crate::domain::Violations,
) -> Vec<String> {
    let paths = mask.map(|m| m.paths.clone()).unwrap_or_default();
    if paths.is_empty() {
        violations.add("update_mask", Problem::UpdateMaskRequired);
    }
    for path in &paths {
        if !allowed.contains(&path.as_str()) {
            violations.add(
                "update_mask",
                Problem::NotUpdatable {
                    path: path.clone(),
                    allowed: allowed.to_vec(),
                },
            );
        }
    }
    paths
}

// Keeps the generated enum conversions in one place.
fn enum_value<E: TryFrom<i32>>(value: i32) -> Option<E> {
    E::try_from(value).ok()
}
