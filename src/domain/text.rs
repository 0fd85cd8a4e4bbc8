//! Checks every caller string passes before it can reach a database: no NUL bytes (PostgreSQL
//! text cannot hold one) and identifiers of bounded length (they are echoed in errors and logs).

use super::{InvalidInput, Problem, Violations};

/// Longest identifier a caller may send (ids, order ids, references), in characters.
pub const MAX_ID_LEN: usize = 128;

/// Records a violation under `field` when `value` holds a NUL byte.
pub fn refuse_nul(field: &str, value: &str, violations: &mut Violations) {
    if value.contains('\0') {
        violations.add(field, Problem::ContainsNul);
    }
}

/// Records a violation for every string of `values` holding a NUL byte.
pub fn refuse_nul_in<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a String>,
    violations: &mut Violations,
) {
    for (index, value) in values.into_iter().enumerate() {
        refuse_nul(&format!("{field}[{index}]"), value, violations);
    }
}

/// An identifier as sent by a caller, trimmed: at most [`MAX_ID_LEN`] characters, no NUL. Empty
/// is allowed here; whether it may be empty is the caller's rule.
pub fn parse_id(field: &str, raw: &str) -> Result<String, InvalidInput> {
    let id = raw.trim();
    let mut violations = Violations::new();
    if id.chars().count() > MAX_ID_LEN {
        violations.add(field, Problem::TooLong { max: MAX_ID_LEN });
    }
    refuse_nul(field, id, &mut violations);
    violations.finish(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_trimmed_bounded_and_free_of_nul() {
        assert_eq!(parse_id("id", "  cpn_1 ").unwrap(), "cpn_1");
        assert_eq!(parse_id("id", "").unwrap(), "");
        assert_eq!(
            parse_id("id", &"x".repeat(MAX_ID_LEN)).unwrap().len(),
            MAX_ID_LEN
        );
        let long = parse_id("id", &"x".repeat(10_000)).unwrap_err();
        assert_eq!(long.violations[0].field, "id");
        assert!(parse_id("id", "a\0b").is_err());
    }

    #[test]
    fn nul_is_reported_with_its_index() {
        let mut violations = Violations::new();
        let values = ["ok".to_owned(), "b\0d".to_owned()];
        refuse_nul_in("tags", &values, &mut violations);
        let error = violations.finish(()).unwrap_err();
        assert_eq!(error.violations[0].field, "tags[1]");
    }
}
