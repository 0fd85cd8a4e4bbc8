//! SeaORM entities. They never leave `store/`: repositories turn them into domain types.

pub mod api_key;
pub mod audit_entry;
pub mod campaign;
pub mod coupon;
pub mod credit_balance;
pub mod credit_entry;
pub mod purchase;
pub mod redemption;
pub mod setting;
pub mod tenant;
pub mod tenant_policy;
pub mod tenant_quota;
pub mod voucher_pin;
pub mod voucher_product;
