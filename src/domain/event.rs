//! Redemption events: every state change of a redemption, in an order that never skips one.

use super::{redemption::Redemption, TenantId, Timestamp};

/// What happened to a redemption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    RedeemedPending,
    RedeemedCompleted,
    Confirmed,
    Reverted,
    Expired,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::RedeemedPending,
        EventKind::RedeemedCompleted,
        EventKind::Confirmed,
        EventKind::Reverted,
        EventKind::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RedeemedPending => "redeemed_pending",
            EventKind::RedeemedCompleted => "redeemed_completed",
            EventKind::Confirmed => "confirmed",
            EventKind::Reverted => "reverted",
            EventKind::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// Where an event stands in the feed: ordered by the writing transaction, then by row. Every
/// event that can still appear lies after every position already delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventPosition {
    pub txid: i64,
    pub id: i64,
}

/// One redemption state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedemptionEvent {
    pub position: EventPosition,
    pub tenant: TenantId,
    pub kind: EventKind,
    pub occurred_at: Timestamp,
    /// The redemption right after the change.
    pub redemption: Redemption,
}

/// Which events a watcher wants; empty lists match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub coupon_ids: Vec<String>,
    pub codes: Vec<String>,
    pub campaign_id: Option<String>,
    pub kinds: Vec<EventKind>,
    pub customer_id: Option<String>,
}

impl EventFilter {
    pub fn matches(&self, event: &RedemptionEvent) -> bool {
        let r = &event.redemption;
        (self.coupon_ids.is_empty() || self.coupon_ids.contains(&r.coupon_id))
            && (self.codes.is_empty() || self.codes.iter().any(|c| c == r.code.as_str()))
            && self
                .campaign_id
                .as_ref()
                .is_none_or(|c| r.campaign_id.as_ref() == Some(c))
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind))
            && self
                .customer_id
                .as_ref()
                .is_none_or(|c| &r.customer_id == c)
    }
}
