//! Tenant quotas: proto <-> domain.

use super::timestamp_to_pb;
use crate::{
    domain::quota::{QuotaField, QuotaLimits, TenantQuota},
    pb,
};

/// Fields of a quota that UpdateTenantQuota can replace, by proto name.
pub fn updatable() -> Vec<&'static str> {
    QuotaField::ALL.iter().map(|(name, _)| *name).collect()
}

/// The quota fields named by already checked mask `paths`.
pub fn fields(paths: &[String]) -> Vec<QuotaField> {
    QuotaField::ALL
        .iter()
        .filter(|(name, _)| paths.iter().any(|p| p == name))
        .map(|(_, field)| *field)
        .collect()
}

/// The limits of `quota` named in `fields`; 0 (and every field not named) is `None`, the
/// service default.
pub fn quota_from_pb(quota: &pb::TenantQuota, fields: &[QuotaField]) -> TenantQuota {
    let named =
        |field: QuotaField, value: u32| (fields.contains(&field) && value != 0).then_some(value);
    TenantQuota {
        requests_per_second: named(QuotaField::RequestsPerSecond, quota.requests_per_second),
        burst: named(QuotaField::Burst, quota.burst),
        unknown_code_limit: named(QuotaField::UnknownCodeLimit, quota.unknown_code_limit),
        unknown_code_window_secs: named(
            QuotaField::UnknownCodeWindow,
            quota.unknown_code_window_seconds,
        ),
        updated_at: None,
    }
}

/// The limits in force for a tenant that chose `quota`, as the proto message.
pub fn quota_to_pb(quota: &TenantQuota, defaults: &QuotaLimits) -> pb::TenantQuota {
    let limits = quota.over(defaults);
    pb::TenantQuota {
        requests_per_second: limits.requests_per_second,
        burst: limits.burst,
        unknown_code_limit: limits.unknown_code_limit,
        unknown_code_window_seconds: u32::try_from(limits.unknown_code_window.as_secs())
            .unwrap_or(u32::MAX),
        update_time: quota.updated_at.map(timestamp_to_pb),
    }
}
