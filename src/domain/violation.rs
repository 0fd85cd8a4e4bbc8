//! Field-level input violations, collected so a caller learns every problem at once. A violation
//! holds what is wrong as a [`Problem`]; the api layer writes it in the caller's language
//! (`messages::problem_message`) when it answers.

use std::fmt;

use super::Problem;

/// One invalid field: `field` is the request path in proto names, e.g.
/// `coupon.discount.percentage.basis_points`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub problem: Problem,
}

/// A request that cannot be acted on because of the listed fields.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InvalidInput {
    pub violations: Vec<FieldViolation>,
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<&str> = self.violations.iter().map(|v| v.field.as_str()).collect();
        write!(f, "invalid fields: {}", fields.join(", "))
    }
}

impl InvalidInput {
    /// A single violation.
    pub fn field(field: impl Into<String>, problem: impl Into<Problem>) -> Self {
        Self {
            violations: vec![FieldViolation {
                field: field.into(),
                problem: problem.into(),
            }],
        }
    }
}

/// Collects violations while a request is parsed; `finish` turns them into a result.
/// Whether `outer` is `inner` or contains it (`coupon.discount` contains
/// `coupon.discount.fixed_amount.amount` and `coupon.discount[0]`).
fn covers(outer: &str, inner: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

#[derive(Debug, Default)]
pub struct Violations {
    found: Vec<FieldViolation>,
}

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is invalid. Only the first problem of a field is kept, and none
    /// inside a field already found invalid, since those follow from the first.
    pub fn add(&mut self, field: impl Into<String>, problem: impl Into<Problem>) {
        let field = field.into();
        if self.found.iter().any(|v| covers(&v.field, &field)) {
            return;
        }
        self.found.push(FieldViolation {
            field,
            problem: problem.into(),
        });
    }

    /// Records a violation when `condition` does not hold.
    pub fn require(&mut self, condition: bool, field: &str, problem: Problem) {
        if !condition {
            self.add(field, problem);
        }
    }

    /// Keeps the value of a parse, recording its error (a problem of its own) under `field`.
    pub fn take<T, E: Into<Problem>>(&mut self, field: &str, parsed: Result<T, E>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Takes over `other`'s violations, renaming the field prefix `from` to `to` (so rules checked
    /// as `coupon.*` are reported as `campaign.template.*`).
    pub fn absorb(&mut self, other: Violations, from: &str, to: &str) {
        for violation in other.found {
            let field = match violation.field.strip_prefix(from) {
                Some(rest) => format!("{to}{rest}"),
                None => violation.field,
            };
            self.add(field, violation.problem);
        }
    }

    /// Takes over every violation of an error from a nested parse.
    pub fn merge(&mut self, error: InvalidInput) {
        for violation in error.violations {
            self.add(violation.field, violation.problem);
        }
    }

    /// Every violation recorded, as an error.
    pub fn into_error(self) -> InvalidInput {
        InvalidInput {
            violations: self.found,
        }
    }

    /// `Ok(value)` when nothing was recorded, otherwise every violation.
    pub fn finish<T>(self, value: T) -> Result<T, InvalidInput> {
        if self.found.is_empty() {
            Ok(value)
        } else {
            Err(InvalidInput {
                violations: self.found,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_problem_of_a_field_and_nothing_inside_it() {
        let mut violations = Violations::new();
        violations.add("coupon.discount", Problem::Required);
        violations.add("coupon.discount.fixed_amount.amount", Problem::NotPositive);
        violations.add("coupon.discount", Problem::Negative);
        violations.add("coupon.discounts", Problem::Required);
        let fields: Vec<String> = violations
            .finish(())
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["coupon.discount", "coupon.discounts"]);
    }
}
