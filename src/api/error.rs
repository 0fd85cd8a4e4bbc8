//! The API layer's one error type, and its one mapping to `tonic::Status` with google.rpc details.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    domain::{
        engine::Reason,
        messages::{reason_message, Locale},
        InvalidInput, Scope,
    },
    store::StoreError,
};

/// Error domain of every `ErrorInfo` this service sends.
pub const ERROR_DOMAIN: &str = "coupons.v1";

/// Everything a handler can fail with. Each variant says the status it becomes.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// UNAUTHENTICATED: no key, a malformed key or a wrong secret.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// PERMISSION_DENIED + ErrorInfo `MISSING_SCOPE`: the key lacks a scope.
    #[error("the API key lacks the {0} scope")]
    PermissionDenied(Scope),
    /// INVALID_ARGUMENT + BadRequest with every field violation.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// NOT_FOUND + ResourceInfo. Another tenant's data is reported exactly like missing data.
    #[error("{resource} {name:?} not found")]
    NotFound {
        resource: &'static str,
        name: String,
    },
    /// ALREADY_EXISTS + ErrorInfo with `reason`.
    #[error("{message}")]
    AlreadyExists {
        reason: &'static str,
        message: String,
    },
    /// FAILED_PRECONDITION: coupons that do not apply, each with its reasons. Carries one
    /// ErrorInfo (the first reason, with the code in its metadata), a LocalizedMessage in the
    /// caller's language, and a PreconditionFailure listing every reason.
    #[error("{}", refusal_summary(.refusals))]
    Refused {
        refusals: Vec<(String, Reason)>,
        locale: Locale,
    },
    /// FAILED_PRECONDITION with a stable reason, for states that refuse an action (such as
    /// confirming an expired redemption).
    #[error("{message}")]
    StateRefused {
        reason: &'static str,
        message: String,
    },
    /// ABORTED: contention the service could not resolve in its retries.
    #[error("the request lost to concurrent requests; retry it")]
    Aborted(#[source] StoreError),
    /// OUT_OF_RANGE + ErrorInfo `CURSOR_EXPIRED` with the oldest usable cursor: resuming from
    /// before the retention horizon.
    #[error("the cursor is older than the retained events; resume from oldest_cursor")]
    OutOfRange { oldest_cursor: String },
    /// UNAVAILABLE: the database cannot be reached; the one error a client retries blindly.
    #[error("the service cannot reach its database")]
    Unavailable(#[source] StoreError),
    /// INTERNAL: a bug. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl ApiError {
    /// NOT_FOUND for `resource` called `name`.
    pub fn not_found(resource: &'static str, name: impl Into<String>) -> Self {
        ApiError::NotFound {
            resource,
            name: name.into(),
        }
    }
}

/// Gives a store error the name of the thing it is about.
pub trait StoreResultExt<T> {
    /// NotFound becomes NOT_FOUND for `resource` `name`; AlreadyExists becomes ALREADY_EXISTS
    /// with `reason`.
    fn about(self, resource: &'static str, name: &str, reason: &'static str)
        -> Result<T, ApiError>;
}

impl<T> StoreResultExt<T> for Result<T, StoreError> {
    fn about(
        self,
        resource: &'static str,
        name: &str,
        reason: &'static str,
    ) -> Result<T, ApiError> {
        self.map_err(|error| match error {
            StoreError::NotFound => ApiError::not_found(resource, name),
            StoreError::AlreadyExists => ApiError::AlreadyExists {
                reason,
                message: format!("{resource} {name:?} already exists"),
            },
            other => ApiError::from(other),
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found("resource", ""),
            StoreError::AlreadyExists => ApiError::AlreadyExists {
                reason: "ALREADY_EXISTS",
                message: "already exists".into(),
            },
            StoreError::Unavailable(_) => ApiError::Unavailable(error),
            StoreError::Contention(_) => ApiError::Aborted(error),
            StoreError::OutOfStock => ApiError::StateRefused {
                reason: "PRODUCT_UNAVAILABLE",
                message: "Product currently unavailable".into(),
            },
            StoreError::InsufficientCredits => ApiError::StateRefused {
                reason: "INSUFFICIENT_CREDITS",
                message: "not enough credits for this purchase; top up first".into(),
            },
            StoreError::Refused { code, reason } => ApiError::Refused {
                refusals: vec![(code.to_string(), reason)],
                locale: Locale::default(),
            },
            other => ApiError::Internal(other),
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let message = error.to_string();
        let mut details = ErrorDetails::new();
        let code = match error {
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::PermissionDenied(scope) => {
                details.set_error_info(
                    "MISSING_SCOPE",
                    ERROR_DOMAIN,
                    HashMap::from([("scope".to_owned(), scope.to_string())]),
                );
                Code::PermissionDenied
            }
            ApiError::InvalidInput(invalid) => {
                for violation in invalid.violations {
                    details.add_bad_request_violation(violation.field, violation.description);
                }
                Code::InvalidArgument
            }
            ApiError::NotFound { resource, name } => {
                details.set_resource_info(resource, name, "", "not found");
                Code::NotFound
            }
            ApiError::AlreadyExists { reason, .. } => {
                details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                Code::AlreadyExists
            }
            ApiError::Refused { refusals, locale } => {
                if let Some((code, first)) = refusals.first() {
                    let mut metadata: HashMap<String, String> =
                        first.metadata().into_iter().collect();
                    metadata.insert("code".to_owned(), code.clone());
                    details.set_error_info(first.code(), ERROR_DOMAIN, metadata);
                    details.set_localized_message(locale.tag(), reason_message(first, locale));
                }
                for (code, reason) in &refusals {
                    details.add_precondition_failure_violation(
                        reason.code(),
                        code.clone(),
                        reason_message(reason, locale),
                    );
                }
                Code::FailedPrecondition
            }
            ApiError::StateRefused { reason, .. } => {
                details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                Code::FailedPrecondition
            }
            ApiError::Aborted(cause) => {
                tracing::warn!(error = %error_chain(&cause), "gave up on contention");
                Code::Aborted
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %error_chain(&cause), "database unavailable");
                Code::Unavailable
            }
            ApiError::OutOfRange { oldest_cursor } => {
                details.set_error_info(
                    "CURSOR_EXPIRED",
                    ERROR_DOMAIN,
                    HashMap::from([("oldest_cursor".to_owned(), oldest_cursor)]),
                );
                Code::OutOfRange
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = %error_chain(&cause), "internal error");
                Code::Internal
            }
        };
        Status::with_error_details(code, message, details)
    }
}

/// An error and its causes on one line, for logs.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

fn refusal_summary(refusals: &[(String, Reason)]) -> String {
    let parts: Vec<String> = refusals
        .iter()
        .map(|(code, reason)| format!("{code}: {}", reason.code()))
        .collect();
    format!("coupon does not apply ({})", parts.join(", "))
}
