//! The gRPC edge: authenticate, translate proto to domain, call, translate back. No business
//! rules live here.

mod admin;
mod auth;
mod convert;
mod coupons;
mod error;
mod events;
mod paging;
mod redemptions;
mod vouchers;

pub use admin::AdminApi;
pub use auth::{Authenticator, Caller};
pub use coupons::CouponApi;
pub use error::{ApiError, StoreResultExt, ERROR_DOMAIN};
pub use vouchers::VoucherApi;
