//! Schema migrations, portable between SQLite and PostgreSQL.
//!
//! Instants are `BIGINT` microseconds since the Unix epoch and money is `BIGINT` minor units,
//! so both databases compare and sum them identically. Rich coupon rules are a JSON text column;
//! the columns that limits are enforced on sit beside it.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_tenants_and_coupons;
mod m20261121_000002_voucher_stock_and_credits;
mod m20261121_000003_redemption_ledger;
mod m20261121_000004_campaigns;
mod m20261121_000005_purchases;
mod m20261121_000006_redemption_events;
mod m20261122_000001_exact_live_limits;
mod m20261122_000010_pin_unique_per_tenant;
mod m20261122_000020_unsold_pins_in_claim_order;
mod m20261122_000030_tenant_policies;
mod m20261122_000050_tenant_quotas;
mod m20261122_000060_key_lifecycle_and_audit;
mod m20261122_000130_redemption_stats_indexes;
mod m20261122_000140_automatic_promotions;

/// Every migration of the service, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_tenants_and_coupons::Migration),
            Box::new(m20261121_000002_voucher_stock_and_credits::Migration),
            Box::new(m20261121_000003_redemption_ledger::Migration),
            Box::new(m20261121_000004_campaigns::Migration),
            Box::new(m20261121_000005_purchases::Migration),
            Box::new(m20261121_000006_redemption_events::Migration),
            Box::new(m20261122_000001_exact_live_limits::Migration),
            Box::new(m20261122_000010_pin_unique_per_tenant::Migration),
            Box::new(m20261122_000020_unsold_pins_in_claim_order::Migration),
            Box::new(m20261122_000030_tenant_policies::Migration),
            Box::new(m20261122_000050_tenant_quotas::Migration),
            Box::new(m20261122_000060_key_lifecycle_and_audit::Migration),
            Box::new(m20261122_000130_redemption_stats_indexes::Migration),
            Box::new(m20261122_000140_automatic_promotions::Migration),
        ]
    }
}
