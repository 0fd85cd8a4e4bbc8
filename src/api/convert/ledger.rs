//! Ledger requests in, as commands that report every invalid field at once; redemptions out.

use std::time::Duration;

use super::{checkout::checkout_from_pb, timestamp_to_pb};
use crate::{
    app::redemptions::{OrderCodes, RedeemCommand},
    domain::{
        redemption::{Redemption, RedemptionStatus, RESERVATION_TTL_RANGE},
        text::refuse_nul,
        Code, InvalidInput, Problem, Violations,
    },
    pb,
};

/// Most codes one ledger request may name.
const MAX_CODES: usize = 20;
const MAX_ORDER_ID_LEN: usize = 128;

/// Codes of a ledger request: each once, each a valid code.
fn ledger_codes(raw: &[String], violations: &mut Violations) -> Vec<Code> {
    if raw.len() > MAX_CODES {
        violations.add(
            "codes",
            Problem::CodeCount {
                min: 0,
                max: MAX_CODES,
            },
        );
        return Vec::new();
    }
    let mut codes: Vec<Code> = Vec::with_capacity(raw.len());
    for (index, text) in raw.iter().enumerate() {
        if let Some(code) = violations.take(&format!("codes[{index}]"), Code::parse(text)) {
            if codes.contains(&code) {
                violations.add(format!("codes[{index}]"), Problem::NamedTwice);
            }
            codes.push(code);
        }
    }
    codes
}

fn order_id(raw: &str, violations: &mut Violations) -> String {
    let id = raw.trim();
    violations.require(
        !id.is_empty() && id.len() <= MAX_ORDER_ID_LEN,
        "order_id",
        Problem::RequiredUpTo {
            max: MAX_ORDER_ID_LEN,
        },
    );
    refuse_nul("order_id", id, violations);
    id.to_owned()
}

impl TryFrom<pb::RedeemRequest> for RedeemCommand {
    type Error = InvalidInput;

    fn try_from(request: pb::RedeemRequest) -> Result<Self, InvalidInput> {
        let mut violations = Violations::new();
        let order_id = order_id(&request.order_id, &mut violations);
        let completed = match pb::OrderStatus::try_from(request.order_status) {
            Ok(pb::OrderStatus::Pending) => false,
            Ok(pb::OrderStatus::Completed) => true,
            _ => {
                violations.add("order_status", Problem::UnknownOrderStatus);
                false
            }
        };
        let reservation_ttl = request.reservation_ttl.and_then(|ttl| {
            let (min, max) = RESERVATION_TTL_RANGE;
            let ttl = Duration::try_from(ttl)
                .ok()
                .filter(|ttl| (min..=max).contains(ttl));
            if ttl.is_none() {
                violations.add("reservation_ttl", Problem::ReservationTtlOutOfRange);
            }
            ttl
        });
        // No code redeems only the automatic promotions that apply.
        let codes = ledger_codes(&request.codes, &mut violations);
        let checkout = match checkout_from_pb(request.checkout) {
            Ok(checkout) => {
                violations.require(
                    !checkout.customer.id.is_empty(),
                    "checkout.customer.id",
                    Problem::CustomerIdRequired,
                );
                Some(checkout)
            }
            Err(invalid) => {
                violations.merge(invalid);
                None
            }
        };
        match checkout {
            Some(checkout) => violations.finish(RedeemCommand {
                order_id,
                codes,
                completed,
                reservation_ttl,
                checkout,
            }),
            None => Err(violations.into_error()),
        }
    }
}

/// An order and its codes (all when none are named), for Confirm and Revert.
pub(crate) fn order_codes(
    order_id_text: &str,
    codes: &[String],
) -> Result<OrderCodes, InvalidInput> {
    let mut violations = Violations::new();
    let order_id = order_id(order_id_text, &mut violations);
    let codes = ledger_codes(codes, &mut violations);
    violations.finish(OrderCodes { order_id, codes })
}

/// A redemption as its proto message.
pub(crate) fn redemption_to_pb(r: &Redemption) -> pb::Redemption {
    let status = match r.status {
        RedemptionStatus::Pending => pb::RedemptionStatus::Pending,
        RedemptionStatus::Completed => pb::RedemptionStatus::Completed,
        RedemptionStatus::Reverted => pb::RedemptionStatus::Reverted,
        RedemptionStatus::Expired => pb::RedemptionStatus::Expired,
    };
    pb::Redemption {
        id: r.id.clone(),
        coupon_id: r.coupon_id.clone(),
        code: r.code.to_string(),
        campaign_id: r.campaign_id.clone().unwrap_or_default(),
        order_id: r.order_id.clone(),
        customer_id: r.customer_id.clone(),
        discount: r.discount,
        currency: r.currency.code().to_owned(),
        status: status as i32,
        request_id: r.request_id.clone(),
        create_time: Some(timestamp_to_pb(r.created_at)),
        update_time: Some(timestamp_to_pb(r.updated_at)),
        expire_time: r.expires_at.map(timestamp_to_pb),
        automatic: r.automatic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_redeem_reports_every_missing_field() {
        let fields: Vec<String> = RedeemCommand::try_from(pb::RedeemRequest::default())
            .err()
            .map(|e| e.violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default();
        // No code is allowed: the order then takes only the automatic promotions that apply.
        assert_eq!(fields, ["order_id", "order_status", "checkout"]);
    }
}
