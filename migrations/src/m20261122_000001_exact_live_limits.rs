//! Limits that hold when changed on a live coupon, first-order coupons claimed in the ledger,
//! and orders that can be redeemed again after a failed attempt.
//!
//! - Every active redemption is now counted on its coupon (total, budget, per customer), whether
//!   or not the coupon has a limit, so adding or lowering a limit later counts from the truth.
//!   The counters are recomputed here from the ledger.
//! - `customer_stats.completed_redemptions` becomes `active_redemptions` (pending orders count),
//!   recomputed from the ledger: a new-customer coupon is claimed against it in the redemption's
//!   own transaction.
//! - An order and code are unique among *active* redemptions only: a reverted or expired attempt
//!   no longer blocks a new one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const ACTIVE: &str = "status IN ('pending', 'completed')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .drop_index(
                Index::drop()
                    .name("redemptions_order_code")
                    .table(Redemptions::Table)
                    .to_owned(),
            )
            .await?;
        // Partial unique indexes read the same on SQLite and PostgreSQL.
        db.execute_unprepared(&format!(
            "CREATE UNIQUE INDEX redemptions_active_order_code \
             ON redemptions (tenant_id, order_id, code) WHERE {ACTIVE}"
        ))
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("redemptions_order")
                    .table(Redemptions::Table)
                    .col(Redemptions::TenantId)
                    .col(Redemptions::OrderId)
                    .to_owned(),
            )
            .await?;

        db.execute_unprepared(&format!(
            "UPDATE coupons SET \
               redemptions = (SELECT COUNT(*) FROM redemptions r \
                              WHERE r.coupon_id = coupons.id AND r.{ACTIVE}), \
               budget_used = (SELECT COALESCE(SUM(r.discount), 0) FROM redemptions r \
                              WHERE r.coupon_id = coupons.id AND r.{ACTIVE})"
        ))
        .await?;
        db.execute_unprepared("DELETE FROM coupon_customer_usage")
            .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO coupon_customer_usage (coupon_id, customer_key, redemptions) \
             SELECT coupon_id, customer_id, COUNT(*) FROM redemptions WHERE {ACTIVE} \
             GROUP BY coupon_id, customer_id"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE redemptions SET counted = TRUE, customer_counted = TRUE WHERE {ACTIVE}"
        ))
        .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(CustomerStats::Table)
                    .rename_column(
                        CustomerStats::CompletedRedemptions,
                        CustomerStats::ActiveRedemptions,
                    )
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared("DELETE FROM customer_stats").await?;
        for (key, known) in [
            ("customer_id", "customer_id"),
            ("'email:' || customer_email", "customer_email"),
        ] {
            db.execute_unprepared(&format!(
                "INSERT INTO customer_stats (tenant_id, customer_key, active_redemptions) \
                 SELECT tenant_id, {key}, COUNT(*) FROM redemptions \
                 WHERE {ACTIVE} AND {known} <> '' GROUP BY tenant_id, {key}"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "exact live limits cannot be undone: older versions cannot redeem an order twice"
                .into(),
        ))
    }
}

#[derive(DeriveIden)]
enum Redemptions {
    Table,
    TenantId,
    OrderId,
}

#[derive(DeriveIden)]
enum CustomerStats {
    Table,
    CompletedRedemptions,
    ActiveRedemptions,
}
