//! Why a coupon does not apply: stable machine-readable reasons with the values behind them.

use std::collections::BTreeMap;

use crate::domain::{
    coupon::{CustomerSegment, PredicateOperator},
    Code, Currency, Timestamp,
};

/// One reason a coupon does not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    CouponNotFound,
    CouponInactive,
    CouponNotStarted {
        starts_at: Timestamp,
    },
    CouponExpired {
        ended_at: Timestamp,
    },
    CurrencyMismatch {
        coupon: Currency,
        cart: Currency,
    },
    ChannelNotEligible {
        channel: String,
    },
    OrderTypeNotEligible {
        order_type: String,
    },
    PaymentMethodNotEligible {
        payment_method: String,
    },
    CustomerNotEligible {
        segment: CustomerSegment,
    },
    /// A guest (no customer id, e-mail or history) checked a coupon that depends on who the
    /// customer is: signing in is what would make it apply.
    SignInRequired {
        segment: CustomerSegment,
    },
    PhoneNotVerified,
    NotCombinableWithPoints,
    ReferrerCannotUse,
    PredicateFailed {
        field: String,
        operator: PredicateOperator,
        values: Vec<String>,
        /// The cart's currency when the field is money (values in minor units), so messages
        /// write the values as amounts.
        currency: Option<Currency>,
    },
    NoEligibleItems,
    BelowMinimumAmount {
        minimum: i64,
        missing: i64,
        currency: Currency,
    },
    BelowMinimumQuantity {
        minimum: i64,
        missing: i64,
    },
    UsageLimitReached,
    CustomerLimitReached,
    BudgetExhausted,
    /// Everything else holds but the coupon would take nothing off this checkout (free shipping
    /// on an order without shipping, an exclusive price above the price paid): redeeming it
    /// would use up a limited coupon for nothing.
    NoDiscount,
    /// Stacking: an exclusive coupon and another were both asked for.
    NotCombinable {
        with: Code,
    },
}

impl Reason {
    /// The stable UPPER_SNAKE reason sent as `ErrorInfo.reason` and `Rejection.reason`.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::CouponNotFound => "COUPON_NOT_FOUND",
            Reason::CouponInactive => "COUPON_INACTIVE",
            Reason::CouponNotStarted { .. } => "COUPON_NOT_STARTED",
            Reason::CouponExpired { .. } => "COUPON_EXPIRED",
            Reason::CurrencyMismatch { .. } => "CURRENCY_MISMATCH",
            Reason::ChannelNotEligible { .. } => "CHANNEL_NOT_ELIGIBLE",
            Reason::OrderTypeNotEligible { .. } => "ORDER_TYPE_NOT_ELIGIBLE",
            Reason::PaymentMethodNotEligible { .. } => "PAYMENT_METHOD_NOT_ELIGIBLE",
            Reason::CustomerNotEligible { .. } => "CUSTOMER_NOT_ELIGIBLE",
            Reason::SignInRequired { .. } => "SIGN_IN_REQUIRED",
            Reason::PhoneNotVerified => "PHONE_NOT_VERIFIED",
            Reason::NotCombinableWithPoints => "NOT_COMBINABLE_WITH_POINTS",
            Reason::ReferrerCannotUse => "REFERRER_CANNOT_USE",
            Reason::PredicateFailed { .. } => "PREDICATE_FAILED",
            Reason::NoEligibleItems => "NO_ELIGIBLE_ITEMS",
            Reason::BelowMinimumAmount { .. } => "BELOW_MINIMUM_AMOUNT",
            Reason::BelowMinimumQuantity { .. } => "BELOW_MINIMUM_QUANTITY",
            Reason::UsageLimitReached => "USAGE_LIMIT_REACHED",
            Reason::CustomerLimitReached => "CUSTOMER_LIMIT_REACHED",
            Reason::BudgetExhausted => "BUDGET_EXHAUSTED",
            Reason::NoDiscount => "NO_DISCOUNT",
            Reason::NotCombinable { .. } => "NOT_COMBINABLE",
        }
    }

    /// The values behind the reason, for machines (`ErrorInfo.metadata`).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let pairs: Vec<(&str, String)> = match self {
            Reason::CouponNotStarted { starts_at } => {
                vec![("start_time_us", starts_at.micros().to_string())]
            }
            Reason::CouponExpired { ended_at } => {
                vec![("end_time_us", ended_at.micros().to_string())]
            }
            Reason::CurrencyMismatch { coupon, cart } => {
                vec![
                    ("coupon_currency", coupon.to_string()),
                    ("cart_currency", cart.to_string()),
                ]
            }
            Reason::ChannelNotEligible { channel } => vec![("channel", channel.clone())],
            Reason::OrderTypeNotEligible { order_type } => vec![("order_type", order_type.clone())],
            Reason::PaymentMethodNotEligible { payment_method } => {
                vec![("payment_method", payment_method.clone())]
            }
            Reason::CustomerNotEligible { segment } | Reason::SignInRequired { segment } => {
                vec![("customer_segment", format!("{segment:?}").to_uppercase())]
            }
            Reason::PredicateFailed {
                field,
                operator,
                values,
                currency,
            } => {
                let mut pairs = vec![
                    ("field", field.clone()),
                    ("operator", format!("{operator:?}").to_uppercase()),
                    ("values", values.join(",")),
                ];
                if let Some(currency) = currency {
                    pairs.push(("currency", currency.to_string()));
                }
                pairs
            }
            Reason::BelowMinimumAmount {
                minimum,
                missing,
                currency,
            } => vec![
                ("min_subtotal", minimum.to_string()),
                ("missing_amount", missing.to_string()),
                ("currency", currency.to_string()),
            ],
            Reason::BelowMinimumQuantity { minimum, missing } => vec![
                ("min_quantity", minimum.to_string()),
                ("missing_quantity", missing.to_string()),
            ],
            Reason::NotCombinable { with } => vec![("with_code", with.to_string())],
            _ => vec![],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}
