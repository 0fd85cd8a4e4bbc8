use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Unsold PINs of a product in claim order. A sale takes the first row of this index, so its cost
/// does not grow with stock; the older index on `(product_id, purchase_id)` made the claim read
/// and sort every unsold PIN of the product. Partial, so sold PINs leave it and it stays as small
/// as the stock. The statement is the same on SQLite and PostgreSQL, and sea-query cannot express
/// a partial index, hence the raw SQL.
const CREATE: &str =
    "CREATE INDEX voucher_pins_unsold_claim_order ON voucher_pins (product_id, id) \
     WHERE purchase_id IS NULL";
const DROP: &str = "DROP INDEX voucher_pins_unsold_claim_order";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(CREATE).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DROP).await?;
        Ok(())
    }
}
