//! Conditions: every reason a coupon does not apply to a checkout, not only the first.

use super::{predicate, tiers, LedgerView, Reason};
use crate::domain::{
    cart::{Checkout, CustomerHistory},
    coupon::{Coupon, CouponRules, CustomerSegment, DiscountRule, TierBasis},
    Timestamp,
};

/// Which lines of the cart the coupon's target and item predicates select.
pub fn eligible_lines(rules: &CouponRules, checkout: &Checkout, original: bool) -> Vec<bool> {
    let target = &rules.target;
    let includes_all =
        target.product_ids.is_empty() && target.skus.is_empty() && target.categories.is_empty();
    checkout
        .cart
        .lines
        .iter()
        .map(|line| {
            let included = includes_all
                || target.product_ids.contains(&line.product_id)
                || (!line.sku.is_empty() && target.skus.contains(&line.sku))
                || line
                    .categories
                    .iter()
                    .any(|c| target.categories.contains(c));
            let excluded = target.excluded_product_ids.contains(&line.product_id)
                || line
                    .categories
                    .iter()
                    .any(|c| target.excluded_categories.contains(c));
            included
                && !excluded
                && rules.conditions.item_predicates.iter().all(|p| {
                    predicate::holds(
                        p,
                        predicate::item_values(&p.field, line, original).as_deref(),
                    )
                })
        })
        .collect()
}

/// Whether the coupon restricts which items it applies to.
fn targets_items(rules: &CouponRules) -> bool {
    let t = &rules.target;
    !(t.product_ids.is_empty()
        && t.skus.is_empty()
        && t.categories.is_empty()
        && t.excluded_product_ids.is_empty()
        && t.excluded_categories.is_empty()
        && rules.conditions.item_predicates.is_empty())
}

/// Every reason `coupon` does not apply; empty when it does.
///
/// A coupon limited to other payment links answers only "not found", as the payment-link API
/// does, so a checkout learns nothing about a coupon that is not for it. The tenant's policy is
/// checked before the coupon's own conditions, and a rule both state is reported once.
pub fn reasons(
    coupon: &Coupon,
    ledger: &LedgerView,
    checkout: &Checkout,
    now: Timestamp,
    eligible: &[bool],
) -> Vec<Reason> {
    let rules = &coupon.rules;
    let c = &rules.conditions;
    let cart = &checkout.cart;
    let original = rules.stacking.replaces_item_promotions;
    if !c.payment_link_ids.is_empty() && !c.payment_link_ids.contains(&checkout.payment_link_id) {
        return vec![Reason::CouponNotFound];
    }
    let mut reasons = policy_reasons(checkout);
    let mut add = |reason: Reason| {
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    };

    if !coupon.active {
        add(Reason::CouponInactive);
    }
    if let Some(starts_at) = c.starts_at.filter(|s| now < *s) {
        add(Reason::CouponNotStarted { starts_at });
    }
    if let Some(ended_at) = c.ends_at.filter(|e| now >= *e) {
        add(Reason::CouponExpired { ended_at });
    }
    if let Some(currency) = rules.currency.filter(|c| *c != cart.currency) {
        add(Reason::CurrencyMismatch {
            coupon: currency,
            cart: cart.currency,
        });
    }
    if !c.channels.is_empty() && !contains_ci(&c.channels, &checkout.channel) {
        add(Reason::ChannelNotEligible {
            channel: checkout.channel.clone(),
        });
    }
    let order_type_refused = (!c.order_types.is_empty()
        && !contains_ci(&c.order_types, &checkout.order_type))
        || (!checkout.order_type.is_empty()
            && contains_ci(&c.excluded_order_types, &checkout.order_type));
    if order_type_refused {
        add(Reason::OrderTypeNotEligible {
            order_type: checkout.order_type.clone(),
        });
    }
    // Without a payment method yet, the coupon applies and Apply lists the methods it needs.
    if !c.payment_methods.is_empty()
        && !checkout.payment_method.is_empty()
        && !contains_ci(&c.payment_methods, &checkout.payment_method)
    {
        add(Reason::PaymentMethodNotEligible {
            payment_method: checkout.payment_method.clone(),
        });
    }
    if !customer_eligible(
        c.customer_segment,
        checkout,
        ledger,
        &c.customer_ids,
        &c.customer_emails,
        &c.customer_phones,
    ) {
        let segment = c.customer_segment;
        add(if is_guest(checkout, segment) {
            Reason::SignInRequired { segment }
        } else {
            Reason::CustomerNotEligible { segment }
        });
    }
    if c.requires_verified_phone && !checkout.customer.phone_verified {
        add(Reason::PhoneNotVerified);
    }
    if c.exclusive_of_loyalty_points && checkout.loyalty_points_used > 0 {
        add(Reason::NotCombinableWithPoints);
    }
    if c.referrer_customer_id
        .as_deref()
        .is_some_and(|owner| !checkout.customer.id.is_empty() && owner == checkout.customer.id)
    {
        add(Reason::ReferrerCannotUse);
    }
    for p in &c.order_predicates {
        let values = predicate::order_values(&p.field, checkout, original);
        if !predicate::holds(p, values.as_deref()) {
            add(Reason::PredicateFailed {
                field: p.field.clone(),
                operator: p.operator,
                values: p.values.clone(),
                currency: predicate::is_money_order_field(&p.field).then_some(cart.currency),
            });
        }
    }
    let no_items = if cart.lines.is_empty() {
        targets_items(rules) && !matches!(rules.discount, DiscountRule::FreeShipping { .. })
    } else {
        !eligible.iter().any(|e| *e)
    };
    if no_items {
        add(Reason::NoEligibleItems);
    }
    let subtotal = cart.subtotal(original);
    let mut amount_gap =
        (subtotal < c.min_subtotal).then(|| (c.min_subtotal, c.min_subtotal - subtotal));
    let units = cart.quantity();
    let mut quantity_gap =
        (units < c.min_quantity).then(|| (c.min_quantity, c.min_quantity - units));
    if let DiscountRule::Tiered { basis, ref tiers } = rules.discount {
        // Below its first tier a tiered coupon gives nothing: that tier is its minimum, reported
        // like the coupon's own minimum, whichever is further away.
        let measured = tiers::measure(basis, cart, eligible, original);
        let first = tiers.first().filter(|first| measured < first.threshold);
        if let (false, Some(first)) = (no_items, first) {
            let missing = first.threshold - measured;
            let gap = match basis {
                TierBasis::Spend => &mut amount_gap,
                TierBasis::Quantity => &mut quantity_gap,
            };
            if gap.is_none_or(|(_, known)| missing > known) {
                *gap = Some((first.threshold, missing));
            }
        }
    }
    if let (Some((minimum, missing)), Some(currency)) = (amount_gap, rules.currency) {
        add(Reason::BelowMinimumAmount {
            minimum,
            missing,
            currency,
        });
    }
    if let DiscountRule::BuyGet { buy, get, .. } = rules.discount {
        // A buy-M-get-N coupon needs M + N eligible units to give anything.
        let group = i64::from(buy) + i64::from(get);
        let eligible_units: i64 = cart
            .lines
            .iter()
            .zip(eligible)
            .filter(|(_, e)| **e)
            .map(|(l, _)| l.quantity)
            .sum();
        let missing = group - eligible_units;
        if !no_items && missing > 0 && quantity_gap.is_none_or(|(_, gap)| missing > gap) {
            quantity_gap = Some((group, missing));
        }
    }
    if let Some((minimum, missing)) = quantity_gap {
        add(Reason::BelowMinimumQuantity { minimum, missing });
    }
    let limits = &rules.limits;
    if limits
        .max_redemptions
        .is_some_and(|max| ledger.usage.redemptions >= max)
    {
        add(Reason::UsageLimitReached);
    }
    if limits
        .max_redemptions_per_customer
        .is_some_and(|max| ledger.customer_redemptions >= max)
    {
        add(Reason::CustomerLimitReached);
    }
    if limits
        .budget
        .is_some_and(|budget| ledger.usage.budget_used >= budget)
    {
        add(Reason::BudgetExhausted);
    }
    reasons
}

