//! Tenant policies: rules every coupon of a tenant obeys, so that one coupon created without a
//! flag cannot break the tenant's rule (the cart API never combines coupons with loyalty points,
//! the promo-check API always wants a verified phone, the payment-link API never discounts
//! payment requests or fundraising links).
//!
//! The engine checks a policy before each coupon's own conditions and refuses with the same
//! reasons a coupon's conditions would; a coupon's own conditions can only add to it.

use super::{audit::AuditEntry, Problem, Timestamp, Violations};

/// Longest channel or order type name a policy keeps.
const MAX_NAME_LEN: usize = 64;
/// Most order types a policy lists.
const MAX_ORDER_TYPES: usize = 100;

/// A tenant's policy. The default is the empty policy, which adds no rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantPolicy {
    /// No coupon combines with loyalty points.
    pub refuse_loyalty_points: bool,
    /// Every coupon needs a verified phone.
    pub requires_verified_phone: bool,
    /// Order or payment-link types that never take coupons, compared case-insensitively.
    pub excluded_order_types: Vec<String>,
    /// Channel assumed when a checkout names none; empty for none.
    pub default_channel: String,
    /// When the policy last changed; `None` while never set.
    pub updated_at: Option<Timestamp>,
}

/// A field of the policy that an update can replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyField {
    RefuseLoyaltyPoints,
    RequiresVerifiedPhone,
    ExcludedOrderTypes,
    DefaultChannel,
}

impl PolicyField {
    /// Every field, by its proto name.
    pub const ALL: [(&'static str, PolicyField); 4] = [
        ("refuse_loyalty_points", PolicyField::RefuseLoyaltyPoints),
        (
            "requires_verified_phone",
            PolicyField::RequiresVerifiedPhone,
        ),
        ("excluded_order_types", PolicyField::ExcludedOrderTypes),
        ("default_channel", PolicyField::DefaultChannel),
    ];
}

impl TenantPolicy {
    /// Records every rule the policy breaks, under `prefix` (such as `policy`).
    pub fn check(&self, prefix: &str, violations: &mut Violations) {
        violations.require(
            self.excluded_order_types.len() <= MAX_ORDER_TYPES,
            &format!("{prefix}.excluded_order_types"),
            Problem::TooManyOrderTypes {
                max: MAX_ORDER_TYPES,
            },
        );
        for (index, order_type) in self.excluded_order_types.iter().enumerate() {
            violations.require(
                order_type.chars().count() <= MAX_NAME_LEN,
                &format!("{prefix}.excluded_order_types[{index}]"),
                Problem::TooLong { max: MAX_NAME_LEN },
            );
        }
        violations.require(
            self.default_channel.chars().count() <= MAX_NAME_LEN,
            &format!("{prefix}.default_channel"),
            Problem::TooLong { max: MAX_NAME_LEN },
        );
    }

    /// `audit` with each field of `fields` and its new value.
    pub fn audited(&self, mut audit: AuditEntry, fields: &[PolicyField]) -> AuditEntry {
        for field in fields {
            audit = match field {
                PolicyField::RefuseLoyaltyPoints => {
                    audit.with("refuse_loyalty_points", self.refuse_loyalty_points)
                }
                PolicyField::RequiresVerifiedPhone => {
                    audit.with("requires_verified_phone", self.requires_verified_phone)
                }
                PolicyField::ExcludedOrderTypes => {
                    audit.with("excluded_order_types", self.excluded_order_types.clone())
                }
                PolicyField::DefaultChannel => {
                    audit.with("default_channel", self.default_channel.as_str())
                }
            };
        }
        audit
    }

    /// Whether the policy refuses coupons on this order type.
    pub fn refuses_order_type(&self, order_type: &str) -> bool {
        !order_type.is_empty()
            && self
                .excluded_order_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(order_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_listed_order_types_in_any_case_and_never_an_empty_one() {
        let policy = TenantPolicy {
            excluded_order_types: vec!["payment_request".into()],
            ..TenantPolicy::default()
        };
        assert!(policy.refuses_order_type("PAYMENT_REQUEST"));
        assert!(!policy.refuses_order_type("checkout"));
        assert!(!policy.refuses_order_type(""));
    }

    #[test]
    fn reports_overlong_names() {
        let policy = TenantPolicy {
            excluded_order_types: vec!["x".repeat(65)],
            default_channel: "y".repeat(65),
            ..TenantPolicy::default()
        };
        let mut violations = Violations::new();
        policy.check("policy", &mut violations);
        let fields: Vec<String> = violations
            .finish(())
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            ["policy.excluded_order_types[0]", "policy.default_channel"]
        );
    }
}
