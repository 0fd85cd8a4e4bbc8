//! The API layer's one error type, and its one mapping to `tonic::Status` with google.rpc details.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    app::{AppError, ErrorReason},
    domain::{
        engine::Reason,
        messages::{problem_message, reason_message, Locale},
        InvalidInput, Problem, Scope,
    },
    store::StoreError,
};

/// Error domain of every `ErrorInfo` this service sends.
pub(crate) const ERROR_DOMAIN: &str = "coupons.v1";

/// Everything a handler can fail with. Each variant says the status it becomes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// UNAUTHENTICATED: no key, a malformed key or a wrong secret.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// PERMISSION_DENIED + ErrorInfo `MISSING_SCOPE`: the key lacks a scope.
    #[error("the API key lacks the {0} scope")]
    PermissionDenied(Scope),
    /// INVALID_ARGUMENT + BadRequest with every field violation, each described in the
    /// caller's language (the field paths and the message stay as they are).
    #[error("{invalid}")]
    InvalidInput {
        invalid: InvalidInput,
        locale: Locale,
    },
    /// NOT_FOUND + ResourceInfo. Another tenant's data is reported exactly like missing data.
    #[error("{resource} {name:?} not found")]
    NotFound {
        resource: &'static str,
        name: String,
    },
    /// ALREADY_EXISTS + ErrorInfo with `reason`.
    #[error("{message}")]
    AlreadyExists {
        reason: ErrorReason,
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
        reason: ErrorReason,
        message: String,
    },
    /// ABORTED: contention the service could not resolve in its retries.
    #[error("the request lost to concurrent requests; retry it")]
    Aborted(#[source] StoreError),
    /// OUT_OF_RANGE + ErrorInfo `CURSOR_EXPIRED` with the oldest usable cursor: resuming from
    /// before the retention horizon.
    #[error("the cursor is older than the retained events; resume from oldest_cursor")]
    OutOfRange { oldest_cursor: String },
    /// UNAVAILABLE: the server is shutting down; a watcher reconnects (to another replica) with
    /// its last cursor.
    #[error("server shutting down: reconnect with your last cursor")]
    ShuttingDown,
    /// RESOURCE_EXHAUSTED + ErrorInfo (`QUOTA_EXCEEDED` or `TOO_MANY_UNKNOWN_CODES`) +
    /// QuotaFailure naming what ran out + RetryInfo saying when to try again.
    #[error("{}", .0.description)]
    ResourceExhausted(crate::app::quota::Exhausted),
    /// UNAVAILABLE: the database cannot be reached; the one error a client retries blindly.
    #[error("the service cannot reach its database")]
    Unavailable(#[source] StoreError),
    /// INTERNAL: a bug. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// Bad input, to be described in `locale`.
    pub(crate) fn invalid(invalid: InvalidInput, locale: Locale) -> Self {
        ApiError::InvalidInput { invalid, locale }
    }

    /// A use case's error; bad input and refusals are explained in `locale`.
    pub(crate) fn from_app(error: AppError, locale: Locale) -> Self {
        match error {
            AppError::Invalid(invalid) => ApiError::InvalidInput { invalid, locale },
            AppError::NotFound { resource, name } => ApiError::not_found(resource, name),
            AppError::Duplicate { reason, message } => ApiError::AlreadyExists { reason, message },
            AppError::Refused { refusals } => ApiError::Refused { refusals, locale },
            AppError::StateRefused { reason, message } => {
                ApiError::StateRefused { reason, message }
            }
            AppError::Exhausted(exhausted) => ApiError::ResourceExhausted(exhausted),
            AppError::Store(error) => ApiError::from_store(error, locale),
            AppError::Internal(cause) => ApiError::Internal(cause),
        }
    }

    /// NOT_FOUND for `resource` called `name`.
    pub fn not_found(resource: &'static str, name: impl Into<String>) -> Self {
        ApiError::NotFound {
            resource,
            name: echo(&name.into()),
        }
    }
}

/// Turns the errors of the layers below into an `ApiError` whose bad input is described in the
/// caller's language. There is deliberately no `From` for them: every path to a caller names
/// the language.
pub(crate) trait InLocale<T> {
    /// The error as an `ApiError` that describes bad input in `locale`.
    fn in_locale(self, locale: Locale) -> Result<T, ApiError>;
}

impl<T> InLocale<T> for Result<T, InvalidInput> {
    fn in_locale(self, locale: Locale) -> Result<T, ApiError> {
        self.map_err(|invalid| ApiError::invalid(invalid, locale))
    }
}

impl<T> InLocale<T> for Result<T, AppError> {
    fn in_locale(self, locale: Locale) -> Result<T, ApiError> {
        self.map_err(|error| ApiError::from_app(error, locale))
    }
}

impl<T> InLocale<T> for Result<T, StoreError> {
    fn in_locale(self, locale: Locale) -> Result<T, ApiError> {
        self.map_err(|error| ApiError::from_store(error, locale))
    }
}

impl ApiError {
    /// A store error; a value the database refused is described in `locale`.
    pub(crate) fn from_store(error: StoreError, locale: Locale) -> Self {
        match error {
            // Callers that can name what was missing use `about`; reaching here is a bug.
            StoreError::NotFound => ApiError::Internal(anyhow::Error::new(error)),
            StoreError::AlreadyExists => ApiError::AlreadyExists {
                reason: ErrorReason::AlreadyExists,
                message: "already exists".into(),
            },
            StoreError::Unavailable(_) => ApiError::Unavailable(error),
            StoreError::Contention(_) => ApiError::Aborted(error),
            StoreError::BadValue(_) => {
                tracing::warn!(error = %error_chain(&error), "the database refused a value");
                ApiError::invalid(InvalidInput::field("request", Problem::Unstorable), locale)
            }
            StoreError::OutOfStock => ApiError::StateRefused {
                reason: ErrorReason::ProductUnavailable,
                message: "Product currently unavailable".into(),
            },
            StoreError::InsufficientCredits => ApiError::StateRefused {
                reason: ErrorReason::InsufficientCredits,
                message: "not enough credits for this purchase; top up first".into(),
            },
            StoreError::PinInAnotherProduct { positions } => ApiError::AlreadyExists {
                reason: ErrorReason::PinInAnotherProduct,
                message: format!(
                    "{} of these PINs (first: pins[{}]) are already stock of another product; \
                     a PIN is sold once per tenant, so nothing was imported",
                    positions.len(),
                    positions.first().copied().unwrap_or_default()
                ),
            },
            StoreError::BalanceOverflow => ApiError::StateRefused {
                reason: ErrorReason::BalanceOverflow,
                message: "the balance cannot hold this top-up".into(),
            },
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let message = bound(&error.to_string(), MAX_MESSAGE_CHARS);
        let mut details = ErrorDetails::new();
        let code = match error {
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::PermissionDenied(scope) => {
                details.set_error_info(
                    ErrorReason::MissingScope.as_str(),
                    ERROR_DOMAIN,
                    HashMap::from([("scope".to_owned(), scope.to_string())]),
                );
                Code::PermissionDenied
            }
            ApiError::InvalidInput { invalid, locale } => {
                for violation in invalid.violations.into_iter().take(MAX_VIOLATIONS) {
                    details.add_bad_request_violation(
                        bound(&violation.field, MAX_FIELD_CHARS),
                        bound(
                            &problem_message(&violation.problem, locale),
                            MAX_MESSAGE_CHARS,
                        ),
                    );
                }
                Code::InvalidArgument
            }
            ApiError::NotFound { resource, name } => {
                details.set_resource_info(resource, name, "", "not found");
                Code::NotFound
            }
            ApiError::AlreadyExists { reason, .. } => {
                details.set_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new());
                Code::AlreadyExists
            }
            ApiError::Refused { refusals, locale } => {
                if let Some((code, first)) = refusals.first() {
                    let mut metadata: HashMap<String, String> = first
                        .metadata()
                        .into_iter()
                        .map(|(key, value)| (key, echo(&value)))
                        .collect();
                    metadata.insert("code".to_owned(), code.clone());
                    details.set_error_info(first.code(), ERROR_DOMAIN, metadata);
                    details.set_localized_message(
                        locale.tag(),
                        bound(&reason_message(first, locale), MAX_MESSAGE_CHARS),
                    );
                }
                for (code, reason) in refusals.iter().take(MAX_VIOLATIONS) {
                    details.add_precondition_failure_violation(
                        reason.code(),
                        echo(code),
                        bound(&reason_message(reason, locale), MAX_MESSAGE_CHARS),
                    );
                }
                Code::FailedPrecondition
            }
            ApiError::StateRefused { reason, .. } => {
                details.set_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new());
                Code::FailedPrecondition
            }
            ApiError::ResourceExhausted(exhausted) => {
                details.set_error_info(exhausted.reason.as_str(), ERROR_DOMAIN, HashMap::new());
                details.add_quota_failure_violation(
                    bound(&exhausted.subject, MAX_FIELD_CHARS),
                    bound(&exhausted.description, MAX_MESSAGE_CHARS),
                );
                // Whole milliseconds, rounded up, so a client that waits exactly this long is
                // admitted.
                let millis = exhausted.retry_after.as_nanos().div_ceil(1_000_000).max(1);
                details.set_retry_info(Some(std::time::Duration::from_millis(
                    u64::try_from(millis).unwrap_or(u64::MAX),
                )));
                Code::ResourceExhausted
            }
            ApiError::Aborted(cause) => {
                tracing::warn!(error = %error_chain(&cause), "gave up on contention");
                Code::Aborted
            }
            ApiError::ShuttingDown => Code::Unavailable,
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %error_chain(&cause), "database unavailable");
                Code::Unavailable
            }
            ApiError::OutOfRange { oldest_cursor } => {
                details.set_error_info(
                    ErrorReason::CursorExpired.as_str(),
                    ERROR_DOMAIN,
                    HashMap::from([("oldest_cursor".to_owned(), oldest_cursor)]),
                );
                Code::OutOfRange
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = %error_chain(cause.as_ref()), "internal error");
                Code::Internal
            }
        };
        Status::with_error_details(code, message, details)
    }
}

/// Most characters of one caller value echoed back in a message or detail.
pub const MAX_ECHO_CHARS: usize = 64;
/// Most characters of a whole message or description.
const MAX_MESSAGE_CHARS: usize = 512;
/// Most characters of a field path (map keys are part of it).
const MAX_FIELD_CHARS: usize = 160;
/// Most violations listed in one error's details: trailers stay well under the 16 KiB that
/// gRPC-core clients accept, however many lines of a cart are wrong.
const MAX_VIOLATIONS: usize = 20;

/// A caller value as it may be echoed: its first characters, marked when cut.
pub fn echo(value: &str) -> String {
    bound(value, MAX_ECHO_CHARS)
}

/// `text` cut to at most `max` characters (plus an ellipsis when cut).
fn bound(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
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
