use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per (order, code); its status says whether it holds usage (pending,
        // completed) or released it (reverted, expired).
        manager
            .create_table(
                Table::create()
                    .table(Redemptions::Table)
                    .col(string(Redemptions::Id).primary_key())
                    .col(string(Redemptions::TenantId))
                    .col(string(Redemptions::CouponId))
                    .col(string(Redemptions::Code))
                    .col(string_null(Redemptions::CampaignId))
                    .col(string(Redemptions::OrderId))
                    .col(string(Redemptions::CustomerId))
                    .col(string(Redemptions::CustomerEmail))
                    .col(big_integer(Redemptions::Discount))
                    .col(string(Redemptions::Currency))
                    .col(string(Redemptions::Status))
                    .col(string(Redemptions::RequestId))
                    .col(string(Redemptions::Fingerprint))
                    // Which counters this redemption consumed, so a release gives back exactly those
                    // even if the coupon's limits changed in between.
                    .col(boolean(Redemptions::Counted))
                    .col(boolean(Redemptions::CustomerCounted))
                    .col(big_integer(Redemptions::CreatedAt))
                    .col(big_integer(Redemptions::UpdatedAt))
                    .col(big_integer_null(Redemptions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "redemptions_order_code",
                vec![
                    Redemptions::TenantId,
                    Redemptions::OrderId,
                    Redemptions::Code,
                ],
                true,
            ),
            (
                "redemptions_coupon",
                vec![Redemptions::TenantId, Redemptions::CouponId],
                false,
            ),
            (
                "redemptions_customer",
                vec![Redemptions::TenantId, Redemptions::CustomerId],
                false,
            ),
            (
                "redemptions_expiry",
                vec![Redemptions::Status, Redemptions::ExpiresAt],
                false,
            ),
        ] {
            let mut index = Index::create()
                .name(name)
                .table(Redemptions::Table)
                .to_owned();
            for column in columns {
                index.col(column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }

        // Active redemptions of a coupon per customer: the per-customer limit is one conditional
        // upsert on this row.
        manager
            .create_table(
                Table::create()
                    .table(CouponCustomerUsage::Table)
                    .col(string(CouponCustomerUsage::CouponId))
                    .col(string(CouponCustomerUsage::CustomerKey))
                    .col(big_integer(CouponCustomerUsage::Redemptions).default(0))
                    .primary_key(
                        Index::create()
                            .col(CouponCustomerUsage::CouponId)
                            .col(CouponCustomerUsage::CustomerKey),
                    )
                    .to_owned(),
            )
            .await?;

        // Completed redemptions per customer (by id and by e-mail): with one, a customer is
        // returning, not new.
        manager
            .create_table(
                Table::create()
                    .table(CustomerStats::Table)
                    .col(string(CustomerStats::TenantId))
                    .col(string(CustomerStats::CustomerKey))
                    .col(big_integer(CustomerStats::CompletedRedemptions).default(0))
                    .primary_key(
                        Index::create()
                            .col(CustomerStats::TenantId)
                            .col(CustomerStats::CustomerKey),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CustomerStats::Table.into_iden(),
            CouponCustomerUsage::Table.into_iden(),
            Redemptions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Redemptions {
    Table,
    Id,
    TenantId,
    CouponId,
    Code,
    CampaignId,
    OrderId,
    CustomerId,
    CustomerEmail,
    Discount,
    Currency,
    Status,
    RequestId,
    Fingerprint,
    Counted,
    CustomerCounted,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum CouponCustomerUsage {
    Table,
    CouponId,
    CustomerKey,
    Redemptions,
}

#[derive(DeriveIden)]
enum CustomerStats {
    Table,
    TenantId,
    CustomerKey,
    CompletedRedemptions,
}
