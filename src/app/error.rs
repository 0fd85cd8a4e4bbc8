//! The use-case layer's one error type, and the stable reasons the contract promises.

use crate::{
    domain::{engine::Reason, InvalidInput},
    store::StoreError,
};

/// A stable `google.rpc.ErrorInfo` reason that is not a coupon refusal (those are the engine's
/// [`Reason`]s). Clients match on these strings, so they never change once released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorReason {
    /// An order redeemed these codes with a different request.
    DuplicateOrder,
    /// A purchase or top-up reference was used with a different request.
    DuplicateReference,
    /// A coupon code is taken in the tenant.
    CouponCodeExists,
    /// A product value is taken in the tenant.
    ProductValueExists,
    /// The redemption's reservation ran out.
    RedemptionExpired,
    /// The redemption was reverted.
    RedemptionReverted,
    /// The product is inactive or out of stock.
    ProductUnavailable,
    /// The tenant's credits do not cover a purchase.
    InsufficientCredits,
    /// The API key lacks a scope.
    MissingScope,
    /// An event cursor is older than the retained events.
    CursorExpired,
    /// An imported PIN is already stock of another product of the tenant.
    PinInAnotherProduct,
    /// A top-up would take the balance past what it can hold.
    BalanceOverflow,
    /// A unique key of some other resource is taken.
    AlreadyExists,
    /// The tenant's request quota is used up.
    QuotaExceeded,
    /// An end customer got too many unknown-code answers in the tenant's window.
    TooManyUnknownCodes,
}

impl ErrorReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorReason::DuplicateOrder => "DUPLICATE_ORDER",
            ErrorReason::DuplicateReference => "DUPLICATE_REFERENCE",
            ErrorReason::CouponCodeExists => "COUPON_CODE_EXISTS",
            ErrorReason::ProductValueExists => "PRODUCT_VALUE_EXISTS",
            ErrorReason::RedemptionExpired => "REDEMPTION_EXPIRED",
            ErrorReason::RedemptionReverted => "REDEMPTION_REVERTED",
            ErrorReason::ProductUnavailable => "PRODUCT_UNAVAILABLE",
            ErrorReason::InsufficientCredits => "INSUFFICIENT_CREDITS",
            ErrorReason::MissingScope => "MISSING_SCOPE",
            ErrorReason::CursorExpired => "CURSOR_EXPIRED",
            ErrorReason::PinInAnotherProduct => "PIN_IN_ANOTHER_PRODUCT",
            ErrorReason::BalanceOverflow => "BALANCE_OVERFLOW",
            ErrorReason::AlreadyExists => "ALREADY_EXISTS",
            ErrorReason::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorReason::TooManyUnknownCodes => "TOO_MANY_UNKNOWN_CODES",
        }
    }
}

/// Everything a use case can fail with; the API layer maps each to one status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// The command names invalid fields.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The named thing does not exist for this tenant.
    #[error("{resource} {name:?} not found")]
    NotFound {
        resource: &'static str,
        name: String,
    },
    /// An idempotency key was reused with a different request.
    #[error("{message}")]
    Duplicate {
        reason: ErrorReason,
        message: String,
    },
    /// Coupons that do not apply, each with its reasons.
    #[error("coupon does not apply")]
    Refused { refusals: Vec<(String, Reason)> },
    /// A state that refuses the action.
    #[error("{message}")]
    StateRefused {
        reason: ErrorReason,
        message: String,
    },
    /// A quota or throttle ran out; retry after the time it says.
    #[error("{}", .0.description)]
    Exhausted(super::quota::Exhausted),
    /// A persistence failure, classified by the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or broken invariant outside the store: logged with its cause, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub(crate) fn not_found(resource: &'static str, name: impl Into<String>) -> Self {
        AppError::NotFound {
            resource,
            name: name.into(),
        }
    }
}

/// Names the resource a store error is about, so the caller learns what was missing or taken.
pub(crate) trait StoreResultExt<T> {
    /// NotFound becomes NOT_FOUND for `resource` `name`.
    fn about(self, resource: &'static str, name: &str) -> Result<T, AppError>;
    /// As [`about`](Self::about), and a taken unique key becomes a duplicate with `reason`.
    fn taken(self, resource: &'static str, name: &str, reason: ErrorReason) -> Result<T, AppError>;
}

impl<T> StoreResultExt<T> for Result<T, StoreError> {
    fn about(self, resource: &'static str, name: &str) -> Result<T, AppError> {
        self.map_err(|error| match error {
            StoreError::NotFound => AppError::not_found(resource, name),
            other => other.into(),
        })
    }

    fn taken(self, resource: &'static str, name: &str, reason: ErrorReason) -> Result<T, AppError> {
        self.map_err(|error| match error {
            StoreError::NotFound => AppError::not_found(resource, name),
            StoreError::AlreadyExists => AppError::Duplicate {
                reason,
                message: format!("{resource} {name:?} already exists"),
            },
            other => other.into(),
        })
    }
}
