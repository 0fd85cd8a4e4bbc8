//! Coupon definitions: what a coupon gives, to which lines, under which conditions, how often.
//!
//! [`CouponRules::check`] holds every rule a definition must satisfy; the API layer reports its
//! violations with the proto field paths used here.

use serde::{Deserialize, Serialize};

use super::{Code, Currency, Problem, Timestamp, Violations};

/// Largest percentage, in basis points (100%).
pub const MAX_BPS: u32 = 10_000;
/// Longest coupon description, in characters.
const MAX_DESCRIPTION_LEN: usize = 500;

/// Most tiers a tiered discount may have: enough for any real ladder, few enough that every
/// pricing call stays cheap and a refusal lists a readable number of violations.
pub const MAX_TIERS: usize = 20;

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
    /// Ordered thresholds on the target's spend or units; the highest tier reached applies.
    Tiered { basis: TierBasis, tiers: Vec<Tier> },
}

/// What a tiered discount's thresholds measure, on the coupon's eligible lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierBasis {
    /// The eligible lines' subtotal in minor units (the order amount of an item-less checkout).
    Spend,
    /// The eligible lines' units.
    Quantity,
}

/// One step of a tiered discount: from `threshold` on, `reward`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub threshold: i64,
    pub reward: TierReward,
}

/// What a reached tier gives. Every tier of a coupon gives the same kind, each more than the
/// tier below, so reaching a higher tier never gives less.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TierReward {
    /// `basis_points` off the eligible lines.
    Percentage { basis_points: u32 },
    /// `amount` minor units off the eligible lines.
    FixedAmount { amount: i64 },
    /// The `units` cheapest eligible units are free.
    FreeUnits { units: u32 },
}

impl TierReward {
    /// The reward's size, comparable between tiers of the same kind.
    fn size(self) -> i64 {
        match self {
            TierReward::Percentage { basis_points } => i64::from(basis_points),
            TierReward::FixedAmount { amount } => amount,
            TierReward::FreeUnits { units } => i64::from(units),
        }
    }

    /// The proto field that states the reward, for violations.
    fn field(self) -> &'static str {
        match self {
            TierReward::Percentage { .. } => "basis_points",
            TierReward::FixedAmount { .. } => "amount",
            TierReward::FreeUnits { .. } => "free_units",
        }
    }
}

impl DiscountRule {
    /// Whether the rule states amounts, which need the coupon's currency.
    fn has_amounts(&self) -> bool {
        match self {
            DiscountRule::FixedAmount { .. } | DiscountRule::ExclusivePrice { .. } => true,
            DiscountRule::Percentage { max_discount, .. }
            | DiscountRule::FreeShipping { max_discount } => max_discount.is_some(),
            DiscountRule::BuyGet { .. } => false,
            DiscountRule::Tiered { basis, tiers } => {
                *basis == TierBasis::Spend
                    || tiers
                        .iter()
                        .any(|t| matches!(t.reward, TierReward::FixedAmount { .. }))
            }
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
            violations.add(field("currency"), Problem::CurrencyRequiredForAmounts);
        }

        let conditions = &self.conditions;
        if let (Some(start), Some(end)) = (conditions.starts_at, conditions.ends_at) {
            if end <= start {
                violations.add(field("conditions.end_time"), Problem::EndNotAfterStart);
            }
        }
        violations.require(
            conditions.min_subtotal >= 0,
            &field("conditions.min_subtotal"),
            Problem::Negative,
        );
        violations.require(
            conditions.min_quantity >= 0,
            &field("conditions.min_quantity"),
            Problem::Negative,
        );
        if conditions.customer_segment == CustomerSegment::Listed
            && conditions.customer_ids.is_empty()
            && conditions.customer_emails.is_empty()
            && conditions.customer_phones.is_empty()
        {
            violations.add(
                field("conditions.customer_segment"),
                Problem::ListedSegmentEmpty,
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
                violations.add(field(name), Problem::AtLeastWhenSet { min: 1 });
            }
        }
        violations.require(
            self.description.chars().count() <= MAX_DESCRIPTION_LEN,
            &field("description"),
            Problem::TooLong {
                max: MAX_DESCRIPTION_LEN,
            },
        );
    }

