//! Voucher products, PINs and credits: proto <-> domain.

use super::{timestamp_from_pb, timestamp_to_pb};
use crate::{
    domain::{
        credit::CreditEntry,
        product::{NotificationTemplates, PinToImport, Product, ProductPatch, ProductSpec},
        Currency, Problem, Violations,
    },
    pb,
};

/// Fields of a product that UpdateProduct can replace.
pub const UPDATABLE: &[&str] = &["name", "amount", "currency", "active", "templates"];

/// A product's editable fields from its proto message.
pub fn spec_from_pb(product: &pb::Product, violations: &mut Violations) -> ProductSpec {
    ProductSpec {
        name: product.name.trim().to_owned(),
        value: product.value.trim().to_owned(),
        amount: product.amount,
        currency: currency_from_pb(&product.currency, violations),
        active: product.active.unwrap_or(true),
        templates: templates_from_pb(product.templates.as_ref()),
    }
}

/// The fields of `update` named by already checked mask `paths`, as a patch.
pub fn patch_from_pb(
    update: &pb::Product,
    paths: &[String],
    violations: &mut Violations,
) -> ProductPatch {
    let mut patch = ProductPatch::default();
    for path in paths {
        match path.as_str() {
            "name" => patch.name = Some(update.name.trim().to_owned()),
            "amount" => patch.amount = Some(update.amount),
            "currency" => patch.currency = Some(currency_from_pb(&update.currency, violations)),
            "active" => patch.active = Some(update.active.unwrap_or(false)),
            "templates" => patch.templates = Some(templates_from_pb(update.templates.as_ref())),
            // Unknown paths were reported when the mask was read.
            _ => {}
        }
    }
    patch
}

fn currency_from_pb(code: &str, violations: &mut Violations) -> Option<Currency> {
    if code.trim().is_empty() {
        return None;
    }
    violations.take("product.currency", Currency::parse(code))
}

fn templates_from_pb(templates: Option<&pb::NotificationTemplates>) -> NotificationTemplates {
    templates
        .map(|t| NotificationTemplates {
            sms: t.sms.clone(),
            email_subject: t.email_subject.clone(),
            email_body: t.email_body.clone(),
            company_name: t.company_name.clone(),
        })
        .unwrap_or_default()
}

/// A product as its proto message; the stock count is only for admins.
pub fn product_to_pb(product: &Product, with_count: bool) -> pb::Product {
    let spec = &product.spec;
    pb::Product {
        idx: product.idx.clone(),
        name: spec.name.clone(),
        value: spec.value.clone(),
        amount: spec.amount,
        currency: spec
            .currency
            .map(|c| c.code().to_owned())
            .unwrap_or_default(),
        active: Some(spec.active),
        in_stock: product.available > 0,
        available_count: if with_count { product.available } else { 0 },
        templates: Some(pb::NotificationTemplates {
            sms: spec.templates.sms.clone(),
            email_subject: spec.templates.email_subject.clone(),
            email_body: spec.templates.email_body.clone(),
            company_name: spec.templates.company_name.clone(),
        }),
        create_time: Some(timestamp_to_pb(product.created_at)),
    }
}

/// Longest PIN, in characters.
const MAX_PIN_LEN: usize = 128;

/// The PINs of an import request, each checked; serials default to the PIN's position.
pub fn pins_from_pb(pins: &[pb::PinInput], violations: &mut Violations) -> Vec<PinToImport> {
    pins.iter()
        .enumerate()
        .filter_map(|(index, input)| {
            let pin = input.pin.trim();
            if pin.is_empty() || pin.chars().count() > MAX_PIN_LEN {
                violations.add(
                    format!("pins[{index}].pin"),
                    Problem::RequiredUpTo { max: MAX_PIN_LEN },
                );
                return None;
            }
            let expires_at = match input.expire_time.as_ref() {
                None => None,
                Some(ts) => {
                    let parsed = timestamp_from_pb(ts);
                    if parsed.is_none() {
                        violations
                            .add(format!("pins[{index}].expire_time"), Problem::NotATimestamp);
                    }
                    parsed
                }
            };
            let serial = input.serial.trim();
            crate::domain::text::refuse_nul(&format!("pins[{index}].pin"), pin, violations);
            crate::domain::text::refuse_nul(&format!("pins[{index}].serial"), serial, violations);
            Some(PinToImport {
                pin: pin.to_owned(),
                serial: if serial.is_empty() {
                    (index + 1).to_string()
                } else {
                    serial.to_owned()
                },
                expires_at,
            })
        })
        .collect()
}

/// A ledger entry as its proto message.
pub fn credit_entry_to_pb(entry: &CreditEntry) -> pb::CreditEntry {
    pb::CreditEntry {
        id: entry.id.clone(),
        amount: entry.amount,
        balance_after: entry.balance_after,
        kind: entry.kind.as_str().to_owned(),
        reference: entry.reference.clone(),
        note: entry.note.clone(),
        create_time: Some(timestamp_to_pb(entry.created_at)),
    }
}
