//! Tenant quotas: one row per tenant that chose its own limits. A NULL limit follows the service's
//! configured default, so a tenant without a row (or a column left NULL) tracks the default as it
//! changes. Each limit is its own column so an update writes only those its field mask names.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantQuotas::Table)
                    .col(string(TenantQuotas::TenantId).primary_key())
                    .col(big_integer_null(TenantQuotas::RequestsPerSecond))
                    .col(big_integer_null(TenantQuotas::Burst))
                    .col(big_integer_null(TenantQuotas::UnknownCodeLimit))
                    .col(big_integer_null(TenantQuotas::UnknownCodeWindowSecs))
                    .col(big_integer(TenantQuotas::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TenantQuotas::Table, TenantQuotas::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TenantQuotas::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TenantQuotas {
    Table,
    TenantId,
    RequestsPerSecond,
    Burst,
    UnknownCodeLimit,
    UnknownCodeWindowSecs,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}
