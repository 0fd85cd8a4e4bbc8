//! The rules engine: whether coupons apply to a checkout and exactly what they give.
//!
//! Pure functions of a checkout, the coupons, what the ledger knows and the time, so the same
//! input always prices the same way. Rounding is half-up (see `domain::money`) and every
//! order-level discount is split over lines by the largest-remainder method, so line discounts
//! sum exactly to the coupon's discount and no amount goes below zero.

mod discount;
mod eligibility;
pub mod predicate;
mod reason;
mod tiers;

pub use discount::Benefit;
use discount::Remaining;
pub use reason::Reason;
pub use tiers::NextTier;

use crate::domain::{
    cart::Checkout,
    coupon::{Coupon, DiscountRule, Usage},
    Code, Timestamp,
};

/// What the redemption ledger knows of a coupon and the customer, read with the coupon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerView {
    pub usage: Usage,
    /// Active redemptions of this coupon by this customer.
    pub customer_redemptions: i64,
    /// Whether the customer has an active (pending or completed) redemption in the ledger;
    /// `None` when the customer is unknown.
    pub customer_returning: Option<bool>,
}

/// One coupon checked on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// Every reason it does not apply; empty when it does.
    pub reasons: Vec<Reason>,
    /// What it would give on the whole cart.
    pub benefit: Benefit,
}

impl Evaluation {
    pub fn is_valid(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// Checks one coupon against a checkout.
pub fn evaluate(
    coupon: &Coupon,
    ledger: &LedgerView,
    checkout: &Checkout,
    now: Timestamp,
) -> Evaluation {
    let original = coupon.rules.stacking.replaces_item_promotions;
    let eligible = eligibility::eligible_lines(&coupon.rules, checkout, original);
    let mut reasons = eligibility::reasons(coupon, ledger, checkout, now, &eligible);
    let remaining = Remaining::full(&checkout.cart, original);
    let benefit = discount::benefit(
        &coupon.rules,
        &checkout.cart,
        &eligible,
        &remaining,
        original,
        budget_left(coupon),
    );
    if reasons.is_empty() && benefit.total() == 0 {
        reasons.push(Reason::NoDiscount);
    }
    Evaluation { reasons, benefit }
}

fn budget_left(coupon: &Coupon) -> Option<i64> {
    coupon
        .rules
        .limits
        .budget
        .map(|budget| budget - coupon.usage.budget_used)
}

/// A requested code: the coupon it names (if any) and what the ledger knows of it.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub code: Code,
    pub coupon: Option<Coupon>,
    pub ledger: LedgerView,
}

/// A line after coupons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedLine {
    pub line_id: String,
    pub product_id: String,
    pub unit_price: i64,
    pub quantity: i64,
    pub subtotal: i64,
    pub coupon_discount: i64,
    pub free_units: i64,
    pub total: i64,
}

/// A coupon that applied, and what it gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub coupon: Coupon,
    pub benefit: Benefit,
}

/// A code that did not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub code: Code,
    pub coupon: Option<Coupon>,
    /// What it would have given on its own had its reasons been resolved (0 when it is refused
    /// only for stacking, or does not exist); it gives nothing.
    pub potential_discount: i64,
    pub reasons: Vec<Reason>,
    /// A tiered coupon's next tier (its first, when it is refused for not reaching it).
    pub next_tier: Option<NextTier>,
}

/// A cart after coupons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedCart {
    pub lines: Vec<PricedLine>,
    pub subtotal: i64,
    pub item_discount: i64,
    pub shipping: i64,
    pub shipping_discount: i64,
    pub tax: i64,
    /// The total before any coupon: subtotal + shipping + tax.
    pub total_amount: i64,
    pub total: i64,
    pub free_delivery: bool,
    pub exclusive_price: bool,
    pub referral: bool,
    /// Payment methods every applied coupon accepts; empty means any.
    pub payment_methods: Vec<String>,
    pub promotions_removed: bool,
    pub removed_promotions_hint: String,
    pub applied: Vec<Applied>,
    pub rejected: Vec<Rejected>,
}

