use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per caller reference; the PIN itself stays sealed in voucher_pins.
        manager
            .create_table(
                Table::create()
                    .table(Purchases::Table)
                    .col(string(Purchases::Id).primary_key())
                    .col(string(Purchases::TenantId))
                    .col(string(Purchases::Reference))
                    .col(string(Purchases::Fingerprint))
                    .col(string(Purchases::ProductId))
                    .col(string(Purchases::ProductValue))
                    .col(big_integer(Purchases::Amount))
                    .col(string(Purchases::Currency))
                    .col(string(Purchases::PinId))
                    .col(string(Purchases::PhoneNumber))
                    .col(string(Purchases::Email))
                    .col(string(Purchases::Name))
                    .col(big_integer(Purchases::CreditsAvailable))
                    .col(string(Purchases::RequestId))
                    .col(big_integer(Purchases::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("purchases_reference")
                    .table(Purchases::Table)
                    .col(Purchases::TenantId)
                    .col(Purchases::Reference)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Purchases::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Purchases {
    Table,
    Id,
    TenantId,
    Reference,
    Fingerprint,
    ProductId,
    ProductValue,
    Amount,
    Currency,
    PinId,
    PhoneNumber,
    Email,
    Name,
    CreditsAvailable,
    RequestId,
    CreatedAt,
}
