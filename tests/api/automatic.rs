//! Automatic promotions: applied without a typed code whenever their conditions hold, under the
//! same stacking rules, limits and reasons as codes, and redeemed with the order.

use coupon_service::pb;
use tonic::Code;

use crate::{
    common::{error_reason, server_processes, spawn_app, Backend, TestApp},
    ledger::{assert_counters_match_ledger, create, limited, order, race, Client},
};

/// `coupon` as an automatic promotion.
fn automatic(coupon: pb::Coupon) -> pb::Coupon {
    pb::Coupon {
        automatic: true,
        ..coupon
    }
}

fn stackable(coupon: pb::Coupon, priority: i32) -> pb::Coupon {
    pb::Coupon {
        stacking: Some(pb::Stacking {
            stackable: true,
            priority,
            ..Default::default()
        }),
        ..coupon
    }
}

fn exclusive(coupon: pb::Coupon, priority: i32) -> pb::Coupon {
    pb::Coupon {
        stacking: Some(pb::Stacking {
            priority,
            ..Default::default()
        }),
        ..coupon
    }
}

/// A fixed `amount` off items of `category`.
fn on_category(code: &str, amount: i64, category: &str) -> pb::Coupon {
    pb::Coupon {
        target: Some(pb::Target {
            categories: vec![category.into()],
            ..Default::default()
        }),
        ..limited(code, amount, pb::Limits::default())
    }
}

/// A cart of shoes (2 x 149.99) in INR, with 5.00 shipping, on the web.
fn shoes_checkout() -> pb::Checkout {
    redeem_shoes(&[], "unused", "ann").checkout.unwrap()
}

async fn apply(app: &TestApp, codes: &[&str], explain: bool) -> pb::PricedCart {
    app.coupons(&app.token)
        .apply(pb::ApplyRequest {
            codes: codes.iter().map(|c| c.to_string()).collect(),
            checkout: Some(shoes_checkout()),
            explain_automatic: explain,
        })
        .await
        .expect("apply answers")
        .into_inner()
        .cart
        .expect("a priced cart")
}

fn applied(cart: &pb::PricedCart) -> Vec<(String, bool, i64)> {
    cart.applied
        .iter()
        .map(|a| (a.code.clone(), a.automatic, a.item_discount))
        .collect()
}

fn rejected(cart: &pb::PricedCart) -> Vec<(String, bool, Vec<String>)> {
    cart.rejected
        .iter()
        .map(|r| {
            (
                r.code.clone(),
                r.automatic,
                r.rejections.iter().map(|j| j.reason.clone()).collect(),
            )
        })
        .collect()
}

/// The checkout's order `order_id` with `codes`, on the shoes cart.
fn redeem_shoes(codes: &[&str], order_id: &str, customer: &str) -> pb::RedeemRequest {
    let mut request = order(codes, order_id, customer, pb::OrderStatus::Completed);
    let checkout = request.checkout.as_mut().unwrap();
    checkout.cart.as_mut().unwrap().items[0].categories = vec!["shoes".into()];
    checkout.channel = "web".into();
    request
}

fn redeemed(answer: &pb::RedeemResponse) -> Vec<(String, bool, i64)> {
    answer
        .redemptions
        .iter()
        .map(|r| (r.code.clone(), r.automatic, r.discount))
        .collect()
}

