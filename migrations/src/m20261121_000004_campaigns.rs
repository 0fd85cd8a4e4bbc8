use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Campaigns::Table)
                    .col(string(Campaigns::Id).primary_key())
                    .col(string(Campaigns::TenantId))
                    .col(string(Campaigns::Name))
                    .col(text(Campaigns::Rules))
                    .col(text(Campaigns::Pattern))
                    .col(big_integer(Campaigns::CodeCount).default(0))
                    .col(big_integer(Campaigns::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("campaigns_tenant")
                    .table(Campaigns::Table)
                    .col(Campaigns::TenantId)
                    .col(Campaigns::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Campaigns::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Campaigns {
    Table,
    Id,
    TenantId,
    Name,
    Rules,
    Pattern,
    CodeCount,
    CreatedAt,
}
