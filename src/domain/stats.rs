//! The operators' numbers of a coupon or campaign: its redemptions by status, the discount they
//! gave, the budget left, distinct customers, and counts per UTC day over a bounded range.

use std::fmt;

use chrono::NaiveDate;

use super::{redemption::RedemptionStatus, Currency, InvalidInput, Problem, Timestamp};

/// Microseconds in a day: days are UTC calendar days, which have no leap seconds in Unix time.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Most days one stats call counts day by day.
pub const MAX_DAYS: i64 = 366;

/// Days of the range when the caller names none: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;

/// A UTC calendar day, as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// The UTC day an instant falls on.
    pub fn of(instant: Timestamp) -> Self {
        Self(instant.micros().div_euclid(MICROS_PER_DAY))
    }

    /// A day from its number since 1970-01-01, as the store reports it.
    pub fn from_number(days: i64) -> Self {
        Self(days)
    }

    /// A `YYYY-MM-DD` date (ISO 8601, the proleptic Gregorian calendar).
    pub fn parse(text: &str) -> Result<Self, InvalidDay> {
        let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| InvalidDay(text.to_owned()))?;
        let days = date.signed_duration_since(NaiveDate::default()).num_days();
        // Kept to instants a Timestamp can hold, so `start` never overflows.
        Some(Self(days))
            .filter(|day| day.0.checked_mul(MICROS_PER_DAY).is_some())
            .ok_or_else(|| InvalidDay(text.to_owned()))
    }

    /// The instant the day begins (00:00 UTC).
    pub fn start(self) -> Timestamp {
        Timestamp(self.0.saturating_mul(MICROS_PER_DAY))
    }

    /// The day `n` days later (earlier when negative).
    pub fn plus(self, n: i64) -> Self {
        Self(self.0.saturating_add(n))
    }

    /// Days since 1970-01-01.
    pub fn number(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NaiveDate::default().checked_add_signed(chrono::TimeDelta::days(self.0)) {
            Some(date) => write!(f, "{}", date.format("%Y-%m-%d")),
            None => write!(f, "day {}", self.0),
        }
    }
}

/// Text that is not a `YYYY-MM-DD` date.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date: use YYYY-MM-DD")]
pub struct InvalidDay(pub String);

/// The days a stats call counts one by one: `first` to `last`, both included, at most
/// [`MAX_DAYS`] of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayRange {
    first: Day,
    last: Day,
}

impl DayRange {
    /// The range a caller asked for: the last day defaults to `today`, the first to 29 days
    /// before the last (30 days in all). Violations name `start_date` and `end_date`.
    pub fn resolve(start: Option<Day>, end: Option<Day>, today: Day) -> Result<Self, InvalidInput> {
        let last = end.unwrap_or(today);
        let first = start.unwrap_or(last.plus(1 - DEFAULT_DAYS));
        if first > last {
            return Err(InvalidInput::field("start_date", Problem::StartAfterEnd));
        }
        if last.0 - first.0 >= MAX_DAYS {
            return Err(InvalidInput::field(
                "end_date",
                Problem::RangeTooLong { max: MAX_DAYS },
            ));
        }
        Ok(Self { first, last })
    }

    pub fn first(self) -> Day {
        self.first
    }

    pub fn last(self) -> Day {
        self.last
    }

    /// The instants it covers: from the first day's start up to (not including) the start of
    /// the day after the last.
    pub fn instants(self) -> (Timestamp, Timestamp) {
        (self.first.start(), self.last.plus(1).start())
    }

    /// Every day of the range, in order.
    pub fn days(self) -> impl Iterator<Item = Day> {
        (self.first.0..=self.last.0).map(Day)
    }
}

/// Redemptions by their status as the ledger stores it, which is what ListRedemptions shows: a
/// pending redemption whose reservation ran out is pending until the sweeper expires it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub pending: i64,
    pub completed: i64,
    pub reverted: i64,
    pub expired: i64,
}

impl StatusCounts {
    /// Adds `count` redemptions of `status`.
    pub fn add(&mut self, status: RedemptionStatus, count: i64) {
        let slot = match status {
            RedemptionStatus::Pending => &mut self.pending,
            RedemptionStatus::Completed => &mut self.completed,
            RedemptionStatus::Reverted => &mut self.reverted,
            RedemptionStatus::Expired => &mut self.expired,
        };
        *slot = slot.saturating_add(count);
    }

