//! Checkouts in, priced carts and validations out.

use super::coupon::{conditions_to_pb, discount_to_pb, segment_to_pb, target_to_pb, tier_to_pb};
use crate::{
    app::pricing::{PricingCommand, RequestedCode},
    domain::{
        cart::{Checkout, CheckoutInput, Customer, CustomerHistory, LineInput},
        coupon::TierBasis,
        coupon::{Conditions, Coupon},
        engine::{NextTier, PricedCart, Reason},
        messages::{applied_message, next_tier_hint, reason_message, Locale},
        Currency, InvalidInput, Problem, Violations,
    },
    pb,
};

/// Most codes Validate and Apply take at once.
const MAX_CODES: usize = 20;

/// A request's checkout, checked; problems are reported under `checkout.`.
pub fn checkout_from_pb(checkout: Option<pb::Checkout>) -> Result<Checkout, InvalidInput> {
    let checkout = checkout.ok_or_else(|| InvalidInput::field("checkout", Problem::Required))?;
    let cart = checkout
        .cart
        .ok_or_else(|| InvalidInput::field("checkout.cart", Problem::Required))?;
    let customer = checkout.customer.unwrap_or_default();
    let history = match pb::CustomerHistory::try_from(customer.history) {
        Ok(pb::CustomerHistory::New) => CustomerHistory::New,
        Ok(pb::CustomerHistory::Returning) => CustomerHistory::Returning,
        Ok(pb::CustomerHistory::Unspecified) => CustomerHistory::Unknown,
        Err(_) => {
            return Err(InvalidInput::field(
                "checkout.customer.history",
                Problem::UnknownValue,
            ))
        }
    };
    let input = CheckoutInput {
        currency: cart.currency,
        lines: cart
            .items
            .into_iter()
            .map(|item| LineInput {
                line_id: item.line_id,
                product_id: item.product_id,
                sku: item.sku,
                name: item.name,
                categories: item.categories,
                unit_price: item.unit_price,
                original_unit_price: item.original_unit_price,
                quantity: item.quantity,
                metadata: item.metadata.into_iter().collect(),
            })
            .collect(),
        shipping: cart.shipping,
        tax: cart.tax,
        metadata: cart.metadata.into_iter().collect(),
        subtotal_override: cart.subtotal_override,
        customer: Customer {
            id: customer.id,
            email: customer.email,
            phone: customer.phone,
            phone_verified: customer.phone_verified,
            history,
        },
        channel: checkout.channel,
        payment_method: checkout.payment_method,
        payment_link_id: checkout.payment_link_id,
        order_type: checkout.order_type,
        loyalty_points_used: checkout.loyalty_points_used,
        referral_code: checkout.referral_code,
    };
    Checkout::parse(input, "checkout")
}

/// Validate's and Apply's codes and checkout, with every invalid field at once. Validate needs
/// a code (`codes_required`); Apply without one prices the automatic promotions alone.
pub(crate) fn pricing_command(
    codes: &[String],
    codes_required: bool,
    checkout: Option<pb::Checkout>,
    explain_automatic: bool,
) -> Result<PricingCommand, InvalidInput> {
    let mut violations = Violations::new();
    if codes_required {
        violations.require(
            !codes.is_empty() && codes.len() <= MAX_CODES,
            "codes",
            Problem::CodeCount {
                min: 1,
                max: MAX_CODES,
            },
        );
    } else {
        violations.require(
            codes.len() <= MAX_CODES,
            "codes",
            Problem::CodeCount {
                min: 0,
                max: MAX_CODES,
            },
        );
    }
    let checkout = checkout_from_pb(checkout).map_err(|invalid| violations.merge(invalid));
    match checkout {
        Ok(checkout) => violations.finish(PricingCommand {
            codes: codes
                .iter()
                .map(|text| RequestedCode::parse(text))
                .collect(),
            checkout,
            explain_automatic,
        }),
        Err(()) => Err(violations.into_error()),
    }
}

/// A reason as a rejection in the caller's language.
pub fn rejection_to_pb(reason: &Reason, locale: Locale) -> pb::Rejection {
    pb::Rejection {
        reason: reason.code().to_owned(),
        message: reason_message(reason, locale),
        metadata: reason.metadata().into_iter().collect(),
    }
}

