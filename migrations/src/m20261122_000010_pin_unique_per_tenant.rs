//! A PIN is unique per tenant, whatever the product: the same PIN imported into two products
//! was sold to two customers.
//!
//! Databases that already hold such copies must still migrate, so before the unique index is
//! built the copies are settled, keeping every sale:
//! - an unsold copy of a PIN that was sold is taken out of stock (deleted): selling it would sell
//!   the same PIN again;
//! - of copies none of which was sold, the one imported first stays in stock, the rest are
//!   deleted;
//! - a PIN already sold more than once stays with each sale (the buyers hold it and
//!   `GetPurchase` must keep answering); every sale after the first gets its digest suffixed
//!   with its row id, so it no longer takes part in duplicate detection.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Another row of the same tenant with the same PIN.
const SAME_PIN: &str = "o.tenant_id = voucher_pins.tenant_id \
     AND o.pin_digest = voucher_pins.pin_digest AND o.id <> voucher_pins.id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "DELETE FROM voucher_pins WHERE purchase_id IS NULL AND EXISTS \
             (SELECT 1 FROM voucher_pins o WHERE {SAME_PIN} \
              AND (o.purchase_id IS NOT NULL OR o.id < voucher_pins.id))"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE voucher_pins SET pin_digest = pin_digest || ':sold-again:' || id \
             WHERE purchase_id IS NOT NULL AND EXISTS \
             (SELECT 1 FROM voucher_pins o WHERE {SAME_PIN} \
              AND o.purchase_id IS NOT NULL AND o.id < voucher_pins.id)"
        ))
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("voucher_pins_tenant_digest")
                    .table(VoucherPins::Table)
                    .col(VoucherPins::TenantId)
                    .col(VoucherPins::PinDigest)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("voucher_pins_tenant_digest")
                    .table(VoucherPins::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum VoucherPins {
    Table,
    TenantId,
    PinDigest,
}
