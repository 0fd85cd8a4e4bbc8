//! Instants as integer microseconds since the Unix epoch: exact, portable between SQLite and
//! PostgreSQL, and cheap to compare in SQL.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since 1970-01-01T00:00:00Z.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self(micros)
    }

    /// From seconds and nanoseconds, as in `google.protobuf.Timestamp`; `None` when out of range.
    pub fn from_parts(seconds: i64, nanos: i32) -> Option<Self> {
        if !(0..1_000_000_000).contains(&nanos) {
            return None;
        }
        seconds
            .checked_mul(1_000_000)?
            .checked_add(i64::from(nanos / 1_000))
            .map(Self)
    }

    /// Seconds and nanoseconds, as in `google.protobuf.Timestamp`.
    pub fn to_parts(self) -> (i64, i32) {
        let seconds = self.0.div_euclid(1_000_000);
        // rem_euclid of 1_000_000 is below 1_000_000, so the nanos fit in i32.
        let nanos = (self.0.rem_euclid(1_000_000) * 1_000) as i32;
        (seconds, nanos)
    }

    pub fn micros(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parts_round_trip(micros in -1_000_000_000_000_000i64..1_000_000_000_000_000i64) {
            let (s, n) = Timestamp(micros).to_parts();
            prop_assert_eq!(Timestamp::from_parts(s, n), Some(Timestamp(micros)));
        }
    }

    #[test]
    fn refuses_bad_nanos_and_overflow() {
        assert_eq!(Timestamp::from_parts(0, -1), None);
        assert_eq!(Timestamp::from_parts(0, 1_000_000_000), None);
        assert_eq!(Timestamp::from_parts(i64::MAX, 0), None);
    }
}
