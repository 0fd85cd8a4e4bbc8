//! gRPC server reflection (v1, and v1alpha for grpcurl 1.8), serving the descriptors of every
//! message a caller can meet: the `coupons.v1` contract, health, and the `google.rpc` error
//! details this service attaches to its errors. Without the last, grpcurl prints a BadRequest
//! or a LocalizedMessage as "not recognized" raw bytes, hiding every field violation and refusal
//! text from the person reading it.

use tonic_reflection::server::{v1, v1alpha, Builder, Error};

use crate::pb::FILE_DESCRIPTOR_SET;

/// Encoded descriptors of `google/rpc/status.proto` and `google/rpc/error_details.proto` (with
/// their imports), built from the vendored files in `proto/google/rpc`.
const ERROR_DETAILS_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("google_rpc_descriptor");

/// The two reflection services, v1 and v1alpha, over the same descriptors.
pub fn services() -> Result<
    (
        v1::ServerReflectionServer<impl v1::ServerReflection>,
        v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
    ),
    Error,
> {
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

fn builder() -> Builder<'static> {
    Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(ERROR_DETAILS_DESCRIPTOR_SET)
}
