//! The prepaid credit ledger: append-only entries whose sum is the balance.

use super::Timestamp;

/// Why an entry was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditKind {
    TopUp,
    Purchase,
}

impl CreditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditKind::TopUp => "top_up",
            CreditKind::Purchase => "purchase",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "top_up" => Some(CreditKind::TopUp),
            "purchase" => Some(CreditKind::Purchase),
            _ => None,
        }
    }
}

/// One ledger entry: a signed change and the balance right after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditEntry {
    pub id: String,
    pub amount: i64,
    pub balance_after: i64,
    pub kind: CreditKind,
    pub reference: String,
    pub note: String,
    pub created_at: Timestamp,
}

/// A tenant's credits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// Credits available.
    pub available: i64,
    /// Credits spent on purchases so far.
    pub consumed: i64,
}
