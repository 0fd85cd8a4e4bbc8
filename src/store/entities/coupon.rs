use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coupons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub code: String,
    pub campaign_id: Option<String>,
    pub active: bool,
    #[sea_orm(column_type = "Text")]
    pub rules: String,
    pub max_redemptions: Option<i64>,
    pub max_redemptions_per_customer: Option<i64>,
    pub budget: Option<i64>,
    pub redemptions: i64,
    pub budget_used: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub automatic: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
