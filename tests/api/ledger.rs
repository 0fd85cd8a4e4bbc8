//! The redemption ledger: Redeem, Confirm, Revert, expiry, idempotency, and limits that hold
//! however many clients and server processes race.

use coupon_service::{domain::Timestamp, pb};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::{metadata::MetadataValue, transport::Channel, Code, Request, Status};
use tonic_types::StatusExt;

use crate::common::{
    error_reason, server_processes, spawn_app, violated_fields, Auth, Backend, TestApp,
};

pub(crate) type Client = pb::coupon_service_client::CouponServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Auth>,
>;

pub(crate) fn limited(code: &str, amount: i64, limits: pb::Limits) -> pb::Coupon {
    pb::Coupon {
        code: code.into(),
        currency: "INR".into(),
        discount: Some(pb::Discount {
            kind: Some(pb::discount::Kind::FixedAmount(pb::FixedAmount { amount })),
        }),
        limits: Some(limits),
        ..Default::default()
    }
}

/// A fixed 1000-off coupon usable `uses` times in all.
pub(crate) fn max_uses(code: &str, uses: i64) -> pb::Coupon {
    limited(
        code,
        1_000,
        pb::Limits {
            max_redemptions: Some(uses),
            ..Default::default()
        },
    )
}

pub(crate) fn order(
    codes: &[&str],
    order_id: &str,
    customer: &str,
    status: pb::OrderStatus,
) -> pb::RedeemRequest {
    pb::RedeemRequest {
        codes: codes.iter().map(|c| c.to_string()).collect(),
        order_id: order_id.into(),
        order_status: status as i32,
        checkout: Some(pb::Checkout {
            cart: Some(pb::Cart {
                currency: "INR".into(),
                items: vec![pb::LineItem {
                    product_id: "ABC123".into(),
                    unit_price: Some(14_999),
                    quantity: 2,
                    ..Default::default()
                }],
                shipping: 500,
                tax: 347,
                ..Default::default()
            }),
            customer: Some(pb::Customer {
                id: customer.into(),
                email: format!("{customer}@example.com"),
                ..Default::default()
            }),
            payment_method: "UPI".into(),
            ..Default::default()
        }),
        reservation_ttl: None,
    }
}

pub(crate) async fn create(app: &TestApp, coupon: pb::Coupon) -> pb::Coupon {
    app.admin(&app.token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(coupon),
        })
        .await
        .expect("create coupon")
        .into_inner()
}

/// Every coupon's counters equal what its active redemptions consumed, and so do every
/// customer's counts (per coupon, and across coupons by id and by e-mail).
pub(crate) async fn assert_counters_match_ledger(app: &TestApp) {
    let db = Database::connect(&app.database_url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT c.code, c.redemptions, c.budget_used, \
               (SELECT COUNT(*) FROM redemptions r WHERE r.coupon_id = c.id \
                  AND r.status IN ('pending', 'completed')) AS active, \
               (SELECT CAST(COALESCE(SUM(r.discount), 0) AS BIGINT) FROM redemptions r WHERE r.coupon_id = c.id \
                  AND r.status IN ('pending', 'completed')) AS given \
             FROM coupons c",
        ))
        .await
        .unwrap();
    for row in rows {
        let code: String = row.try_get("", "code").unwrap();
        let used: i64 = row.try_get("", "redemptions").unwrap();
        let budget_used: i64 = row.try_get("", "budget_used").unwrap();
        let active: i64 = row.try_get("", "active").unwrap();
        let given: i64 = row.try_get("", "given").unwrap();
        assert_eq!(used, active, "{code}: used equals active redemptions");
        assert_eq!(
            budget_used, given,
            "{code}: budget used equals their discounts"
        );
    }
    let mismatched = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT u.coupon_id FROM coupon_customer_usage u WHERE u.redemptions <> \
               (SELECT COUNT(*) FROM redemptions r WHERE r.coupon_id = u.coupon_id \
                  AND r.customer_id = u.customer_key AND r.status IN ('pending', 'completed')) \
             UNION ALL \
             SELECT s.customer_key FROM customer_stats s WHERE s.active_redemptions <> \
               (SELECT COUNT(*) FROM redemptions r WHERE r.tenant_id = s.tenant_id \
                  AND (r.customer_id = s.customer_key OR 'email:' || r.customer_email = s.customer_key) \
                  AND r.status IN ('pending', 'completed'))",
        ))
        .await
        .unwrap();
    assert!(
        mismatched.is_empty(),
        "customer counts equal active redemptions"
    );
}

