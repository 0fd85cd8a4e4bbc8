//! The operators' numbers (GetCouponStats, GetCampaignStats): what the ledger holds, as
//! ListRedemptions shows it, for the caller's tenant only, and still exact after a race of
//! Redeems, Confirms and Reverts across two server processes.

use std::{
    collections::{BTreeMap, HashSet},
    time::Duration,
};

use coupon_service::{
    domain::{Scopes, Timestamp},
    pb,
};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::{transport::Channel, Code};

use crate::{
    common::{
        server_processes, spawn_app, spawn_app_with, violated_fields, Auth, Backend, TestApp,
    },
    ledger::{assert_counters_match_ledger, create, limited, order, Client},
};

type Admin = pb::admin_service_client::AdminServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Auth>,
>;

fn by_id(id: &str) -> pb::GetCouponStatsRequest {
    pb::GetCouponStatsRequest {
        coupon_id: id.into(),
        ..Default::default()
    }
}

async fn coupon_stats(
    admin: &mut Admin,
    request: pb::GetCouponStatsRequest,
) -> pb::RedemptionStats {
    admin
        .get_coupon_stats(request)
        .await
        .expect("coupon stats")
        .into_inner()
}

fn counts(stats: &pb::RedemptionStats) -> pb::RedemptionCounts {
    stats.redemptions.unwrap_or_default()
}

fn micros(ts: &Option<prost_types::Timestamp>) -> Option<i64> {
    ts.as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos / 1_000))
}

