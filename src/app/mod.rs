//! Use cases: one function per RPC that sequences the pure domain and the store. This is the
//! only layer that calls both; it decides idempotency, ledger transitions and what a refusal
//! means. It knows nothing of tonic or proto types: handlers hand it parsed commands and
//! translate its answers back.

pub(crate) mod audit;
pub(crate) mod campaigns;
pub(crate) mod coupons;
pub(crate) mod credits;
mod error;
pub(crate) mod idempotency;
pub(crate) mod keys;
pub(crate) mod pricing;
pub(crate) mod products;
pub(crate) mod quota;
pub(crate) mod redemptions;
pub(crate) mod settings;
pub(crate) mod stats;
pub(crate) mod vouchers;

pub(crate) use error::{AppError, ErrorReason, StoreResultExt};
