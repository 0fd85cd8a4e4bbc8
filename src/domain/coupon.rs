//! Coupon definitions: what a coupon gives, to which lines, under which conditions, how often.
//!
//! [`CouponRules::check`] holds every rule a definition must satisfy; the API layer reports its
//! violations with the proto field paths used here.

use serde::{Deserialize, Serialize};

use super::{Code, Currency, Timestamp, Violations};

/// Largest percentage, in basis points (100%).
pub const MAX_BPS: u32 = 10_000;

/// Everything that defines a coupon except its code and identity. Stored as one JSON document;
/// the columns that limits are enforced on are kept beside it by the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponRules {
    pub description: String,
    pub currency: Option<Currency>,
    pub discount: DiscountRule,
    pub target: Target,
    pub conditions: Conditions,
    pub limits: Limits,
    pub stacking: Stacking,
}

/// What a coupon gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiscountRule {
    /// `amount` minor units off the eligible lines.
    FixedAmount { amount: i64 },
    /// `basis_points` off the eligible lines, at most `max_discount`.
    Percentage {
        basis_points: u32,
        max_discount: Option<i64>,
    },
    /// Shipping waived, at most `max_discount`.
    FreeShipping { max_discount: Option<i64> },
    /// Buy `buy` units, get `get` of them free; at most `max_applications` groups (0 = no limit).
    BuyGet {
        buy: u32,
        get: u32,
        max_applications: u32,
    },
    /// Eligible units cost `unit_price`.
    ExclusivePrice { unit_price: i64 },
}

impl DiscountRule {
    /// Whether the rule states amounts, which need the coupon's currency.
    fn has_amounts(&self) -> bool {
        match self {
            DiscountRule::FixedAmount { .. } | DiscountRule::ExclusivePrice { .. } => true,
            DiscountRule::Percentage { max_discount, .. }
            | DiscountRule::FreeShipping { max_discount } => max_discount.is_some(),
            DiscountRule::BuyGet { .. } => false,
        }
    }
}

/// Which lines a coupon discounts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub product_ids: Vec<String>,
    pub skus: Vec<String>,
    pub categories: Vec<String>,
    pub excluded_product_ids: Vec<String>,
    pub excluded_categories: Vec<String>,
}

/// Who may use a coupon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerSegment {
    #[default]
    All,
    New,
    Returning,
    Listed,
}

/// Comparison of a [`Predicate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredicateOperator {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
}

/// A typed test on an order or item field or metadata key, such as `cart_qty > 10`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Predicate {
    pub field: String,
    pub operator: PredicateOperator,
    pub values: Vec<String>,
}

/// Conditions that must all hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub channels: Vec<String>,
    pub order_types: Vec<String>,
    pub excluded_order_types: Vec<String>,
    pub payment_methods: Vec<String>,
    pub min_subtotal: i64,
    pub min_quantity: i64,
    pub customer_segment: CustomerSegment,
    pub customer_ids: Vec<String>,
    pub customer_emails: Vec<String>,
    pub customer_phones: Vec<String>,
    pub requires_verified_phone: bool,
    pub exclusive_of_loyalty_points: bool,
    pub order_predicates: Vec<Predicate>,
    pub item_predicates: Vec<Predicate>,
    pub referrer_customer_id: Option<String>,
    /// Payment links the coupon is valid for; empty means any checkout. Absent from coupons
    /// stored before payment-link scoping existed, hence the default.
    #[serde(default)]
    pub payment_link_ids: Vec<String>,
}

/// Usage limits, enforced atomically when redeeming. `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_redemptions: Option<i64>,
    pub max_redemptions_per_customer: Option<i64>,
    pub budget: Option<i64>,
}

/// How a coupon combines with others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stacking {
    pub stackable: bool,
    pub priority: i32,
    pub replaces_item_promotions: bool,
    pub removed_promotions_hint: String,
}

// === impl CouponRules ===

