//! Coupons: proto <-> domain.

use super::{clean, enum_value, timestamp_from_pb, timestamp_to_pb};
use crate::{
    domain::{
        campaign::Campaign,
        coupon::{
            Conditions, Coupon, CouponPatch, CouponRules, CustomerSegment, DiscountRule, Limits,
            Predicate, PredicateOperator, Stacking, Target, Tier, TierBasis, TierReward,
        },
        text::refuse_nul,
        Currency, Problem, Violations,
    },
    pb,
};

/// Fields of a coupon that UpdateCoupon can replace.
pub const UPDATABLE: &[&str] = &[
    "description",
    "currency",
    "discount",
    "target",
    "conditions",
    "limits",
    "stacking",
    "active",
];

/// Every rule of a proto coupon, with violations recorded under `coupon.`.
pub fn rules_from_pb(coupon: &pb::Coupon, violations: &mut Violations) -> CouponRules {
    CouponRules {
        description: {
            refuse_nul("coupon.description", &coupon.description, violations);
            coupon.description.trim().to_owned()
        },
        currency: currency_from_pb(&coupon.currency, violations),
        discount: discount_from_pb(coupon.discount.as_ref(), violations),
        target: target_from_pb(coupon.target.as_ref()),
        conditions: conditions_from_pb(coupon.conditions.as_ref(), violations),
        limits: limits_from_pb(coupon.limits.as_ref()),
        stacking: stacking_from_pb(coupon.stacking.as_ref()),
    }
}

/// The parts of `update` named by already checked mask `paths`, as a patch.
pub fn patch_from_pb(
    update: &pb::Coupon,
    paths: &[String],
    violations: &mut Violations,
) -> CouponPatch {
    let mut patch = CouponPatch::default();
    for path in paths {
        match path.as_str() {
            "description" => {
                refuse_nul("coupon.description", &update.description, violations);
                patch.description = Some(update.description.trim().to_owned());
            }
            "currency" => patch.currency = Some(currency_from_pb(&update.currency, violations)),
            "discount" => {
                patch.discount = Some(discount_from_pb(update.discount.as_ref(), violations))
            }
            "target" => patch.target = Some(target_from_pb(update.target.as_ref())),
            "conditions" => {
                patch.conditions = Some(conditions_from_pb(update.conditions.as_ref(), violations))
            }
            "limits" => patch.limits = Some(limits_from_pb(update.limits.as_ref())),
            "stacking" => patch.stacking = Some(stacking_from_pb(update.stacking.as_ref())),
            "active" => patch.active = Some(update.active.unwrap_or(false)),
            // Unknown paths were reported when the mask was read.
            _ => {}
        }
    }
    patch
}

/// A campaign as its proto message.
pub fn campaign_to_pb(campaign: &Campaign) -> pb::Campaign {
    pb::Campaign {
        id: campaign.id.clone(),
        name: campaign.name.clone(),
        template: Some(rules_to_pb(&campaign.rules)),
        code_pattern: Some(pb::CodePattern {
            prefix: campaign.pattern.prefix.clone(),
            length: campaign.pattern.length as i32,
            charset: campaign.pattern.charset.iter().collect(),
        }),
        code_count: campaign.code_count,
        create_time: Some(timestamp_to_pb(campaign.created_at)),
    }
}

fn currency_from_pb(code: &str, violations: &mut Violations) -> Option<Currency> {
    if code.trim().is_empty() {
        return None;
    }
    violations.take("coupon.currency", Currency::parse(code))
}

fn discount_from_pb(discount: Option<&pb::Discount>, violations: &mut Violations) -> DiscountRule {
    use pb::discount::Kind;
    let placeholder = DiscountRule::FixedAmount { amount: 0 };
    let Some(kind) = discount.and_then(|d| d.kind.as_ref()) else {
        violations.add("coupon.discount", Problem::DiscountRequired);
        return placeholder;
    };
    match kind {
        Kind::FixedAmount(fixed) => DiscountRule::FixedAmount {
            amount: fixed.amount,
        },
        Kind::Percentage(percentage) => {
            let basis_points = u32::try_from(percentage.basis_points).unwrap_or(0);
            DiscountRule::Percentage {
                basis_points,
                max_discount: percentage.max_discount,
            }
        }
        Kind::FreeShipping(free) => DiscountRule::FreeShipping {
            max_discount: free.max_discount,
        },
        Kind::BuyGet(buy_get) => DiscountRule::BuyGet {
            buy: u32::try_from(buy_get.buy_quantity).unwrap_or(0),
            get: u32::try_from(buy_get.get_quantity).unwrap_or(0),
            max_applications: match u32::try_from(buy_get.max_applications) {
                Ok(n) => n,
                Err(_) => {
                    violations.add(
                        "coupon.discount.buy_get.max_applications",
                        Problem::Negative,
                    );
                    0
                }
            },
        },
        Kind::ExclusivePrice(exclusive) => DiscountRule::ExclusivePrice {
            unit_price: exclusive.unit_price,
        },
        Kind::Tiered(tiered) => tiered_from_pb(tiered, violations),
    }
}

