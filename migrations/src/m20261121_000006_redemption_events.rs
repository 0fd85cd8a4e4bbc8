use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The transactional outbox: one row per redemption state change, written in the change's
        // own transaction. `txid` is the writing transaction's id on PostgreSQL (0 on SQLite, whose
        // writers commit in id order); readers order by (txid, id) and only read rows of
        // transactions older than every one still running, so no cursor passes a gap.
        manager
            .create_table(
                Table::create()
                    .table(RedemptionEvents::Table)
                    .col(big_pk_auto(RedemptionEvents::Id))
                    .col(big_integer(RedemptionEvents::Txid))
                    .col(string(RedemptionEvents::TenantId))
                    .col(string(RedemptionEvents::Kind))
                    .col(big_integer(RedemptionEvents::OccurredAt))
                    .col(string(RedemptionEvents::RedemptionId))
                    .col(string(RedemptionEvents::CouponId))
                    .col(string(RedemptionEvents::Code))
                    .col(string_null(RedemptionEvents::CampaignId))
                    .col(string(RedemptionEvents::OrderId))
                    .col(string(RedemptionEvents::CustomerId))
                    .col(big_integer(RedemptionEvents::Discount))
                    .col(string(RedemptionEvents::Currency))
                    .col(string(RedemptionEvents::Status))
                    .col(string(RedemptionEvents::RequestId))
                    .col(big_integer(RedemptionEvents::CreatedAt))
                    .col(big_integer(RedemptionEvents::UpdatedAt))
                    .col(big_integer_null(RedemptionEvents::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("redemption_events_position")
                    .table(RedemptionEvents::Table)
                    .col(RedemptionEvents::Txid)
                    .col(RedemptionEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("redemption_events_tenant_position")
                    .table(RedemptionEvents::Table)
                    .col(RedemptionEvents::TenantId)
                    .col(RedemptionEvents::Txid)
                    .col(RedemptionEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("redemption_events_age")
                    .table(RedemptionEvents::Table)
                    .col(RedemptionEvents::OccurredAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RedemptionEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RedemptionEvents {
    Table,
    Id,
    Txid,
    TenantId,
    Kind,
    OccurredAt,
    RedemptionId,
    CouponId,
    Code,
    CampaignId,
    OrderId,
    CustomerId,
    Discount,
    Currency,
    Status,
    RequestId,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
}
