//! Guarantees that hold where operation begins: limits added, lowered or raised on a live
//! coupon; new-customer coupons claimed in the ledger; orders redeemed again after a failed
//! attempt; identical retries with metadata maps replayed across processes.

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use coupon_service::pb;
use tonic::Code;

use crate::{
    common::{error_reason, fresh_database, server_processes, spawn_app, Auth, Backend, TestApp},
    ledger::{assert_counters_match_ledger, create, limited, order, race, reasons, Client},
    vouchers::{buy, stocked},
};

/// A 1000-off coupon without any limit.
fn unlimited(code: &str) -> pb::Coupon {
    limited(code, 1_000, pb::Limits::default())
}

async fn set_limits(app: &TestApp, coupon: &pb::Coupon, limits: pb::Limits) {
    app.admin(&app.token)
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(pb::Coupon {
                id: coupon.id.clone(),
                limits: Some(limits),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["limits".into()],
            }),
        })
        .await
        .expect("update limits");
}

async fn redeem(
    client: &mut Client,
    request: pb::RedeemRequest,
) -> Result<pb::RedeemResponse, String> {
    client
        .redeem(request)
        .await
        .map(|r| r.into_inner())
        .map_err(|status| error_reason(&status).unwrap_or_else(|| format!("{:?}", status.code())))
}

fn completed(code: &str, order_id: &str, customer: &str) -> pb::RedeemRequest {
    order(&[code], order_id, customer, pb::OrderStatus::Completed)
}

