//! PIN sales: one transaction claims the reference, takes one unsold PIN and debits the credits,
//! each by a single guarded statement, so stock and credits never go below zero.

use sea_orm::{
    sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait,
};

use super::{
    entities::{credit_balance, credit_entry, purchase, voucher_pin},
    new_id,
    retry::retrying,
    Store, StoreError,
};
use crate::domain::{
    credit::CreditKind,
    purchase::{PurchaseOrder, Sale},
    Currency, TenantId, Timestamp,
};

impl Store {
    /// The tenant's purchase with this reference, if any.
    #[tracing::instrument(name = "db.find_sale", skip_all, fields(db.system = self.db_system(), db.collection.name = "purchases"))]
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
    #[tracing::instrument(name = "db.sell_pin", skip_all, fields(db.system = self.db_system(), db.collection.name = "purchases"))]
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
///
/// `ORDER BY product_id, id` is the key of the partial index `voucher_pins_unsold_claim_order`
/// (unsold PINs only), so both databases read its first entry instead of sorting the stock; with
/// `ORDER BY id` alone PostgreSQL may walk the primary key past every sold PIN instead.
async fn claim_pin(
    txn: &DatabaseTransaction,
    product_id: &str,
    purchase_id: &str,
    now: i64,
) -> Result<Option<(String, String, String)>, StoreError> {
    // sea-query writes the row lock for PostgreSQL only: SQLite has one writer at a time.
    let next_unsold = Query::select()
        .column(voucher_pin::Column::Id)
        .from(voucher_pin::Entity)
        .and_where(voucher_pin::Column::ProductId.eq(product_id))
        .and_where(voucher_pin::Column::PurchaseId.is_null())
        .and_where(
            voucher_pin::Column::ExpiresAt
                .is_null()
                .or(voucher_pin::Column::ExpiresAt.gt(now)),
        )
        .order_by(voucher_pin::Column::ProductId, Order::Asc)
        .order_by(voucher_pin::Column::Id, Order::Asc)
        .limit(1)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let claim = Query::update()
        .table(voucher_pin::Entity)
        .value(voucher_pin::Column::PurchaseId, purchase_id)
        .and_where(voucher_pin::Column::PurchaseId.is_null())
        .and_where(
            Expr::col(voucher_pin::Column::Id)
                .eq(Expr::SubQuery(None, Box::new(next_unsold.into()))),
        )
        .returning(Query::returning().columns([
            voucher_pin::Column::Id,
            voucher_pin::Column::PinCiphertext,
            voucher_pin::Column::Serial,
        ]))
        .to_owned();
    let row = txn.query_one(&claim).await?;
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
    let balance = || Expr::col(credit_balance::Column::Balance);
    let debit = Query::update()
        .table(credit_balance::Entity)
        .value(credit_balance::Column::Balance, balance().sub(amount))
        .value(
            credit_balance::Column::Consumed,
            Expr::col(credit_balance::Column::Consumed).add(amount),
        )
        .and_where(credit_balance::Column::TenantId.eq(tenant.0.as_str()))
        .and_where(balance().gte(amount))
        .returning_col(credit_balance::Column::Balance)
        .to_owned();
    let row = txn.query_one(&debit).await?;
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