fn tiered_from_pb(tiered: &pb::Tiered, violations: &mut Violations) -> DiscountRule {
    use pb::tier::Reward;
    let basis = match enum_value::<pb::TierBasis>(tiered.basis) {
        Some(pb::TierBasis::Spend) => TierBasis::Spend,
        Some(pb::TierBasis::Quantity) => TierBasis::Quantity,
        Some(pb::TierBasis::Unspecified) | None => {
            violations.add("coupon.discount.tiered.basis", Problem::TierBasisRequired);
            TierBasis::Spend
        }
    };
    let mut complete = true;
    let tiers = tiered
        .tiers
        .iter()
        .enumerate()
        .filter_map(|(index, tier)| {
            let reward = match tier.reward {
                Some(Reward::BasisPoints(bps)) => TierReward::Percentage {
                    basis_points: u32::try_from(bps).unwrap_or(0),
                },
                Some(Reward::Amount(amount)) => TierReward::FixedAmount { amount },
                Some(Reward::FreeUnits(units)) => TierReward::FreeUnits {
                    units: u32::try_from(units).unwrap_or(0),
                },
                None => {
                    violations.add(
                        format!("coupon.discount.tiered.tiers[{index}]"),
                        Problem::TierRewardRequired,
                    );
                    complete = false;
                    return None;
                }
            };
            Some(Tier {
                threshold: tier.threshold,
                reward,
            })
        })
        .collect();
    if !complete {
        // The rules check the tiers by position, which a missing reward would shift; the
        // request is refused anyway, so a placeholder that adds no violation of its own stands
        // in until every tier states its reward.
        return DiscountRule::Percentage {
            basis_points: 1,
            max_discount: None,
        };
    }
    DiscountRule::Tiered { basis, tiers }
}

fn target_from_pb(target: Option<&pb::Target>) -> Target {
    let Some(target) = target else {
        return Target::default();
    };
    Target {
        product_ids: clean(&target.product_ids),
        skus: clean(&target.skus),
        categories: clean(&target.categories),
        excluded_product_ids: clean(&target.excluded_product_ids),
        excluded_categories: clean(&target.excluded_categories),
    }
}

fn conditions_from_pb(
    conditions: Option<&pb::Conditions>,
    violations: &mut Violations,
) -> Conditions {
    let Some(c) = conditions else {
        return Conditions::default();
    };
    let mut instant = |ts: Option<&prost_types::Timestamp>, field: &str| {
        let ts = ts?;
        let parsed = timestamp_from_pb(ts);
        if parsed.is_none() {
            violations.add(field, Problem::NotATimestamp);
        }
        parsed
    };
    let starts_at = instant(c.start_time.as_ref(), "coupon.conditions.start_time");
    let ends_at = instant(c.end_time.as_ref(), "coupon.conditions.end_time");
    let customer_segment = match enum_value::<pb::CustomerSegment>(c.customer_segment) {
        Some(pb::CustomerSegment::Unspecified | pb::CustomerSegment::All) => CustomerSegment::All,
        Some(pb::CustomerSegment::New) => CustomerSegment::New,
        Some(pb::CustomerSegment::Returning) => CustomerSegment::Returning,
        Some(pb::CustomerSegment::Listed) => CustomerSegment::Listed,
        None => {
            violations.add(
                "coupon.conditions.customer_segment",
                Problem::UnknownCustomerSegment,
            );
            CustomerSegment::All
        }
    };
    let referrer = c.referrer_customer_id.trim();
    Conditions {
        starts_at,
        ends_at,
        channels: clean(&c.channels),
        order_types: clean(&c.order_types),
        excluded_order_types: clean(&c.excluded_order_types),
        payment_methods: clean(&c.payment_methods),
        min_subtotal: c.min_subtotal,
        min_quantity: c.min_quantity,
        customer_segment,
        customer_ids: clean(&c.customer_ids),
        customer_emails: clean(&c.customer_emails)
            .into_iter()
            .map(|e| e.to_lowercase())
            .collect(),
        customer_phones: clean(&c.customer_phones),
        requires_verified_phone: c.requires_verified_phone,
        exclusive_of_loyalty_points: c.exclusive_of_loyalty_points,
        order_predicates: predicates_from_pb(
            &c.order_predicates,
            "coupon.conditions.order_predicates",
            violations,
        ),
        item_predicates: predicates_from_pb(
            &c.item_predicates,
            "coupon.conditions.item_predicates",
            violations,
        ),
        referrer_customer_id: (!referrer.is_empty()).then(|| referrer.to_owned()),
        payment_link_ids: clean(&c.payment_link_ids),
    }
}

