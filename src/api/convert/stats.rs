//! Stats requests in, as a coupon or campaign and the days asked, every invalid field reported
//! at once; the numbers out.

use super::timestamp_to_pb;
use crate::{
    app::{
        coupons::CouponRef,
        stats::{CouponStats, DaysAsked},
    },
    domain::{
        stats::{Day, RedemptionStats, StatusCounts},
        text::parse_id,
        Code, InvalidInput, Problem, Violations,
    },
    pb,
};

/// A `YYYY-MM-DD` field; empty means the default.
fn day(field: &str, text: &str, violations: &mut Violations) -> Option<Day> {
    if text.trim().is_empty() {
        return None;
    }
    match Day::parse(text) {
        Ok(day) => Some(day),
        Err(_) => {
            violations.add(field, Problem::NotADate);
            None
        }
    }
}

fn days(start: &str, end: &str, violations: &mut Violations) -> DaysAsked {
    DaysAsked {
        start: day("start_date", start, violations),
        end: day("end_date", end, violations),
    }
}

/// GetCouponStats's coupon (by id, else by code) and days.
pub(crate) fn coupon_stats_from_pb(
    request: &pb::GetCouponStatsRequest,
) -> Result<(CouponRef, DaysAsked), InvalidInput> {
    let mut violations = Violations::new();
    let coupon = if !request.coupon_id.trim().is_empty() {
        match parse_id("coupon_id", &request.coupon_id) {
            Ok(id) => Some(CouponRef::Id(id)),
            Err(invalid) => {
                violations.merge(invalid);
                None
            }
        }
    } else if !request.code.trim().is_empty() {
        violations
            .take("code", Code::parse(&request.code))
            .map(CouponRef::Code)
    } else {
        violations.add("coupon_id", Problem::IdOrCodeRequired);
        None
    };
    let days = days(&request.start_date, &request.end_date, &mut violations);
    match violations.finish(coupon)? {
        Some(coupon) => Ok((coupon, days)),
        None => Err(InvalidInput::field("coupon_id", Problem::Required)),
    }
}

/// GetCampaignStats's campaign id and days.
pub(crate) fn campaign_stats_from_pb(
    request: &pb::GetCampaignStatsRequest,
) -> Result<(String, DaysAsked), InvalidInput> {
    let mut violations = Violations::new();
    violations.require(
        !request.campaign_id.trim().is_empty(),
        "campaign_id",
        Problem::Required,
    );
    let id = match parse_id("campaign_id", &request.campaign_id) {
        Ok(id) => Some(id),
        Err(invalid) => {
            violations.merge(invalid);
            None
        }
    };
    let days = days(&request.start_date, &request.end_date, &mut violations);
    violations.finish((id.unwrap_or_default(), days))
}

fn counts_to_pb(counts: StatusCounts) -> pb::RedemptionCounts {
    pb::RedemptionCounts {
        total: counts.total(),
        pending: counts.pending,
        completed: counts.completed,
        reverted: counts.reverted,
        expired: counts.expired,
    }
}

/// The numbers as their proto message; the coupon fields are left to [`coupon_stats_to_pb`].
pub(crate) fn stats_to_pb(stats: &RedemptionStats) -> pb::RedemptionStats {
    pb::RedemptionStats {
        redemptions: Some(counts_to_pb(stats.counts)),
        discounts: stats
            .discounts
            .iter()
            .map(|given| pb::DiscountGiven {
                currency: given.currency.code().to_owned(),
                completed: given.completed,
                pending: given.pending,
            })
            .collect(),
        budget: stats.budget.map(|budget| pb::BudgetLeft {
            currency: budget
                .currency
                .map(|c| c.code().to_owned())
                .unwrap_or_default(),
            budget: budget.budget,
            used: budget.used,
            left: budget.left,
        }),
        unique_customers: stats.customers,
        unique_customer_emails: stats.customer_emails,
        first_redemption_time: stats.first_at.map(timestamp_to_pb),
        last_redemption_time: stats.last_at.map(timestamp_to_pb),
        start_date: stats.range.first().to_string(),
        end_date: stats.range.last().to_string(),
        days: stats
            .days
            .iter()
            .map(|(day, counts)| pb::DailyRedemptions {
                date: day.to_string(),
                redemptions: Some(counts_to_pb(*counts)),
            })
            .collect(),
        ..Default::default()
    }
}

/// A coupon's numbers, with the coupon they are of.
pub(crate) fn coupon_stats_to_pb(coupon: &CouponStats) -> pb::RedemptionStats {
    pb::RedemptionStats {
        coupon_id: coupon.coupon_id.clone(),
        code: coupon.code.to_string(),
        campaign_id: coupon.campaign_id.clone().unwrap_or_default(),
        ..stats_to_pb(&coupon.stats)
    }
}

/// A campaign's numbers, with the campaign they are of.
pub(crate) fn campaign_stats_to_pb(
    campaign_id: &str,
    stats: &RedemptionStats,
) -> pb::RedemptionStats {
    pb::RedemptionStats {
        campaign_id: campaign_id.to_owned(),
        ..stats_to_pb(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: InvalidInput) -> Vec<String> {
        error.violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_coupon_stats_request_reports_every_invalid_field() {
        let error = coupon_stats_from_pb(&pb::GetCouponStatsRequest {
            start_date: "2026-13-01".into(),
            end_date: "yesterday".into(),
            ..Default::default()
        })
        .err()
        .map(fields);
        assert_eq!(
            error,
            Some(vec![
                "coupon_id".to_owned(),
                "start_date".to_owned(),
                "end_date".to_owned()
            ])
        );
    }

    #[test]
    fn a_coupon_is_named_by_id_before_code() -> Result<(), InvalidInput> {
        let (coupon, days) = coupon_stats_from_pb(&pb::GetCouponStatsRequest {
            coupon_id: " cpn_1 ".into(),
            code: "save10".into(),
            end_date: "2026-11-22".into(),
            ..Default::default()
        })?;
        assert!(matches!(coupon, CouponRef::Id(id) if id == "cpn_1"));
        assert_eq!(days.start, None);
        assert_eq!(days.end, Day::parse("2026-11-22").ok());
        let (coupon, _) = coupon_stats_from_pb(&pb::GetCouponStatsRequest {
            code: "save10".into(),
            ..Default::default()
        })?;
        assert!(matches!(coupon, CouponRef::Code(code) if code.as_str() == "SAVE10"));
        Ok(())
    }

    #[test]
    fn a_campaign_id_is_required() {
        let error = campaign_stats_from_pb(&pb::GetCampaignStatsRequest::default())
            .err()
            .map(fields);
        assert_eq!(error, Some(vec!["campaign_id".to_owned()]));
    }
}
