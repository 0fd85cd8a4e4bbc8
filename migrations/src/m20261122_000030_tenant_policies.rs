//! Tenant policies: one row per tenant that has set one. A tenant without a row has the empty
//! policy. Each rule is its own column so that an update names only the columns in its field
//! mask, and two concurrent updates of different rules never undo each other.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantPolicies::Table)
                    .col(string(TenantPolicies::TenantId).primary_key())
                    .col(boolean(TenantPolicies::RefuseLoyaltyPoints).default(false))
                    .col(boolean(TenantPolicies::RequiresVerifiedPhone).default(false))
                    // A JSON array of strings.
                    .col(text(TenantPolicies::ExcludedOrderTypes).default("[]"))
                    .col(string(TenantPolicies::DefaultChannel).default(""))
                    .col(big_integer(TenantPolicies::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TenantPolicies::Table, TenantPolicies::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TenantPolicies::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TenantPolicies {
    Table,
    TenantId,
    RefuseLoyaltyPoints,
    RequiresVerifiedPhone,
    ExcludedOrderTypes,
    DefaultChannel,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}
