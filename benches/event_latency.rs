//! Commit-to-delivery latency of redemption events, with 200 watchers.
//!
//! Two servers (replicas, each with its own pool and event feed) share one fresh PostgreSQL
//! database. Redemptions are made on replica A; 200 watchers on replica B measure when each event
//! arrives against the event's commit-time stamp. The baseline, measured in the same run, is 200
//! watchers on replica A itself. Run: `cargo bench --bench event_latency`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coupon_service::{
    config::{DatabaseArgs, QuotaSettings, ServeSettings},
    domain::{api_key::IssuedKey, Scopes},
    pb::{self, coupon_service_client::CouponServiceClient},
    server::Application,
    store::{DatabaseSettings, Store},
};
use sea_orm::{ConnectionTrait, Database};
use tokio_stream::StreamExt;
use tonic::{metadata::MetadataValue, transport::Endpoint, Request};

const WATCHERS: usize = 200;
const EVENTS: usize = 100;
const PIN_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn settings(url: &str, dir: &std::path::Path) -> ServeSettings {
    ServeSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        database: DatabaseArgs {
            database_url: url.to_owned(),
            pool_size: 16,
            sqlite_synchronous: Default::default(),
        },
        no_migrate: false,
        demo: false,
        grace_period: Duration::from_secs(5),
        max_message_bytes: 4 << 20,
        concurrency_limit: 4_096,
        max_call_duration: Duration::from_secs(60),
        reservation_ttl: Duration::from_secs(900),
        expiry_sweep_interval: Duration::from_secs(5),
        event_poll_interval: Duration::from_secs(1),
        event_retention: Duration::from_secs(86_400),
        event_live_buffer: 4_096,
        pin_key: Some(PIN_KEY.to_owned()),
        pin_key_file: dir.join("pin.key"),
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
        health_listen: None,
        // The bench measures the service, not the tenant quota.
        quotas: QuotaSettings {
            quota_requests_per_second: 0,
            unknown_code_limit: 0,
            ..Default::default()
        },
    }
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Latencies in microseconds of `EVENTS` redemptions made on `writer`, seen by watchers on `watched`.
async fn measure(
    writer: std::net::SocketAddr,
    watched: std::net::SocketAddr,
    token: &str,
    round: usize,
) -> Vec<i64> {
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(
            Endpoint::from_shared(format!("http://{watched}"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    let mut readers = Vec::new();
    for n in 0..WATCHERS {
        let mut client = CouponServiceClient::new(channels[n % channels.len()].clone());
        let request = pb::WatchRedemptionsRequest {
            start: pb::WatchStart::Now as i32,
            ..Default::default()
        };
        let mut stream = client
            .watch_redemptions(authorized(request, token))
            .await
            .unwrap()
            .into_inner();
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(EVENTS);
            while latencies.len() < EVENTS {
                let event = stream.next().await.unwrap().unwrap();
                let occurred = event.occurred_time.unwrap();
                latencies.push(
                    micros_now()
                        - (occurred.seconds * 1_000_000 + i64::from(occurred.nanos) / 1_000),
                );
            }
            latencies
        }));
    }
    let mut redeemer = CouponServiceClient::new(
        Endpoint::from_shared(format!("http://{writer}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    for n in 0..EVENTS {
        let request = pb::RedeemRequest {
            codes: vec!["BENCH".into()],
            order_id: format!("round{round}-order{n}"),
            order_status: pb::OrderStatus::Completed as i32,
            checkout: Some(pb::Checkout {
                cart: Some(pb::Cart {
                    currency: "INR".into(),
                    items: vec![pb::LineItem {
                        product_id: "p".into(),
                        unit_price: Some(1_000),
                        quantity: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                customer: Some(pb::Customer {
                    id: format!("c{n}"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            reservation_ttl: None,
        };
        redeemer.redeem(authorized(request, token)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut all = Vec::new();
    for reader in readers {
        all.extend(reader.await.unwrap());
    }
    all.sort_unstable();
    all
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index] as f64 / 1_000.0
}

#[tokio::main]
async fn main() {
    let base = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("cs_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&base).await.expect("PostgreSQL answers");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();

    let a = Application::build(settings(&url, dir.path()))
        .await
        .unwrap();
    let b = Application::build(settings(&url, dir.path()))
        .await
        .unwrap();
    let (a_addr, b_addr) = (a.local_addr(), b.local_addr());
    let store = Store::connect(&DatabaseSettings {
        url: url.clone(),
        pool_size: 2,
        sqlite_synchronous: Default::default(),
    })
    .await
    .unwrap();
    let key = IssuedKey::generate();
    store
        .create_tenant("bench", &Scopes::all(), &key)
        .await
        .unwrap();
    tokio::spawn(a.run_until_stopped(std::future::pending()));
    tokio::spawn(b.run_until_stopped(std::future::pending()));
    let token = key.token();
    let mut admin_client = pb::admin_service_client::AdminServiceClient::new(
        Endpoint::from_shared(format!("http://{a_addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let coupon = pb::Coupon {
        code: "BENCH".into(),
        currency: "INR".into(),
        discount: Some(pb::Discount {
            kind: Some(pb::discount::Kind::FixedAmount(pb::FixedAmount {
                amount: 100,
            })),
        }),
        ..Default::default()
    };
    admin_client
        .create_coupon(authorized(
            pb::CreateCouponRequest {
                coupon: Some(coupon),
            },
            &token,
        ))
        .await
        .unwrap();

    let local = measure(a_addr, a_addr, &token, 0).await;
    let remote = measure(a_addr, b_addr, &token, 1).await;
    println!(
        "event delivery, {WATCHERS} watchers x {EVENTS} redemptions (milliseconds from commit):"
    );
    for (label, sorted) in [
        ("same replica (baseline)", &local),
        ("other replica", &remote),
    ] {
        println!(
            "  {label:<24} p50 {:>7.2}  p99 {:>7.2}  max {:>7.2}",
            percentile(sorted, 0.5),
            percentile(sorted, 0.99),
            percentile(sorted, 1.0)
        );
    }
    println!(
        "  ratio other/same: p50 {:.2}x  p99 {:.2}x",
        percentile(&remote, 0.5) / percentile(&local, 0.5),
        percentile(&remote, 0.99) / percentile(&local, 0.99)
    );
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok();
}
