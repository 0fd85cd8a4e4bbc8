//! Generates the gRPC code and the reflection descriptor sets from `proto/`.
//!
//! protoc comes from the `protoc-bin-vendored` crate so that a fresh machine needs nothing but
//! cargo to build the service.

use std::{env, path::PathBuf, process::Command};

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

/// The google.rpc messages this service sends as error details. Only their descriptors are
/// built (tonic-types already has the Rust types): reflection serves them so that grpcurl can
/// decode BadRequest, ErrorInfo and LocalizedMessage instead of printing raw bytes.
const ERROR_PROTOS: &[&str] = &[
    "proto/google/rpc/status.proto",
    "proto/google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known = protoc_bin_vendored::include_path()?;
    let well_known = well_known.to_str().ok_or("non-utf8 include path")?;
    // SAFETY of intent: build scripts are single-threaded; prost-build reads PROTOC from the env.
    env::set_var("PROTOC", &protoc);

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("coupons_descriptor.bin"))
        // Purchases carry PINs: their Debug output must never print one.
        .skip_debug(["coupons.v1.Purchase", "coupons.v1.PinInput"])
        .compile_protos(PROTOS, &["proto", well_known])?;

    let error_descriptor = out_dir.join("google_rpc_descriptor.bin");
    let status = Command::new(&protoc)
        .arg("--include_imports")
        .arg(format!(
            "--descriptor_set_out={}",
            error_descriptor.display()
        ))
        .arg("-Iproto")
        .arg(format!("-I{well_known}"))
        .args(ERROR_PROTOS)
        .status()?;
    if !status.success() {
        return Err(format!("protoc failed on {ERROR_PROTOS:?}: {status}").into());
    }
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
