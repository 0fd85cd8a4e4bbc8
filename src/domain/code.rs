//! Coupon codes: compared case-insensitively after trimming, stored upper-case.

use std::fmt;

use super::messages::english;

/// Longest code accepted, in characters.
pub const MAX_CODE_LEN: usize = 64;

/// A normalized coupon code: trimmed, upper-case, 1 to 64 of `A-Z 0-9 - _`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Code(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum CodeError {
    Empty,
    TooLong,
    BadCharacter,
}

/// In English, as the description of the problem it is.
impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&english(self.clone().into()))
    }
}

impl Code {
    /// Normalizes what a customer typed (the cart API upper-cases codes).
    pub fn parse(raw: &str) -> Result<Self, CodeError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err(CodeError::Empty);
        }
        if code.chars().count() > MAX_CODE_LEN {
            return Err(CodeError::TooLong);
        }
        if !code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(CodeError::BadCharacter);
        }
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_upper_cases() {
        assert_eq!(Code::parse("  save200 ").unwrap().as_str(), "SAVE200");
    }

    #[test]
    fn refuses_empty_long_and_odd_codes() {
        assert_eq!(Code::parse("   "), Err(CodeError::Empty));
        assert_eq!(Code::parse(&"A".repeat(65)), Err(CodeError::TooLong));
        assert_eq!(Code::parse("SAVE 200"), Err(CodeError::BadCharacter));
        assert_eq!(Code::parse("ŞAVE"), Err(CodeError::BadCharacter));
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent_and_case_blind(raw in "[ ]{0,2}[a-zA-Z0-9_-]{1,60}[ ]{0,2}") {
            let code = Code::parse(&raw).unwrap();
            prop_assert_eq!(Code::parse(code.as_str()).unwrap(), code.clone());
            prop_assert_eq!(Code::parse(&raw.to_lowercase()).unwrap(), code);
        }
    }
}
