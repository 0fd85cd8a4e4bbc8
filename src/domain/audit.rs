//! The audit log: who changed what, when, and which fields.

use serde_json::{Map, Value};

use std::time::{Duration, UNIX_EPOCH};

use super::{TenantId, Timestamp};

/// The actor recorded for changes made on the command line, which holds no API key.
pub const COMMAND_LINE_ACTOR: &str = "cli";

/// One admin change about to be made, handed to the store so that the entry is written in the
/// change's own transaction. Never carries a PIN or a secret: callers name the fields they
/// changed and only values that are safe to read back.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// The key id that made the change, or [`COMMAND_LINE_ACTOR`].
    pub actor: String,
    /// The RPC (or command) that made it, such as `CreateCoupon`.
    pub rpc: &'static str,
    /// The kind of resource changed, such as `coupon`.
    pub resource_type: &'static str,
    /// The changed fields and their new values.
    pub changes: Map<String, Value>,
}

impl AuditEntry {
    pub fn new(actor: &str, rpc: &'static str, resource_type: &'static str) -> Self {
        Self {
            actor: actor.to_owned(),
            rpc,
            resource_type,
            changes: Map::new(),
        }
    }

    /// Adds one changed field and its new value.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.changes.insert(field.to_owned(), value.into());
        self
    }
}

/// An instant as an audit value: RFC 3339 in UTC, as people read it in the log.
pub fn instant(at: Timestamp) -> Value {
    Value::from(rfc3339(at))
}

/// An instant in RFC 3339, UTC, to the microsecond (instants before 1970 read as 1970).
pub fn rfc3339(at: Timestamp) -> String {
    let since_epoch = Duration::from_micros(at.micros().max(0).unsigned_abs());
    humantime::format_rfc3339_micros(UNIX_EPOCH + since_epoch).to_string()
}

/// A written audit entry, as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedAudit {
    pub id: String,
    pub tenant: TenantId,
    pub actor: String,
    pub rpc: String,
    pub resource_type: String,
    pub resource_id: String,
    pub changes: Map<String, Value>,
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_named_changes() {
        let entry = AuditEntry::new("key_1", "CreateCoupon", "coupon")
            .with("code", "SAVE10")
            .with("active", true);
        assert_eq!(entry.changes.len(), 2);
        assert_eq!(entry.changes["code"], Value::from("SAVE10"));
    }
}
