//! Campaigns: many unique codes sharing one set of rules.

use rand::Rng;

use super::{coupon::CouponRules, Code, Problem, Timestamp, Violations};

/// Characters drawn by default: no 0/O, 1/I/L, which customers confuse.
pub const UNAMBIGUOUS: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Random characters by default.
pub const DEFAULT_LENGTH: usize = 10;
/// Most codes one GenerateCodes call makes.
pub const MAX_CODES_PER_CALL: usize = 100_000;

/// How codes are made: a fixed prefix, then `length` characters from `charset`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodePattern {
    pub prefix: String,
    pub length: usize,
    pub charset: Vec<char>,
}

impl CodePattern {
    /// Checks a requested pattern; empty values take the defaults.
    pub fn parse(prefix: &str, length: i32, charset: &str, violations: &mut Violations) -> Self {
        let prefix = prefix.trim().to_ascii_uppercase();
        let length = if length == 0 {
            DEFAULT_LENGTH as i64
        } else {
            i64::from(length)
        };
        let mut chars: Vec<char> = if charset.is_empty() {
            UNAMBIGUOUS.chars().collect()
        } else {
            charset.to_ascii_uppercase().chars().collect()
        };
        chars.sort_unstable();
        chars.dedup();
        violations.require(
            (6..=32).contains(&length),
            "campaign.code_pattern.length",
            Problem::OutOfRange { min: 6, max: 32 },
        );
        violations.require(
            chars.len() >= 2 && chars.iter().all(|c| c.is_ascii_alphanumeric()),
            "campaign.code_pattern.charset",
            Problem::CharsetTooSmall { min: 2 },
        );
        violations.require(
            prefix.is_empty() || Code::parse(&prefix).is_ok(),
            "campaign.code_pattern.prefix",
            Problem::BadPrefixCharacter,
        );
        violations.require(
            prefix.len() + length.clamp(0, 64) as usize <= super::code::MAX_CODE_LEN,
            "campaign.code_pattern.prefix",
            Problem::PatternTooLong {
                max: super::code::MAX_CODE_LEN,
            },
        );
        Self {
            prefix,
            length: length.clamp(0, 64) as usize,
            charset: chars,
        }
    }

    /// A random code of this pattern.
    pub fn generate(&self, rng: &mut impl Rng) -> Option<Code> {
        let random: String = (0..self.length)
            .map(|_| self.charset[rng.random_range(0..self.charset.len())])
            .collect();
        Code::parse(&format!("{}{random}", self.prefix)).ok()
    }

    /// Distinct codes this pattern can make, saturating.
    pub fn capacity(&self) -> u128 {
        (self.charset.len() as u128).saturating_pow(self.length as u32)
    }
}

/// A campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    /// Rules every code gets; limits apply to each code separately.
    pub rules: CouponRules,
    pub pattern: CodePattern,
    pub code_count: i64,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_leave_out_ambiguous_characters() {
        let mut violations = Violations::new();
        let pattern = CodePattern::parse("xmas-", 0, "", &mut violations);
        assert!(violations.is_empty());
        let code = pattern.generate(&mut rand::rng()).unwrap();
        assert!(code.as_str().starts_with("XMAS-"));
        assert_eq!(code.as_str().len(), 15);
        assert!(!code.as_str()[5..].contains(['0', 'O', '1', 'I', 'L']));
    }

    #[test]
    fn refuses_bad_patterns() {
        let mut violations = Violations::new();
        CodePattern::parse("bad prefix", 3, "A", &mut violations);
        let fields: Vec<String> = violations
            .into_error()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "campaign.code_pattern.length",
                "campaign.code_pattern.charset",
                "campaign.code_pattern.prefix"
            ]
        );
    }
}