/// Every redemption of the coupon, through ListRedemptions, page by page.
async fn listed(client: &mut Client, coupon_id: &str) -> Vec<pb::Redemption> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_redemptions(pb::ListRedemptionsRequest {
                coupon_id: coupon_id.into(),
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list redemptions")
            .into_inner();
        all.extend(page.redemptions);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// The numbers a listing of the coupon's redemptions gives when counted by hand.
fn recount(redemptions: &[pb::Redemption]) -> (pb::RedemptionCounts, i64, i64, usize) {
    let mut tally = pb::RedemptionCounts::default();
    let (mut completed, mut pending) = (0, 0);
    let mut customers = HashSet::new();
    for r in redemptions {
        tally.total += 1;
        match pb::RedemptionStatus::try_from(r.status).unwrap() {
            pb::RedemptionStatus::Pending => {
                tally.pending += 1;
                pending += r.discount;
                customers.insert(r.customer_id.clone());
            }
            pb::RedemptionStatus::Completed => {
                tally.completed += 1;
                completed += r.discount;
                customers.insert(r.customer_id.clone());
            }
            pb::RedemptionStatus::Reverted => tally.reverted += 1,
            pb::RedemptionStatus::Expired => tally.expired += 1,
            pb::RedemptionStatus::Unspecified => panic!("a redemption without a status"),
        }
    }
    (tally, completed, pending, customers.len())
}

fn with_ttl(mut request: pb::RedeemRequest, seconds: i64) -> pb::RedeemRequest {
    request.reservation_ttl = Some(prost_types::Duration { seconds, nanos: 0 });
    request
}

fn budgeted(code: &str, amount: i64, budget: i64) -> pb::Coupon {
    limited(
        code,
        amount,
        pb::Limits {
            budget: Some(budget),
            ..Default::default()
        },
    )
}

/// Today (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    date_of(Timestamp::now().micros().div_euclid(86_400_000_000))
}

/// `YYYY-MM-DD` of a day number, by the civil-from-days algorithm, so the test does not share
/// the service's date code.
fn date_of(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

async fn stats_count_the_ledger_as_listed(backend: Backend) {
    // No sweeper during the test: a reservation that ran out stays pending until swept.
    let app = spawn_app_with(backend, |s| {
        s.expiry_sweep_interval = Duration::from_secs(3_600)
    })
    .await;
    let coupon = create(&app, budgeted("STATS", 1_000, 100_000)).await;
    let mut client = app.coupons(&app.token);
    let mut admin = app.admin(&app.token);

    let empty = coupon_stats(&mut admin, by_id(&coupon.id)).await;
    assert_eq!(counts(&empty), pb::RedemptionCounts::default());
    assert!(empty.discounts.is_empty());
    assert_eq!(empty.first_redemption_time, None);
    assert_eq!(
        empty.budget,
        Some(pb::BudgetLeft {
            currency: "INR".into(),
            budget: 100_000,
            used: 0,
            left: 100_000
        })
    );
    assert_eq!(empty.days.len(), 30, "the last 30 days by default");
    assert_eq!(empty.end_date, today());
    assert_eq!(empty.days.last().map(|d| d.date.clone()), Some(today()));

    let redeem = |request| {
        let mut client = client.clone();
        async move { client.redeem(request).await.expect("redeem") }
    };
    redeem(order(&["STATS"], "o1", "c1", pb::OrderStatus::Completed)).await;
    redeem(order(&["STATS"], "o2", "c2", pb::OrderStatus::Pending)).await;
    redeem(order(&["STATS"], "o3", "c3", pb::OrderStatus::Pending)).await;
    redeem(order(&["STATS"], "o4", "c1", pb::OrderStatus::Pending)).await;
    redeem(with_ttl(
        order(&["STATS"], "o5", "c5", pb::OrderStatus::Pending),
        1,
    ))
    .await;
    client
        .confirm(pb::ConfirmRequest {
            order_id: "o2".into(),
            codes: vec![],
        })
        .await
        .unwrap();
    client
        .revert(pb::RevertRequest {
            order_id: "o3".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // o5's reservation runs out; nothing sweeps it.
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let stats = coupon_stats(
        &mut admin,
        pb::GetCouponStatsRequest {
            code: "stats".into(),
            ..Default::default()
        },
    )
    .await;
    let redemptions = listed(&mut client, &coupon.id).await;
    let (tally, completed, pending, customers) = recount(&redemptions);
    assert_eq!(
        counts(&stats),
        pb::RedemptionCounts {
            total: 5,
            pending: 2,
            completed: 2,
            reverted: 1,
            expired: 0
        },
        "o5 ran out but is pending until swept, as ListRedemptions shows it"
    );
    assert_eq!(counts(&stats), tally);
    assert_eq!(stats.coupon_id, coupon.id);
    assert_eq!(stats.code, "STATS");
    assert_eq!(
        stats.discounts,
        [pb::DiscountGiven {
            currency: "INR".into(),
            completed: 2_000,
            pending: 2_000
        }]
    );
    assert_eq!((completed, pending), (2_000, 2_000));
    assert_eq!(
        stats.budget,
        Some(pb::BudgetLeft {
            currency: "INR".into(),
            budget: 100_000,
            used: 4_000,
            left: 96_000
        })
    );
    assert_eq!(
        stats.unique_customers, 3,
        "c1 twice, c2 and c5; c3 reverted"
    );
    assert_eq!(customers, 3);
    assert_eq!(stats.unique_customer_emails, 3);
    let created: Vec<i64> = redemptions
        .iter()
        .filter_map(|r| micros(&r.create_time))
        .collect();
    assert_eq!(
        micros(&stats.first_redemption_time),
        created.iter().copied().min()
    );
    assert_eq!(
        micros(&stats.last_redemption_time),
        created.iter().copied().max()
    );
    let today_counts = stats
        .days
        .iter()
        .find(|d| d.date == today())
        .and_then(|d| d.redemptions);
    assert_eq!(today_counts, Some(tally));
    assert_eq!(
        stats
            .days
            .iter()
            .filter_map(|d| d.redemptions.as_ref())
            .map(|c| c.total)
            .sum::<i64>(),
        5
    );

    // Swept: now expired, and its use given back.
    let later = Timestamp(Timestamp::now().micros() + 1_000_000);
    assert_eq!(app.server_store.expire_due(later, 100).await.unwrap(), 1);
    let swept = coupon_stats(&mut admin, by_id(&coupon.id)).await;
    assert_eq!(counts(&swept).pending, 1);
    assert_eq!(counts(&swept).expired, 1);
    assert_eq!(swept.discounts[0].pending, 1_000);
    assert_eq!(swept.budget.as_ref().map(|b| b.left), Some(97_000));
    assert_eq!(swept.unique_customers, 2);
    assert_eq!(
        counts(&swept),
        recount(&listed(&mut client, &coupon.id).await).0
    );

    // A range in the past holds none of today's redemptions, day by day.
    let past = coupon_stats(
        &mut admin,
        pb::GetCouponStatsRequest {
            coupon_id: coupon.id.clone(),
            start_date: "2025-01-01".into(),
            end_date: "2025-12-31".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(past.days.len(), 365);
    assert_eq!(past.days[0].date, "2025-01-01");
    assert_eq!(past.start_date, "2025-01-01");
    assert_eq!(past.end_date, "2025-12-31");
    assert!(past
        .days
        .iter()
        .all(|d| d.redemptions.as_ref().is_some_and(|c| c.total == 0)));
    assert_eq!(
        counts(&past).total,
        5,
        "totals are never limited to the range"
    );
}

async fn stats_refuse_bad_input_other_tenants_and_other_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    let mine = create(&app, budgeted("MINE", 1_000, 10_000)).await;
    let other_token = app.new_tenant("globex", Scopes::all()).await;
    let theirs = app
        .admin(&other_token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(budgeted("THEIRS", 1_000, 10_000)),
        })
        .await
        .unwrap()
        .into_inner();
    let their_campaign = app
        .admin(&other_token)
        .create_campaign(pb::CreateCampaignRequest {
            campaign: Some(pb::Campaign {
                name: "Theirs".into(),
                template: Some(budgeted("", 1_000, 10_000)),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    app.coupons(&other_token)
        .redeem(order(&["THEIRS"], "o1", "c1", pb::OrderStatus::Completed))
        .await
        .unwrap();
    let mut admin = app.admin(&app.token);

    let bad = admin
        .get_coupon_stats(pb::GetCouponStatsRequest {
            start_date: "2026-02-30".into(),
            end_date: "soon".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        ["coupon_id", "start_date", "end_date"]
    );
    for (start, end, field) in [
        ("2025-01-01", "2026-01-02", "end_date"),
        ("2026-01-02", "2026-01-01", "start_date"),
    ] {
        let refused = admin
            .get_coupon_stats(pb::GetCouponStatsRequest {
                coupon_id: mine.id.clone(),
                start_date: start.into(),
                end_date: end.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&refused), [field]);
    }
    let year = coupon_stats(
        &mut admin,
        pb::GetCouponStatsRequest {
            coupon_id: mine.id.clone(),
            start_date: "2024-01-01".into(),
            end_date: "2024-12-31".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(year.days.len(), 366, "a leap year is the longest range");

    // Another tenant's coupon and campaign do not exist, by id or by code.
    for request in [
        by_id(&theirs.id),
        pb::GetCouponStatsRequest {
            code: "THEIRS".into(),
            ..Default::default()
        },
        by_id("cpn_unknown"),
    ] {
        let status = admin.get_coupon_stats(request).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    let status = admin
        .get_campaign_stats(pb::GetCampaignStatsRequest {
            campaign_id: their_campaign.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let missing = admin
        .get_campaign_stats(pb::GetCampaignStatsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&missing), ["campaign_id"]);

    // Their redemption is nowhere in mine.
    let stats = coupon_stats(&mut admin, by_id(&mine.id)).await;
    assert_eq!(counts(&stats).total, 0);
    assert_eq!(stats.unique_customers, 0);

    // The numbers are admin's, like the rest of AdminService.
    let reader = app
        .new_tenant("reader", Scopes::new([coupon_service::domain::Scope::Read]))
        .await;
    let denied = app
        .admin(&reader)
        .get_coupon_stats(by_id(&mine.id))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
}

async fn campaign_stats_add_up_its_coupons(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let campaign = admin
        .create_campaign(pb::CreateCampaignRequest {
            campaign: Some(pb::Campaign {
                name: "Diwali".into(),
                template: Some(budgeted("", 1_000, 2_500)),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let codes = admin
        .generate_codes(pb::GenerateCodesRequest {
            campaign_id: campaign.id.clone(),
            count: 3,
        })
        .await
        .unwrap()
        .into_inner()
        .codes;
    create(&app, budgeted("OUTSIDE", 1_000, 10_000)).await;
    let mut client = app.coupons(&app.token);
    for (order_id, code, customer, status) in [
        ("o0", &codes[0], "c0", pb::OrderStatus::Completed),
        ("o1", &codes[1], "c1", pb::OrderStatus::Completed),
        ("o2", &codes[1], "c0", pb::OrderStatus::Pending),
        (
            "o-out",
            &"OUTSIDE".to_owned(),
            "c9",
            pb::OrderStatus::Completed,
        ),
    ] {
        client
            .redeem(order(&[code], order_id, customer, status))
            .await
            .expect("redeem");
    }
    // Lowered under what codes[0] already used: its left is 0, not -500.
    let first = admin
        .get_coupon(pb::GetCouponRequest {
            code: codes[0].clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    admin
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(pb::Coupon {
                id: first.id.clone(),
                limits: Some(pb::Limits {
                    budget: Some(500),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["limits".into()],
            }),
        })
        .await
        .unwrap();

    let stats = admin
        .get_campaign_stats(pb::GetCampaignStatsRequest {
            campaign_id: campaign.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.campaign_id, campaign.id);
    assert_eq!(stats.coupon_id, "");
    assert_eq!(
        counts(&stats),
        pb::RedemptionCounts {
            total: 3,
            pending: 1,
            completed: 2,
            ..Default::default()
        }
    );
    assert_eq!(
        stats.discounts,
        [pb::DiscountGiven {
            currency: "INR".into(),
            completed: 2_000,
            pending: 1_000
        }]
    );
    assert_eq!(
        stats.budget,
        Some(pb::BudgetLeft {
            currency: "INR".into(),
            budget: 5_500,
            used: 3_000,
            left: 3_000
        }),
        "budgets 500, 2500, 2500 used 1000, 2000, 0: left 0, 500, 2500"
    );
    assert_eq!(stats.unique_customers, 2);

    // A coupon's own numbers name its campaign.
    let one = coupon_stats(
        &mut admin,
        pb::GetCouponStatsRequest {
            code: codes[0].clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(one.campaign_id, campaign.id);
    assert_eq!(counts(&one).total, 1);
    assert_eq!(
        one.budget,
        Some(pb::BudgetLeft {
            currency: "INR".into(),
            budget: 500,
            used: 1_000,
            left: 0
        })
    );
}

/// Redeems, Confirms and Reverts racing through two server processes, then the numbers against
/// a recount of the ledger's rows and of ListRedemptions.
async fn stats_equal_a_recount_after_a_race_across_processes(backend: Backend) {
    let app = spawn_app(backend).await;
    let coupon = create(
        &app,
        limited(
            "RACE",
            700,
            pb::Limits {
                max_redemptions: Some(120),
                max_redemptions_per_customer: Some(3),
                budget: Some(70_000),
            },
        ),
    )
    .await;
    let (_processes, channels) = server_processes(&app, 2).await;
    let mut tasks = Vec::new();
    for n in 0..160usize {
        let redeem_on = channels[n % channels.len()].clone();
        let settle_on = channels[(n + 1) % channels.len()].clone();
        let token = app.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut redeem_client =
                pb::coupon_service_client::CouponServiceClient::with_interceptor(
                    redeem_on,
                    Auth::bearer(&token),
                );
            let mut settle_client =
                pb::coupon_service_client::CouponServiceClient::with_interceptor(
                    settle_on,
                    Auth::bearer(&token),
                );
            let status = if n % 3 == 0 {
                pb::OrderStatus::Completed
            } else {
                pb::OrderStatus::Pending
            };
            let order_id = format!("race-{n}");
            // 40 customers, each trying four orders against a per-customer limit of three.
            let customer = format!("c{}", n % 40);
            if redeem_client
                .redeem(order(&["RACE"], &order_id, &customer, status))
                .await
                .is_err()
            {
                return;
            }
            let confirm = pb::ConfirmRequest {
                order_id: order_id.clone(),
                codes: vec![],
            };
            let revert = pb::RevertRequest {
                order_id: order_id.clone(),
                ..Default::default()
            };
            // Settled on the other process; some orders see a confirm and a revert race.
            match n % 4 {
                0 => {
                    let _ = settle_client.confirm(confirm).await;
                }
                1 => {
                    let _ = settle_client.revert(revert).await;
                }
                2 => {
                    let _ =
                        tokio::join!(settle_client.confirm(confirm), redeem_client.revert(revert));
                }
                _ => {}
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let mut admin = app.admin(&app.token);
    let stats = coupon_stats(&mut admin, by_id(&coupon.id)).await;
    let redemptions = listed(&mut app.coupons(&app.token), &coupon.id).await;
    let (tally, completed, pending, customers) = recount(&redemptions);
    assert!(tally.total > 0 && tally.reverted > 0 && tally.completed > 0);
    assert_eq!(
        counts(&stats),
        tally,
        "counts equal ListRedemptions recounted"
    );
    assert_eq!(
        stats.discounts,
        [pb::DiscountGiven {
            currency: "INR".into(),
            completed,
            pending
        }]
    );
    assert_eq!(stats.unique_customers, customers as i64);
    let used = completed + pending;
    assert_eq!(
        stats.budget,
        Some(pb::BudgetLeft {
            currency: "INR".into(),
            budget: 70_000,
            used,
            left: 70_000 - used
        })
    );

    // And the same from the rows themselves.
    let db = Database::connect(&app.database_url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            match backend {
                Backend::Postgres => {
                    "SELECT status, COUNT(*) AS n, CAST(SUM(discount) AS BIGINT) AS given, \
                     CAST(MIN(created_at) AS BIGINT) AS first, CAST(MAX(created_at) AS BIGINT) AS last \
                     FROM redemptions WHERE coupon_id = $1 GROUP BY status"
                }
                Backend::Sqlite => {
                    "SELECT status, COUNT(*) AS n, SUM(discount) AS given, \
                     MIN(created_at) AS first, MAX(created_at) AS last \
                     FROM redemptions WHERE coupon_id = ? GROUP BY status"
                }
            },
            [coupon.id.clone().into()],
        ))
        .await
        .unwrap();
    let mut by_status = BTreeMap::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for row in rows {
        let status: String = row.try_get("", "status").unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        let given: i64 = row.try_get("", "given").unwrap();
        first = first.min(row.try_get("", "first").unwrap());
        last = last.max(row.try_get("", "last").unwrap());
        by_status.insert(status, (n, given));
    }
    let of = |status: &str| by_status.get(status).copied().unwrap_or((0, 0));
    let c = counts(&stats);
    assert_eq!(
        (c.pending, c.completed, c.reverted, c.expired),
        (
            of("pending").0,
            of("completed").0,
            of("reverted").0,
            of("expired").0
        )
    );
    assert_eq!((completed, pending), (of("completed").1, of("pending").1));
    assert_eq!(micros(&stats.first_redemption_time), Some(first));
    assert_eq!(micros(&stats.last_redemption_time), Some(last));
    assert_eq!(
        stats
            .days
            .iter()
            .filter_map(|d| d.redemptions.as_ref())
            .map(|c| c.total)
            .sum::<i64>(),
        c.total,
        "every redemption of the race is in today's count"
    );
    assert_counters_match_ledger(&app).await;
}

crate::on_both_databases!(
    stats_count_the_ledger_as_listed,
    stats_refuse_bad_input_other_tenants_and_other_scopes,
    campaign_stats_add_up_its_coupons,
    stats_equal_a_recount_after_a_race_across_processes,
);

/// The statements of a coupon's stats read only that coupon's rows: PostgreSQL plans them on
/// the indexes that lead with (tenant_id, coupon_id), even with the planner told sequential
/// scans cost nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stats_read_the_coupon_index() {
    let app: TestApp = spawn_app(Backend::Postgres).await;
    let db = Database::connect(&app.database_url).await.unwrap();
    let backend = db.get_database_backend();
    let explain = |sql: &str| Statement::from_string(backend, format!("EXPLAIN {sql}"));
    for (sql, index) in [
        (
            "SELECT status, currency, COUNT(id) FROM redemptions \
             WHERE tenant_id = 't' AND coupon_id = 'c' GROUP BY status, currency",
            "redemptions_coupon_created",
        ),
        (
            "SELECT created_at / 86400000000 AS day, status, COUNT(id) FROM redemptions \
             WHERE tenant_id = 't' AND coupon_id = 'c' \
             AND created_at >= 0 AND created_at < 86400000000 GROUP BY day, status",
            "redemptions_coupon_created",
        ),
        (
            "SELECT COUNT(id) FROM redemptions \
             WHERE tenant_id = 't' AND campaign_id = 'k' AND created_at >= 0",
            "redemptions_campaign_created",
        ),
        (
            "SELECT COUNT(id) FROM coupons \
             WHERE tenant_id = 't' AND campaign_id = 'k' AND budget IS NOT NULL",
            "coupons_campaign",
        ),
    ] {
        let txn = sea_orm::TransactionTrait::begin(&db).await.unwrap();
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .unwrap();
        let plan: Vec<String> = txn
            .query_all_raw(explain(sql))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).unwrap())
            .collect();
        txn.rollback().await.unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{sql}\n{plan}");
    }
}
