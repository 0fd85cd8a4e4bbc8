use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_tenants_and_coupons::{Tenants, VoucherProducts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Service-wide settings, such as the sealed check value of the PIN key.
        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(string(Settings::Name).primary_key())
                    .col(text(Settings::Value))
                    .to_owned(),
            )
            .await?;
        // PINs are stored encrypted; `pin_digest` is a keyed hash that finds duplicates without
        // decrypting. An unsold PIN has no `purchase_id`.
        manager
            .create_table(
                Table::create()
                    .table(VoucherPins::Table)
                    .col(string(VoucherPins::Id).primary_key())
                    .col(string(VoucherPins::TenantId))
                    .col(string(VoucherPins::ProductId))
                    .col(text(VoucherPins::PinCiphertext))
                    .col(string(VoucherPins::PinDigest))
                    .col(string(VoucherPins::Serial))
                    .col(big_integer_null(VoucherPins::ExpiresAt))
                    .col(string_null(VoucherPins::PurchaseId))
                    .col(big_integer(VoucherPins::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(VoucherPins::Table, VoucherPins::ProductId)
                            .to(VoucherProducts::Table, VoucherProducts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("voucher_pins_product_digest")
                    .table(VoucherPins::Table)
                    .col(VoucherPins::ProductId)
                    .col(VoucherPins::PinDigest)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("voucher_pins_stock")
                    .table(VoucherPins::Table)
                    .col(VoucherPins::ProductId)
                    .col(VoucherPins::PurchaseId)
                    .to_owned(),
            )
            .await?;

        // The balance row is what a purchase debits with one conditional UPDATE; the entries are
        // the append-only ledger it must always equal the sum of.
        manager
            .create_table(
                Table::create()
                    .table(CreditBalances::Table)
                    .col(string(CreditBalances::TenantId).primary_key())
                    .col(big_integer(CreditBalances::Balance).default(0))
                    .col(big_integer(CreditBalances::Consumed).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CreditBalances::Table, CreditBalances::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CreditEntries::Table)
                    .col(string(CreditEntries::Id).primary_key())
                    .col(string(CreditEntries::TenantId))
                    .col(big_integer(CreditEntries::Amount))
                    .col(big_integer(CreditEntries::BalanceAfter))
                    .col(string(CreditEntries::Kind))
                    .col(string(CreditEntries::Reference))
                    .col(string(CreditEntries::Note))
                    .col(big_integer(CreditEntries::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("credit_entries_reference")
                    .table(CreditEntries::Table)
                    .col(CreditEntries::TenantId)
                    .col(CreditEntries::Kind)
                    .col(CreditEntries::Reference)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CreditEntries::Table.into_iden(),
            CreditBalances::Table.into_iden(),
            VoucherPins::Table.into_iden(),
            Settings::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum VoucherPins {
    Table,
    Id,
    TenantId,
    ProductId,
    PinCiphertext,
    PinDigest,
    Serial,
    ExpiresAt,
    PurchaseId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CreditBalances {
    Table,
    TenantId,
    Balance,
    Consumed,
}

#[derive(DeriveIden)]
enum CreditEntries {
    Table,
    Id,
    TenantId,
    Amount,
    BalanceAfter,
    Kind,
    Reference,
    Note,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Name,
    Value,
}
