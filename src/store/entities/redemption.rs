use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "redemptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub coupon_id: String,
    pub code: String,
    pub campaign_id: Option<String>,
    pub order_id: String,
    pub customer_id: String,
    pub customer_email: String,
    pub discount: i64,
    pub currency: String,
    pub status: String,
    pub request_id: String,
    pub fingerprint: String,
    pub counted: bool,
    pub customer_counted: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
    pub automatic: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