/// Prices a checkout with the requested codes.
///
/// Each code is checked on its own first. The valid ones apply in order of priority (higher
/// first), then code; an exclusive coupon applies alone, so when the first is exclusive the others
/// are refused, and otherwise exclusive ones are. Each coupon is computed on what the earlier ones
/// left. A coupon that replaces item promotions prices every line from its original price.
pub fn price(checkout: &Checkout, candidates: Vec<Candidate>, now: Timestamp) -> PricedCart {
    let mut valid = Vec::new();
    let mut rejected = Vec::new();
    for candidate in candidates {
        let Some(coupon) = candidate.coupon else {
            rejected.push(Rejected {
                code: candidate.code,
                coupon: None,
                potential_discount: 0,
                reasons: vec![Reason::CouponNotFound],
                next_tier: None,
            });
            continue;
        };
        let evaluation = evaluate(&coupon, &candidate.ledger, checkout, now);
        if evaluation.is_valid() {
            valid.push(coupon);
        } else {
            rejected.push(Rejected {
                code: coupon.code.clone(),
                potential_discount: evaluation.benefit.total(),
                coupon: Some(coupon),
                reasons: evaluation.reasons,
                next_tier: evaluation.benefit.next_tier,
            });
        }
    }
    valid.sort_by(|a, b| {
        b.rules
            .stacking
            .priority
            .cmp(&a.rules.stacking.priority)
            .then_with(|| a.code.cmp(&b.code))
    });
    let mut chosen: Vec<Coupon> = Vec::new();
    for coupon in valid {
        let lead = chosen.first();
        let fits = match lead {
            None => true,
            Some(lead) => lead.rules.stacking.stackable && coupon.rules.stacking.stackable,
        };
        if fits {
            chosen.push(coupon);
        } else {
            let with = lead
                .map(|l| l.code.clone())
                .unwrap_or_else(|| coupon.code.clone());
            rejected.push(Rejected {
                code: coupon.code.clone(),
                potential_discount: 0,
                coupon: Some(coupon),
                reasons: vec![Reason::NotCombinable { with }],
                next_tier: None,
            });
        }
    }

    let original = chosen
        .iter()
        .any(|c| c.rules.stacking.replaces_item_promotions);
    let cart = &checkout.cart;
    let mut remaining = Remaining::full(cart, original);
    let mut applied = Vec::with_capacity(chosen.len());
    for coupon in chosen {
        let eligible = eligibility::eligible_lines(&coupon.rules, checkout, original);
        let benefit = discount::benefit(
            &coupon.rules,
            cart,
            &eligible,
            &remaining,
            original,
            budget_left(&coupon),
        );
        // Earlier coupons may have left this one nothing to take off: then it is refused, not
        // applied, so that redeeming never uses a coupon for nothing.
        if benefit.total() == 0 {
            rejected.push(Rejected {
                code: coupon.code.clone(),
                potential_discount: 0,
                coupon: Some(coupon),
                reasons: vec![Reason::NoDiscount],
                next_tier: benefit.next_tier,
            });
            continue;
        }
        remaining.take(&benefit);
        applied.push(Applied { coupon, benefit });
    }
    assemble(checkout, original, applied, rejected)
}

fn assemble(
    checkout: &Checkout,
    original: bool,
    applied: Vec<Applied>,
    rejected: Vec<Rejected>,
) -> PricedCart {
    let cart = &checkout.cart;
    let lines: Vec<PricedLine> = cart
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let subtotal = line.price(original) * line.quantity;
            let coupon_discount: i64 = applied
                .iter()
                .map(|a| a.benefit.line_discounts[index])
                .sum();
            PricedLine {
                line_id: line.line_id.clone(),
                product_id: line.product_id.clone(),
                unit_price: line.price(original),
                quantity: line.quantity,
                subtotal,
                coupon_discount,
                free_units: applied.iter().map(|a| a.benefit.free_units[index]).sum(),
                total: subtotal - coupon_discount,
            }
        })
        .collect();
    let subtotal = cart.subtotal(original);
    let item_discount: i64 = applied.iter().map(|a| a.benefit.item_discount()).sum();
    let shipping_discount: i64 = applied.iter().map(|a| a.benefit.shipping_discount).sum();
    let gives_free_shipping = applied
        .iter()
        .any(|a| matches!(a.coupon.rules.discount, DiscountRule::FreeShipping { .. }));
    let mut payment_methods: Vec<String> = Vec::new();
    for a in &applied {
        let methods = &a.coupon.rules.conditions.payment_methods;
        if methods.is_empty() {
            continue;
        }
        if payment_methods.is_empty() {
            payment_methods = methods.clone();
        } else {
            payment_methods.retain(|m| methods.iter().any(|n| n.eq_ignore_ascii_case(m)));
        }
    }
    let removed_promotions_hint = applied
        .iter()
        .find(|a| a.coupon.rules.stacking.replaces_item_promotions)
        .map(|a| a.coupon.rules.stacking.removed_promotions_hint.clone())
        .unwrap_or_default();
    PricedCart {
        total_amount: subtotal + cart.shipping + cart.tax,
        total: subtotal - item_discount + cart.shipping - shipping_discount + cart.tax,
        lines,
        subtotal,
        item_discount,
        shipping: cart.shipping,
        shipping_discount,
        tax: cart.tax,
        free_delivery: gives_free_shipping && shipping_discount == cart.shipping,
        exclusive_price: applied.iter().any(|a| {
            matches!(a.coupon.rules.discount, DiscountRule::ExclusivePrice { .. })
                && a.benefit.item_discount() > 0
        }),
        referral: applied
            .iter()
            .any(|a| a.coupon.rules.conditions.referrer_customer_id.is_some()),
        payment_methods,
        promotions_removed: original,
        removed_promotions_hint,
        applied,
        rejected,
    }
}

#[cfg(test)]
mod tests;
