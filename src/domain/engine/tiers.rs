//! Tiered discounts: which tier a checkout reaches, and how far it is from the next one.
//!
//! Thresholds are measured on the coupon's eligible lines at the prices the coupon uses, before
//! any coupon takes anything off, so the tier reached does not depend on stacking order.

use crate::domain::{
    cart::Cart,
    coupon::{Tier, TierBasis},
};

/// A tier the checkout has not reached yet, and what it still needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextTier {
    pub basis: TierBasis,
    /// Spend (minor units) or units still to add to reach `tier`; always positive.
    pub missing: i64,
    pub tier: Tier,
}

/// What `basis` measures on the `eligible` lines: their subtotal at the prices used (an
/// item-less checkout's order amount), or their units.
pub fn measure(basis: TierBasis, cart: &Cart, eligible: &[bool], original: bool) -> i64 {
    if cart.lines.is_empty() {
        return match basis {
            TierBasis::Spend => cart.subtotal_override,
            TierBasis::Quantity => 0,
        };
    }
    // Parsing made sure the whole cart's subtotal and units fit; saturating keeps this total
    // even if that ever changed.
    cart.lines
        .iter()
        .zip(eligible)
        .filter(|(_, e)| **e)
        .map(|(line, _)| match basis {
            TierBasis::Spend => line.price(original).saturating_mul(line.quantity),
            TierBasis::Quantity => line.quantity,
        })
        .fold(0i64, i64::saturating_add)
}

/// The highest tier `measured` reaches; `None` below the first.
pub fn reached(tiers: &[Tier], measured: i64) -> Option<&Tier> {
    tiers.iter().rev().find(|tier| tier.threshold <= measured)
}

/// The lowest tier `measured` has not reached; `None` at or above the last.
pub fn next(basis: TierBasis, tiers: &[Tier], measured: i64) -> Option<NextTier> {
    tiers
        .iter()
        .find(|tier| tier.threshold > measured)
        .map(|tier| NextTier {
            basis,
            missing: tier.threshold - measured.max(0),
            tier: *tier,
        })
}
