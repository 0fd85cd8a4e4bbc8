//! Automatic promotions: coupons applied without a typed code whenever their conditions hold.
//!
//! - `coupons.automatic` marks them; typed codes never match them and ListApplicable skips them.
//! - `redemptions.automatic` (and the same on their events) marks the redemptions they made, so a retried Redeem replays them
//!   and Confirm or Revert of an order finds them without the caller knowing their codes.
//! - `automatic_promotion_keys` indexes each automatic promotion by what a checkout must have for
//!   it to possibly apply: its currency, one of its channels and one of its targets (`*` when it
//!   states none). Pricing looks a checkout's keys up in the primary key, so promotions that
//!   cannot match are never read, however many there are.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Coupons::Table)
                    .add_column(
                        ColumnDef::new(Coupons::Automatic)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Redemptions::Table)
                    .add_column(
                        ColumnDef::new(Redemptions::Automatic)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RedemptionEvents::Table)
                    .add_column(
                        ColumnDef::new(RedemptionEvents::Automatic)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AutomaticPromotionKeys::Table)
                    .col(
                        ColumnDef::new(AutomaticPromotionKeys::TenantId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AutomaticPromotionKeys::Currency)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AutomaticPromotionKeys::Channel)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AutomaticPromotionKeys::Target)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AutomaticPromotionKeys::CouponId)
                            .string()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(AutomaticPromotionKeys::TenantId)
                            .col(AutomaticPromotionKeys::Currency)
                            .col(AutomaticPromotionKeys::Channel)
                            .col(AutomaticPromotionKeys::Target)
                            .col(AutomaticPromotionKeys::CouponId),
                    )
                    .to_owned(),
            )
            .await?;
        // Re-indexing a promotion after UpdateCoupon deletes its keys by coupon.
        manager
            .create_index(
                Index::create()
                    .name("automatic_promotion_keys_coupon")
                    .table(AutomaticPromotionKeys::Table)
                    .col(AutomaticPromotionKeys::CouponId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(AutomaticPromotionKeys::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RedemptionEvents::Table)
                    .drop_column(RedemptionEvents::Automatic)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Redemptions::Table)
                    .drop_column(Redemptions::Automatic)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Coupons::Table)
                    .drop_column(Coupons::Automatic)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Automatic,
}

#[derive(DeriveIden)]
enum Redemptions {
    Table,
    Automatic,
}

#[derive(DeriveIden)]
enum RedemptionEvents {
    Table,
    Automatic,
}

#[derive(DeriveIden)]
enum AutomaticPromotionKeys {
    Table,
    TenantId,
    Currency,
    Channel,
    Target,
    CouponId,
}
