use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(string(Tenants::Id).primary_key())
                    .col(string_uniq(Tenants::Name))
                    .col(big_integer(Tenants::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(string(ApiKeys::Id).primary_key())
                    .col(string(ApiKeys::TenantId))
                    .col(string(ApiKeys::SecretHash))
                    .col(string(ApiKeys::Scopes))
                    .col(big_integer(ApiKeys::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKeys::Table, ApiKeys::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Coupons::Table)
                    .col(string(Coupons::Id).primary_key())
                    .col(string(Coupons::TenantId))
                    .col(string(Coupons::Code))
                    .col(string_null(Coupons::CampaignId))
                    .col(boolean(Coupons::Active))
                    .col(text(Coupons::Rules))
                    .col(big_integer_null(Coupons::MaxRedemptions))
                    .col(big_integer_null(Coupons::MaxRedemptionsPerCustomer))
                    .col(big_integer_null(Coupons::Budget))
                    .col(big_integer(Coupons::Redemptions).default(0))
                    .col(big_integer(Coupons::BudgetUsed).default(0))
                    .col(big_integer(Coupons::CreatedAt))
                    .col(big_integer(Coupons::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Coupons::Table, Coupons::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("coupons_tenant_code")
                    .table(Coupons::Table)
                    .col(Coupons::TenantId)
                    .col(Coupons::Code)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("coupons_tenant_id")
                    .table(Coupons::Table)
                    .col(Coupons::TenantId)
                    .col(Coupons::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(VoucherProducts::Table)
                    .col(string(VoucherProducts::Id).primary_key())
                    .col(string(VoucherProducts::TenantId))
                    .col(string(VoucherProducts::Value))
                    .col(string(VoucherProducts::Name))
                    .col(big_integer(VoucherProducts::Amount))
                    .col(string(VoucherProducts::Currency))
                    .col(boolean(VoucherProducts::Active))
                    .col(text(VoucherProducts::Templates))
                    .col(big_integer(VoucherProducts::CreatedAt))
                    .col(big_integer(VoucherProducts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(VoucherProducts::Table, VoucherProducts::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("voucher_products_tenant_value")
                    .table(VoucherProducts::Table)
                    .col(VoucherProducts::TenantId)
                    .col(VoucherProducts::Value)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            VoucherProducts::Table.into_iden(),
            Coupons::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    SecretHash,
    Scopes,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Id,
    TenantId,
    Code,
    CampaignId,
    Active,
    Rules,
    MaxRedemptions,
    MaxRedemptionsPerCustomer,
    Budget,
    Redemptions,
    BudgetUsed,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum VoucherProducts {
    Table,
    Id,
    TenantId,
    Value,
    Name,
    Amount,
    Currency,
    Active,
    Templates,
    CreatedAt,
    UpdatedAt,
}
