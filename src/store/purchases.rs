//! PIN sales: one transaction claims the reference, takes one unsold PIN and debits the credits,
//! each by a single guarded statement, so stock and credits never go below zero.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, TransactionTrait,
};

use super::{
    entities::{credit_entry, purchase, voucher_pin},
    new_id,
    sql::{retrying, statement},
    Store, StoreError,
};
use crate::domain::{
    credit::CreditKind,
    purchase::{PurchaseOrder, Sale},
    Currency, TenantId, Timestamp,
};

impl Store {
    /// The tenant's purchase with this reference, if any.
    #[tracing::instrument(name = "db.find_sale", skip_all, fields(db.system = self.db_system()))]
    pub async fn find_sale(
        &self,
        tenant: &TenantId,
        reference: &str,
    ) -> Result<Option<Sale>, StoreError> {
        let Some(row) = purchase::Entity::find()
            .filter(purchase::Column::TenantId.eq(tenant.0.as_str()))
            .filter(purchase::Column::Reference.eq(reference))
            .one(self.conn())
            .await?
        else {
            return Ok(None);
        };
        let pin = voucher_pin::Entity::find_by_id(row.pin_id.clone())
            .one(self.conn())
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("purchase {} has no PIN", row.id)))?;
        decode(row, pin.pin_ciphertext, pin.serial).map(Some)
    }

    /// Sells one PIN: `AlreadyExists` when the reference is taken, `OutOfStock` when no PIN is
    /// left, `InsufficientCredits` when the balance does not cover the price. Nothing changes
    /// unless everything does.
    #[tracing::instrument(name = "db.sell_pin", skip_all, fields(db.system = self.db_system()))]
    pub async fn sell_pin(
        &self,
        tenant: &TenantId,
        order: &PurchaseOrder,
    ) -> Result<Sale, StoreError> {
        retrying(|| self.sell_once(tenant, order)).await
    }

    async fn sell_once(
        &self,
        tenant: &TenantId,
        order: &PurchaseOrder,
    ) -> Result<Sale, StoreError> {
        let now = Timestamp::now().micros();
        let purchase_id = new_id("pur");
        let txn = self.conn().begin().await?;
        // First the reference: a racing retry waits here, then fails on the unique index.
        let mut row = purchase::Model {
            id: purchase_id.clone(),
            tenant_id: tenant.0.clone(),
            reference: order.reference.clone(),
            fingerprint: order.fingerprint.clone(),
            product_id: order.product_id.clone(),
            product_value: order.product_value.clone(),
            amount: order.amount,
            currency: order.currency.code().to_owned(),
            pin_id: String::new(),
            phone_number: order.phone_number.clone(),
            email: order.email.clone(),
            name: order.name.clone(),
            credits_available: 0,
            request_id: order.request_id.clone(),
            created_at: now,
        };
        purchase::Entity::insert(purchase::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await?;
        let Some((pin_id, sealed_pin, serial)) =
            claim_pin(&txn, &order.product_id, &purchase_id, now).await?
        else {
            txn.rollback().await?;
            return Err(StoreError::OutOfStock);
        };
        let Some(balance) = debit(&txn, tenant, order.amount).await? else {
            txn.rollback().await?;
            return Err(StoreError::InsufficientCredits);
        };
        credit_entry::Entity::insert(credit_entry::ActiveModel {
            id: Set(new_id("crd")),
            tenant_id: Set(tenant.0.clone()),
            amount: Set(-order.amount),
            balance_after: Set(balance),
            kind: Set(CreditKind::Purchase.as_str().to_owned()),
            reference: Set(purchase_id.clone()),
            note: Set(format!("{} {}", order.product_value, order.reference)),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        purchase::Entity::update_many()
            .set(purchase::ActiveModel {
                pin_id: Set(pin_id.clone()),
                credits_available: Set(balance),
                ..Default::default()
            })
            .filter(purchase::Column::Id.eq(purchase_id.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        row.pin_id = pin_id;
        row.credits_available = balance;
        decode(row, sealed_pin, serial)
    }
}

/// Marks one unsold, unexpired PIN of the product as sold to `purchase_id` and returns it. On
/// PostgreSQL concurrent buyers skip each other's locked rows instead of queueing on one.
async fn claim_pin(
    txn: &DatabaseTransaction,
    product_id: &str,
    purchase_id: &str,
    now: i64,
) -> Result<Option<(String, String, String)>, StoreError> {
    let backend = txn.get_database_backend();
    let lock = if backend == DbBackend::Postgres {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE voucher_pins SET purchase_id = $1 WHERE purchase_id IS NULL AND id = (\
           SELECT id FROM voucher_pins WHERE product_id = $2 AND purchase_id IS NULL \
           AND (expires_at IS NULL OR expires_at > $3) ORDER BY id LIMIT 1 {lock}) \
         RETURNING id, pin_ciphertext, serial"
    );
    let row = txn
        .query_one_raw(statement(
            backend,
            &sql,
            vec![purchase_id.into(), product_id.into(), now.into()],
        ))
        .await?;
    row.map(|row| -> Result<_, StoreError> {
        Ok((
            row.try_get("", "id")?,
            row.try_get("", "pin_ciphertext")?,
            row.try_get("", "serial")?,
        ))
    })
    .transpose()
}

/// Takes `amount` from the balance if it covers it, returning the new balance.
async fn debit(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    amount: i64,
) -> Result<Option<i64>, StoreError> {
    let row = txn
        .query_one_raw(statement(
            txn.get_database_backend(),
            "UPDATE credit_balances SET balance = balance - $1, consumed = consumed + $1 \
             WHERE tenant_id = $2 AND balance >= $1 RETURNING balance",
            vec![amount.into(), tenant.0.clone().into()],
        ))
        .await?;
    row.map(|row| row.try_get::<i64>("", "balance").map_err(StoreError::from))
        .transpose()
}

fn decode(row: purchase::Model, sealed_pin: String, serial: String) -> Result<Sale, StoreError> {
    Ok(Sale {
        currency: Currency::parse(&row.currency)
            .map_err(|e| StoreError::Corrupt(format!("purchase {}: {e}", row.id)))?,
        id: row.id,
        reference: row.reference,
        fingerprint: row.fingerprint,
        product_id: row.product_id,
        product_value: row.product_value,
        amount: row.amount,
        sealed_pin,
        serial,
        phone_number: row.phone_number,
        email: row.email,
        name: row.name,
        credits_available: row.credits_available,
        created_at: Timestamp(row.created_at),
    })
}