    fn check_discount(&self, prefix: &str, violations: &mut Violations) {
        let at = |name: &str| format!("{prefix}.discount.{name}");
        match &self.discount {
            DiscountRule::FixedAmount { amount } => {
                violations.require(
                    *amount > 0,
                    &at("fixed_amount.amount"),
                    Problem::NotPositive,
                );
            }
            DiscountRule::Percentage {
                basis_points,
                max_discount,
            } => {
                violations.require(
                    (1..=MAX_BPS).contains(basis_points),
                    &at("percentage.basis_points"),
                    Problem::PercentageOutOfRange,
                );
                violations.require(
                    max_discount.is_none_or(|cap| cap > 0),
                    &at("percentage.max_discount"),
                    Problem::NotPositiveWhenSet,
                );
            }
            DiscountRule::FreeShipping { max_discount } => {
                violations.require(
                    max_discount.is_none_or(|cap| cap > 0),
                    &at("free_shipping.max_discount"),
                    Problem::NotPositiveWhenSet,
                );
            }
            DiscountRule::BuyGet { buy, get, .. } => {
                violations.require(
                    *buy >= 1,
                    &at("buy_get.buy_quantity"),
                    Problem::AtLeast { min: 1 },
                );
                violations.require(
                    *get >= 1,
                    &at("buy_get.get_quantity"),
                    Problem::AtLeast { min: 1 },
                );
            }
            DiscountRule::ExclusivePrice { unit_price } => {
                violations.require(
                    *unit_price >= 0,
                    &at("exclusive_price.unit_price"),
                    Problem::Negative,
                );
            }
            DiscountRule::Tiered { tiers, .. } => {
                check_tiers(tiers, &at("tiered.tiers"), violations)
            }
        }
    }
}

/// Tiers must climb: thresholds positive and strictly increasing, every reward valid, of the
/// first tier's kind and larger than the one below, so that more spend never gives less.
fn check_tiers(tiers: &[Tier], prefix: &str, violations: &mut Violations) {
    if tiers.is_empty() {
        violations.add(prefix, Problem::TiersRequired);
        return;
    }
    violations.require(
        tiers.len() <= MAX_TIERS,
        prefix,
        Problem::TooManyTiers { max: MAX_TIERS },
    );
    let first = std::mem::discriminant(&tiers[0].reward);
    for (index, tier) in tiers.iter().enumerate() {
        let at = |name: &str| format!("{prefix}[{index}].{name}");
        let below = index.checked_sub(1).map(|i| &tiers[i]);
        if tier.threshold <= 0 {
            violations.add(at("threshold"), Problem::NotPositive);
        } else if below.is_some_and(|b| tier.threshold <= b.threshold) {
            violations.add(at("threshold"), Problem::ThresholdNotAboveLowerTier);
        }
        let reward = tier.reward;
        let valid = match reward {
            TierReward::Percentage { basis_points } => (1..=MAX_BPS).contains(&basis_points),
            TierReward::FixedAmount { amount } => amount > 0,
            TierReward::FreeUnits { units } => units >= 1,
        };
        if !valid {
            violations.add(
                at(reward.field()),
                match reward {
                    TierReward::Percentage { .. } => Problem::PercentageOutOfRange,
                    _ => Problem::NotPositive,
                },
            );
        } else if std::mem::discriminant(&reward) != first {
            violations.add(format!("{prefix}[{index}]"), Problem::TierRewardKindDiffers);
        } else if below.is_some_and(|b| reward.size() <= b.reward.size()) {
            violations.add(at(reward.field()), Problem::RewardNotAboveLowerTier);
        }
    }
}

