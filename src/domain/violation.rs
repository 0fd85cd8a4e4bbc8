//! Field-level input violations, collected so a caller learns every problem at once.

use std::fmt;

/// One invalid field: `field` is the request path in proto names, e.g.
/// `coupon.discount.percentage.basis_points`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
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
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            violations: vec![FieldViolation {
                field: field.into(),
                description: description.into(),
            }],
        }
    }
}

/// Collects violations while a request is parsed; `finish` turns them into a result.
#[derive(Debug, Default)]
pub struct Violations {
    found: Vec<FieldViolation>,
}

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is invalid.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.found.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records a violation when `condition` does not hold.
    pub fn require(&mut self, condition: bool, field: &str, description: &str) {
        if !condition {
            self.add(field, description);
        }
    }

    /// Keeps the value of a parse, recording its error under `field`.
    pub fn take<T, E: fmt::Display>(&mut self, field: &str, parsed: Result<T, E>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
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
