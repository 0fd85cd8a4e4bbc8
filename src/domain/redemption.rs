//! Redemptions: one code used for one order, and the states it moves through.

use std::time::Duration;

use super::{Code, Currency, Timestamp};

/// Shortest and longest reservation a caller may ask for.
pub const RESERVATION_TTL_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(7 * 24 * 3_600));

/// Where a redemption is in its life. Pending and completed hold usage; the others released it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedemptionStatus {
    Pending,
    Completed,
    Reverted,
    Expired,
}

impl RedemptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RedemptionStatus::Pending => "pending",
            RedemptionStatus::Completed => "completed",
            RedemptionStatus::Reverted => "reverted",
            RedemptionStatus::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Completed,
            Self::Reverted,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Whether it holds usage of the coupon.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RedemptionStatus::Pending | RedemptionStatus::Completed
        )
    }
}

/// A stored redemption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redemption {
    pub id: String,
    pub coupon_id: String,
    pub code: Code,
    pub campaign_id: Option<String>,
    pub order_id: String,
    pub customer_id: String,
    pub discount: i64,
    pub currency: Currency,
    pub status: RedemptionStatus,
    pub request_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// Made by an automatic promotion rather than a typed code.
    pub automatic: bool,
}

/// One code of an order to redeem, as the engine priced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedemptionDraft {
    pub coupon_id: String,
    pub code: Code,
    pub campaign_id: Option<String>,
    pub discount: i64,
    /// An automatic promotion's, not a typed code's.
    pub automatic: bool,
}

/// An order to redeem: every draft is recorded, or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedeemOrder {
    pub order_id: String,
    pub customer_id: String,
    /// Lower-cased; empty when unknown.
    pub customer_email: String,
    pub currency: Currency,
    pub completed: bool,
    pub expires_at: Option<Timestamp>,
    pub request_id: String,
    /// Digest of the request's canonical form: a retry must match it.
    pub fingerprint: String,
    /// A coupon of the order is for new customers and the ledger decides who is new: the order
    /// must be the customer's only active one when it commits.
    pub claims_new_customer: bool,
    pub drafts: Vec<RedemptionDraft>,
}

/// The ledger keys a customer is counted under: the id, and the e-mail when known.
pub fn customer_keys(customer_id: &str, email: &str) -> Vec<String> {
    let mut keys = vec![customer_id.to_owned()];
    if !email.is_empty() {
        keys.push(format!("email:{email}"));
    }
    keys
}