async fn an_automatic_promotion_stacks_with_a_typed_code(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        stackable(limited("SAVE10", 1_000, Default::default()), 0),
    )
    .await;
    let promotion = create(
        &app,
        automatic(stackable(on_category("SHOES5", 500, "shoes"), 5)),
    )
    .await;
    assert!(promotion.automatic, "the flag is kept");
    // Indexed away from this checkout: another currency, another category, another channel.
    let dollars = pb::Coupon {
        currency: "USD".into(),
        ..automatic(stackable(limited("DOLLAR", 100, Default::default()), 0))
    };
    create(&app, dollars).await;
    create(
        &app,
        automatic(stackable(on_category("HATS", 100, "hats"), 0)),
    )
    .await;
    let mut app_only = automatic(stackable(limited("APPONLY", 100, Default::default()), 0));
    app_only.conditions = Some(pb::Conditions {
        channels: vec!["app".into()],
        ..Default::default()
    });
    create(&app, app_only).await;
    // Found for this checkout, but short of its minimum.
    let mut big = automatic(stackable(on_category("BIGSHOES", 5_000, "shoes"), 0));
    big.conditions = Some(pb::Conditions {
        min_subtotal: 100_000,
        ..Default::default()
    });
    create(&app, big).await;

    let cart = apply(&app, &["SAVE10"], false).await;
    assert_eq!(
        applied(&cart),
        [
            ("SHOES5".to_owned(), true, 500),
            ("SAVE10".to_owned(), false, 1_000)
        ],
        "higher priority first"
    );
    assert!(
        cart.rejected.is_empty(),
        "refused promotions only when asked"
    );
    assert_eq!(cart.total, 2 * 14_999 - 1_500 + 500 + 347);

    // Asked, the refused promotion shows with the same reasons a code gets; the ones indexed
    // away are not even read.
    let cart = apply(&app, &["SAVE10"], true).await;
    assert_eq!(
        rejected(&cart),
        [(
            "BIGSHOES".to_owned(),
            true,
            vec!["BELOW_MINIMUM_AMOUNT".to_owned()]
        )]
    );

    // No code at all: the best price the automatic promotions give.
    let cart = apply(&app, &[], false).await;
    assert_eq!(applied(&cart), [("SHOES5".to_owned(), true, 500)]);

    // Typing an automatic promotion's code does not find it, so it cannot count twice.
    let cart = apply(&app, &["SHOES5"], false).await;
    assert_eq!(applied(&cart), [("SHOES5".to_owned(), true, 500)]);
    assert_eq!(
        rejected(&cart),
        [(
            "SHOES5".to_owned(),
            false,
            vec!["COUPON_NOT_FOUND".to_owned()]
        )]
    );

    // Validate: the requested codes, then the automatic promotions that apply.
    let validation = app
        .coupons(&app.token)
        .validate(pb::ValidateRequest {
            codes: vec!["SAVE10".into()],
            checkout: Some(shoes_checkout()),
            explain_automatic: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(validation.valid);
    let results: Vec<(String, bool, bool)> = validation
        .results
        .iter()
        .map(|r| (r.code.clone(), r.automatic, r.valid))
        .collect();
    assert_eq!(
        results,
        [
            ("SAVE10".to_owned(), false, true),
            ("SHOES5".to_owned(), true, true)
        ]
    );

    // ListApplicable keeps to codes customers can type.
    let listed = app
        .coupons(&app.token)
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(shoes_checkout()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<String> = listed
        .coupons
        .iter()
        .map(|c| c.validation.as_ref().unwrap().code.clone())
        .collect();
    assert_eq!(codes, ["SAVE10"]);

    // Apply reads the codes and the automatic promotions in one statement. The pool's counter
    // also counts the server's background work (event feed, health), so the fewest of a few
    // calls is the call's own.
    let mut fewest = u64::MAX;
    for _ in 0..5 {
        let before = app.server_store.statements_executed();
        apply(&app, &["SAVE10"], false).await;
        fewest = fewest.min(app.server_store.statements_executed() - before);
    }
    assert_eq!(fewest, 1);

    // Redeem records both in one transaction; Revert without codes releases both.
    let mut client = app.coupons(&app.token);
    let answer = client
        .redeem(redeem_shoes(&["SAVE10"], "o-1", "ann"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        redeemed(&answer),
        [
            ("SAVE10".to_owned(), false, 1_000),
            ("SHOES5".to_owned(), true, 500)
        ]
    );
    let reverted = client
        .revert(pb::RevertRequest {
            order_id: "o-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reverted.redemptions.len(), 2);
    assert!(reverted
        .redemptions
        .iter()
        .all(|r| r.status == pb::RedemptionStatus::Reverted as i32));
    assert_counters_match_ledger(&app).await;
}

async fn an_exclusive_automatic_promotion_competes_with_codes_by_priority(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        automatic(exclusive(on_category("MEGA", 3_000, "shoes"), 10)),
    )
    .await;
    create(
        &app,
        stackable(limited("SAVE10", 1_000, Default::default()), 0),
    )
    .await;
    create(
        &app,
        exclusive(limited("VIP", 5_000, Default::default()), 20),
    )
    .await;

    // The exclusive promotion leads and refuses the typed code, with the code's usual reason.
    let cart = apply(&app, &["SAVE10"], false).await;
    assert_eq!(applied(&cart), [("MEGA".to_owned(), true, 3_000)]);
    assert_eq!(
        rejected(&cart),
        [(
            "SAVE10".to_owned(),
            false,
            vec!["NOT_COMBINABLE".to_owned()]
        )]
    );
    let status = app
        .coupons(&app.token)
        .redeem(redeem_shoes(&["SAVE10"], "o-1", "ann"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&status).as_deref(), Some("NOT_COMBINABLE"));

    // A typed code of higher priority leads instead; the promotion is left out, and says why
    // when asked.
    let cart = apply(&app, &["VIP"], false).await;
    assert_eq!(applied(&cart), [("VIP".to_owned(), false, 5_000)]);
    assert!(cart.rejected.is_empty());
    let cart = apply(&app, &["VIP"], true).await;
    assert_eq!(
        rejected(&cart),
        [("MEGA".to_owned(), true, vec!["NOT_COMBINABLE".to_owned()])]
    );
    let answer = app
        .coupons(&app.token)
        .redeem(redeem_shoes(&["VIP"], "o-2", "ann"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(redeemed(&answer), [("VIP".to_owned(), false, 5_000)]);
    assert_counters_match_ledger(&app).await;
}

async fn an_automatic_promotions_limits_are_consumed_at_redeem(backend: Backend) {
    let app = spawn_app(backend).await;
    let twice = pb::Limits {
        max_redemptions: Some(2),
        ..Default::default()
    };
    create(
        &app,
        automatic(stackable(limited("TWICE", 1_000, twice), 0)),
    )
    .await;
    let budget = pb::Limits {
        budget: Some(700),
        ..Default::default()
    };
    let budgeted = pb::Coupon {
        limits: Some(budget),
        ..automatic(stackable(on_category("BUDGET", 500, "shoes"), 0))
    };
    create(&app, budgeted).await;
    let mut client: Client = app.coupons(&app.token);

    let first = client
        .redeem(redeem_shoes(&[], "o-1", "c1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        redeemed(&first),
        [
            ("BUDGET".to_owned(), true, 500),
            ("TWICE".to_owned(), true, 1_000)
        ]
    );
    let second = client
        .redeem(redeem_shoes(&[], "o-2", "c2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        redeemed(&second),
        [
            ("BUDGET".to_owned(), true, 200),
            ("TWICE".to_owned(), true, 1_000)
        ],
        "the budget's last 200"
    );
    let third = client
        .redeem(redeem_shoes(&[], "o-3", "c3"))
        .await
        .unwrap()
        .into_inner();
    assert!(third.redemptions.is_empty(), "both ran out");
    let cart = apply(&app, &[], true).await;
    assert_eq!(
        rejected(&cart),
        [
            (
                "BUDGET".to_owned(),
                true,
                vec!["BUDGET_EXHAUSTED".to_owned()]
            ),
            (
                "TWICE".to_owned(),
                true,
                vec!["USAGE_LIMIT_REACHED".to_owned()]
            )
        ]
    );

    // An identical retry replays what the order got, though both have run out since.
    let retried = client
        .redeem(redeem_shoes(&[], "o-2", "c2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(redeemed(&retried), redeemed(&second));
    let ids = |a: &pb::RedeemResponse| {
        a.redemptions
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&retried), ids(&second));
    // The same order with another request is a conflict, as with codes.
    let mut different = redeem_shoes(&[], "o-2", "c2");
    different.order_status = pb::OrderStatus::Pending as i32;
    let status = client.redeem(different).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);

    // Reverting an order gives its usage back.
    client
        .revert(pb::RevertRequest {
            order_id: "o-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let fourth = client
        .redeem(redeem_shoes(&[], "o-4", "c4"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        redeemed(&fourth),
        [
            ("BUDGET".to_owned(), true, 500),
            ("TWICE".to_owned(), true, 1_000)
        ]
    );
    assert_counters_match_ledger(&app).await;
}

async fn a_limited_automatic_promotion_raced_across_processes_is_exact(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        stackable(limited("EVERYONE", 100, Default::default()), 0),
    )
    .await;
    let limit = pb::Limits {
        max_redemptions: Some(25),
        ..Default::default()
    };
    let promotion = create(
        &app,
        automatic(stackable(limited("FIRST25", 1_000, limit), 0)),
    )
    .await;
    let (_processes, channels) = server_processes(&app, 2).await;
    let requests = (0..120)
        .map(|n| redeem_shoes(&["EVERYONE"], &format!("race-{n}"), &format!("c-{n}")))
        .collect();
    let (won, lost) = race(&channels, &app.token, requests).await;
    assert!(lost.is_empty(), "{lost:?}");
    assert_eq!(
        won.len(),
        120,
        "a code that applies is never refused for a promotion"
    );
    let got_it = won
        .iter()
        .filter(|answer| answer.redemptions.iter().any(|r| r.code == "FIRST25"))
        .count();
    assert_eq!(got_it, 25, "exactly the promotion's limit");
    let stored = app
        .admin(&app.token)
        .get_coupon(pb::GetCouponRequest {
            id: promotion.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.usage.unwrap().redemptions, 25);
    assert_counters_match_ledger(&app).await;
}

async fn automatic_is_set_on_create_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let promotion = create(&app, automatic(limited("AUTO", 100, Default::default()))).await;
    let status = app
        .admin(&app.token)
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(pb::Coupon {
                id: promotion.id.clone(),
                automatic: false,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["automatic".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Its rules can change, and it is found under its new target at once.
    app.admin(&app.token)
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(pb::Coupon {
                id: promotion.id.clone(),
                target: Some(pb::Target {
                    categories: vec!["hats".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["target".into()],
            }),
        })
        .await
        .unwrap();
    assert!(apply(&app, &[], false).await.applied.is_empty());
    let too_wide = pb::Coupon {
        target: Some(pb::Target {
            product_ids: (0..1_001).map(|n| format!("p{n}")).collect(),
            ..Default::default()
        }),
        ..automatic(limited("WIDE", 100, Default::default()))
    };
    let status = app
        .admin(&app.token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(too_wide),
        })
        .await
        .unwrap_err();
    assert_eq!(
        crate::common::violated_fields(&status),
        ["coupon.automatic"]
    );
}

/// An order that adds a code in a later Redeem keeps the promotion its first call got: the
/// promotion is neither recorded twice nor a reason to refuse the new code, and a retry of
/// either call still replays it.
async fn an_order_adding_a_code_later_keeps_its_promotion(backend: Backend) {
    let app = spawn_app(backend).await;
    let once = pb::Limits {
        max_redemptions: Some(5),
        ..Default::default()
    };
    create(&app, automatic(stackable(limited("AUTO", 1_000, once), 0))).await;
    create(
        &app,
        stackable(limited("FIRST", 500, pb::Limits::default()), 1),
    )
    .await;
    create(
        &app,
        stackable(limited("SECOND", 300, pb::Limits::default()), 2),
    )
    .await;
    let mut client: Client = app.coupons(&app.token);
    let first = redeem_shoes(&["FIRST"], "o-1", "c1");
    let answer = client.redeem(first.clone()).await.unwrap().into_inner();
    assert_eq!(
        redeemed(&answer),
        [
            ("FIRST".to_owned(), false, 500),
            ("AUTO".to_owned(), true, 1_000)
        ]
    );
    let second = redeem_shoes(&["SECOND"], "o-1", "c1");
    let later = client.redeem(second.clone()).await.unwrap().into_inner();
    assert_eq!(redeemed(&later), [("SECOND".to_owned(), false, 300)]);
    let later_again = client.redeem(second).await.unwrap().into_inner();
    assert_eq!(
        redeemed(&later_again),
        redeemed(&later),
        "the later call replays"
    );
    let again = client.redeem(first).await.unwrap().into_inner();
    assert_eq!(
        redeemed(&again),
        redeemed(&answer),
        "the first call replays"
    );
    let order: Vec<(String, bool)> = client
        .list_redemptions(pb::ListRedemptionsRequest {
            order_id: "o-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .redemptions
        .into_iter()
        .map(|r| (r.code, r.automatic))
        .collect();
    assert_eq!(order.len(), 3, "{order:?}");
    assert_eq!(
        order.iter().filter(|(code, _)| code == "AUTO").count(),
        1,
        "{order:?}"
    );
    assert_counters_match_ledger(&app).await;
}

crate::on_both_databases!(
    an_automatic_promotion_stacks_with_a_typed_code,
    an_exclusive_automatic_promotion_competes_with_codes_by_priority,
    an_automatic_promotions_limits_are_consumed_at_redeem,
    a_limited_automatic_promotion_raced_across_processes_is_exact,
    automatic_is_set_on_create_only,
    an_order_adding_a_code_later_keeps_its_promotion,
);
