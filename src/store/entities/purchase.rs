use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "purchases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub reference: String,
    pub fingerprint: String,
    pub product_id: String,
    pub product_value: String,
    pub amount: i64,
    pub currency: String,
    pub pin_id: String,
    pub phone_number: String,
    pub email: String,
    pub name: String,
    pub credits_available: i64,
    pub request_id: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
