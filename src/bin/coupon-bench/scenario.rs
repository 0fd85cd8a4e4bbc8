//! What each scenario sends: its request, built fresh for every call, and the RPC it calls.

use std::sync::{Arc, Mutex};

use clap::ValueEnum;
use coupon_service::pb::{
    self, admin_service_client::AdminServiceClient, coupon_service_client::CouponServiceClient,
    voucher_service_client::VoucherServiceClient,
};
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
    transport::Channel,
    Request, Status,
};

use crate::load::status_name;

/// A load scenario: one RPC with one shape of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Validate: a 3-line cart, one code.
    Validate,
    /// Apply: a 20-line cart, two stacked codes.
    Apply,
    /// Apply, one call at a time (the suite runs it at concurrency 1).
    ApplySerial,
    /// ListApplicable for a 5-line cart, against every coupon of the tenant.
    ListApplicable,
    /// Redeem: each call takes the next coupon of the list round robin, each order is new.
    Redeem,
    /// Redeem: every call the same coupon (the suite gives it a large limit).
    RedeemHot,
    /// Purchase: one PIN per call, each with a new reference.
    Purchase,
    /// GetCouponStats of the first code, over the last 30 days.
    CouponStats,
}

impl Scenario {
    /// The scenario's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Apply => "apply",
            Self::ApplySerial => "apply-serial",
            Self::ListApplicable => "list-applicable",
            Self::Redeem => "redeem",
            Self::RedeemHot => "redeem-hot",
            Self::Purchase => "purchase",
            Self::CouponStats => "coupon-stats",
        }
    }

    /// The file a captured answer of this scenario's RPC is kept in for the no-op server.
    pub fn capture_file(self) -> &'static str {
        match self {
            Self::Validate => "validate.pb",
            Self::Apply | Self::ApplySerial => "apply.pb",
            Self::ListApplicable => "list_applicable.pb",
            Self::Redeem | Self::RedeemHot => "redeem.pb",
            Self::Purchase => "purchase.pb",
            Self::CouponStats => "coupon_stats.pb",
        }
    }
}

/// What a scenario's requests refer to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Coupon codes: the first for Validate, the first two for Apply, all of them round robin
    /// for Redeem.
    pub codes: Vec<String>,
    /// Product `value` (slug) for Purchase.
    pub product_value: String,
    /// Product price for Purchase.
    pub product_amount: i64,
    /// Makes order ids, customer ids and references unique to this run.
    pub run_id: String,
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Bearer(pub MetadataValue<Ascii>);

impl Bearer {
    /// The `authorization` value for `token`.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        Ok(Self(format!("Bearer {token}").parse()?))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The first OK answer of a run, encoded, for the no-op server to send back.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Option<Vec<u8>>>>);

impl Capture {
    fn keep(&self, message: &impl Message) {
        if let Ok(mut slot) = self.0.lock() {
            if slot.is_none() {
                *slot = Some(message.encode_to_vec());
            }
        }
    }

