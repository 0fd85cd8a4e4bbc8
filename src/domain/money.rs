//! Money is integer minor units with an ISO-4217 currency; no float ever touches it.
//!
//! Rounding, wherever a rule divides money, is half-up to the minor unit: see [`mul_bps`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// A valid ISO-4217 currency, such as `INR` or `IDR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(iso_currency::Currency);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", super::messages::english(self.clone().into()))]
pub struct UnknownCurrency(pub String);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        iso_currency::Currency::from_code(&code.trim().to_ascii_uppercase())
            .map(Self)
            .ok_or_else(|| UnknownCurrency(code.to_owned()))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point of the minor unit (2 for INR, 0 for JPY).
    pub fn exponent(self) -> u32 {
        self.0.exponent().map(u32::from).unwrap_or(0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = UnknownCurrency;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

/// `amount * bps / 10000`, rounded half-up; `None` on overflow or a negative input.
pub fn mul_bps(amount: i64, bps: u32) -> Option<i64> {
    if amount < 0 {
        return None;
    }
    let product = i128::from(amount) * i128::from(bps);
    i64::try_from((product + 5_000) / 10_000).ok()
}

/// Splits `total` over `weights` in proportion, by the largest-remainder method: the shares sum to
/// `total` exactly, and when `total` does not exceed the sum of the weights no share exceeds its
/// weight. Remainder units go to the largest fractional parts, ties to the earlier weight.
/// Negative weights count as zero; with no positive weight every share is zero.
pub fn allocate(total: i64, weights: &[i64]) -> Vec<i64> {
    let weights: Vec<i128> = weights.iter().map(|w| i128::from((*w).max(0))).collect();
    let sum: i128 = weights.iter().sum();
    if sum == 0 || total <= 0 {
        return vec![0; weights.len()];
    }
    let total = i128::from(total);
    let mut shares: Vec<i128> = weights.iter().map(|w| total * w / sum).collect();
    let mut remainders: Vec<(i128, usize)> = weights
        .iter()
        .enumerate()
        .map(|(index, w)| (total * w % sum, index))
        .collect();
    // Largest remainder first; equal remainders keep index order.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = total - shares.iter().sum::<i128>();
    for (_, index) in remainders.into_iter().take(left as usize) {
        shares[index] += 1;
    }
    // Each share is at most `total`, which came from an i64.
    shares.into_iter().map(|s| s as i64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn allocates_the_odd_cent_to_the_largest_remainder() {
        assert_eq!(allocate(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(allocate(20_000, &[159_800]), vec![20_000]);
        assert_eq!(allocate(10, &[0, 0]), vec![0, 0]);
        assert_eq!(allocate(5, &[3, 7]), vec![2, 3]);
    }

    proptest! {
        #[test]
        fn shares_sum_exactly_and_never_exceed_weights(
            weights in proptest::collection::vec(0i64..1_000_000_000_000, 1..40),
            fraction in 0u32..=10_000,
        ) {
            let sum: i64 = weights.iter().sum();
            let total = mul_bps(sum, fraction).unwrap();
            let shares = allocate(total, &weights);
            prop_assert_eq!(shares.iter().sum::<i64>(), if sum == 0 { 0 } else { total });
            for (share, weight) in shares.iter().zip(&weights) {
                prop_assert!(*share >= 0 && share <= weight);
            }
        }
    }

    #[test]
    fn parses_known_codes_only() {
        assert_eq!(Currency::parse(" inr").unwrap().code(), "INR");
        assert_eq!(Currency::parse("NPR").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn rounds_half_up() {
        assert_eq!(mul_bps(1, 5_000), Some(1)); // 0.5 -> 1
        assert_eq!(mul_bps(1, 4_999), Some(0));
        assert_eq!(mul_bps(159_800, 2_000), Some(31_960));
        assert_eq!(mul_bps(-1, 1), None);
    }

    proptest! {
        #[test]
        fn never_exceeds_the_amount(amount in 0i64..i64::MAX, bps in 0u32..=10_000) {
            let part = mul_bps(amount, bps).unwrap();
            prop_assert!(part >= 0 && part <= amount);
        }
    }
}
