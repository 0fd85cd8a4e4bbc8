//! WatchRedemptions: resumable, gap-free, across replicas, with bounded slow watchers.

use std::time::Duration;

use coupon_service::{
    domain::{Scopes, Timestamp},
    pb,
};
use sea_orm::{ConnectionTrait, Database, Statement, TransactionTrait};
use tokio_stream::StreamExt;
use tonic::{transport::Channel, Code, Streaming};
use tonic_types::StatusExt;

use crate::common::{
    connect, fresh_database, spawn_app, spawn_app_with, Auth, Backend, ServerProcess, TestApp,
};

/// How long a test waits for an event before calling it lost.
const PATIENCE: Duration = Duration::from_secs(30);

fn client(
    channel: Channel,
    token: &str,
) -> pb::coupon_service_client::CouponServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Auth>,
> {
    pb::coupon_service_client::CouponServiceClient::with_interceptor(channel, Auth::bearer(token))
}

async fn unlimited(app: &TestApp, token: &str, code: &str) {
    app.admin(token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(pb::Coupon {
                code: code.into(),
                currency: "INR".into(),
                discount: Some(pb::Discount {
                    kind: Some(pb::discount::Kind::FixedAmount(pb::FixedAmount {
                        amount: 100,
                    })),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

fn redeem(code: &str, order_id: &str, status: pb::OrderStatus) -> pb::RedeemRequest {
    pb::RedeemRequest {
        codes: vec![code.into()],
        order_id: order_id.into(),
        order_status: status as i32,
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
                id: format!("cust-{order_id}"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        reservation_ttl: None,
    }
}

async fn open(
    channel: Channel,
    token: &str,
    request: pb::WatchRedemptionsRequest,
) -> Streaming<pb::RedemptionEvent> {
    client(channel, token)
        .watch_redemptions(request)
        .await
        .expect("watch starts")
        .into_inner()
}

async fn next(stream: &mut Streaming<pb::RedemptionEvent>) -> pb::RedemptionEvent {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("an event arrives in time")
        .expect("the stream goes on")
        .expect("an event, not an error")
}

/// (redemption id, kind) of every outbox event of the tenant owning `code`, in feed order.
async fn outbox_history(app: &TestApp, code: &str) -> Vec<(String, i32)> {
    let db = Database::connect(&app.database_url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT redemption_id, kind FROM redemption_events WHERE tenant_id = \
                 (SELECT tenant_id FROM coupons WHERE code = '{code}') ORDER BY txid, id"
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("", "kind").unwrap();
            let kind = match kind.as_str() {
                "redeemed_pending" => pb::RedemptionEventKind::RedeemedPending,
                "redeemed_completed" => pb::RedemptionEventKind::RedeemedCompleted,
                "confirmed" => pb::RedemptionEventKind::Confirmed,
                "reverted" => pb::RedemptionEventKind::Reverted,
                _ => pb::RedemptionEventKind::Expired,
            };
            (row.try_get("", "redemption_id").unwrap(), kind as i32)
        })
        .collect()
}

/// A watcher that disconnects and resumes elsewhere while three processes keep redeeming ends with
/// exactly the outbox's history: none missing, none twice, in order.
async fn a_resumed_watcher_sees_the_whole_history_once(backend: Backend) {
    let app = spawn_app(backend).await;
    unlimited(&app, &app.token, "FLOW").await;
    let processes: Vec<ServerProcess> = (0..3)
        .map(|_| ServerProcess::spawn(&app.database_url))
        .collect();
    let mut channels = Vec::new();
    for process in &processes {
        channels.push(connect(process.addr).await);
    }
    let token = app.token.clone();
    let producer_channels = channels.clone();
    // 40 orders: each redeemed pending; every 2nd confirmed, every 5th reverted: 40 + 20 + 8 events.
    let producer = tokio::spawn(async move {
        let mut orders = Vec::new();
        for n in 0..40 {
            let mut c = client(producer_channels[n % 3].clone(), &token);
            orders.push(tokio::spawn(async move {
                let order = format!("o{n}");
                c.redeem(redeem("FLOW", &order, pb::OrderStatus::Pending))
                    .await
                    .unwrap();
                if n % 2 == 0 {
                    c.confirm(pb::ConfirmRequest {
                        order_id: order.clone(),
                        codes: vec![],
                    })
                    .await
                    .unwrap();
                }
                if n % 5 == 0 {
                    c.revert(pb::RevertRequest {
                        order_id: order,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                }
            }));
        }
        for order in orders {
            order.await.unwrap();
        }
    });
    let expected = 40 + 20 + 8;
    let mut seen: Vec<(String, i32, String)> = Vec::new();
    let mut stream = open(
        channels[0].clone(),
        &app.token,
        pb::WatchRedemptionsRequest::default(),
    )
    .await;
    while seen.len() < 20 {
        let event = next(&mut stream).await;
        seen.push((event.redemption.unwrap().id, event.kind, event.cursor));
    }
    drop(stream);
    let last = seen.last().unwrap().2.clone();
    let mut resumed = open(
        channels[1].clone(),
        &app.token,
        pb::WatchRedemptionsRequest {
            after_cursor: last,
            ..Default::default()
        },
    )
    .await;
    while seen.len() < expected {
        let event = next(&mut resumed).await;
        seen.push((event.redemption.unwrap().id, event.kind, event.cursor));
    }
    producer.await.unwrap();
    let history = outbox_history(&app, "FLOW").await;
    let received: Vec<(String, i32)> = seen
        .iter()
        .map(|(id, kind, _)| (id.clone(), *kind))
        .collect();
    assert_eq!(received, history, "exactly the ledger's history, in order");
    let quiet = tokio::time::timeout(Duration::from_millis(1_500), resumed.next()).await;
    assert!(quiet.is_err(), "nothing twice");
}

/// A transaction that wrote an event and stays open holds the cursor back: later commits are not
/// delivered before it, and nothing is skipped once it commits.
async fn a_held_transaction_is_never_skipped(backend: Backend) {
    let app = spawn_app(backend).await;
    unlimited(&app, &app.token, "HOLD").await;
    let mut c = client(app.channel.clone(), &app.token);
    let mut stream = open(
        app.channel.clone(),
        &app.token,
        pb::WatchRedemptionsRequest {
            start: pb::WatchStart::Now as i32,
            ..Default::default()
        },
    )
    .await;
    c.redeem(redeem("HOLD", "before", pb::OrderStatus::Completed))
        .await
        .unwrap();
    assert_eq!(
        next(&mut stream).await.redemption.unwrap().order_id,
        "before"
    );

    let db = Database::connect(&app.database_url).await.unwrap();
    let held = db.begin().await.unwrap();
    let tenant: String = held
        .query_one_raw(Statement::from_string(
            held.get_database_backend(),
            "SELECT tenant_id FROM coupons WHERE code = 'HOLD'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "tenant_id")
        .unwrap();
    let now = Timestamp::now().micros();
    held.execute_unprepared(&format!(
        "INSERT INTO redemption_events (txid, tenant_id, kind, occurred_at, redemption_id, coupon_id, code, \
         campaign_id, order_id, customer_id, discount, currency, status, request_id, created_at, updated_at, expires_at) \
         VALUES (pg_current_xact_id()::text::bigint, '{tenant}', 'redeemed_completed', {now}, 'rdm_held', 'cpn_held', \
         'HOLD', NULL, 'held', 'cust-held', 100, 'INR', 'completed', 'req-held', {now}, {now}, NULL)"
    ))
    .await
    .unwrap();
    // Later transactions commit while the held one is open.
    for order in ["after-1", "after-2", "after-3"] {
        c.redeem(redeem("HOLD", order, pb::OrderStatus::Completed))
            .await
            .unwrap();
    }
    let early = tokio::time::timeout(Duration::from_millis(1_500), stream.next()).await;
    assert!(
        early.is_err(),
        "nothing passes the open transaction: {early:?}"
    );
    held.commit().await.unwrap();
    let orders: Vec<String> = [
        next(&mut stream).await,
        next(&mut stream).await,
        next(&mut stream).await,
        next(&mut stream).await,
    ]
    .into_iter()
    .map(|e| e.redemption.unwrap().order_id)
    .collect();
    assert_eq!(
        orders,
        ["held", "after-1", "after-2", "after-3"],
        "the held event first, none skipped"
    );
}

/// 200 watchers on one process all receive everything; one that reads nothing for 10 s lags out
/// of the live buffer without holding the others back, then catches up from the outbox.
async fn two_hundred_watchers_and_a_stuck_one(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.event_live_buffer = 8).await;
    unlimited(&app, &app.token, "MANY").await;
    let channels: Vec<Channel> = {
        let mut channels = Vec::new();
        for _ in 0..4 {
            channels.push(connect(app.addr).await);
        }
        channels
    };
    let mut stuck = open(
        channels[0].clone(),
        &app.token,
        pb::WatchRedemptionsRequest {
            start: pb::WatchStart::Now as i32,
            ..Default::default()
        },
    )
    .await;
    let mut watchers = Vec::new();
    for n in 0..199 {
        watchers.push(
            open(
                channels[n % 4].clone(),
                &app.token,
                pb::WatchRedemptionsRequest {
                    start: pb::WatchStart::Now as i32,
                    ..Default::default()
                },
            )
            .await,
        );
    }
    const EVENTS: usize = 40;
    let stall_ends = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut c = client(channels[1].clone(), &app.token);
    for n in 0..EVENTS {
        c.redeem(redeem("MANY", &format!("m{n}"), pb::OrderStatus::Completed))
            .await
            .unwrap();
    }
    let readers: Vec<_> = watchers
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut orders = Vec::new();
                for _ in 0..EVENTS {
                    orders.push(next(&mut stream).await.redemption.unwrap().order_id);
                }
                orders
            })
        })
        .collect();
    let expected: Vec<String> = (0..EVENTS).map(|n| format!("m{n}")).collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), expected);
    }
    assert!(
        tokio::time::Instant::now() < stall_ends,
        "the others finished while one watcher was stuck"
    );
    tokio::time::sleep_until(stall_ends).await;
    let mut caught_up = Vec::new();
    for _ in 0..EVENTS {
        caught_up.push(next(&mut stuck).await.redemption.unwrap().order_id);
    }
    assert_eq!(
        caught_up, expected,
        "the stuck watcher catches up, in order, from the outbox"
    );
}

async fn filters_and_tenants_narrow_the_stream(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.new_tenant("globex", Scopes::all()).await;
    unlimited(&app, &app.token, "MINE").await;
    unlimited(&app, &other, "MINE").await;
    let mut reverts = open(
        app.channel.clone(),
        &app.token,
        pb::WatchRedemptionsRequest {
            kinds: vec![pb::RedemptionEventKind::Reverted as i32],
            codes: vec!["mine".into()],
            ..Default::default()
        },
    )
    .await;
    let mut theirs = open(
        app.channel.clone(),
        &other,
        pb::WatchRedemptionsRequest::default(),
    )
    .await;
    let mut mine = client(app.channel.clone(), &app.token);
    mine.redeem(redeem("MINE", "a", pb::OrderStatus::Completed))
        .await
        .unwrap();
    mine.revert(pb::RevertRequest {
        order_id: "a".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    client(app.channel.clone(), &other)
        .redeem(redeem("MINE", "b", pb::OrderStatus::Pending))
        .await
        .unwrap();
    let reverted = next(&mut reverts).await;
    assert_eq!(reverted.kind, pb::RedemptionEventKind::Reverted as i32);
    assert_eq!(
        reverted.redemption.unwrap().status,
        pb::RedemptionStatus::Reverted as i32
    );
    let seen = next(&mut theirs).await.redemption.unwrap();
    assert_eq!(seen.order_id, "b", "the other tenant sees only its own");
    let nothing_more = tokio::time::timeout(Duration::from_millis(1_000), theirs.next()).await;
    assert!(nothing_more.is_err());
}

async fn a_cursor_older_than_retention_is_out_of_range(backend: Backend) {
    let app = spawn_app(backend).await;
    unlimited(&app, &app.token, "OLD").await;
    let mut c = client(app.channel.clone(), &app.token);
    let mut stream = open(
        app.channel.clone(),
        &app.token,
        pb::WatchRedemptionsRequest::default(),
    )
    .await;
    c.redeem(redeem("OLD", "x", pb::OrderStatus::Completed))
        .await
        .unwrap();
    let first = next(&mut stream).await;
    c.redeem(redeem("OLD", "y", pb::OrderStatus::Completed))
        .await
        .unwrap();
    let second = next(&mut stream).await;
    drop(stream);
    // Prune as if a retention period had passed since the first event.
    let cutoff = Timestamp(
        first
            .occurred_time
            .as_ref()
            .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000)
            .unwrap()
            + 1,
    );
    assert_eq!(app.server_store.prune_events(cutoff).await.unwrap(), 1);
    let status = client(app.channel.clone(), &app.token)
        .watch_redemptions(pb::WatchRedemptionsRequest {
            after_cursor: "bad".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // A cursor before the first event: pruned away.
    let too_old = cursor_before(&first.cursor);
    let status = client(app.channel.clone(), &app.token)
        .watch_redemptions(pb::WatchRedemptionsRequest {
            after_cursor: too_old,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);
    let oldest = status
        .get_details_error_info()
        .unwrap()
        .metadata
        .get("oldest_cursor")
        .cloned()
        .unwrap();
    assert_eq!(
        oldest, first.cursor,
        "resume from the newest pruned position"
    );
    let mut resumed = open(
        app.channel.clone(),
        &app.token,
        pb::WatchRedemptionsRequest {
            after_cursor: oldest,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(next(&mut resumed).await.cursor, second.cursor);
}

/// The cursor of the position just before `cursor`'s, in the same (public) encoding.
fn cursor_before(cursor: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).unwrap()).unwrap();
    let mut parts = text.split(':');
    let (_, txid, id): (&str, i64, i64) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    );
    URL_SAFE_NO_PAD.encode(format!("v1:{txid}:{}", id - 1))
}

async fn streams_end_with_unavailable_at_shutdown(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut stream = open(
        app.channel.clone(),
        &app.token,
        pb::WatchRedemptionsRequest::default(),
    )
    .await;
    app.stop().await;
    let end = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream ends in time");
    let status = end
        .expect("a final status")
        .expect_err("UNAVAILABLE, not an event");
    assert_eq!(status.code(), Code::Unavailable);
}

crate::on_both_databases!(
    a_resumed_watcher_sees_the_whole_history_once,
    two_hundred_watchers_and_a_stuck_one,
    filters_and_tenants_narrow_the_stream,
    a_cursor_older_than_retention_is_out_of_range,
    streams_end_with_unavailable_at_shutdown,
);

/// The gap the outbox guards against only exists where transactions commit out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_held_transaction_is_never_skipped() {
    a_held_transaction_is_never_skipped(Backend::Postgres).await;
}

/// A transaction can only write its own database's outbox, so one held open in another database
/// of the same cluster must not hold delivery back (with the cluster-wide `pg_snapshot_xmin` it
/// did, for as long as it stayed open): the event arrives while that transaction is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_transaction_held_in_another_database_does_not_delay_events() {
    let app = spawn_app(Backend::Postgres).await;
    unlimited(&app, &app.token, "ELSEWHERE").await;
    let mut stream = open(
        app.channel.clone(),
        &app.token,
        pb::WatchRedemptionsRequest {
            start: pb::WatchStart::Now as i32,
            ..Default::default()
        },
    )
    .await;
    let (other_url, _dir) = fresh_database(Backend::Postgres).await;
    let other = Database::connect(&other_url).await.unwrap();
    let held = other.begin().await.unwrap();
    // Writing gives the transaction an id, as a writer of the outbox would have.
    held.execute_unprepared("CREATE TABLE unrelated_work (n integer)")
        .await
        .unwrap();

    client(app.channel.clone(), &app.token)
        .redeem(redeem(
            "ELSEWHERE",
            "while-held",
            pb::OrderStatus::Completed,
        ))
        .await
        .unwrap();
    let event = next(&mut stream).await;
    assert_eq!(event.redemption.unwrap().order_id, "while-held");

    let still_open = held
        .query_one_raw(Statement::from_string(
            held.get_database_backend(),
            "SELECT pg_current_xact_id_if_assigned()::text AS xid",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<Option<String>>("", "xid")
        .unwrap();
    assert!(
        still_open.is_some(),
        "the other database's transaction was open throughout"
    );
    held.rollback().await.unwrap();
}

/// Replicas learn of each other's commits by notification, not by polling: a replica that would
/// poll only once an hour still delivers another replica's event at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_replica_is_told_of_another_replicas_commits() {
    let app = spawn_app(Backend::Postgres).await;
    unlimited(&app, &app.token, "ACROSS").await;
    let replica =
        ServerProcess::spawn_with_args(&app.database_url, &["--event-poll-interval", "1h"]);
    let mut stream = open(
        connect(replica.addr).await,
        &app.token,
        pb::WatchRedemptionsRequest {
            start: pb::WatchStart::Now as i32,
            ..Default::default()
        },
    )
    .await;
    client(app.channel.clone(), &app.token)
        .redeem(redeem("ACROSS", "elsewhere", pb::OrderStatus::Completed))
        .await
        .unwrap();
    let event = next(&mut stream).await;
    assert_eq!(event.redemption.unwrap().order_id, "elsewhere");
}
