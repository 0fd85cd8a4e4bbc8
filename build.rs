//! Generates the gRPC code and the reflection descriptor set from `proto/`.
//!
//! protoc comes from the `protoc-bin-vendored` crate so that a fresh machine needs nothing but
//! cargo to build the service.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/coupons/v1/cart.proto",
    "proto/coupons/v1/coupon.proto",
    "proto/coupons/v1/pricing.proto",
    "proto/coupons/v1/redemption.proto",
    "proto/coupons/v1/voucher.proto",
    "proto/coupons/v1/coupon_service.proto",
    "proto/coupons/v1/voucher_service.proto",
    "proto/coupons/v1/admin_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;
    // SAFETY of intent: build scripts are single-threaded; prost-build reads PROTOC from the env.
    env::set_var("PROTOC", protoc);

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("coupons_descriptor.bin"))
        // Purchases carry PINs: their Debug output must never print one.
        .skip_debug(["coupons.v1.Purchase", "coupons.v1.PinInput"])
        .compile_protos(
            PROTOS,
            &["proto", well_known.to_str().ok_or("non-utf8 include path")?],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