/// The public face of a coupon: its target and the conditions a customer needs to know, as the
/// coupon states them; never who else may use it (customer lists), whose referral code it is, nor
/// the payment links it is limited to.
pub fn summary_to_pb(coupon: &Coupon) -> pb::CouponSummary {
    let rules = &coupon.rules;
    let c = &rules.conditions;
    pb::CouponSummary {
        id: coupon.id.clone(),
        code: coupon.code.to_string(),
        description: rules.description.clone(),
        discount: Some(discount_to_pb(&rules.discount)),
        currency: rules
            .currency
            .map(|c| c.code().to_owned())
            .unwrap_or_default(),
        min_subtotal: c.min_subtotal,
        min_quantity: c.min_quantity,
        customer_segment: segment_to_pb(c.customer_segment) as i32,
        validity: Some(conditions_to_pb(&Conditions {
            customer_ids: Vec::new(),
            customer_emails: Vec::new(),
            customer_phones: Vec::new(),
            referrer_customer_id: None,
            payment_link_ids: Vec::new(),
            ..c.clone()
        })),
        target: Some(target_to_pb(&rules.target)),
    }
}

/// One code's validation. `potential_discount` is what the coupon gives on its own when its
/// `reasons` are resolved; a refused code gives nothing, so its `discount` is 0. A code that is
/// not found (or not for this payment link) shows no coupon.
pub fn validation_to_pb(
    code: &str,
    coupon: Option<&Coupon>,
    potential_discount: i64,
    reasons: &[Reason],
    locale: Locale,
) -> pb::CodeValidation {
    let valid = reasons.is_empty();
    let found = !reasons.contains(&Reason::CouponNotFound);
    pb::CodeValidation {
        code: code.to_owned(),
        valid,
        coupon: coupon.filter(|_| found).map(summary_to_pb),
        discount: if valid { potential_discount } else { 0 },
        rejections: reasons.iter().map(|r| rejection_to_pb(r, locale)).collect(),
        potential_discount: if found { potential_discount } else { 0 },
        automatic: coupon.is_some_and(|c| c.automatic),
        // Only the engine's answer knows the next tier; its callers add it.
        next_tier: None,
    }
}

/// A tiered coupon's next tier, with its hint in `locale` and amounts in the cart's `currency`.
pub fn next_tier_to_pb(next: &NextTier, currency: Currency, locale: Locale) -> pb::NextTier {
    let (missing_amount, missing_quantity) = match next.basis {
        TierBasis::Spend => (next.missing, 0),
        TierBasis::Quantity => (0, next.missing),
    };
    pb::NextTier {
        missing_amount,
        missing_quantity,
        tier: Some(tier_to_pb(&next.tier)),
        hint: next_tier_hint(next, currency, locale),
    }
}

/// A priced cart.
pub fn priced_cart_to_pb(
    priced: &PricedCart,
    currency: Currency,
    locale: Locale,
) -> pb::PricedCart {
    let next_tier = |next: Option<&NextTier>| next.map(|n| next_tier_to_pb(n, currency, locale));
    pb::PricedCart {
        currency: currency.code().to_owned(),
        lines: priced
            .lines
            .iter()
            .map(|l| pb::PricedLine {
                line_id: l.line_id.clone(),
                product_id: l.product_id.clone(),
                unit_price: l.unit_price,
                quantity: l.quantity,
                subtotal: l.subtotal,
                coupon_discount: l.coupon_discount,
                free_units: l.free_units,
                total: l.total,
            })
            .collect(),
        subtotal: priced.subtotal,
        item_discount: priced.item_discount,
        shipping: priced.shipping,
        shipping_discount: priced.shipping_discount,
        tax: priced.tax,
        total_amount: priced.total_amount,
        total: priced.total,
        discount: priced.item_discount + priced.shipping_discount,
        free_delivery: priced.free_delivery,
        exclusive_price: priced.exclusive_price,
        referral: priced.referral,
        payment_methods: priced.payment_methods.clone(),
        promotions_removed: priced.promotions_removed,
        removed_promotions_hint: priced.removed_promotions_hint.clone(),
        applied: priced
            .applied
            .iter()
            .map(|a| pb::AppliedCoupon {
                coupon_id: a.coupon.id.clone(),
                code: a.coupon.code.to_string(),
                item_discount: a.benefit.item_discount(),
                shipping_discount: a.benefit.shipping_discount,
                message: applied_message(locale).to_owned(),
                next_tier: next_tier(a.benefit.next_tier.as_ref()),
                automatic: a.coupon.automatic,
            })
            .collect(),
        rejected: priced
            .rejected
            .iter()
            .map(|r| pb::CodeValidation {
                next_tier: next_tier(r.next_tier.as_ref()),
                ..validation_to_pb(
                    r.code.as_str(),
                    r.coupon.as_ref(),
                    r.potential_discount,
                    &r.reasons,
                    locale,
                )
            })
            .collect(),
    }
}
