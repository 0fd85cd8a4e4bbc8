//! Pure business rules: no I/O, no tonic, no SeaORM. Everything here is unit-testable.

pub mod api_key;
pub mod audit;
pub mod automatic;
pub mod campaign;
pub mod cart;
pub mod code;
pub mod coupon;
pub mod credit;
pub mod engine;
pub mod event;
pub mod messages;
pub mod money;
pub mod pin;
pub mod policy;
pub mod problem;
pub mod product;
pub mod purchase;
pub mod quota;
pub mod redemption;
pub mod scope;
pub mod stats;
pub mod tenant;
pub mod text;
pub mod time;
pub mod violation;

pub use code::Code;
pub use money::Currency;
pub use problem::Problem;
pub use scope::{Scope, Scopes};
pub use tenant::TenantId;
pub use time::Timestamp;
pub use violation::{InvalidInput, Violations};