fn predicates_from_pb(
    predicates: &[pb::Predicate],
    prefix: &str,
    violations: &mut Violations,
) -> Vec<Predicate> {
    predicates
        .iter()
        .enumerate()
        .filter_map(|(index, predicate)| {
            let operator = match enum_value::<pb::PredicateOperator>(predicate.operator) {
                Some(pb::PredicateOperator::Eq) => PredicateOperator::Eq,
                Some(pb::PredicateOperator::Ne) => PredicateOperator::Ne,
                Some(pb::PredicateOperator::Gt) => PredicateOperator::Gt,
                Some(pb::PredicateOperator::Gte) => PredicateOperator::Gte,
                Some(pb::PredicateOperator::Lt) => PredicateOperator::Lt,
                Some(pb::PredicateOperator::Lte) => PredicateOperator::Lte,
                Some(pb::PredicateOperator::In) => PredicateOperator::In,
                Some(pb::PredicateOperator::Contains) => PredicateOperator::Contains,
                Some(pb::PredicateOperator::Unspecified) | None => {
                    violations.add(
                        format!("{prefix}[{index}].operator"),
                        Problem::UnknownOperator,
                    );
                    return None;
                }
            };
            Some(Predicate {
                field: predicate.field.trim().to_owned(),
                operator,
                values: predicate
                    .values
                    .iter()
                    .map(|v| v.trim().to_owned())
                    .collect(),
            })
        })
        .collect()
}

fn limits_from_pb(limits: Option<&pb::Limits>) -> Limits {
    let Some(limits) = limits else {
        return Limits::default();
    };
    Limits {
        max_redemptions: limits.max_redemptions,
        max_redemptions_per_customer: limits.max_redemptions_per_customer,
        budget: limits.budget,
    }
}

fn stacking_from_pb(stacking: Option<&pb::Stacking>) -> Stacking {
    let Some(stacking) = stacking else {
        return Stacking::default();
    };
    Stacking {
        stackable: stacking.stackable,
        priority: stacking.priority,
        replaces_item_promotions: stacking.replaces_item_promotions,
        removed_promotions_hint: stacking.removed_promotions_hint.trim().to_owned(),
    }
}

// === domain -> proto ===

/// A stored coupon as its proto message.
pub fn coupon_to_pb(coupon: &Coupon) -> pb::Coupon {
    pb::Coupon {
        id: coupon.id.clone(),
        code: coupon.code.to_string(),
        active: Some(coupon.active),
        campaign_id: coupon.campaign_id.clone().unwrap_or_default(),
        usage: Some(pb::Usage {
            redemptions: coupon.usage.redemptions,
            budget_used: coupon.usage.budget_used,
        }),
        create_time: Some(timestamp_to_pb(coupon.created_at)),
        update_time: Some(timestamp_to_pb(coupon.updated_at)),
        automatic: coupon.automatic,
        ..rules_to_pb(&coupon.rules)
    }
}

/// Rules as a proto coupon without identity (a campaign's template).
pub fn rules_to_pb(rules: &CouponRules) -> pb::Coupon {
    pb::Coupon {
        description: rules.description.clone(),
        currency: rules
            .currency
            .map(|c| c.code().to_owned())
            .unwrap_or_default(),
        discount: Some(discount_to_pb(&rules.discount)),
        target: Some(target_to_pb(&rules.target)),
        conditions: Some(conditions_to_pb(&rules.conditions)),
        limits: Some(pb::Limits {
            max_redemptions: rules.limits.max_redemptions,
            max_redemptions_per_customer: rules.limits.max_redemptions_per_customer,
            budget: rules.limits.budget,
        }),
        stacking: Some(pb::Stacking {
            stackable: rules.stacking.stackable,
            priority: rules.stacking.priority,
            replaces_item_promotions: rules.stacking.replaces_item_promotions,
            removed_promotions_hint: rules.stacking.removed_promotions_hint.clone(),
        }),
        ..pb::Coupon::default()
    }
}

