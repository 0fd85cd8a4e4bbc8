//! The gRPC edge: authenticate, translate proto to domain, call, translate back. No business
//! rules live here.

mod admin;
mod auth;
mod convert;
mod coupons;
mod error;
mod events;
mod key_cache;
mod paging;
mod request;
mod vouchers;

pub(crate) use admin::AdminApi;
pub(crate) use auth::{Authenticator, Caller};
pub(crate) use coupons::CouponApi;
pub(crate) use error::{ApiError, InLocale};
pub(crate) use vouchers::VoucherApi;