async fn limits_added_to_a_live_coupon_count_its_redemptions(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = app.coupons(&app.token);

    let later = create(&app, unlimited("LATER")).await;
    for n in 1..=3 {
        redeem(
            &mut client,
            completed("LATER", &format!("o{n}"), &format!("c{n}")),
        )
        .await
        .unwrap();
    }
    set_limits(
        &app,
        &later,
        pb::Limits {
            max_redemptions: Some(1),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        redeem(&mut client, completed("LATER", "o4", "c4"))
            .await
            .unwrap_err(),
        "USAGE_LIMIT_REACHED",
        "three are active against a limit of one"
    );
    set_limits(
        &app,
        &later,
        pb::Limits {
            max_redemptions: Some(4),
            ..Default::default()
        },
    )
    .await;
    redeem(&mut client, completed("LATER", "o4", "c4"))
        .await
        .expect("a raised limit has room for one more");
    assert_eq!(
        redeem(&mut client, completed("LATER", "o5", "c5"))
            .await
            .unwrap_err(),
        "USAGE_LIMIT_REACHED"
    );

    let each = create(&app, unlimited("EACH")).await;
    for n in 1..=2 {
        redeem(&mut client, completed("EACH", &format!("e{n}"), "loyal"))
            .await
            .unwrap();
    }
    set_limits(
        &app,
        &each,
        pb::Limits {
            max_redemptions_per_customer: Some(1),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        redeem(&mut client, completed("EACH", "e3", "loyal"))
            .await
            .unwrap_err(),
        "CUSTOMER_LIMIT_REACHED"
    );
    redeem(&mut client, completed("EACH", "e4", "someone-else"))
        .await
        .expect("other customers keep their first use");

    let budget = create(&app, unlimited("SPEND")).await;
    for n in 1..=3 {
        redeem(
            &mut client,
            completed("SPEND", &format!("s{n}"), &format!("b{n}")),
        )
        .await
        .unwrap();
    }
    set_limits(
        &app,
        &budget,
        pb::Limits {
            budget: Some(3_000),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        redeem(&mut client, completed("SPEND", "s4", "b4"))
            .await
            .unwrap_err(),
        "BUDGET_EXHAUSTED",
        "three discounts of 1000 spent a budget of 3000"
    );
    client
        .revert(pb::RevertRequest {
            order_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    redeem(&mut client, completed("SPEND", "s4", "b4"))
        .await
        .expect("a revert gives its discount back to the budget");
    assert_counters_match_ledger(&app).await;
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

async fn a_limit_lowered_during_a_race_across_processes_holds(backend: Backend) {
    let app = spawn_app(backend).await;
    let coupon = create(&app, unlimited("LEAKING")).await;
    let (_processes, channels) = server_processes(&app, 2).await;
    let requests = (0..200)
        .map(|n| completed("LEAKING", &format!("leak-{n}"), &format!("c-{n}")))
        .collect();
    let racing = {
        let channels = channels.clone();
        let token = app.token.clone();
        tokio::spawn(async move { race(&channels, &token, requests).await })
    };
    // Lowered while the race runs: redemptions that start after this answer see the limit.
    tokio::task::yield_now().await;
    set_limits(
        &app,
        &coupon,
        pb::Limits {
            max_redemptions: Some(30),
            ..Default::default()
        },
    )
    .await;
    let lowered_at = micros_now();
    let (won, lost) = racing.await.unwrap();
    assert_eq!(won.len() + lost.len(), 200);
    assert!(
        lost.is_empty() || reasons(&lost) == ["FailedPrecondition USAGE_LIMIT_REACHED"],
        "{:?}",
        reasons(&lost)
    );
    let started_before: usize = won
        .iter()
        .flat_map(|answer| &answer.redemptions)
        .filter(|r| {
            r.create_time
                .as_ref()
                .is_some_and(|t| t.seconds * 1_000_000 + i64::from(t.nanos / 1_000) < lowered_at)
        })
        .count();
    assert!(
        won.len() <= started_before.max(30),
        "{} redeemed; {started_before} had started before the limit of 30",
        won.len()
    );

    // And a race that starts after the change redeems exactly up to it.
    let active = won.len();
    set_limits(
        &app,
        &coupon,
        pb::Limits {
            max_redemptions: Some(i64::try_from(active).unwrap() + 20),
            ..Default::default()
        },
    )
    .await;
    let requests = (0..200)
        .map(|n| completed("LEAKING", &format!("next-{n}"), &format!("n-{n}")))
        .collect();
    let (won, lost) = race(&channels, &app.token, requests).await;
    assert_eq!(won.len(), 20, "exactly the room the new limit leaves");
    assert_eq!(reasons(&lost), ["FailedPrecondition USAGE_LIMIT_REACHED"]);
    assert_counters_match_ledger(&app).await;
}

fn first_order_coupon() -> pb::Coupon {
    pb::Coupon {
        conditions: Some(pb::Conditions {
            customer_segment: pb::CustomerSegment::New as i32,
            ..Default::default()
        }),
        ..unlimited("FIRST20")
    }
}

async fn a_new_customer_coupon_goes_to_one_active_order(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, first_order_coupon()).await;
    let mut client = app.coupons(&app.token);
    let pending = |n: usize| {
        order(
            &["FIRST20"],
            &format!("p-{n}"),
            "newbie",
            pb::OrderStatus::Pending,
        )
    };
    redeem(&mut client, pending(1))
        .await
        .expect("a first order");
    for n in 2..=5 {
        assert_eq!(
            redeem(&mut client, pending(n)).await.unwrap_err(),
            "CUSTOMER_NOT_ELIGIBLE",
            "a pending first order makes the customer not new"
        );
    }
    client
        .revert(pb::RevertRequest {
            order_id: "p-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    redeem(&mut client, pending(6))
        .await
        .expect("reverting the first order frees the claim");

    let (_processes, channels) = server_processes(&app, 2).await;
    let requests = (0..20)
        .map(|n| {
            order(
                &["FIRST20"],
                &format!("race-{n}"),
                "racer",
                pb::OrderStatus::Completed,
            )
        })
        .collect();
    let (won, lost) = race(&channels, &app.token, requests).await;
    assert_eq!(won.len(), 1, "one customer, one first order");
    assert_eq!(reasons(&lost), ["FailedPrecondition CUSTOMER_NOT_ELIGIBLE"]);
    assert_counters_match_ledger(&app).await;
}

async fn a_failed_payment_can_redeem_the_order_again(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        limited(
            "RETRY",
            1_000,
            pb::Limits {
                max_redemptions: Some(1),
                ..Default::default()
            },
        ),
    )
    .await;
    let mut client = app.coupons(&app.token);
    let attempt = order(&["RETRY"], "pay-1", "c-1", pb::OrderStatus::Pending);
    let first = redeem(&mut client, attempt.clone()).await.unwrap();
    let replayed = redeem(&mut client, attempt.clone()).await.unwrap();
    assert_eq!(
        replayed.redemptions, first.redemptions,
        "an active attempt replays"
    );
    client
        .revert(pb::RevertRequest {
            order_id: "pay-1".into(),
            reason: "payment failed".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let second = redeem(&mut client, attempt.clone())
        .await
        .expect("a reverted attempt does not block the retry of the payment");
    assert_ne!(second.redemptions[0].id, first.redemptions[0].id);
    assert_eq!(
        second.redemptions[0].status,
        pb::RedemptionStatus::Pending as i32
    );
    let mut changed = attempt.clone();
    changed.order_status = pb::OrderStatus::Completed as i32;
    assert_eq!(
        redeem(&mut client, changed.clone()).await.unwrap_err(),
        "DUPLICATE_ORDER",
        "the new attempt is active: another body is a different request"
    );
    client
        .revert(pb::RevertRequest {
            order_id: "pay-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let third = redeem(&mut client, changed)
        .await
        .expect("with nothing active, a changed body redeems too");
    assert_eq!(
        third.redemptions[0].status,
        pb::RedemptionStatus::Completed as i32
    );
    let confirmed = client
        .confirm(pb::ConfirmRequest {
            order_id: "pay-1".into(),
            codes: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        confirmed.redemptions.len(),
        1,
        "the order's latest redemption"
    );
    assert_eq!(confirmed.redemptions[0].id, third.redemptions[0].id);
    let history = client
        .list_redemptions(pb::ListRedemptionsRequest {
            order_id: "pay-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        history.redemptions.len(),
        3,
        "every attempt stays in the ledger"
    );
    assert_counters_match_ledger(&app).await;
}

/// A checkout with eight metadata entries on the cart and on its line, as the redeem API sends.
fn with_metadata(mut request: pb::RedeemRequest) -> pb::RedeemRequest {
    let entries: HashMap<String, String> = (0..8)
        .map(|n| (format!("key_{n}"), format!("value {n}")))
        .collect();
    if let Some(cart) = request.checkout.as_mut().and_then(|c| c.cart.as_mut()) {
        cart.metadata = entries.clone();
        for item in &mut cart.items {
            item.metadata = entries.clone();
        }
    }
    request
}

async fn identical_retries_with_metadata_replay_across_processes(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, unlimited("META")).await;
    let (_processes, channels) = server_processes(&app, 2).await;
    let request = with_metadata(order(&["META"], "meta-1", "c-1", pb::OrderStatus::Pending));
    let mut answers = Vec::new();
    // Every channel rebuilds the request's maps, so each retry encodes them in its own order.
    for channel in channels.iter().chain(channels.iter()) {
        let mut client = pb::coupon_service_client::CouponServiceClient::with_interceptor(
            channel.clone(),
            Auth::bearer(&app.token),
        );
        let retry = with_metadata(order(&["meta"], "meta-1", "c-1", pb::OrderStatus::Pending));
        answers.push(
            redeem(&mut client, retry)
                .await
                .expect("an identical retry"),
        );
    }
    assert!(answers
        .iter()
        .all(|a| a.redemptions == answers[0].redemptions));

    let mut changed = request;
    if let Some(cart) = changed.checkout.as_mut().and_then(|c| c.cart.as_mut()) {
        cart.metadata.insert("key_3".into(), "another value".into());
    }
    let mut client = app.coupons(&app.token);
    assert_eq!(
        redeem(&mut client, changed).await.unwrap_err(),
        "DUPLICATE_ORDER"
    );

    // Paging ListApplicable with the same checkout keeps working.
    create(&app, unlimited("META2")).await;
    let checkout = with_metadata(order(&["META"], "x", "c-2", pb::OrderStatus::Pending)).checkout;
    let first = client
        .list_applicable(pb::ListApplicableRequest {
            checkout: checkout.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let rebuilt = with_metadata(order(&["META"], "x", "c-2", pb::OrderStatus::Pending)).checkout;
    let second = client
        .list_applicable(pb::ListApplicableRequest {
            checkout: rebuilt,
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .expect("page 2 of the same checkout")
        .into_inner();
    assert_eq!(second.coupons.len(), 1);
}

async fn purchase_and_top_up_retries_replay_across_processes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_processes, channels) = server_processes(&app, 2).await;
    let top_up = |note: &str| pb::TopUpCreditsRequest {
        amount: 5_000,
        reference: "invoice-7".into(),
        note: note.into(),
    };
    let mut entries = Vec::new();
    for channel in &channels {
        let mut admin = pb::admin_service_client::AdminServiceClient::with_interceptor(
            channel.clone(),
            Auth::bearer(&app.token),
        );
        entries.push(
            admin
                .top_up_credits(top_up("march"))
                .await
                .expect("an identical top-up retry")
                .into_inner(),
        );
    }
    assert!(entries.iter().all(|e| e.entry == entries[0].entry));
    let mut admin = app.admin(&app.token);
    let other = admin.top_up_credits(top_up("april")).await.unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);
    assert_eq!(error_reason(&other).as_deref(), Some("DUPLICATE_REFERENCE"));
    let balance = admin
        .get_balance(pb::GetBalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.balance, 5_000, "retries added nothing");

    // A purchase retried on the other process answers with the same PIN; another body with the
    // same reference is the PIN API's duplicate reference.
    stocked(&app, 3, 100_000).await;
    let mut delivered = Vec::new();
    for channel in [&channels[0], &channels[channels.len() - 1]] {
        let mut vouchers = pb::voucher_service_client::VoucherServiceClient::with_interceptor(
            channel.clone(),
            Auth::bearer(&app.token),
        );
        delivered.push(
            vouchers
                .purchase(buy("ref-1"))
                .await
                .expect("an identical purchase retry")
                .into_inner()
                .purchase
                .unwrap(),
        );
    }
    assert_eq!(delivered[0].pin, delivered[1].pin);
    assert_eq!(delivered[0].id, delivered[1].id);
    let mut changed = buy("ref-1");
    changed.phone_number = "9800000000".into();
    let refused = app
        .vouchers(&app.token)
        .purchase(changed)
        .await
        .unwrap_err();
    assert_eq!(
        error_reason(&refused).as_deref(),
        Some("DUPLICATE_REFERENCE")
    );
}

/// A database migrated by an earlier release, with redemptions of coupons that had no limit (so
/// no counter) and completed-order stats: the migration to exact limits recounts everything
/// from the ledger.
async fn an_earlier_ledger_is_recounted_by_the_migration(backend: Backend) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Database, Statement};

    let (url, _database) = fresh_database(backend).await;
    let db = Database::connect(&url).await.unwrap();
    let migrations = Migrator::migrations();
    let before = migrations
        .iter()
        .position(|m| m.name().contains("exact_live_limits"))
        .unwrap();
    Migrator::up(&db, Some(u32::try_from(before).unwrap()))
        .await
        .unwrap();
    let kind = db.get_database_backend();
    let exec = |sql: &str| {
        let db = &db;
        let sql = sql.to_owned();
        async move {
            db.execute_raw(Statement::from_string(kind, sql))
                .await
                .unwrap();
        }
    };
    exec("INSERT INTO tenants (id, name, created_at) VALUES ('t', 'acme', 0)").await;
    exec(
        "INSERT INTO coupons (id, tenant_id, code, campaign_id, active, rules, max_redemptions, \
         max_redemptions_per_customer, budget, redemptions, budget_used, created_at, updated_at) \
         VALUES ('c1', 't', 'OPEN', NULL, TRUE, '{}', NULL, NULL, NULL, 0, 0, 0, 0)",
    )
    .await;
    // Three redemptions by two customers: active, active, reverted.
    for (id, order, customer, status) in [
        ("r1", "o1", "ann", "completed"),
        ("r2", "o2", "ann", "pending"),
        ("r3", "o3", "bob", "reverted"),
        ("r4", "o3", "bob", "reverted"),
    ] {
        exec(&format!(
            "INSERT INTO redemptions (id, tenant_id, coupon_id, code, campaign_id, order_id, \
             customer_id, customer_email, discount, currency, status, request_id, fingerprint, \
             counted, customer_counted, created_at, updated_at, expires_at) VALUES ('{id}', 't', \
             'c1', 'OPEN-{id}', NULL, '{order}', '{customer}', '{customer}@x.test', 500, 'INR', \
             '{status}', 'q', 'f', FALSE, FALSE, 0, 0, NULL)"
        ))
        .await;
    }
    exec(
        "INSERT INTO customer_stats (tenant_id, customer_key, completed_redemptions) \
         VALUES ('t', 'ann', 1), ('t', 'email:ann@x.test', 1)",
    )
    .await;

    Migrator::up(&db, None).await.unwrap();

    let number = |sql: &str| {
        let db = &db;
        let sql = sql.to_owned();
        async move {
            db.query_one_raw(Statement::from_string(kind, sql))
                .await
                .unwrap()
                .unwrap()
                .try_get_by_index::<i64>(0)
                .unwrap()
        }
    };
    assert_eq!(
        number("SELECT redemptions FROM coupons WHERE id = 'c1'").await,
        2
    );
    assert_eq!(
        number("SELECT budget_used FROM coupons WHERE id = 'c1'").await,
        1_000
    );
    assert_eq!(
        number(
            "SELECT redemptions FROM coupon_customer_usage WHERE coupon_id = 'c1' \
             AND customer_key = 'ann'"
        )
        .await,
        2
    );
    assert_eq!(
        number("SELECT COUNT(*) FROM coupon_customer_usage WHERE customer_key = 'bob'").await,
        0,
        "reverted redemptions count nothing"
    );
    for key in ["ann", "email:ann@x.test"] {
        assert_eq!(
            number(&format!(
                "SELECT active_redemptions FROM customer_stats WHERE customer_key = '{key}'"
            ))
            .await,
            2,
            "{key}: the pending order counts too"
        );
    }
    db.close().await.ok();
}

crate::on_both_databases!(
    limits_added_to_a_live_coupon_count_its_redemptions,
    a_limit_lowered_during_a_race_across_processes_holds,
    a_new_customer_coupon_goes_to_one_active_order,
    a_failed_payment_can_redeem_the_order_again,
    identical_retries_with_metadata_replay_across_processes,
    purchase_and_top_up_retries_replay_across_processes,
    an_earlier_ledger_is_recounted_by_the_migration,
);