    /// Every redemption, whatever its status.
    pub fn total(self) -> i64 {
        self.pending
            .saturating_add(self.completed)
            .saturating_add(self.reverted)
            .saturating_add(self.expired)
    }
}

/// One group of the ledger's totals, as the store reports it: redemptions of one status in one
/// currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerGroup {
    pub status: RedemptionStatus,
    pub currency: Currency,
    pub count: i64,
    /// Sum of their discounts, minor units of `currency`.
    pub discount: i64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
}

/// Discount given in one currency, minor units. Reverted and expired redemptions gave nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscountGiven {
    pub currency: Currency,
    /// By completed redemptions.
    pub completed: i64,
    /// Held by pending redemptions: given if they are confirmed.
    pub pending: i64,
}

/// A budget and what is left of it: the limit less the discounts of active (pending and
/// completed) redemptions, the amount Redeem checks against; never below zero, even where a
/// limit was lowered under what is already used. For a campaign, the sums over its coupons that
/// have a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetLeft {
    /// The coupon's currency (a campaign's: its template's); unset only for a coupon without
    /// one, which no budget is accepted for.
    pub currency: Option<Currency>,
    pub budget: i64,
    pub used: i64,
    pub left: i64,
}

/// The numbers of a coupon or a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedemptionStats {
    pub counts: StatusCounts,
    /// One entry per currency redeemed in, by currency code.
    pub discounts: Vec<DiscountGiven>,
    pub budget: Option<BudgetLeft>,
    /// Distinct customer ids with an active (pending or completed) redemption.
    pub customers: i64,
    /// Distinct e-mails among those redemptions, where the checkout gave one.
    pub customer_emails: i64,
    /// The earliest and latest redemption, whatever became of it.
    pub first_at: Option<Timestamp>,
    pub last_at: Option<Timestamp>,
    pub range: DayRange,
    /// Every day of `range`, in order, with the redemptions made that day by their status now.
    pub days: Vec<(Day, StatusCounts)>,
}

