//! What a coupon gives, computed on what earlier coupons left, allocated exactly to lines.

use super::tiers::{self, NextTier};
use crate::domain::{
    cart::Cart,
    coupon::{CouponRules, DiscountRule, TierReward},
    money::{allocate, mul_bps},
};

/// Amounts still discountable: per line, the order amount of an item-less checkout, shipping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remaining {
    pub lines: Vec<i64>,
    pub order: i64,
    pub shipping: i64,
}

impl Remaining {
    /// Everything, before any coupon, at original prices when `original`.
    pub fn full(cart: &Cart, original: bool) -> Self {
        Self {
            lines: cart
                .lines
                .iter()
                .map(|l| l.price(original) * l.quantity)
                .collect(),
            order: if cart.lines.is_empty() {
                cart.subtotal_override
            } else {
                0
            },
            shipping: cart.shipping,
        }
    }

    /// Takes a coupon's benefit off; never below zero, since no benefit exceeds what remains.
    pub fn take(&mut self, benefit: &Benefit) {
        for (left, discount) in self.lines.iter_mut().zip(&benefit.line_discounts) {
            *left -= discount;
        }
        self.order -= benefit.order_discount;
        self.shipping -= benefit.shipping_discount;
    }
}

/// What one coupon gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Benefit {
    /// Discount per cart line; sums to the item discount.
    pub line_discounts: Vec<i64>,
    /// Units made free per cart line (buy-get, free-unit tiers).
    pub free_units: Vec<i64>,
    /// Discount on an item-less checkout's amount.
    pub order_discount: i64,
    pub shipping_discount: i64,
    /// A tiered coupon's next tier, when the checkout has not reached its highest.
    pub next_tier: Option<NextTier>,
}

impl Benefit {
    /// Discount on items (lines or an item-less order amount).
    pub fn item_discount(&self) -> i64 {
        self.line_discounts.iter().sum::<i64>() + self.order_discount
    }

    /// Everything the coupon gives.
    pub fn total(&self) -> i64 {
        self.item_discount() + self.shipping_discount
    }
}

/// The benefit of `rules` on `remaining`, for the `eligible` lines, capped by `budget_left`.
pub fn benefit(
    rules: &CouponRules,
    cart: &Cart,
    eligible: &[bool],
    remaining: &Remaining,
    original: bool,
    budget_left: Option<i64>,
) -> Benefit {
    let lines = cart.lines.len();
    let mut benefit = Benefit {
        line_discounts: vec![0; lines],
        free_units: vec![0; lines],
        ..Benefit::default()
    };
    let weights: Vec<i64> = remaining
        .lines
        .iter()
        .zip(eligible)
        .map(|(left, e)| if *e { *left } else { 0 })
        .collect();
    let base: i64 = if lines == 0 {
        remaining.order
    } else {
        weights.iter().sum()
    };
    let percent_of_base = |basis_points| mul_bps(base, basis_points).unwrap_or(base);
    let order_level = |benefit: &mut Benefit, discount: i64| {
        let discount = discount.clamp(0, base);
        if lines == 0 {
            benefit.order_discount = discount;
        } else {
            benefit.line_discounts = allocate(discount, &weights);
        }
    };
    match rules.discount {
        DiscountRule::FixedAmount { amount } => order_level(&mut benefit, amount),
        DiscountRule::Percentage {
            basis_points,
            max_discount,
        } => {
            let percent = percent_of_base(basis_points);
            order_level(
                &mut benefit,
                max_discount.map_or(percent, |cap| percent.min(cap)),
            );
        }
        DiscountRule::FreeShipping { max_discount } => {
            benefit.shipping_discount =
                max_discount.map_or(remaining.shipping, |cap| remaining.shipping.min(cap));
        }
        DiscountRule::BuyGet {
            buy,
            get,
            max_applications,
        } => {
            let free = buy_get_free_units(cart, eligible, (buy, get, max_applications));
            free_cheapest(&mut benefit, cart, eligible, remaining, original, free);
        }
        DiscountRule::ExclusivePrice { unit_price } => {
            for (index, line) in cart.lines.iter().enumerate().filter(|(i, _)| eligible[*i]) {
                let saving = (line.price(original) - unit_price).max(0) * line.quantity;
                benefit.line_discounts[index] = saving.min(remaining.lines[index]);
            }
        }
        DiscountRule::Tiered { basis, ref tiers } => {
            let measured = tiers::measure(basis, cart, eligible, original);
            // Below the first tier the coupon gives nothing; the conditions refuse it.
            match tiers::reached(tiers, measured).map(|tier| tier.reward) {
                None => {}
                Some(TierReward::Percentage { basis_points }) => {
                    order_level(&mut benefit, percent_of_base(basis_points))
                }
                Some(TierReward::FixedAmount { amount }) => order_level(&mut benefit, amount),
                Some(TierReward::FreeUnits { units }) => free_cheapest(
                    &mut benefit,
                    cart,
                    eligible,
                    remaining,
                    original,
                    i64::from(units),
                ),
            }
            benefit.next_tier = tiers::next(basis, tiers, measured);
        }
    }
    if let Some(budget_left) = budget_left {
        cap_to_budget(&mut benefit, budget_left.max(0));
    }
    benefit
}

/// Units a buy-get coupon makes free: `get` per group of `buy + get` eligible units, at most
/// `max_applications` groups (0 = no limit).
fn buy_get_free_units(
    cart: &Cart,
    eligible: &[bool],
    (buy, get, max_applications): (u32, u32, u32),
) -> i64 {
    let units: i64 = cart
        .lines
        .iter()
        .zip(eligible)
        .filter(|(_, e)| **e)
        .map(|(line, _)| line.quantity)
        .sum();
    let mut groups = units / (i64::from(buy) + i64::from(get));
    if max_applications > 0 {
        groups = groups.min(i64::from(max_applications));
    }
    groups * i64::from(get)
}

/// The `free` cheapest eligible units are free. Ties go to the earlier line.
fn free_cheapest(
    benefit: &mut Benefit,
    cart: &Cart,
    eligible: &[bool],
    remaining: &Remaining,
    original: bool,
    mut free: i64,
) {
    let mut candidates: Vec<(i64, usize)> = cart
        .lines
        .iter()
        .enumerate()
        .filter(|(i, _)| eligible[*i])
        .map(|(i, line)| (line.price(original), i))
        .collect();
    candidates.sort();
    for (price, index) in candidates {
        if free == 0 {
            break;
        }
        let units = free.min(cart.lines[index].quantity);
        free -= units;
        benefit.free_units[index] = units;
        benefit.line_discounts[index] = (price * units).min(remaining.lines[index]);
    }
}

/// Shrinks a benefit to `budget_left`, in proportion over lines, order and shipping.
fn cap_to_budget(benefit: &mut Benefit, budget_left: i64) {
    if benefit.total() <= budget_left {
        return;
    }
    let mut weights = benefit.line_discounts.clone();
    weights.push(benefit.order_discount);
    weights.push(benefit.shipping_discount);
    let mut shares = allocate(budget_left, &weights);
    benefit.shipping_discount = shares.pop().unwrap_or(0);
    benefit.order_discount = shares.pop().unwrap_or(0);
    benefit.line_discounts = shares;
}