    /// The captured answer, if any call succeeded.
    pub fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Makes one call of `scenario` and answers with the name of its status.
pub async fn call(
    scenario: Scenario,
    channel: Channel,
    auth: Bearer,
    plan: &Plan,
    sequence: u64,
    capture: &Capture,
) -> &'static str {
    let outcome = match scenario {
        Scenario::Validate => CouponServiceClient::with_interceptor(channel, auth)
            .validate(validate_request(plan, sequence))
            .await
            .map(|r| capture.keep(r.get_ref())),
        Scenario::Apply | Scenario::ApplySerial => {
            CouponServiceClient::with_interceptor(channel, auth)
                .apply(apply_request(plan, sequence))
                .await
                .map(|r| capture.keep(r.get_ref()))
        }
        Scenario::ListApplicable => CouponServiceClient::with_interceptor(channel, auth)
            .list_applicable(list_applicable_request(sequence))
            .await
            .map(|r| capture.keep(r.get_ref())),
        Scenario::Redeem | Scenario::RedeemHot => {
            CouponServiceClient::with_interceptor(channel, auth)
                .redeem(redeem_request(plan, sequence))
                .await
                .map(|r| capture.keep(r.get_ref()))
        }
        Scenario::Purchase => VoucherServiceClient::with_interceptor(channel, auth)
            .purchase(purchase_request(plan, sequence))
            .await
            .map(|r| capture.keep(r.get_ref())),
        Scenario::CouponStats => AdminServiceClient::with_interceptor(channel, auth)
            .get_coupon_stats(pb::GetCouponStatsRequest {
                code: first_codes(plan, 1).concat(),
                ..Default::default()
            })
            .await
            .map(|r| capture.keep(r.get_ref())),
    };
    match outcome {
        Ok(()) => "OK",
        Err(status) => status_name(status.code()),
    }
}

/// The currency every coupon and cart of the benchmark uses.
pub const CURRENCY: &str = "INR";

fn line(index: usize) -> pb::LineItem {
    pb::LineItem {
        line_id: format!("l{index}"),
        product_id: format!("prod-{index}"),
        sku: format!("SKU-{index}"),
        name: format!("Item {index}"),
        categories: vec![if index % 2 == 0 { "shirts" } else { "shoes" }.to_owned()],
        unit_price: Some(10_000 + 1_000 * index as i64),
        quantity: 1 + (index % 3) as i64,
        ..Default::default()
    }
}

/// A checkout of `lines` lines for a customer unique to the call.
pub fn checkout(lines: usize, plan_run: &str, sequence: u64) -> pb::Checkout {
    pb::Checkout {
        cart: Some(pb::Cart {
            currency: CURRENCY.to_owned(),
            items: (0..lines).map(line).collect(),
            shipping: 4_000,
            ..Default::default()
        }),
        customer: Some(pb::Customer {
            id: format!("cust-{plan_run}-{sequence}"),
            email: format!("c{sequence}@bench.example"),
            ..Default::default()
        }),
        channel: "web".to_owned(),
        ..Default::default()
    }
}

fn first_codes(plan: &Plan, n: usize) -> Vec<String> {
    plan.codes.iter().take(n).cloned().collect()
}

/// Validate: 3 lines, one code.
pub fn validate_request(plan: &Plan, sequence: u64) -> pb::ValidateRequest {
    pb::ValidateRequest {
        codes: first_codes(plan, 1),
        checkout: Some(checkout(3, &plan.run_id, sequence)),
        ..Default::default()
    }
}

/// Apply: 20 lines, two codes.
pub fn apply_request(plan: &Plan, sequence: u64) -> pb::ApplyRequest {
    pb::ApplyRequest {
        codes: first_codes(plan, 2),
        checkout: Some(checkout(20, &plan.run_id, sequence)),
        ..Default::default()
    }
}

/// ListApplicable: 5 lines, the default page and near misses.
pub fn list_applicable_request(sequence: u64) -> pb::ListApplicableRequest {
    pb::ListApplicableRequest {
        checkout: Some(checkout(5, "list", sequence)),
        ..Default::default()
    }
}

/// Redeem: the next code round robin, a new pending order.
pub fn redeem_request(plan: &Plan, sequence: u64) -> pb::RedeemRequest {
    let code = match plan.codes.len() {
        0 => String::new(),
        n => plan.codes[(sequence % n as u64) as usize].clone(),
    };
    pb::RedeemRequest {
        codes: vec![code],
        order_id: format!("ord-{}-{sequence}", plan.run_id),
        order_status: pb::OrderStatus::Pending as i32,
        checkout: Some(checkout(3, &plan.run_id, sequence)),
        reservation_ttl: None,
    }
}

/// Purchase: one PIN, a new reference.
pub fn purchase_request(plan: &Plan, sequence: u64) -> pb::PurchaseRequest {
    pb::PurchaseRequest {
        reference: format!("ref-{}-{sequence}", plan.run_id),
        value: plan.product_value.clone(),
        amount: plan.product_amount,
        phone_number: "9800000000".to_owned(),
        email: format!("buyer{sequence}@bench.example"),
        name: "Bench Buyer".to_owned(),
    }
}
