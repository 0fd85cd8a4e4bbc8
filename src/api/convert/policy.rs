//! Tenant policies: proto <-> domain.

use super::{clean, timestamp_to_pb};
use crate::{
    domain::policy::{PolicyField, TenantPolicy},
    pb,
};

/// Fields of a policy that UpdateTenantPolicy can replace, by proto name.
pub fn updatable() -> Vec<&'static str> {
    PolicyField::ALL.iter().map(|(name, _)| *name).collect()
}

/// The policy fields named by already checked mask `paths`.
pub fn fields(paths: &[String]) -> Vec<PolicyField> {
    PolicyField::ALL
        .iter()
        .filter(|(name, _)| paths.iter().any(|p| p == name))
        .map(|(_, field)| *field)
        .collect()
}

/// A proto policy's values, trimmed; blanks in lists are dropped.
pub fn policy_from_pb(policy: &pb::TenantPolicy) -> TenantPolicy {
    TenantPolicy {
        refuse_loyalty_points: policy.refuse_loyalty_points,
        requires_verified_phone: policy.requires_verified_phone,
        excluded_order_types: clean(&policy.excluded_order_types),
        default_channel: policy.default_channel.trim().to_owned(),
        updated_at: None,
    }
}

/// A policy as its proto message.
pub fn policy_to_pb(policy: &TenantPolicy) -> pb::TenantPolicy {
    pb::TenantPolicy {
        refuse_loyalty_points: policy.refuse_loyalty_points,
        requires_verified_phone: policy.requires_verified_phone,
        excluded_order_types: policy.excluded_order_types.clone(),
        default_channel: policy.default_channel.clone(),
        update_time: policy.updated_at.map(timestamp_to_pb),
    }
}