/// A discount rule as its proto message.
pub fn discount_to_pb(discount: &DiscountRule) -> pb::Discount {
    use pb::discount::Kind;
    let kind = match *discount {
        DiscountRule::FixedAmount { amount } => Kind::FixedAmount(pb::FixedAmount { amount }),
        DiscountRule::Percentage {
            basis_points,
            max_discount,
        } => Kind::Percentage(pb::Percentage {
            basis_points: i32::try_from(basis_points).unwrap_or(i32::MAX),
            max_discount,
        }),
        DiscountRule::FreeShipping { max_discount } => {
            Kind::FreeShipping(pb::FreeShipping { max_discount })
        }
        DiscountRule::BuyGet {
            buy,
            get,
            max_applications,
        } => Kind::BuyGet(pb::BuyGet {
            buy_quantity: i32::try_from(buy).unwrap_or(i32::MAX),
            get_quantity: i32::try_from(get).unwrap_or(i32::MAX),
            max_applications: i32::try_from(max_applications).unwrap_or(i32::MAX),
        }),
        DiscountRule::ExclusivePrice { unit_price } => {
            Kind::ExclusivePrice(pb::ExclusivePrice { unit_price })
        }
        DiscountRule::Tiered { basis, ref tiers } => Kind::Tiered(pb::Tiered {
            basis: tier_basis_to_pb(basis) as i32,
            tiers: tiers.iter().map(tier_to_pb).collect(),
        }),
    };
    pb::Discount { kind: Some(kind) }
}

fn tier_basis_to_pb(basis: TierBasis) -> pb::TierBasis {
    match basis {
        TierBasis::Spend => pb::TierBasis::Spend,
        TierBasis::Quantity => pb::TierBasis::Quantity,
    }
}

/// A tier as its proto message.
pub fn tier_to_pb(tier: &Tier) -> pb::Tier {
    use pb::tier::Reward;
    pb::Tier {
        threshold: tier.threshold,
        reward: Some(match tier.reward {
            TierReward::Percentage { basis_points } => {
                Reward::BasisPoints(i32::try_from(basis_points).unwrap_or(i32::MAX))
            }
            TierReward::FixedAmount { amount } => Reward::Amount(amount),
            TierReward::FreeUnits { units } => {
                Reward::FreeUnits(i32::try_from(units).unwrap_or(i32::MAX))
            }
        }),
    }
}

/// A target as its proto message.
pub fn target_to_pb(target: &Target) -> pb::Target {
    pb::Target {
        product_ids: target.product_ids.clone(),
        skus: target.skus.clone(),
        categories: target.categories.clone(),
        excluded_product_ids: target.excluded_product_ids.clone(),
        excluded_categories: target.excluded_categories.clone(),
    }
}

/// Conditions as their proto message.
pub fn conditions_to_pb(c: &Conditions) -> pb::Conditions {
    let predicates = |list: &[Predicate]| -> Vec<pb::Predicate> {
        list.iter()
            .map(|p| pb::Predicate {
                field: p.field.clone(),
                operator: operator_to_pb(p.operator) as i32,
                values: p.values.clone(),
            })
            .collect()
    };
    pb::Conditions {
        start_time: c.starts_at.map(timestamp_to_pb),
        end_time: c.ends_at.map(timestamp_to_pb),
        channels: c.channels.clone(),
        order_types: c.order_types.clone(),
        excluded_order_types: c.excluded_order_types.clone(),
        payment_methods: c.payment_methods.clone(),
        min_subtotal: c.min_subtotal,
        min_quantity: c.min_quantity,
        customer_segment: segment_to_pb(c.customer_segment) as i32,
        customer_ids: c.customer_ids.clone(),
        customer_emails: c.customer_emails.clone(),
        customer_phones: c.customer_phones.clone(),
        requires_verified_phone: c.requires_verified_phone,
        exclusive_of_loyalty_points: c.exclusive_of_loyalty_points,
        order_predicates: predicates(&c.order_predicates),
        item_predicates: predicates(&c.item_predicates),
        referrer_customer_id: c.referrer_customer_id.clone().unwrap_or_default(),
        payment_link_ids: c.payment_link_ids.clone(),
    }
}

/// A segment as its proto enum.
pub fn segment_to_pb(segment: CustomerSegment) -> pb::CustomerSegment {
    match segment {
        CustomerSegment::All => pb::CustomerSegment::All,
        CustomerSegment::New => pb::CustomerSegment::New,
        CustomerSegment::Returning => pb::CustomerSegment::Returning,
        CustomerSegment::Listed => pb::CustomerSegment::Listed,
    }
}

fn operator_to_pb(operator: PredicateOperator) -> pb::PredicateOperator {
    match operator {
        PredicateOperator::Eq => pb::PredicateOperator::Eq,
        PredicateOperator::Ne => pb::PredicateOperator::Ne,
        PredicateOperator::Gt => pb::PredicateOperator::Gt,
        PredicateOperator::Gte => pb::PredicateOperator::Gte,
        PredicateOperator::Lt => pb::PredicateOperator::Lt,
        PredicateOperator::Lte => pb::PredicateOperator::Lte,
        PredicateOperator::In => pb::PredicateOperator::In,
        PredicateOperator::Contains => pb::PredicateOperator::Contains,
    }
}
