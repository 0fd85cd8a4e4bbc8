//! coupon-service: a multi-tenant gRPC coupon engine.
//!
//! Data flows one way: [`api`] authenticates and translates, `app` runs each use case,
//! [`domain`] decides by pure rules, [`store`] persists atomically and [`events`] publishes.
//! [`server`] assembles it; [`cli`] is the command line.

#![forbid(unsafe_code)]

pub(crate) mod api;
mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod events;
pub mod metrics;
pub mod server;
pub mod store;
pub mod telemetry;

/// Generated protobuf and gRPC code for `coupons.v1`, and its descriptor set for reflection.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("coupons.v1");

    /// Encoded descriptors of every `coupons.v1` file, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("coupons_descriptor");

    // PINs are secrets: these messages print without them.
    impl std::fmt::Debug for Purchase {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Purchase")
                .field("id", &self.id)
                .field("reference", &self.reference)
                .field("product_value", &self.product_value)
                .field("pin", &"<redacted>")
                .finish_non_exhaustive()
        }
    }

    impl std::fmt::Debug for PinInput {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("PinInput")
                .field("serial", &self.serial)
                .field("pin", &"<redacted>")
                .finish_non_exhaustive()
        }
    }
}
