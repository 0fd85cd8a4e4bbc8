//! Indexes for the operators' numbers (GetCouponStats, GetCampaignStats): every statement of a
//! coupon's or campaign's stats reads only that coupon's or campaign's rows, however much else
//! the tenant and the other tenants hold.
//!
//! - `(tenant_id, coupon_id, created_at)` serves the totals and distinct customers (its prefix)
//!   and the per-day counts (a range on `created_at`); it replaces `(tenant_id, coupon_id)`,
//!   its prefix, so a redemption still updates as many indexes per coupon as before.
//! - `(tenant_id, campaign_id, created_at)` does the same for a campaign; partial, because most
//!   redemptions belong to no campaign.
//! - `coupons (tenant_id, campaign_id)` finds a campaign's coupons for its budget left without
//!   reading the tenant's other coupons; partial for the same reason.
//!
//! The statements read the same on SQLite and PostgreSQL, and sea-query cannot express a partial
//! index, hence the raw SQL.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: [&str; 4] = [
    "CREATE INDEX redemptions_coupon_created ON redemptions (tenant_id, coupon_id, created_at)",
    "DROP INDEX redemptions_coupon",
    "CREATE INDEX redemptions_campaign_created ON redemptions (tenant_id, campaign_id, created_at) \
     WHERE campaign_id IS NOT NULL",
    "CREATE INDEX coupons_campaign ON coupons (tenant_id, campaign_id) \
     WHERE campaign_id IS NOT NULL",
];

const DOWN: [&str; 4] = [
    "DROP INDEX coupons_campaign",
    "DROP INDEX redemptions_campaign_created",
    "CREATE INDEX redemptions_coupon ON redemptions (tenant_id, coupon_id)",
    "DROP INDEX redemptions_coupon_created",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in UP {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in DOWN {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }
}
