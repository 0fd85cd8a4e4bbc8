//! SeaORM entities. They never leave `store/`: repositories turn them into domain types.

pub mod api_key;
pub mod campaign;
pub mod coupon;
pub mod credit_balance;
pub mod credit_entry;
pub mod purchase;
pub mod redemption;
pub mod setting;
pub mod tenant;
pub mod voucher_pin;
pub mod voucher_product;