impl RedemptionStats {
    /// Assembles the numbers from the store's facts. `per_day` holds (day, status, count) for
    /// the days of `range` that had redemptions; the others count zero.
    pub fn from_ledger(
        groups: &[LedgerGroup],
        per_day: &[(Day, RedemptionStatus, i64)],
        range: DayRange,
        customers: i64,
        customer_emails: i64,
        budget: Option<BudgetLeft>,
    ) -> Self {
        let mut counts = StatusCounts::default();
        let mut discounts: Vec<DiscountGiven> = Vec::new();
        for group in groups {
            counts.add(group.status, group.count);
            let given = match discounts.iter_mut().find(|d| d.currency == group.currency) {
                Some(given) => given,
                None => {
                    discounts.push(DiscountGiven {
                        currency: group.currency,
                        completed: 0,
                        pending: 0,
                    });
                    let last = discounts.len() - 1;
                    &mut discounts[last]
                }
            };
            match group.status {
                RedemptionStatus::Completed => {
                    given.completed = given.completed.saturating_add(group.discount)
                }
                RedemptionStatus::Pending => {
                    given.pending = given.pending.saturating_add(group.discount)
                }
                RedemptionStatus::Reverted | RedemptionStatus::Expired => {}
            }
        }
        discounts.sort_by_key(|d| d.currency.code());
        let days = range
            .days()
            .map(|day| {
                let mut counts = StatusCounts::default();
                for (_, status, count) in per_day.iter().filter(|(d, _, _)| *d == day) {
                    counts.add(*status, *count);
                }
                (day, counts)
            })
            .collect();
        Self {
            counts,
            discounts,
            budget,
            customers,
            customer_emails,
            first_at: groups.iter().map(|g| g.first_at).min(),
            last_at: groups.iter().map(|g| g.last_at).max(),
            range,
            days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(text: &str) -> Day {
        Day::parse(text).unwrap()
    }

    fn resolve(
        start: Option<&str>,
        end: Option<&str>,
        today: &str,
    ) -> Result<DayRange, Vec<String>> {
        DayRange::resolve(start.map(day), end.map(day), day(today))
            .map_err(|e| e.violations.into_iter().map(|v| v.field).collect())
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day("1970-01-01").number(), 0);
        assert_eq!(day("2026-11-22").to_string(), "2026-11-22");
        assert_eq!(day("2024-02-29").plus(1).to_string(), "2024-03-01");
        assert_eq!(Day::of(Timestamp(-1)).to_string(), "1969-12-31");
        assert_eq!(Day::of(day("2026-11-22").start()), day("2026-11-22"));
        assert!(Day::parse("2026-02-30").is_err());
        assert!(Day::parse("22/11/2026").is_err());
        assert!(Day::parse("").is_err());
    }

    #[test]
    fn the_default_range_is_the_last_30_days() {
        let range = resolve(None, None, "2026-11-22").unwrap();
        assert_eq!(range.first().to_string(), "2026-10-24");
        assert_eq!(range.last().to_string(), "2026-11-22");
        assert_eq!(range.days().count(), 30);
        let (from, until) = range.instants();
        assert_eq!(Day::of(from), range.first());
        assert_eq!(until, range.last().plus(1).start());
    }

    #[test]
    fn a_range_is_ordered_and_at_most_366_days() {
        assert!(resolve(Some("2025-11-22"), Some("2026-11-22"), "2026-11-22").is_ok());
        assert_eq!(
            resolve(Some("2025-11-21"), Some("2026-11-22"), "2026-11-22").unwrap_err(),
            ["end_date"]
        );
        assert_eq!(
            resolve(Some("2026-11-23"), None, "2026-11-22").unwrap_err(),
            ["start_date"]
        );
        assert_eq!(
            resolve(Some("2026-11-22"), Some("2026-11-22"), "2000-01-01")
                .unwrap()
                .days()
                .count(),
            1
        );
    }

    #[test]
    fn totals_split_discounts_by_status_and_currency() {
        let inr = Currency::parse("INR").unwrap();
        let usd = Currency::parse("USD").unwrap();
        let group = |status, currency, count, discount, first, last| LedgerGroup {
            status,
            currency,
            count,
            discount,
            first_at: Timestamp(first),
            last_at: Timestamp(last),
        };
        let range = resolve(Some("1970-01-01"), Some("1970-01-03"), "1970-01-03").unwrap();
        let stats = RedemptionStats::from_ledger(
            &[
                group(RedemptionStatus::Completed, usd, 2, 300, 50, 60),
                group(RedemptionStatus::Completed, inr, 3, 3_000, 10, 90),
                group(RedemptionStatus::Pending, inr, 1, 1_000, 20, 20),
                group(RedemptionStatus::Reverted, inr, 4, 4_000, 5, 95),
            ],
            &[
                (Day(0), RedemptionStatus::Completed, 2),
                (Day(0), RedemptionStatus::Reverted, 1),
                (Day(2), RedemptionStatus::Pending, 1),
            ],
            range,
            5,
            4,
            None,
        );
        assert_eq!(
            stats.counts,
            StatusCounts {
                pending: 1,
                completed: 5,
                reverted: 4,
                expired: 0
            }
        );
        assert_eq!(stats.counts.total(), 10);
        assert_eq!(
            stats.discounts,
            [
                DiscountGiven {
                    currency: inr,
                    completed: 3_000,
                    pending: 1_000
                },
                DiscountGiven {
                    currency: usd,
                    completed: 300,
                    pending: 0
                },
            ]
        );
        assert_eq!(stats.first_at, Some(Timestamp(5)));
        assert_eq!(stats.last_at, Some(Timestamp(95)));
        let per_day: Vec<i64> = stats.days.iter().map(|(_, c)| c.total()).collect();
        assert_eq!(per_day, [3, 0, 1]);
    }

    proptest! {
        #[test]
        fn dates_round_trip(days in -719_162i64..2_932_897i64) {
            let day = Day(days);
            prop_assert_eq!(Day::parse(&day.to_string()), Ok(day));
        }

        #[test]
        fn status_totals_add_up(counts in proptest::collection::vec((0usize..4, 0i64..1_000_000), 0..40)) {
            let statuses = [
                RedemptionStatus::Pending,
                RedemptionStatus::Completed,
                RedemptionStatus::Reverted,
                RedemptionStatus::Expired,
            ];
            let mut tally = StatusCounts::default();
            for (status, count) in &counts {
                tally.add(statuses[*status], *count);
            }
            prop_assert_eq!(tally.total(), counts.iter().map(|(_, c)| c).sum::<i64>());
        }
    }
}