async fn a_redemption_lives_through_confirm_and_revert(backend: Backend) {
    let app = spawn_app(backend).await;
    let coupon = create(
        &app,
        limited(
            "CUP-21",
            2_000,
            pb::Limits {
                max_redemptions: Some(2),
                ..Default::default()
            },
        ),
    )
    .await;
    let mut client = app.coupons(&app.token);
    let mut request = Request::new(order(
        &["cup-21"],
        "order_123",
        "customerA_123",
        pb::OrderStatus::Pending,
    ));
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::from_static("req-redeem-1"));
    let redeemed = client.redeem(request).await.unwrap().into_inner();
    assert_eq!(redeemed.request_id, "req-redeem-1");
    let r = &redeemed.redemptions[0];
    assert_eq!(
        (r.code.as_str(), r.order_id.as_str(), r.customer_id.as_str()),
        ("CUP-21", "order_123", "customerA_123")
    );
    assert_eq!(
        (r.coupon_id.as_str(), r.discount),
        (coupon.id.as_str(), 2_000)
    );
    assert_eq!(r.status, pb::RedemptionStatus::Pending as i32);
    assert!(
        r.expire_time.is_some(),
        "a pending redemption holds usage until it expires"
    );

    let fetched = client
        .get_redemption(pb::GetRedemptionRequest { id: r.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&fetched, r);

    let confirmed = client
        .confirm(pb::ConfirmRequest {
            order_id: "order_123".into(),
            codes: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        confirmed.redemptions[0].status,
        pb::RedemptionStatus::Completed as i32
    );
    assert!(confirmed.redemptions[0].expire_time.is_none());

    // A customer with a completed redemption is returning: a new-customers coupon refuses them.
    let mut first = limited("FIRSTONLY", 100, pb::Limits::default());
    first.conditions = Some(pb::Conditions {
        customer_segment: pb::CustomerSegment::New as i32,
        ..Default::default()
    });
    create(&app, first).await;
    let checkout = order(&[], "x", "customerA_123", pb::OrderStatus::Pending).checkout;
    let answer = client
        .validate(pb::ValidateRequest {
            codes: vec!["FIRSTONLY".into()],
            checkout: checkout.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.results[0].rejections[0].reason,
        "CUSTOMER_NOT_ELIGIBLE"
    );

    let listed = client
        .list_redemptions(pb::ListRedemptionsRequest {
            customer_id: "customerA_123".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.redemptions.len(), 1);
    let by_coupon = client
        .list_redemptions(pb::ListRedemptionsRequest {
            coupon_id: coupon.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_coupon.redemptions.len(), 1);

    let reverted = client
        .revert(pb::RevertRequest {
            order_id: "order_123".into(),
            codes: vec![],
            reason: "payment failed".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reverted.redemptions[0].status,
        pb::RedemptionStatus::Reverted as i32
    );
    let again = client
        .revert(pb::RevertRequest {
            order_id: "order_123".into(),
            codes: vec![],
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.redemptions, reverted.redemptions,
        "reverting twice answers the same"
    );
    let usage = app
        .admin(&app.token)
        .get_coupon(pb::GetCouponRequest {
            id: coupon.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .usage
        .unwrap();
    assert_eq!(
        usage,
        pb::Usage {
            redemptions: 0,
            budget_used: 0
        },
        "usage released"
    );
    // Reverted, the customer is new again.
    let answer = client
        .validate(pb::ValidateRequest {
            codes: vec!["FIRSTONLY".into()],
            checkout,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.valid);

    let confirm_reverted = client
        .confirm(pb::ConfirmRequest {
            order_id: "order_123".into(),
            codes: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(confirm_reverted.code(), Code::FailedPrecondition);
    assert_eq!(
        error_reason(&confirm_reverted).as_deref(),
        Some("REDEMPTION_REVERTED")
    );
    for missing in [
        client
            .revert(pb::RevertRequest {
                order_id: "nope".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        client
            .confirm(pb::ConfirmRequest {
                order_id: "nope".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        client
            .get_redemption(pb::GetRedemptionRequest {
                id: "rdm_nope".into(),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(missing.code(), Code::NotFound);
    }
    assert_counters_match_ledger(&app).await;
}

async fn redeem_refuses_bad_input_and_coupons_that_do_not_apply(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, max_uses("GOOD", 5)).await;
    let mut big = max_uses("BIGONLY", 5);
    big.conditions = Some(pb::Conditions {
        min_subtotal: 1_000_000,
        ..Default::default()
    });
    create(&app, big).await;
    let mut client = app.coupons(&app.token);

    let anonymous = client
        .redeem(order(&["GOOD"], "o-1", "", pb::OrderStatus::Pending))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&anonymous), ["checkout.customer.id"]);
    let mut no_status = order(&["GOOD"], "", "c", pb::OrderStatus::Unspecified);
    no_status.reservation_ttl = Some(prost_types::Duration {
        seconds: 0,
        nanos: 0,
    });
    let status = client.redeem(no_status).await.unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["order_id", "order_status", "reservation_ttl"]
    );

    // All or nothing: GOOD applies, BIGONLY does not, so neither is redeemed.
    let mut request = Request::new(order(
        &["GOOD", "BIGONLY", "GHOST"],
        "o-2",
        "c",
        pb::OrderStatus::Completed,
    ));
    request
        .metadata_mut()
        .insert("accept-language", MetadataValue::from_static("id"));
    let refused = client.redeem(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let info = refused.get_details_error_info().expect("one ErrorInfo");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("BELOW_MINIMUM_AMOUNT", "coupons.v1")
    );
    assert_eq!(
        info.metadata.get("code").map(String::as_str),
        Some("BIGONLY")
    );
    let localized = refused
        .get_details_localized_message()
        .expect("a localized message");
    assert_eq!(localized.locale, "id-ID");
    assert!(
        localized
            .message
            .starts_with("Kode diskon ini hanya berlaku"),
        "{}",
        localized.message
    );
    let failures = refused
        .get_details_precondition_failure()
        .expect("every reason");
    let reasons: Vec<(&str, &str)> = failures
        .violations
        .iter()
        .map(|v| (v.r#type.as_str(), v.subject.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("BELOW_MINIMUM_AMOUNT", "BIGONLY"),
            ("COUPON_NOT_FOUND", "GHOST")
        ]
    );
    let nothing = client
        .list_redemptions(pb::ListRedemptionsRequest {
            order_id: "o-2".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        nothing.redemptions.is_empty(),
        "a refused order records nothing"
    );

    // Same order and code with different content: DUPLICATE_ORDER.
    client
        .redeem(order(&["GOOD"], "o-3", "c", pb::OrderStatus::Pending))
        .await
        .unwrap();
    let different = client
        .redeem(order(&["GOOD"], "o-3", "c", pb::OrderStatus::Completed))
        .await
        .unwrap_err();
    assert_eq!(different.code(), Code::AlreadyExists);
    assert_eq!(error_reason(&different).as_deref(), Some("DUPLICATE_ORDER"));
    assert_counters_match_ledger(&app).await;
}

/// Fires `requests` at the servers' channels at once, round-robin, and splits the outcomes.
pub(crate) async fn race(
    channels: &[Channel],
    token: &str,
    requests: Vec<pb::RedeemRequest>,
) -> (Vec<pb::RedeemResponse>, Vec<Status>) {
    let mut tasks = Vec::new();
    for (n, request) in requests.into_iter().enumerate() {
        let mut client: Client = pb::coupon_service_client::CouponServiceClient::with_interceptor(
            channels[n % channels.len()].clone(),
            Auth::bearer(token),
        );
        tasks.push(tokio::spawn(async move {
            client.redeem(request).await.map(|r| r.into_inner())
        }));
    }
    let (mut won, mut lost) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            Ok(answer) => won.push(answer),
            Err(status) => lost.push(status),
        }
    }
    (won, lost)
}

pub(crate) fn reasons(lost: &[Status]) -> Vec<String> {
    let mut reasons: Vec<String> = lost
        .iter()
        .map(|s| format!("{:?} {}", s.code(), error_reason(s).unwrap_or_default()))
        .collect();
    reasons.sort();
    reasons.dedup();
    reasons
}

async fn limits_hold_when_three_processes_race(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, max_uses("FIFTY", 50)).await;
    create(
        &app,
        limited(
            "ONEEACH",
            1_000,
            pb::Limits {
                max_redemptions_per_customer: Some(1),
                ..Default::default()
            },
        ),
    )
    .await;
    create(
        &app,
        limited(
            "BUDGET",
            1_000,
            pb::Limits {
                budget: Some(25_000),
                ..Default::default()
            },
        ),
    )
    .await;
    let (_processes, channels) = server_processes(&app, 3).await;

    let requests = (0..400)
        .map(|n| {
            order(
                &["FIFTY"],
                &format!("fifty-{n}"),
                &format!("cust-{n}"),
                pb::OrderStatus::Completed,
            )
        })
        .collect();
    let (won, lost) = race(&channels, &app.token, requests).await;
    assert_eq!(won.len(), 50, "exactly the limit succeeds");
    assert_eq!(reasons(&lost), ["FailedPrecondition USAGE_LIMIT_REACHED"]);

    let requests = (0..60)
        .map(|n| {
            order(
                &["ONEEACH"],
                &format!("one-{n}"),
                "the-same-customer",
                pb::OrderStatus::Pending,
            )
        })
        .collect();
    let (won, lost) = race(&channels, &app.token, requests).await;
    assert_eq!(won.len(), 1, "one per customer");
    assert_eq!(
        reasons(&lost),
        ["FailedPrecondition CUSTOMER_LIMIT_REACHED"]
    );

    let requests = (0..100)
        .map(|n| {
            order(
                &["BUDGET"],
                &format!("budget-{n}"),
                &format!("b-{n}"),
                pb::OrderStatus::Completed,
            )
        })
        .collect();
    let (won, lost) = race(&channels, &app.token, requests).await;
    assert_eq!(
        won.len(),
        25,
        "the budget pays for exactly 25 discounts of 1000"
    );
    assert_eq!(reasons(&lost), ["FailedPrecondition BUDGET_EXHAUSTED"]);

    assert_counters_match_ledger(&app).await;
}

async fn identical_retries_racing_redeem_once(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, max_uses("ONCE", 1)).await;
    let (_processes, channels) = server_processes(&app, 3).await;
    let requests = (0..20)
        .map(|_| order(&["ONCE"], "order-retried", "c-1", pb::OrderStatus::Pending))
        .collect();
    let (won, lost) = race(&channels, &app.token, requests).await;
    assert!(lost.is_empty(), "{lost:?}");
    assert_eq!(won.len(), 20);
    // Each answer carries its own call's request id; the redemptions are the first call's.
    assert!(
        won.iter()
            .all(|answer| answer.redemptions == won[0].redemptions),
        "twenty identical redemptions"
    );
    assert!(won.iter().all(|answer| !answer.request_id.is_empty()));
    let ledger = app
        .coupons(&app.token)
        .list_redemptions(pb::ListRedemptionsRequest {
            order_id: "order-retried".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ledger.redemptions.len(), 1, "one redemption");
    assert_counters_match_ledger(&app).await;
}

async fn a_revert_frees_exactly_one_slot(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, max_uses("THREE", 3)).await;
    let mut client = app.coupons(&app.token);
    for n in 0..3 {
        client
            .redeem(order(
                &["THREE"],
                &format!("o-{n}"),
                &format!("c-{n}"),
                pb::OrderStatus::Completed,
            ))
            .await
            .unwrap();
    }
    let full = client
        .redeem(order(
            &["THREE"],
            "o-full",
            "c-x",
            pb::OrderStatus::Completed,
        ))
        .await
        .unwrap_err();
    assert_eq!(error_reason(&full).as_deref(), Some("USAGE_LIMIT_REACHED"));
    client
        .revert(pb::RevertRequest {
            order_id: "o-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_processes, channels) = server_processes(&app, 3).await;
    let requests = (0..12)
        .map(|n| {
            order(
                &["THREE"],
                &format!("after-{n}"),
                &format!("a-{n}"),
                pb::OrderStatus::Completed,
            )
        })
        .collect();
    let (won, _) = race(&channels, &app.token, requests).await;
    assert_eq!(won.len(), 1, "exactly one more redeem succeeds");
    assert_counters_match_ledger(&app).await;
}

async fn unconfirmed_reservations_expire_and_free_their_slot(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, max_uses("HELD", 1)).await;
    create(&app, max_uses("KEPT", 1)).await;
    let mut client = app.coupons(&app.token);
    let mut held = order(&["HELD"], "o-held", "c-1", pb::OrderStatus::Pending);
    held.reservation_ttl = Some(prost_types::Duration {
        seconds: 60,
        nanos: 0,
    });
    let held = client
        .redeem(held)
        .await
        .unwrap()
        .into_inner()
        .redemptions
        .remove(0);
    client
        .redeem(order(&["KEPT"], "o-kept", "c-1", pb::OrderStatus::Pending))
        .await
        .unwrap();
    client
        .confirm(pb::ConfirmRequest {
            order_id: "o-kept".into(),
            codes: vec![],
        })
        .await
        .unwrap();

    let blocked = client
        .redeem(order(&["HELD"], "o-next", "c-2", pb::OrderStatus::Pending))
        .await
        .unwrap_err();
    assert_eq!(
        error_reason(&blocked).as_deref(),
        Some("USAGE_LIMIT_REACHED"),
        "a reservation holds its slot"
    );

    // Two minutes from now, as any replica's sweeper would see it.
    let later = Timestamp(Timestamp::now().micros() + 120_000_000);
    assert_eq!(
        app.server_store.expire_due(later, 100).await.unwrap(),
        1,
        "only the unconfirmed one"
    );
    assert_eq!(
        app.server_store.expire_due(later, 100).await.unwrap(),
        0,
        "released once"
    );
    let expired = client
        .get_redemption(pb::GetRedemptionRequest {
            id: held.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expired.status, pb::RedemptionStatus::Expired as i32);
    client
        .redeem(order(&["HELD"], "o-next", "c-2", pb::OrderStatus::Pending))
        .await
        .expect("the slot is free again");
    let kept = client
        .redeem(order(&["KEPT"], "o-other", "c-3", pb::OrderStatus::Pending))
        .await
        .unwrap_err();
    assert_eq!(
        error_reason(&kept).as_deref(),
        Some("USAGE_LIMIT_REACHED"),
        "a confirmed one does not expire"
    );
    assert_counters_match_ledger(&app).await;
}

async fn the_background_sweeper_expires_reservations(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, max_uses("BRIEF", 1)).await;
    let mut client = app.coupons(&app.token);
    let mut brief = order(&["BRIEF"], "o-brief", "c-1", pb::OrderStatus::Pending);
    brief.reservation_ttl = Some(prost_types::Duration {
        seconds: 1,
        nanos: 0,
    });
    let redemption = client
        .redeem(brief)
        .await
        .unwrap()
        .into_inner()
        .redemptions
        .remove(0);
    // The server sweeps every second (test settings); wait for the state, at most 30 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let current = client
            .get_redemption(pb::GetRedemptionRequest {
                id: redemption.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if current.status == pb::RedemptionStatus::Expired as i32 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reservation never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_counters_match_ledger(&app).await;
}

crate::on_both_databases!(
    a_redemption_lives_through_confirm_and_revert,
    redeem_refuses_bad_input_and_coupons_that_do_not_apply,
    limits_hold_when_three_processes_race,
    identical_retries_racing_redeem_once,
    a_revert_frees_exactly_one_slot,
    unconfirmed_reservations_expire_and_free_their_slot,
    the_background_sweeper_expires_reservations,
);

/// With its database gone, the service answers UNAVAILABLE (retry elsewhere or later), never
/// INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_database_is_unavailable() {
    let app = spawn_app(Backend::Postgres).await;
    create(&app, limited("ANY", 100, pb::Limits::default())).await;
    let mut client = app.coupons(&app.token);
    // Cache the key, so the failing statement is the call's own.
    client
        .redeem(order(&["ANY"], "o-1", "c", pb::OrderStatus::Completed))
        .await
        .unwrap();

    let (base, name) = app.database_url.rsplit_once('/').unwrap();
    let admin = Database::connect(format!("{base}/postgres")).await.unwrap();
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    let status = client
        .redeem(order(&["ANY"], "o-2", "c", pb::OrderStatus::Completed))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let status = client
        .list_redemptions(pb::ListRedemptionsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
}