/// The tenant policy's reasons, in the order a coupon's own conditions would give them.
fn policy_reasons(checkout: &Checkout) -> Vec<Reason> {
    let policy = &checkout.policy;
    let mut reasons = Vec::new();
    if policy.refuses_order_type(&checkout.order_type) {
        reasons.push(Reason::OrderTypeNotEligible {
            order_type: checkout.order_type.clone(),
        });
    }
    if policy.requires_verified_phone && !checkout.customer.phone_verified {
        reasons.push(Reason::PhoneNotVerified);
    }
    if policy.refuse_loyalty_points && checkout.loyalty_points_used > 0 {
        reasons.push(Reason::NotCombinableWithPoints);
    }
    reasons
}

/// Whether the checkout says nothing of who the customer is that `segment` could decide on: for
/// new and returning customers no id, e-mail or stated history; for a list no id, e-mail or
/// phone. Such a customer (a guest) could only become eligible by signing in.
fn is_guest(checkout: &Checkout, segment: CustomerSegment) -> bool {
    let customer = &checkout.customer;
    match segment {
        CustomerSegment::All => false,
        CustomerSegment::New | CustomerSegment::Returning => {
            customer.ledger_key().is_none() && customer.history == CustomerHistory::Unknown
        }
        CustomerSegment::Listed => customer.ledger_key().is_none() && customer.phone.is_empty(),
    }
}

fn customer_eligible(
    segment: CustomerSegment,
    checkout: &Checkout,
    ledger: &LedgerView,
    ids: &[String],
    emails: &[String],
    phones: &[String],
) -> bool {
    let customer = &checkout.customer;
    let returning = match customer.history {
        CustomerHistory::New => Some(false),
        CustomerHistory::Returning => Some(true),
        CustomerHistory::Unknown => ledger.customer_returning,
    };
    match segment {
        CustomerSegment::All => true,
        CustomerSegment::New => returning == Some(false),
        CustomerSegment::Returning => returning == Some(true),
        CustomerSegment::Listed => {
            (!customer.id.is_empty() && ids.contains(&customer.id))
                || (!customer.email.is_empty() && emails.contains(&customer.email))
                || (!customer.phone.is_empty() && phones.contains(&customer.phone))
        }
    }
}

fn contains_ci(list: &[String], value: &str) -> bool {
    !value.is_empty() && list.iter().any(|item| item.eq_ignore_ascii_case(value))
}
