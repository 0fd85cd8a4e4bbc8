//! AdminService's voucher product use cases: create and update products, and import their PIN
//! stock sealed under the service's PIN key. Every change is audited in its own transaction;
//! a PIN never reaches the audit log.

use super::{AppError, ErrorReason, StoreResultExt};
use crate::{
    domain::{
        audit::AuditEntry,
        pin::PinKey,
        product::{ImportOutcome, PinToImport, Product, ProductPatch, ProductSpec, SealedPin},
        InvalidInput, Problem, TenantId, Violations,
    },
    store::Store,
};

/// UpdateProduct as parsed: the product, the fields to replace, and the problems parsing found,
/// reported together with the rules the updated product would break.
#[derive(Debug)]
pub(crate) struct UpdateProduct {
    pub(crate) idx: String,
    pub(crate) patch: ProductPatch,
    pub(crate) parse_problems: Violations,
}

/// CreateProduct: stores a checked `spec`; its value must be new in the tenant.
pub(crate) async fn create(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    spec: &ProductSpec,
) -> Result<Product, AppError> {
    let audit = audited(AuditEntry::new(actor, "CreateProduct", "product"), spec);
    store.insert_product(tenant, spec, &audit).await.taken(
        "product",
        &spec.value,
        ErrorReason::ProductValueExists,
    )
}

/// UpdateProduct: replaces the named fields; the result must be a valid product as a whole.
pub(crate) async fn update(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    command: UpdateProduct,
) -> Result<Product, AppError> {
    let UpdateProduct {
        idx,
        patch,
        parse_problems,
    } = command;
    let existing = store
        .get_product(tenant, &idx)
        .await
        .about("product", &idx)?;
    let changed = patch.parts();
    let spec = patch.apply(&existing.spec, parse_problems)?;
    let audit = audited(AuditEntry::new(actor, "UpdateProduct", "product"), &spec)
        .with("update_mask", changed);
    store
        .save_product(tenant, &idx, &spec, &audit)
        .await
        .about("product", &idx)
}

/// ImportPins: seals each PIN and adds it to the product's stock; PINs already in stock are
/// counted as duplicates, and a PIN in another product refuses the whole import.
pub(crate) async fn import_pins(
    store: &Store,
    pin_key: &PinKey,
    tenant: &TenantId,
    actor: &str,
    idx: &str,
    pins: Vec<PinToImport>,
) -> Result<ImportOutcome, AppError> {
    let mut sealed = Vec::with_capacity(pins.len());
    for pin in pins {
        let ciphertext = pin_key
            .seal(&pin.pin)
            .map_err(|_| InvalidInput::field("pins", Problem::PinNotSealable))?;
        sealed.push(SealedPin {
            ciphertext,
            digest: pin_key.digest(&pin.pin),
            serial: pin.serial,
            expires_at: pin.expires_at,
        });
    }
    // Counts only: a PIN never reaches the audit log.
    let audit = AuditEntry::new(actor, "ImportPins", "product").with("offered", sealed.len());
    store
        .import_pins(tenant, idx, sealed, &audit)
        .await
        .about("product", idx)
}

/// The audit entry of a change that leaves a product as `spec`.
fn audited(audit: AuditEntry, spec: &ProductSpec) -> AuditEntry {
    audit
        .with("value", spec.value.as_str())
        .with("name", spec.name.as_str())
        .with("amount", spec.amount)
        .with(
            "currency",
            spec.currency
                .map(|c| c.code().to_owned())
                .unwrap_or_default(),
        )
        .with("active", spec.active)
}
