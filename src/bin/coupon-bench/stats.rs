//! GetCouponStats against the size of the ledger: one coupon with a few hundred redemptions,
//! measured alone, then again after a million redemptions of other coupons (half in the same
//! tenant, half in another) are added. Its stats read only its own rows, so the second
//! measurement should match the first; the report gives their ratio from the same run.

use std::time::{Duration, Instant};

use anyhow::Context;
use coupon_service::pb::{self, admin_service_client::AdminServiceClient};
use futures::{stream, StreamExt, TryStreamExt};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tonic::transport::Channel;

use crate::{
    ceiling,
    load::Measurement,
    scenario::{checkout, Bearer, Plan, CURRENCY},
};

/// The measured coupon.
pub const STATS_CODE: &str = "STATS-SCALE";
/// Its redemptions, made through Redeem.
pub const COUPON_REDEMPTIONS: usize = 300;
/// Redemptions of other coupons seeded between the two measurements.
pub const OTHER_REDEMPTIONS: i64 = 1_000_000;
/// Coupons those redemptions are spread over, each in one of the two tenants. Consecutive rows
/// share a coupon and a customer, so the inserts touch each index near where the last one did
/// and the seeding stays fast.
const OTHER_COUPONS: i64 = 2_000;
/// Their redemptions are spread over the last 60 days, as the measured coupon's 30-day range
/// would meet them.
const SEED_SPAN_SECONDS: i64 = 60 * 86_400;

/// The two measurements and what was between them.
pub struct StatsScale {
    pub before: Measurement,
    pub after: Measurement,
    pub seed_time: Duration,
}

/// Makes the coupon and its redemptions through the API, measures, seeds, measures again.
/// `measure` loads the server with one scenario and plan.
pub async fn run<F, Fut>(
    channel: &Channel,
    token: &str,
    database_url: &str,
    measure: F,
) -> anyhow::Result<StatsScale>
where
    F: Fn(Plan) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Measurement>>,
{
    let plan = make_coupon(channel, token).await?;
    let before = measure(plan.clone()).await?;
    let started = Instant::now();
    seed(database_url).await?;
    let seed_time = started.elapsed();
    let after = measure(plan).await?;
    Ok(StatsScale {
        before,
        after,
        seed_time,
    })
}

async fn make_coupon(channel: &Channel, token: &str) -> anyhow::Result<Plan> {
    let bearer = Bearer::new(token)?;
    let mut admin = AdminServiceClient::with_interceptor(channel.clone(), bearer.clone());
    admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(pb::Coupon {
                code: STATS_CODE.to_owned(),
                currency: CURRENCY.to_owned(),
                discount: Some(pb::Discount {
                    kind: Some(pb::discount::Kind::FixedAmount(pb::FixedAmount {
                        amount: 1_000,
                    })),
                }),
                limits: Some(pb::Limits {
                    budget: Some(1_000_000_000),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .context("creating the stats coupon")?;
    let client =
        pb::coupon_service_client::CouponServiceClient::with_interceptor(channel.clone(), bearer);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    // Completed, pending and reverted redemptions of 100 customers, as a live coupon has.
    stream::iter(0..COUPON_REDEMPTIONS)
        .map(|n| {
            let mut client = client.clone();
            let order_id = format!("stats-{run_id}-{n}");
            let mut customer = checkout(3, &run_id, (n % 100) as u64);
            if let Some(c) = customer.customer.as_mut() {
                c.id = format!("stats-customer-{}", n % 100);
            }
            async move {
                client
                    .redeem(pb::RedeemRequest {
                        codes: vec![STATS_CODE.to_owned()],
                        order_id: order_id.clone(),
                        order_status: if n % 3 == 0 {
                            pb::OrderStatus::Pending
                        } else {
                            pb::OrderStatus::Completed
                        } as i32,
                        checkout: Some(customer),
                        reservation_ttl: None,
                    })
                    .await?;
                if n % 10 == 0 {
                    client
                        .revert(pb::RevertRequest {
                            order_id,
                            ..Default::default()
                        })
                        .await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await
        .context("redeeming the stats coupon")?;
    Ok(Plan {
        codes: vec![STATS_CODE.to_owned()],
        run_id,
        ..Default::default()
    })
}

/// Inserts [`OTHER_REDEMPTIONS`] ended and completed redemptions of other coupons in one
/// set-based statement (none pending, so the service's sweeper has nothing to do with them),
/// then refreshes PostgreSQL's planner statistics as autovacuum would.
async fn seed(database_url: &str) -> anyhow::Result<()> {
    let tenant = ceiling::tenant_of(database_url, STATS_CODE).await?;
    // One connection, so the page cache set below is the inserting statement's: SQLite's
    // default of 2 MB would spill the indexes to the WAL page by page.
    let mut options = sea_orm::ConnectOptions::new(database_url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    let db = Database::connect(options).await?;
    let backend = db.get_database_backend();
    if backend == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA cache_size = -524288").await?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as i64;
    // Numbered placeholders: `$n` on PostgreSQL, `?n` on SQLite.
    let (numbers, mark) = match backend {
        DbBackend::Postgres => (
            "WITH seq(n) AS (SELECT generate_series(1, $1::bigint))",
            '$',
        ),
        _ => (
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?1)",
            '?',
        ),
    };
    let (tenant_p, now_p, span_p, per_coupon_p) = (
        format!("{mark}2"),
        format!("{mark}3"),
        format!("{mark}4"),
        format!("{mark}5"),
    );
    let sql = format!(
        "{numbers} \
         INSERT INTO redemptions (id, tenant_id, coupon_id, code, campaign_id, order_id, \
           customer_id, customer_email, discount, currency, status, request_id, fingerprint, \
           counted, customer_counted, created_at, updated_at, expires_at) \
         SELECT 'seed-' || n, \
           CASE WHEN (n / {per_coupon_p}) % 2 = 0 THEN {tenant_p} ELSE 'bench-elsewhere' END, \
           'seed-coupon-' || (n / {per_coupon_p}), 'SEED' || (n / {per_coupon_p}), NULL, \
           'seed-order-' || n, 'seed-customer-' || (n / 20), '', 1000, '{CURRENCY}', \
           CASE n % 4 WHEN 0 THEN 'reverted' WHEN 1 THEN 'expired' ELSE 'completed' END, \
           'seed', 'seed', FALSE, FALSE, \
           {now_p} - (n % {span_p}) * 1000000, {now_p} - (n % {span_p}) * 1000000, NULL \
         FROM seq"
    );
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [
            OTHER_REDEMPTIONS.into(),
            tenant.into(),
            now.into(),
            SEED_SPAN_SECONDS.into(),
            (OTHER_REDEMPTIONS / OTHER_COUPONS).into(),
        ],
    ))
    .await
    .context("seeding redemptions")?;
    if backend == DbBackend::Postgres {
        db.execute_unprepared("ANALYZE redemptions").await?;
    }
    db.close().await.ok();
    Ok(())
}
