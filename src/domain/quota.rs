//! Per-tenant quotas: how many calls a tenant may make, and how many unknown codes one of its end
//! customers may try, before the service answers RESOURCE_EXHAUSTED.
//!
//! A tenant stores only the limits it overrides; every other limit is the service's configured
//! default, so changing a default reaches every tenant that never chose its own.

use std::time::Duration;

use super::{audit::AuditEntry, Problem, Timestamp, Violations};

/// Largest rate, burst or unknown-code limit a tenant can hold.
pub const MAX_LIMIT: u32 = 1_000_000;
/// Longest unknown-code window: one day.
pub const MAX_WINDOW_SECS: u32 = 86_400;

/// The limits that apply to a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Calls per second on average, across every service; 0 means no request quota.
    pub requests_per_second: u32,
    /// Calls that may arrive at once after a quiet spell; at least 1 when there is a quota.
    pub burst: u32,
    /// Unknown-code answers one end customer may get per `unknown_code_window`; 0 means no
    /// throttle.
    pub unknown_code_limit: u32,
    /// The window `unknown_code_limit` is counted over (refilled continuously).
    pub unknown_code_window: Duration,
}

/// The limits a tenant chose; `None` follows the service's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantQuota {
    pub requests_per_second: Option<u32>,
    pub burst: Option<u32>,
    pub unknown_code_limit: Option<u32>,
    pub unknown_code_window_secs: Option<u32>,
    /// When the tenant last changed its quota; `None` while never set.
    pub updated_at: Option<Timestamp>,
}

/// A limit of the quota that an update can replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaField {
    RequestsPerSecond,
    Burst,
    UnknownCodeLimit,
    UnknownCodeWindow,
}

impl QuotaField {
    /// Every field, by its proto name.
    pub const ALL: [(&'static str, QuotaField); 4] = [
        ("requests_per_second", QuotaField::RequestsPerSecond),
        ("burst", QuotaField::Burst),
        ("unknown_code_limit", QuotaField::UnknownCodeLimit),
        ("unknown_code_window_seconds", QuotaField::UnknownCodeWindow),
    ];
}

impl TenantQuota {
    /// `audit` with each limit of `fields` and its new value (`null`: the default again).
    pub fn audited(&self, mut audit: AuditEntry, fields: &[QuotaField]) -> AuditEntry {
        for field in fields {
            audit = match field {
                QuotaField::RequestsPerSecond => {
                    audit.with("requests_per_second", self.requests_per_second)
                }
                QuotaField::Burst => audit.with("burst", self.burst),
                QuotaField::UnknownCodeLimit => {
                    audit.with("unknown_code_limit", self.unknown_code_limit)
                }
                QuotaField::UnknownCodeWindow => {
                    audit.with("unknown_code_window_seconds", self.unknown_code_window_secs)
                }
            };
        }
        audit
    }

    /// The limits in force: the tenant's own where it chose them, else `defaults`.
    pub fn over(&self, defaults: &QuotaLimits) -> QuotaLimits {
        QuotaLimits {
            requests_per_second: self
                .requests_per_second
                .unwrap_or(defaults.requests_per_second),
            burst: self.burst.unwrap_or(defaults.burst),
            unknown_code_limit: self
                .unknown_code_limit
                .unwrap_or(defaults.unknown_code_limit),
            unknown_code_window: self
                .unknown_code_window_secs
                .map_or(defaults.unknown_code_window, |secs| {
                    Duration::from_secs(u64::from(secs))
                }),
        }
    }

    /// Records every limit out of range, under `prefix` (such as `quota`).
    pub fn check(&self, prefix: &str, violations: &mut Violations) {
        for (name, value, max) in [
            ("requests_per_second", self.requests_per_second, MAX_LIMIT),
            ("burst", self.burst, MAX_LIMIT),
            ("unknown_code_limit", self.unknown_code_limit, MAX_LIMIT),
            (
                "unknown_code_window_seconds",
                self.unknown_code_window_secs,
                MAX_WINDOW_SECS,
            ),
        ] {
            if let Some(value) = value {
                violations.require(
                    (1..=max).contains(&value),
                    &format!("{prefix}.{name}"),
                    Problem::QuotaOutOfRange { max },
                );
            }
        }
    }

    /// Records every limit that is looser than `ceiling` (the service's defaults), under
    /// `prefix`: a tenant's own key may tighten its quota, only the operator loosens it.
    pub fn check_within(&self, ceiling: &QuotaLimits, prefix: &str, violations: &mut Violations) {
        let above = |value: Option<u32>, max: u32| max != 0 && value.is_some_and(|v| v > max);
        if above(self.requests_per_second, ceiling.requests_per_second) {
            violations.add(
                format!("{prefix}.requests_per_second"),
                Problem::AboveServiceDefault {
                    default: ceiling.requests_per_second,
                },
            );
        }
        if above(self.burst, ceiling.burst) {
            violations.add(
                format!("{prefix}.burst"),
                Problem::AboveServiceDefault {
                    default: ceiling.burst,
                },
            );
        }
        if above(self.unknown_code_limit, ceiling.unknown_code_limit) {
            violations.add(
                format!("{prefix}.unknown_code_limit"),
                Problem::AboveServiceDefault {
                    default: ceiling.unknown_code_limit,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: QuotaLimits = QuotaLimits {
        requests_per_second: 100,
        burst: 200,
        unknown_code_limit: 20,
        unknown_code_window: Duration::from_secs(300),
    };

    #[test]
    fn a_tenant_overrides_only_what_it_chose() {
        let quota = TenantQuota {
            burst: Some(5),
            unknown_code_window_secs: Some(60),
            ..TenantQuota::default()
        };
        let limits = quota.over(&DEFAULTS);
        assert_eq!(limits.requests_per_second, 100);
        assert_eq!(limits.burst, 5);
        assert_eq!(limits.unknown_code_limit, 20);
        assert_eq!(limits.unknown_code_window, Duration::from_secs(60));
    }

    #[test]
    fn out_of_range_and_looser_than_the_default_are_refused() {
        let quota = TenantQuota {
            requests_per_second: Some(MAX_LIMIT + 1),
            unknown_code_window_secs: Some(MAX_WINDOW_SECS + 1),
            unknown_code_limit: Some(21),
            ..TenantQuota::default()
        };
        let mut violations = Violations::new();
        quota.check("quota", &mut violations);
        quota.check_within(&DEFAULTS, "quota", &mut violations);
        let fields: Vec<String> = violations
            .into_error()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            // One problem per field: the range, then the ceiling for a field still in range.
            [
                "quota.requests_per_second",
                "quota.unknown_code_window_seconds",
                "quota.unknown_code_limit",
            ]
        );
    }
}