impl CouponRules {
    /// Records every rule this definition breaks, under `prefix` (such as `coupon`).
    pub fn check(&self, prefix: &str, violations: &mut Violations) {
        let field = |name: &str| format!("{prefix}.{name}");
        self.check_discount(prefix, violations);

        if self.currency.is_none()
            && (self.discount.has_amounts()
                || self.conditions.min_subtotal > 0
                || self.limits.budget.is_some())
        {
            violations.add(
                field("currency"),
                "a currency is required when the coupon states amounts",
            );
        }

        let conditions = &self.conditions;
        if let (Some(start), Some(end)) = (conditions.starts_at, conditions.ends_at) {
            if end <= start {
                violations.add(
                    field("conditions.end_time"),
                    "end time must be after start time",
                );
            }
        }
        violations.require(
            conditions.min_subtotal >= 0,
            &field("conditions.min_subtotal"),
            "must not be negative",
        );
        violations.require(
            conditions.min_quantity >= 0,
            &field("conditions.min_quantity"),
            "must not be negative",
        );
        if conditions.customer_segment == CustomerSegment::Listed
            && conditions.customer_ids.is_empty()
            && conditions.customer_emails.is_empty()
            && conditions.customer_phones.is_empty()
        {
            violations.add(
                field("conditions.customer_segment"),
                "a LISTED segment needs customer ids, e-mails or phones",
            );
        }
        check_predicates(
            &conditions.order_predicates,
            &field("conditions.order_predicates"),
            violations,
        );
        check_predicates(
            &conditions.item_predicates,
            &field("conditions.item_predicates"),
            violations,
        );

        let limits = &self.limits;
        for (value, name) in [
            (limits.max_redemptions, "limits.max_redemptions"),
            (
                limits.max_redemptions_per_customer,
                "limits.max_redemptions_per_customer",
            ),
            (limits.budget, "limits.budget"),
        ] {
            if value.is_some_and(|v| v < 1) {
                violations.add(field(name), "must be at least 1 when set");
            }
        }
        violations.require(
            self.description.chars().count() <= 500,
            &field("description"),
            "must be at most 500 characters",
        );
    }

    fn check_discount(&self, prefix: &str, violations: &mut Violations) {
        let at = |name: &str| format!("{prefix}.discount.{name}");
        match &self.discount {
            DiscountRule::FixedAmount { amount } => {
                violations.require(
                    *amount > 0,
                    &at("fixed_amount.amount"),
                    "must be greater than zero",
                );
            }
            DiscountRule::Percentage {
                basis_points,
                max_discount,
            } => {
                violations.require(
                    (1..=MAX_BPS).contains(basis_points),
                    &at("percentage.basis_points"),
                    "must be from 1 to 10000 (0.01% to 100%)",
                );
                violations.require(
                    max_discount.is_none_or(|cap| cap > 0),
                    &at("percentage.max_discount"),
                    "must be greater than zero when set",
                );
            }
            DiscountRule::FreeShipping { max_discount } => {
                violations.require(
                    max_discount.is_none_or(|cap| cap > 0),
                    &at("free_shipping.max_discount"),
                    "must be greater than zero when set",
                );
            }
            DiscountRule::BuyGet { buy, get, .. } => {
                violations.require(*buy >= 1, &at("buy_get.buy_quantity"), "must be at least 1");
                violations.require(*get >= 1, &at("buy_get.get_quantity"), "must be at least 1");
            }
            DiscountRule::ExclusivePrice { unit_price } => {
                violations.require(
                    *unit_price >= 0,
                    &at("exclusive_price.unit_price"),
                    "must not be negative",
                );
            }
        }
    }
}

fn check_predicates(predicates: &[Predicate], prefix: &str, violations: &mut Violations) {
    for (index, predicate) in predicates.iter().enumerate() {
        if predicate.field.trim().is_empty() {
            violations.add(format!("{prefix}[{index}].field"), "is required");
        } else if predicate
            .field
            .strip_prefix(super::engine::predicate::METADATA_PREFIX)
            .is_some_and(|key| key.trim().is_empty())
        {
            violations.add(
                format!("{prefix}[{index}].field"),
                "name a metadata key after \"metadata.\"",
            );
        }
        let values_ok = match predicate.operator {
            PredicateOperator::In => !predicate.values.is_empty(),
            _ => predicate.values.len() == 1,
        };
        if !values_ok {
            violations.add(
                format!("{prefix}[{index}].values"),
                "IN takes one or more values, every other operator exactly one",
            );
        }
    }
}

