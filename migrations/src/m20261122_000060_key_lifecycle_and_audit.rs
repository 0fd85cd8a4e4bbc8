//! API key lifecycle and the audit log.
//!
//! Keys gain an optional expiry, a revocation instant and a coarse "last used" instant. Every
//! admin change writes one `audit_entries` row in the transaction of the change itself, so an
//! entry exists exactly when its change committed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [ApiKeys::ExpiresAt, ApiKeys::RevokedAt, ApiKeys::LastUsedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .add_column(big_integer_null(column))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuditEntries::Table)
                    // A time-ordered id: listing newest first is ordering by id.
                    .col(string(AuditEntries::Id).primary_key())
                    .col(string(AuditEntries::TenantId))
                    .col(string(AuditEntries::KeyId))
                    .col(string(AuditEntries::Rpc))
                    .col(string(AuditEntries::ResourceType))
                    .col(string(AuditEntries::ResourceId))
                    // A JSON object of the changed fields and their new values.
                    .col(text(AuditEntries::Changes))
                    .col(big_integer(AuditEntries::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_entries_resource")
                    .table(AuditEntries::Table)
                    .col(AuditEntries::TenantId)
                    .col(AuditEntries::ResourceType)
                    .col(AuditEntries::ResourceId)
                    .col(AuditEntries::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_tenant")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::TenantId)
                    .col(ApiKeys::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_api_keys_tenant")
                    .table(ApiKeys::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(AuditEntries::Table).to_owned())
            .await?;
        for column in [ApiKeys::ExpiresAt, ApiKeys::RevokedAt, ApiKeys::LastUsedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum AuditEntries {
    Table,
    Id,
    TenantId,
    KeyId,
    Rpc,
    ResourceType,
    ResourceId,
    Changes,
    CreatedAt,
}
