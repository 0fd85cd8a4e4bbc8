//! What can be wrong with one field of a request: a closed catalogue, so every problem has its
//! text in every language (`messages::problem_message`) and a new one cannot be added without.

use super::{code::CodeError, money::UnknownCurrency, scope::UnknownScope, Currency};

/// One thing wrong with a field, with what its text needs. Field paths are not part of it: a
/// `FieldViolation` pairs the two.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), name(ProblemKind))
)]
pub enum Problem {
    /// Missing or empty.
    Required,
    /// Neither an id nor a code was given where one of them is needed.
    IdOrCodeRequired,
    /// An update names no field to change.
    UpdateMaskRequired,
    /// A coupon without a discount.
    DiscountRequired,
    /// A cart line without a unit price (a free item states 0).
    UnitPriceRequired,
    /// Redeeming for an anonymous customer.
    CustomerIdRequired,
    /// An API key asked for with no scope.
    ScopesRequired,
    /// Text longer than `max` characters.
    TooLong { max: usize },
    /// Missing, or longer than `max` characters.
    RequiredUpTo { max: usize },
    /// Text with a NUL character, which PostgreSQL cannot store.
    ContainsNul,
    /// A header value that is not printable ASCII.
    NotPrintableAscii,
    /// A number below zero.
    Negative,
    /// A number that is zero or below.
    NotPositive,
    /// An optional number that is set but zero or below.
    NotPositiveWhenSet,
    /// A number below `min`.
    AtLeast { min: i64 },
    /// An optional number that is set but below `min`.
    AtLeastWhenSet { min: i64 },
    /// A number outside `min..=max`.
    OutOfRange { min: i64, max: i64 },
    /// An amount of money below zero or beyond what any cart holds.
    NegativeOrTooLarge,
    /// A percentage outside 1 to 10000 basis points.
    PercentageOutOfRange,
    /// A quota limit outside `1..=max` (0 means the service default).
    QuotaOutOfRange { max: u32 },
    /// A quota limit looser than the service default, which only the operator may grant.
    AboveServiceDefault { default: u32 },
    /// Fewer than `min` or more than `max` coupon codes.
    CodeCount { min: usize, max: usize },
    /// Fewer than `min` or more than `max` PINs in one import.
    PinCount { min: usize, max: usize },
    /// A cart with more than `max` lines.
    TooManyLines { max: usize },
    /// More than `max` order types.
    TooManyOrderTypes { max: usize },
    /// A cart whose quantities add up beyond what can be counted.
    TotalQuantityTooLarge,
    /// A cart line whose price times quantity overflows.
    LineTotalTooLarge,
    /// A timestamp out of the representable range.
    NotATimestamp,
    /// A time that has already passed.
    NotInFuture,
    /// An end time at or before the start time.
    EndNotAfterStart,
    /// A reservation time outside 1 second to 7 days.
    ReservationTtlOutOfRange,
    /// A grace period outside 0 to 30 days.
    GracePeriodOutOfRange,
    /// An enum value this service does not know.
    UnknownValue,
    /// A customer segment this service does not know.
    UnknownCustomerSegment,
    /// An event kind this service does not know.
    UnknownEventKind,
    /// A predicate operator this service does not know.
    UnknownOperator,
    /// An order status other than pending or completed.
    UnknownOrderStatus,
    /// A value given twice in a list.
    NamedTwice,
    /// A field mask path that an update does not change; `path` as sent.
    NotUpdatable {
        path: String,
        allowed: Vec<&'static str>,
    },
    /// A coupon stating amounts without a currency.
    CurrencyRequiredForAmounts,
    /// A LISTED customer segment that lists nobody.
    ListedSegmentEmpty,
    /// A `metadata.` predicate field without a key.
    MetadataKeyMissing,
    /// A predicate with the wrong number of values for its operator.
    WrongValueCount,
    /// A code pattern's character set with fewer than `min` distinct letters or digits.
    CharsetTooSmall { min: usize },
    /// A code prefix with a character codes may not contain.
    BadPrefixCharacter,
    /// A code pattern whose prefix and length exceed `max` characters.
    PatternTooLong { max: usize },
    /// A code pattern too short for the number of unique codes asked for.
    PatternTooShortForCount,
    /// Not 1 to `max` of `a-z`, `0-9`, `-` and `_`.
    NotASlug { max: usize },
    /// A voucher product value no product has.
    UnknownProduct,
    /// A purchase amount other than the product's `price`.
    AmountNotPrice { price: i64, currency: Currency },
    /// A voucher product without a currency.
    ProductWithoutCurrency,
    /// A PIN the service could not encrypt.
    PinNotSealable,
    /// A page token made for another listing, tenant or query.
    UnknownPageToken,
    /// A cursor not made by the redemption event stream.
    UnknownCursor,
    /// A value the database refused to store.
    Unstorable,
    /// A tiered discount without a basis.
    TierBasisRequired,
    /// A tier without a reward.
    TierRewardRequired,
    /// A tiered discount without tiers.
    TiersRequired,
    /// More than `max` tiers.
    TooManyTiers { max: usize },
    /// A tier threshold not above the tier below's.
    ThresholdNotAboveLowerTier,
    /// A tier reward of another kind than the first tier's.
    TierRewardKindDiffers,
    /// A tier reward not above the tier below's, so more spend would give less.
    RewardNotAboveLowerTier,
    /// An automatic promotion naming more than `max` combinations of channel and target.
    TooManyAutomaticKeys { max: usize },
    /// Not a `YYYY-MM-DD` date.
    NotADate,
    /// A first day after the last.
    StartAfterEnd,
    /// A range of more than `max` days.
    RangeTooLong { max: i64 },
    /// Not a coupon code.
    Code(CodeError),
    /// Not an ISO-4217 currency code; `code` as sent.
    UnknownCurrency { code: String },
    /// Not a scope; `scope` as sent.
    UnknownScope { scope: String },
}

impl From<CodeError> for Problem {
    fn from(error: CodeError) -> Self {
        Problem::Code(error)
    }
}

impl From<UnknownCurrency> for Problem {
    fn from(error: UnknownCurrency) -> Self {
        Problem::UnknownCurrency { code: error.0 }
    }
}

impl From<UnknownScope> for Problem {
    fn from(error: UnknownScope) -> Self {
        Problem::UnknownScope { scope: error.0 }
    }
}
