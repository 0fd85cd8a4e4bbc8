//! Credits: one balance row per tenant, changed only by conditional atomic UPDATEs, and an
//! append-only ledger written in the same transaction.

use sea_orm::{
    sea_query::{Expr, ExprTrait, OnConflict, Query},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::{
    entities::{credit_balance, credit_entry},
    new_id, Page, Store, StoreError,
};
use crate::domain::{
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
    /// Adds credits. Repeating a reference with the same amount returns the first entry and adds
    /// nothing; with another amount it is `AlreadyExists`.
    #[tracing::instrument(name = "db.top_up_credits", skip_all, fields(db.system = self.db_system()))]
    pub async fn top_up_credits(
        &self,
        tenant: &TenantId,
        amount: i64,
        reference: &str,
        note: &str,
    ) -> Result<TopUp, StoreError> {
        if let Some(earlier) = self
            .find_entry(tenant, CreditKind::TopUp, reference)
            .await?
        {
            return self.repeated_top_up(tenant, earlier, amount).await;
        }
        let txn = self.conn().begin().await?;
        let balance = add_to_balance(&txn, tenant, amount).await?;
        let entry = CreditEntry {
            id: new_id("crd"),
            amount,
            balance_after: balance,
            kind: CreditKind::TopUp,
            reference: reference.to_owned(),
            note: note.to_owned(),
            created_at: Timestamp::now(),
        };
        let inserted = insert_entry(&txn, tenant, &entry).await;
        match inserted {
            Ok(()) => {
                txn.commit().await?;
                Ok(TopUp { entry, balance })
            }
            // A concurrent retry of the same reference committed first: answer as it did.
            Err(StoreError::AlreadyExists) => {
                txn.rollback().await?;
                let earlier = self
                    .find_entry(tenant, CreditKind::TopUp, reference)
                    .await?
                    .ok_or(StoreError::AlreadyExists)?;
                self.repeated_top_up(tenant, earlier, amount).await
            }
            Err(other) => Err(other),
        }
    }

    async fn repeated_top_up(
        &self,
        tenant: &TenantId,
        earlier: CreditEntry,
        amount: i64,
    ) -> Result<TopUp, StoreError> {
        if earlier.amount != amount {
            return Err(StoreError::AlreadyExists);
        }
        let balance = self.balance(tenant).await?.available;
        Ok(TopUp {
            entry: earlier,
            balance,
        })
    }

    /// The tenant's balance; zero before the first top-up.
    #[tracing::instrument(name = "db.balance", skip_all, fields(db.system = self.db_system()))]
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
    #[tracing::instrument(name = "db.list_credit_entries", skip_all, fields(db.system = self.db_system()))]
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

/// Adds `amount` to the balance in one statement (never read-then-write) and returns the new
/// balance.
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
        .returning_col(credit_balance::Column::Balance)
        .to_owned();
    let row = txn
        .query_one(&update)
        .await?
        .ok_or_else(|| StoreError::Corrupt("credit balance row vanished".into()))?;
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
