//! Credits: one balance row per tenant, changed only by conditional atomic UPDATEs, and an
//! append-only ledger written in the same transaction.

use sea_orm::{
    sea_query::{Expr, ExprTrait, OnConflict, Query},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::{
    audit,
    entities::{credit_balance, credit_entry},
    new_id, Page, Store, StoreError,
};
use crate::domain::{
    audit::AuditEntry,
    credit::{Balance, CreditEntry, CreditKind},
    TenantId, Timestamp,
};

/// What a top-up did: a new entry, or the earlier one with the same reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopUp {
    pub entry: CreditEntry,
    pub balance: i64,
}

impl Store {
    /// Adds credits under a reference not used before; a used one is `AlreadyExists` and
    /// changes nothing.
    #[tracing::instrument(name = "db.add_credits", skip_all, fields(db.system = self.db_system(), db.collection.name = "credit_balances"))]
    pub async fn add_credits(
        &self,
        tenant: &TenantId,
        amount: i64,
        reference: &str,
        note: &str,
        now: Timestamp,
        audit: &AuditEntry,
    ) -> Result<TopUp, StoreError> {
        let txn = self.conn().begin().await?;
        let balance = add_to_balance(&txn, tenant, amount).await?;
        let entry = CreditEntry {
            id: new_id("crd"),
            amount,
            balance_after: balance,
            kind: CreditKind::TopUp,
            reference: reference.to_owned(),
            note: note.to_owned(),
            created_at: now,
        };
        // The unique reference is checked by the insert; on failure the transaction rolls back
        // as it is dropped.
        insert_entry(&txn, tenant, &entry).await?;
        let written = audit::record(&txn, tenant, audit, &entry.id).await?;
        txn.commit().await?;
        written.announce();
        Ok(TopUp { entry, balance })
    }

    /// The top-up made with this reference, if any.
    pub async fn find_top_up(
        &self,
        tenant: &TenantId,
        reference: &str,
    ) -> Result<Option<CreditEntry>, StoreError> {
        self.find_entry(tenant, CreditKind::TopUp, reference).await
    }

    /// The tenant's balance; zero before the first top-up.
    #[tracing::instrument(name = "db.balance", skip_all, fields(db.system = self.db_system(), db.collection.name = "credit_balances"))]
    pub async fn balance(&self, tenant: &TenantId) -> Result<Balance, StoreError> {
        let row = credit_balance::Entity::find_by_id(tenant.0.clone())
            .one(self.conn())
            .await?;
        Ok(row
            .map(|r| Balance {
                available: r.balance,
                consumed: r.consumed,
            })
            .unwrap_or_default())
    }

    /// A page of ledger entries, newest first, before the id `before`.
    #[tracing::instrument(name = "db.list_credit_entries", skip_all, fields(db.system = self.db_system(), db.collection.name = "credit_entries"))]
    pub async fn list_credit_entries(
        &self,
        tenant: &TenantId,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Page<CreditEntry>, StoreError> {
        let mut query = credit_entry::Entity::find()
            .filter(credit_entry::Column::TenantId.eq(tenant.0.as_str()));
        if let Some(before) = before {
            query = query.filter(credit_entry::Column::Id.lt(before));
        }
        let rows = query
            .order_by_desc(credit_entry::Column::Id)
            .limit(limit + 1)
            .all(self.conn())
            .await?;
        let entries = rows
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(entries, limit, |e| e.id.clone()))
    }

    async fn find_entry(
        &self,
        tenant: &TenantId,
        kind: CreditKind,
        reference: &str,
    ) -> Result<Option<CreditEntry>, StoreError> {
        credit_entry::Entity::find()
            .filter(credit_entry::Column::TenantId.eq(tenant.0.as_str()))
            .filter(credit_entry::Column::Kind.eq(kind.as_str()))
            .filter(credit_entry::Column::Reference.eq(reference))
            .one(self.conn())
            .await?
            .map(decode)
            .transpose()
    }
}

/// Adds `amount` (positive) to the balance in one statement (never read-then-write) and returns
/// the new balance; `BalanceOverflow` when the total ever topped up would not fit in a BIGINT.
///
/// Balance plus consumed is everything ever topped up, and a purchase only moves credits from
/// one to the other, so bounding that sum here is what keeps every later debit in range too.
/// Without the bound PostgreSQL fails with "bigint out of range" and SQLite silently turns the
/// sum into a REAL.
async fn add_to_balance(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    amount: i64,
) -> Result<i64, StoreError> {
    let ensure_row = Query::insert()
        .into_table(credit_balance::Entity)
        .columns([
            credit_balance::Column::TenantId,
            credit_balance::Column::Balance,
            credit_balance::Column::Consumed,
        ])
        .values_panic([tenant.0.clone().into(), 0i64.into(), 0i64.into()])
        .on_conflict(
            OnConflict::column(credit_balance::Column::TenantId)
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    txn.execute(&ensure_row).await?;
    let update = Query::update()
        .table(credit_balance::Entity)
        .value(
            credit_balance::Column::Balance,
            Expr::col(credit_balance::Column::Balance).add(amount),
        )
        .and_where(Expr::col(credit_balance::Column::TenantId).eq(tenant.0.as_str()))
        .and_where(
            Expr::col(credit_balance::Column::Balance)
                .add(Expr::col(credit_balance::Column::Consumed))
                .lte(i64::MAX - Ord::max(amount, 0)),
        )
        .returning_col(credit_balance::Column::Balance)
        .to_owned();
    // The row exists (ensured above), so no row back means the bound refused the top-up.
    let row = txn
        .query_one(&update)
        .await?
        .ok_or(StoreError::BalanceOverflow)?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

async fn insert_entry(
    txn: &DatabaseTransaction,
    tenant: &TenantId,
    entry: &CreditEntry,
) -> Result<(), StoreError> {
    credit_entry::Entity::insert(credit_entry::ActiveModel {
        id: Set(entry.id.clone()),
        tenant_id: Set(tenant.0.clone()),
        amount: Set(entry.amount),
        balance_after: Set(entry.balance_after),
        kind: Set(entry.kind.as_str().to_owned()),
        reference: Set(entry.reference.clone()),
        note: Set(entry.note.clone()),
        created_at: Set(entry.created_at.micros()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

fn decode(model: credit_entry::Model) -> Result<CreditEntry, StoreError> {
    let kind = CreditKind::parse(&model.kind)
        .ok_or_else(|| StoreError::Corrupt(format!("credit entry {} kind", model.id)))?;
    Ok(CreditEntry {
        id: model.id,
        amount: model.amount,
        balance_after: model.balance_after,
        kind,
        reference: model.reference,
        note: model.note,
        created_at: Timestamp(model.created_at),
    })
}
