//! The engine's reads: coupons together with what the ledger knows of them and the customer, in
//! one statement per request, however many codes it names.

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, QueryResult, Statement, Value};

use super::{coupons::decode, entities::coupon, Store, StoreError};
use crate::domain::{coupon::Coupon, engine::LedgerView, Code, TenantId};

const SELECT: &str = "SELECT c.id, c.tenant_id, c.code, c.campaign_id, c.active, c.rules, \
     c.max_redemptions, c.max_redemptions_per_customer, c.budget, c.redemptions, c.budget_used, \
     c.created_at, c.updated_at, \
     COALESCE((SELECT u.redemptions FROM coupon_customer_usage u \
               WHERE u.coupon_id = c.id AND u.customer_key = {customer}), 0) AS customer_redemptions, \
     (SELECT s.completed_redemptions FROM customer_stats s \
      WHERE s.tenant_id = c.tenant_id AND s.customer_key = {customer}) AS completed_redemptions \
     FROM coupons c WHERE c.tenant_id = {tenant}";

impl Store {
    /// The tenant's coupons with these codes, each with its ledger view for `customer_key`.
    #[tracing::instrument(name = "db.coupons_with_ledger", skip_all, fields(db.system = self.db_system()))]
    pub async fn coupons_with_ledger(
        &self,
        tenant: &TenantId,
        codes: &[Code],
        customer_key: Option<&str>,
    ) -> Result<Vec<(Coupon, LedgerView)>, StoreError> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.backend();
        let mut values: Vec<Value> =
            vec![customer_key.unwrap_or("").into(), tenant.0.clone().into()];
        let first_code = values.len() + 1;
        values.extend(codes.iter().map(|c| Value::from(c.as_str().to_owned())));
        let code_list: Vec<String> = (first_code..first_code + codes.len())
            .map(|n| placeholder(backend, n))
            .collect();
        let sql = format!(
            "{} AND c.code IN ({})",
            select(backend),
            code_list.join(", ")
        );
        let rows = self
            .conn()
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        rows.iter()
            .map(|row| decode_row(row, customer_key))
            .collect()
    }

    /// Every active coupon of the tenant that is not a campaign's unique code, with its ledger
    /// view for `customer_key`, in id order: what ListApplicable considers.
    #[tracing::instrument(name = "db.public_coupons_with_ledger", skip_all, fields(db.system = self.db_system()))]
    pub async fn public_coupons_with_ledger(
        &self,
        tenant: &TenantId,
        customer_key: Option<&str>,
    ) -> Result<Vec<(Coupon, LedgerView)>, StoreError> {
        let backend = self.backend();
        let values: Vec<Value> = vec![customer_key.unwrap_or("").into(), tenant.0.clone().into()];
        let sql = format!(
            "{} AND c.active = {} AND c.campaign_id IS NULL ORDER BY c.id",
            select(backend),
            if backend == DbBackend::Postgres {
                "TRUE"
            } else {
                "1"
            }
        );
        let rows = self
            .conn()
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        rows.iter()
            .map(|row| decode_row(row, customer_key))
            .collect()
    }
}

fn select(backend: DbBackend) -> String {
    SELECT
        .replace("{customer}", &placeholder(backend, 1))
        .replace("{tenant}", &placeholder(backend, 2))
}

/// The n-th (1-based) bind parameter in the backend's syntax.
fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}

fn decode_row(
    row: &QueryResult,
    customer_key: Option<&str>,
) -> Result<(Coupon, LedgerView), StoreError> {
    let model = coupon::Model::from_query_result(row, "")?;
    let customer_redemptions: i64 = row.try_get("", "customer_redemptions")?;
    let completed_redemptions: Option<i64> = row.try_get("", "completed_redemptions")?;
    let coupon = decode(model)?;
    let ledger = LedgerView {
        usage: coupon.usage,
        customer_redemptions,
        customer_returning: customer_key.map(|_| completed_redemptions.unwrap_or(0) > 0),
    };
    Ok((coupon, ledger))
}
