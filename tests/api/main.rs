//! Black-box tests: a real tonic client against a real server and a real database.

#[path = "../common/mod.rs"]
mod common;

mod admin_coupons;
mod admin_validation;
mod auth;
mod credits_and_pins;
mod engine;
mod events;
mod ledger;
mod lifecycle;
mod operations;
mod tenancy;
mod tls;
mod vouchers;