/// A coupon definition that passed every check, ready to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCoupon {
    code: Code,
    rules: CouponRules,
    active: bool,
    automatic: bool,
}

impl NewCoupon {
    /// Checks `rules`; `violations` may already hold problems found while parsing the request.
    /// An `automatic` promotion applies without being typed; its code is its unique name.
    pub fn new(
        code: Option<Code>,
        rules: CouponRules,
        active: bool,
        automatic: bool,
        mut violations: Violations,
    ) -> Result<Self, super::InvalidInput> {
        rules.check("coupon", &mut violations);
        if automatic {
            super::automatic::check(&rules, "coupon", &mut violations);
        }
        violations.finish(())?;
        // A code that failed to parse was recorded above; only an absent one reaches here.
        let code = code.ok_or_else(|| super::InvalidInput::field("coupon.code", "is required"))?;
        Ok(Self {
            code,
            rules,
            active,
            automatic,
        })
    }

    pub fn code(&self) -> &Code {
        &self.code
    }

    pub fn rules(&self) -> &CouponRules {
        &self.rules
    }

    pub fn active(&self) -> bool {
        self.active
    }

    pub fn automatic(&self) -> bool {
        self.automatic
    }
}

/// A stored coupon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coupon {
    pub id: String,
    pub code: Code,
    pub campaign_id: Option<String>,
    pub active: bool,
    /// Applies without being typed whenever its conditions hold; never matched by a typed code.
    /// Fixed at creation.
    pub automatic: bool,
    pub rules: CouponRules,
    pub usage: Usage,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Usage counters kept by the ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Active (pending or completed) redemptions.
    pub redemptions: i64,
    /// Discount given by active redemptions, in minor units.
    pub budget_used: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(discount: DiscountRule) -> CouponRules {
        CouponRules {
            description: String::new(),
            currency: Some(Currency::parse("INR").unwrap()),
            discount,
            target: Target::default(),
            conditions: Conditions::default(),
            limits: Limits::default(),
            stacking: Stacking::default(),
        }
    }

    fn fields(rules: &CouponRules) -> Vec<String> {
        let mut violations = Violations::new();
        rules.check("coupon", &mut violations);
        match violations.finish(()) {
            Ok(()) => vec![],
            Err(e) => e.violations.into_iter().map(|v| v.field).collect(),
        }
    }

    #[test]
    fn accepts_a_plain_fixed_coupon() {
        assert!(fields(&rules(DiscountRule::FixedAmount { amount: 20_000 })).is_empty());
    }

    #[test]
    fn reports_every_broken_rule() {
        let mut bad = rules(DiscountRule::Percentage {
            basis_points: 10_001,
            max_discount: Some(-1),
        });
        bad.conditions.starts_at = Some(Timestamp(10));
        bad.conditions.ends_at = Some(Timestamp(5));
        bad.conditions.min_subtotal = -1;
        bad.limits.max_redemptions = Some(0);
        bad.conditions.order_predicates.push(Predicate {
            field: "cart_qty".into(),
            operator: PredicateOperator::Gt,
            values: vec![],
        });
        assert_eq!(
            fields(&bad),
            vec![
                "coupon.discount.percentage.basis_points",
                "coupon.discount.percentage.max_discount",
                "coupon.conditions.end_time",
                "coupon.conditions.min_subtotal",
                "coupon.conditions.order_predicates[0].values",
                "coupon.limits.max_redemptions",
            ]
        );
    }

    #[test]
    fn amounts_need_a_currency() {
        let mut fixed = rules(DiscountRule::FixedAmount { amount: 1 });
        fixed.currency = None;
        assert_eq!(fields(&fixed), vec!["coupon.currency"]);
        let mut percent = rules(DiscountRule::Percentage {
            basis_points: 500,
            max_discount: None,
        });
        percent.currency = None;
        assert!(fields(&percent).is_empty());
    }

    #[test]
    fn buy_get_needs_positive_quantities() {
        let bad = rules(DiscountRule::BuyGet {
            buy: 0,
            get: 0,
            max_applications: 0,
        });
        assert_eq!(
            fields(&bad),
            vec![
                "coupon.discount.buy_get.buy_quantity",
                "coupon.discount.buy_get.get_quantity"
            ]
        );
    }
}
