//! Black-box tests: a real tonic client against a real server and a real database.

#[path = "../common/mod.rs"]
mod common;

mod admin_coupons;
mod admin_validation;
mod audit;
mod auth;
mod automatic;
mod bench;
mod contract;
mod credits_and_pins;
mod descriptions;
mod engine;
mod events;
mod keys;
mod ledger;
mod lifecycle;
mod live_changes;
mod operations;
mod quotas;
mod stats;
mod tenancy;
mod tiers;
mod tls;
mod vouchers;