fn check_predicates(predicates: &[Predicate], prefix: &str, violations: &mut Violations) {
    for (index, predicate) in predicates.iter().enumerate() {
        if predicate.field.trim().is_empty() {
            violations.add(format!("{prefix}[{index}].field"), Problem::Required);
        } else if predicate
            .field
            .strip_prefix(super::engine::predicate::METADATA_PREFIX)
            .is_some_and(|key| key.trim().is_empty())
        {
            violations.add(
                format!("{prefix}[{index}].field"),
                Problem::MetadataKeyMissing,
            );
        }
        let values_ok = match predicate.operator {
            PredicateOperator::In => !predicate.values.is_empty(),
            _ => predicate.values.len() == 1,
        };
        if !values_ok {
            violations.add(
                format!("{prefix}[{index}].values"),
                Problem::WrongValueCount,
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
        let code =
            code.ok_or_else(|| super::InvalidInput::field("coupon.code", Problem::Required))?;
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

/// The parts of a coupon an update replaces; `None` keeps what is there. An update mask names
/// the parts, so a part set to its empty value (no limits, no target) is a real change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CouponPatch {
    pub description: Option<String>,
    pub currency: Option<Option<Currency>>,
    pub discount: Option<DiscountRule>,
    pub target: Option<Target>,
    pub conditions: Option<Conditions>,
    pub limits: Option<Limits>,
    pub stacking: Option<Stacking>,
    pub active: Option<bool>,
}

impl CouponPatch {
    /// The names of the parts this patch replaces, as an update mask names them.
    pub fn parts(&self) -> Vec<&'static str> {
        [
            ("description", self.description.is_some()),
            ("currency", self.currency.is_some()),
            ("discount", self.discount.is_some()),
            ("target", self.target.is_some()),
            ("conditions", self.conditions.is_some()),
            ("limits", self.limits.is_some()),
            ("stacking", self.stacking.is_some()),
            ("active", self.active.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    /// `coupon`'s rules and activity with this patch applied, or every problem: those already in
    /// `violations` (found while the patch was parsed) and every rule the result would break.
    pub fn apply(
        self,
        coupon: &Coupon,
        mut violations: Violations,
    ) -> Result<(CouponRules, bool), super::InvalidInput> {
        let mut rules = coupon.rules.clone();
        let Self {
            description,
            currency,
            discount,
            target,
            conditions,
            limits,
            stacking,
            active,
        } = self;
        replace(&mut rules.description, description);
        replace(&mut rules.currency, currency);
        replace(&mut rules.discount, discount);
        replace(&mut rules.target, target);
        replace(&mut rules.conditions, conditions);
        replace(&mut rules.limits, limits);
        replace(&mut rules.stacking, stacking);
        rules.check("coupon", &mut violations);
        if coupon.automatic {
            super::automatic::check(&rules, "coupon", &mut violations);
        }
        violations.finish((rules, active.unwrap_or(coupon.active)))
    }
}

/// Sets `part` to `change` when there is one.
pub(super) fn replace<T>(part: &mut T, change: Option<T>) {
    if let Some(value) = change {
        *part = value;
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
    fn tiers_must_climb_and_every_violation_is_reported() {
        let tier = |threshold, reward| Tier { threshold, reward };
        let percent = |basis_points| TierReward::Percentage { basis_points };
        let ladder = |tiers: Vec<Tier>| {
            rules(DiscountRule::Tiered {
                basis: TierBasis::Spend,
                tiers,
            })
        };
        assert!(fields(&ladder(vec![
            tier(100_000, percent(500)),
            tier(250_000, percent(1_000)),
        ]))
        .is_empty());
        assert_eq!(
            fields(&ladder(vec![])),
            vec!["coupon.discount.tiered.tiers"]
        );
        let bad = ladder(vec![
            tier(0, percent(500)),
            tier(250_000, percent(10_001)),
            tier(250_000, percent(400)),
            tier(300_000, TierReward::FixedAmount { amount: 5 }),
            tier(400_000, TierReward::FreeUnits { units: 0 }),
        ]);
        assert_eq!(
            fields(&bad),
            vec![
                "coupon.discount.tiered.tiers[0].threshold",
                "coupon.discount.tiered.tiers[1].basis_points",
                "coupon.discount.tiered.tiers[2].threshold",
                "coupon.discount.tiered.tiers[2].basis_points",
                "coupon.discount.tiered.tiers[3]",
                "coupon.discount.tiered.tiers[4].free_units",
            ]
        );
        let too_many = ladder(
            (1..=21)
                .map(|n| tier(n * 1_000, percent(u32::try_from(n).unwrap())))
                .collect(),
        );
        assert_eq!(fields(&too_many), vec!["coupon.discount.tiered.tiers"]);
    }

    #[test]
    fn spend_tiers_need_a_currency_and_quantity_percentages_do_not() {
        let mut spend = rules(DiscountRule::Tiered {
            basis: TierBasis::Spend,
            tiers: vec![Tier {
                threshold: 100,
                reward: TierReward::Percentage { basis_points: 500 },
            }],
        });
        spend.currency = None;
        assert_eq!(fields(&spend), vec!["coupon.currency"]);
        let mut units = rules(DiscountRule::Tiered {
            basis: TierBasis::Quantity,
            tiers: vec![Tier {
                threshold: 3,
                reward: TierReward::FreeUnits { units: 1 },
            }],
        });
        units.currency = None;
        assert!(fields(&units).is_empty());
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
