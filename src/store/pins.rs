//! PIN stock: sealed PINs, imported in batches, never stored in clear text.

use std::collections::HashSet;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait, TryInsertResult,
};

use super::{
    audit,
    entities::{setting, voucher_pin, voucher_product},
    new_id, Store, StoreError,
};
use crate::domain::{
    audit::AuditEntry,
    pin::PinKey,
    product::{ImportOutcome, SealedPin},
    TenantId, Timestamp,
};

/// Rows per INSERT: well under SQLite's bound-parameter limit.
const IMPORT_CHUNK: usize = 500;
const PIN_KEY_CHECK: &str = "pin_key_check";

impl Store {
    /// Makes sure `key` is the key this database's PINs were sealed with, recording it on first
    /// use. A different key is a setup error: it would sell garbage PINs.
    pub async fn verify_pin_key(&self, key: &PinKey) -> Result<(), StoreError> {
        let stored = setting::Entity::find_by_id(PIN_KEY_CHECK.to_owned())
            .one(self.conn())
            .await?;
        match stored {
            Some(row) if key.verifies(&row.value) => Ok(()),
            Some(_) => Err(StoreError::Setup(
                "the PIN key does not match the key this database's PINs were sealed with".into(),
            )),
            None => {
                let check = key
                    .key_check()
                    .map_err(|e| StoreError::Setup(e.to_string()))?;
                setting::Entity::insert(setting::ActiveModel {
                    name: Set(PIN_KEY_CHECK.to_owned()),
                    value: Set(check),
                })
                .on_conflict_do_nothing_on([setting::Column::Name])
                .exec_without_returning(self.conn())
                .await?;
                // Another replica may have won the race with a different key: check again.
                Box::pin(self.verify_pin_key(key)).await
            }
        }
    }

    /// Adds PINs to a product's stock; PINs it already has are counted as duplicates. A PIN is
    /// unique per tenant: when any PIN is already another product's, nothing is imported and the
    /// answer is `PinInAnotherProduct` with the positions of those PINs.
    #[tracing::instrument(name = "db.import_pins", skip_all, fields(db.system = self.db_system(), db.collection.name = "voucher_pins"))]
    pub async fn import_pins(
        &self,
        tenant: &TenantId,
        product_idx: &str,
        pins: Vec<SealedPin>,
        audit: &AuditEntry,
    ) -> Result<ImportOutcome, StoreError> {
        let product = voucher_product::Entity::find_by_id(product_idx.to_owned())
            .filter(voucher_product::Column::TenantId.eq(tenant.0.as_str()))
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        let offered = pins.len() as i64;
        let digests: Vec<String> = pins.iter().map(|pin| pin.digest.clone()).collect();
        let now = Timestamp::now().micros();
        let mut imported = 0i64;
        let models: Vec<voucher_pin::ActiveModel> = pins
            .into_iter()
            .map(|pin| voucher_pin::ActiveModel {
                id: Set(new_id("pin")),
                tenant_id: Set(tenant.0.clone()),
                product_id: Set(product.id.clone()),
                pin_ciphertext: Set(pin.ciphertext),
                pin_digest: Set(pin.digest),
                serial: Set(pin.serial),
                expires_at: Set(pin.expires_at.map(Timestamp::micros)),
                purchase_id: Set(None),
                created_at: Set(now),
            })
            .collect();
        let txn = self.conn().begin().await?;
        let mut rows = models.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(IMPORT_CHUNK).collect();
            let inserted = voucher_pin::Entity::insert_many(chunk)
                .on_conflict_do_nothing_on([
                    voucher_pin::Column::TenantId,
                    voucher_pin::Column::PinDigest,
                ])
                .exec_without_returning(&txn)
                .await?;
            if let TryInsertResult::Inserted(count) = inserted {
                imported += count as i64;
            }
        }
        // Checked after inserting, in the same transaction: a concurrent import of the same PIN
        // into another product waits on the unique index, then finds the other's row here.
        let elsewhere = pins_in_other_products(&txn, tenant, &product.id, &digests).await?;
        if !elsewhere.is_empty() {
            txn.rollback().await?;
            let positions = digests
                .iter()
                .enumerate()
                .filter(|(_, digest)| elsewhere.contains(*digest))
                .map(|(position, _)| position)
                .collect();
            return Err(StoreError::PinInAnotherProduct { positions });
        }
        let entry = audit
            .clone()
            .with("imported", imported)
            .with("duplicates", offered - imported);
        let written = audit::record(&txn, tenant, &entry, &product.id).await?;
        txn.commit().await?;
        written.announce();
        Ok(ImportOutcome {
            imported,
            duplicates: offered - imported,
            available: self.available_pins(&product.id).await?,
        })
    }
}

/// Which of `digests` the tenant already holds under a product other than `product_id`.
async fn pins_in_other_products(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    product_id: &str,
    digests: &[String],
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    for chunk in digests.chunks(IMPORT_CHUNK) {
        let rows: Vec<String> = voucher_pin::Entity::find()
            .select_only()
            .column(voucher_pin::Column::PinDigest)
            .filter(voucher_pin::Column::TenantId.eq(tenant.0.as_str()))
            .filter(voucher_pin::Column::ProductId.ne(product_id))
            .filter(voucher_pin::Column::PinDigest.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(txn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}
