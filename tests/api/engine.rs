//! The rules engine through the API: Validate, Apply, ListApplicable and campaigns.

use coupon_service::pb;
use sea_orm::{ConnectionTrait, Database};
use tonic::{metadata::MetadataValue, Code, Request};

use crate::common::{spawn_app, violated_fields, Backend, TestApp};

// === builders ===

pub(crate) fn fixed(code: &str, currency: &str, amount: i64) -> pb::Coupon {
    pb::Coupon {
        code: code.into(),
        currency: currency.into(),
        discount: Some(pb::Discount {
            kind: Some(pb::discount::Kind::FixedAmount(pb::FixedAmount { amount })),
        }),
        ..Default::default()
    }
}

fn percentage(code: &str, basis_points: i32, max_discount: Option<i64>) -> pb::Coupon {
    pb::Coupon {
        code: code.into(),
        currency: "INR".into(),
        discount: Some(pb::Discount {
            kind: Some(pb::discount::Kind::Percentage(pb::Percentage {
                basis_points,
                max_discount,
            })),
        }),
        ..Default::default()
    }
}

fn conditions(edit: impl FnOnce(&mut pb::Conditions)) -> Option<pb::Conditions> {
    let mut c = pb::Conditions::default();
    edit(&mut c);
    Some(c)
}

pub(crate) fn item(product: &str, unit_price: i64, quantity: i64) -> pb::LineItem {
    pb::LineItem {
        product_id: product.into(),
        unit_price: Some(unit_price),
        quantity,
        ..Default::default()
    }
}

pub(crate) fn checkout(currency: &str, items: Vec<pb::LineItem>) -> pb::Checkout {
    pb::Checkout {
        cart: Some(pb::Cart {
            currency: currency.into(),
            items,
            ..Default::default()
        }),
        customer: Some(pb::Customer {
            id: "cust-1".into(),
            email: "a@example.com".into(),
            ..Default::default()
        }),
        ..Default::default()
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

pub(crate) fn in_language<T>(message: T, language: &'static str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("accept-language", MetadataValue::from_static(language));
    request
}

async fn validate(
    app: &TestApp,
    codes: &[&str],
    checkout: pb::Checkout,
    language: &'static str,
) -> pb::ValidateResponse {
    app.coupons(&app.token)
        .validate(in_language(
            pb::ValidateRequest {
                codes: codes.iter().map(|c| c.to_string()).collect(),
                checkout: Some(checkout),
                ..Default::default()
            },
            language,
        ))
        .await
        .expect("validate answers")
        .into_inner()
}

pub(crate) async fn apply(app: &TestApp, codes: &[&str], checkout: pb::Checkout) -> pb::PricedCart {
    app.coupons(&app.token)
        .apply(pb::ApplyRequest {
            codes: codes.iter().map(|c| c.to_string()).collect(),
            checkout: Some(checkout),
            ..Default::default()
        })
        .await
        .expect("apply answers")
        .into_inner()
        .cart
        .expect("a priced cart")
}

/// Sets usage counters directly, as the redemption ledger would.
async fn set_usage(
    app: &TestApp,
    code: &str,
    redemptions: i64,
    budget_used: i64,
    customer_redemptions: Option<(&str, i64)>,
) {
    let db = Database::connect(&app.database_url).await.unwrap();
    db.execute_unprepared(&format!(
        "UPDATE coupons SET redemptions = {redemptions}, budget_used = {budget_used} WHERE code = '{code}'"
    ))
    .await
    .unwrap();
    if let Some((customer, count)) = customer_redemptions {
        db.execute_unprepared(&format!(
            "INSERT INTO coupon_customer_usage (coupon_id, customer_key, redemptions) \
             SELECT id, '{customer}', {count} FROM coupons WHERE code = '{code}'"
        ))
        .await
        .unwrap();
    }
}

const HOUR: i64 = 3_600;

/// A change to the default checkout that provokes a reason.
type CheckoutEdit = Box<dyn Fn(&mut pb::Checkout)>;

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// === tests ===

/// Each reason, produced through the API, with its English and Indonesian message.
async fn every_reason_in_both_languages(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = now_seconds();
    let mut inactive = fixed("INACTIVE", "INR", 100);
    inactive.active = Some(false);
    let cases: Vec<(pb::Coupon, CheckoutEdit, &str)> = vec![
        (inactive, Box::new(|_| {}), "COUPON_INACTIVE"),
        (
            pb::Coupon {
                conditions: conditions(|c| {
                    c.start_time = Some(prost_types::Timestamp {
                        seconds: now + HOUR,
                        nanos: 0,
                    })
                }),
                ..fixed("LATER", "INR", 100)
            },
            Box::new(|_| {}),
            "COUPON_NOT_STARTED",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| {
                    c.end_time = Some(prost_types::Timestamp {
                        seconds: now - HOUR,
                        nanos: 0,
                    })
                }),
                ..fixed("OLD", "INR", 100)
            },
            Box::new(|_| {}),
            "COUPON_EXPIRED",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| c.excluded_order_types = vec!["fundraising".into()]),
                ..fixed("NOFUND", "INR", 100)
            },
            Box::new(|c| c.order_type = "fundraising".into()),
            "ORDER_TYPE_NOT_ELIGIBLE",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| c.min_subtotal = 1_000_000),
                ..fixed("BIG", "INR", 100)
            },
            Box::new(|_| {}),
            "BELOW_MINIMUM_AMOUNT",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| c.min_quantity = 5),
                ..fixed("MANY", "INR", 100)
            },
            Box::new(|_| {}),
            "BELOW_MINIMUM_QUANTITY",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| {
                    c.customer_segment = pb::CustomerSegment::Returning as i32
                }),
                ..fixed("LOYAL", "INR", 100)
            },
            Box::new(|_| {}),
            "CUSTOMER_NOT_ELIGIBLE",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| c.requires_verified_phone = true),
                ..fixed("VERIFIED", "INR", 100)
            },
            Box::new(|_| {}),
            "PHONE_NOT_VERIFIED",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| c.exclusive_of_loyalty_points = true),
                ..fixed("NOPOINTS", "INR", 100)
            },
            Box::new(|c| c.loyalty_points_used = 50),
            "NOT_COMBINABLE_WITH_POINTS",
        ),
        (
            pb::Coupon {
                limits: Some(pb::Limits {
                    max_redemptions: Some(3),
                    ..Default::default()
                }),
                ..fixed("USEDUP", "INR", 100)
            },
            Box::new(|_| {}),
            "USAGE_LIMIT_REACHED",
        ),
        (
            pb::Coupon {
                limits: Some(pb::Limits {
                    max_redemptions_per_customer: Some(1),
                    ..Default::default()
                }),
                ..fixed("ONCE", "INR", 100)
            },
            Box::new(|_| {}),
            "CUSTOMER_LIMIT_REACHED",
        ),
        (
            pb::Coupon {
                limits: Some(pb::Limits {
                    budget: Some(1_000),
                    ..Default::default()
                }),
                ..fixed("BUDGET", "INR", 100)
            },
            Box::new(|_| {}),
            "BUDGET_EXHAUSTED",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| c.channels = vec!["app".into()]),
                ..fixed("APPONLY", "INR", 100)
            },
            Box::new(|c| c.channel = "web".into()),
            "CHANNEL_NOT_ELIGIBLE",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| c.payment_methods = vec!["card".into()]),
                ..fixed("CARDONLY", "INR", 100)
            },
            Box::new(|c| c.payment_method = "UPI".into()),
            "PAYMENT_METHOD_NOT_ELIGIBLE",
        ),
        (
            pb::Coupon {
                target: Some(pb::Target {
                    categories: vec!["shoes".into()],
                    ..Default::default()
                }),
                ..fixed("SHOES", "INR", 100)
            },
            Box::new(|_| {}),
            "NO_ELIGIBLE_ITEMS",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| {
                    c.order_predicates = vec![pb::Predicate {
                        field: "cart_qty".into(),
                        operator: pb::PredicateOperator::Gt as i32,
                        values: vec!["10".into()],
                    }]
                }),
                ..fixed("BULK", "INR", 100)
            },
            Box::new(|_| {}),
            "PREDICATE_FAILED",
        ),
        (
            fixed("DOLLARS", "USD", 100),
            Box::new(|_| {}),
            "CURRENCY_MISMATCH",
        ),
        (
            pb::Coupon {
                conditions: conditions(|c| c.referrer_customer_id = "cust-1".into()),
                ..fixed("MYREF", "INR", 100)
            },
            Box::new(|_| {}),
            "REFERRER_CANNOT_USE",
        ),
    ];
    for (coupon, _, _) in &cases {
        create(&app, coupon.clone()).await;
    }
    set_usage(&app, "USEDUP", 3, 300, None).await;
    set_usage(&app, "ONCE", 1, 100, Some(("cust-1", 1))).await;
    set_usage(&app, "BUDGET", 10, 1_000, None).await;

    let mut cases: Vec<(String, CheckoutEdit, &str)> = cases
        .into_iter()
        .map(|(c, edit, reason)| (c.code, edit, reason))
        .collect();
    cases.push(("NOSUCHCODE".into(), Box::new(|_| {}), "COUPON_NOT_FOUND"));
    for (code, edit, reason) in cases {
        let mut order = checkout("INR", vec![item("tee", 50_000, 2)]);
        edit(&mut order);
        let english = validate(&app, &[&code], order.clone(), "en-US,en;q=0.9").await;
        let indonesian = validate(&app, &[&code], order, "id-ID").await;
        for answer in [&english, &indonesian] {
            assert!(!answer.valid, "{code}");
            let reasons: Vec<&str> = answer.results[0]
                .rejections
                .iter()
                .map(|r| r.reason.as_str())
                .collect();
            assert_eq!(reasons, [reason], "{code}");
        }
        let en = &english.results[0].rejections[0].message;
        let id = &indonesian.results[0].rejections[0].message;
        assert!(
            !en.is_empty() && !id.is_empty() && en != id,
            "{code}: {en} / {id}"
        );
    }
}

/// The payment-link API's validation, with its numbers and Indonesian messages.
async fn reproduces_the_payment_link_validation(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        pb::Coupon {
            conditions: conditions(|c| {
                c.min_subtotal = 149_900;
                c.excluded_order_types = vec!["payment_request".into(), "fundraising".into()];
                c.customer_segment = pb::CustomerSegment::New as i32;
            }),
            ..fixed("HEMAT", "IDR", 25_000)
        },
    )
    .await;
    let mut link = pb::Checkout {
        cart: Some(pb::Cart {
            currency: "IDR".into(),
            subtotal_override: 119_900,
            ..Default::default()
        }),
        customer: Some(pb::Customer {
            email: "New@Example.com".into(),
            ..Default::default()
        }),
        payment_link_id: "PL-1".into(),
        order_type: "payment_request".into(),
        ..Default::default()
    };
    let answer = validate(&app, &[" hemat "], link.clone(), "id").await;
    let result = &answer.results[0];
    assert_eq!(result.code, "HEMAT");
    let messages: Vec<&str> = result
        .rejections
        .iter()
        .map(|r| r.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "Gagal! Kode diskon tidak dapat digunakan untuk produk payment_request",
            "Kode diskon ini hanya berlaku untuk transaksi dengan harga minimal Rp 1.499.",
        ]
    );
    let below = &result.rejections[1];
    assert_eq!(
        below.metadata.get("missing_amount").map(String::as_str),
        Some("30000")
    );

    // A checkout link of 1.500 by a new customer: valid, with the coupon's public details.
    link.order_type = "checkout".into();
    link.cart.as_mut().unwrap().subtotal_override = 150_000;
    let answer = validate(&app, &["HEMAT"], link, "id").await;
    assert!(answer.valid, "{answer:?}");
    let coupon = answer.results[0].coupon.as_ref().unwrap();
    assert_eq!(coupon.min_subtotal, 149_900);
    assert_eq!(coupon.customer_segment, pb::CustomerSegment::New as i32);
    assert_eq!(answer.results[0].discount, 25_000);
}

/// The cart API's example: 2 x 799 = 1598, SAVE200 gives 200, total 1398, 200 on the line.
async fn reproduces_the_cart_apply(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        pb::Coupon {
            conditions: conditions(|c| c.min_subtotal = 149_900),
            ..fixed("SAVE200", "INR", 20_000)
        },
    )
    .await;
    let cart = apply(
        &app,
        &["save200"],
        checkout("INR", vec![item("12345", 79_900, 2)]),
    )
    .await;
    assert_eq!(
        (cart.subtotal, cart.item_discount, cart.total),
        (159_800, 20_000, 139_800)
    );
    assert_eq!(cart.lines[0].subtotal, 159_800);
    assert_eq!(cart.lines[0].coupon_discount, 20_000);
    assert_eq!(cart.applied[0].code, "SAVE200");
    assert_eq!(cart.applied[0].message, "Coupon applied successfully");
    assert!(cart.rejected.is_empty());
}

/// The promo-check API: discounted amount, free delivery, eligible payment methods, and a promo
/// that removes item promotions with a hint.
async fn reproduces_the_promo_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut promo = percentage("PROMO10", 1_000, None);
    promo.conditions = conditions(|c| c.payment_methods = vec!["card".into(), "wallet".into()]);
    promo.stacking = Some(pb::Stacking {
        stackable: true,
        priority: 1,
        replaces_item_promotions: true,
        removed_promotions_hint: "Applying this promo removes other item discounts".into(),
    });
    create(&app, promo).await;
    create(
        &app,
        pb::Coupon {
            discount: Some(pb::Discount {
                kind: Some(pb::discount::Kind::FreeShipping(pb::FreeShipping {
                    max_discount: None,
                })),
            }),
            stacking: Some(pb::Stacking {
                stackable: true,
                ..Default::default()
            }),
            ..fixed("FREEDEL", "INR", 1)
        },
    )
    .await;
    let mut order = checkout(
        "INR",
        vec![pb::LineItem {
            original_unit_price: 15_443,
            ..item("meal", 12_000, 1)
        }],
    );
    order.cart.as_mut().unwrap().shipping = 1_500;
    let cart = apply(&app, &["PROMO10", "FREEDEL"], order).await;
    assert!(cart.promotions_removed);
    assert_eq!(
        cart.removed_promotions_hint,
        "Applying this promo removes other item discounts"
    );
    assert_eq!(cart.subtotal, 15_443, "priced from the original price");
    assert_eq!(cart.item_discount, 1_544);
    assert_eq!(cart.total, 13_899, "the promo check's amount");
    assert!(cart.free_delivery);
    assert_eq!(cart.shipping_discount, 1_500);
    assert_eq!(cart.payment_methods, ["card", "wallet"]);
    assert!(!cart.referral);
}

/// The redeem API's metadata predicates and their messages.
async fn metadata_predicates_explain_themselves(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        pb::Coupon {
            conditions: conditions(|c| {
                c.item_predicates = vec![pb::Predicate {
                    field: "selling_price".into(),
                    operator: pb::PredicateOperator::Gt as i32,
                    values: vec!["20000".into()],
                }];
                c.order_predicates = vec![pb::Predicate {
                    field: "brand".into(),
                    operator: pb::PredicateOperator::In as i32,
                    values: vec!["brand A".into(), "brand B".into()],
                }];
            }),
            ..fixed("PREMIUM", "INR", 1_000)
        },
    )
    .await;
    let mut order = checkout("INR", vec![item("123", 20_000, 1), item("654", 25_000, 2)]);
    order
        .cart
        .as_mut()
        .unwrap()
        .metadata
        .insert("brand".into(), "brand C".into());
    let answer = validate(&app, &["PREMIUM"], order.clone(), "en").await;
    assert_eq!(
        answer.results[0].rejections[0].message,
        "brand should be one of brand A, brand B."
    );
    order
        .cart
        .as_mut()
        .unwrap()
        .metadata
        .insert("brand".into(), "Brand B".into());
    let cart = apply(&app, &["PREMIUM"], order).await;
    assert_eq!(
        cart.lines[0].coupon_discount, 0,
        "selling_price 20000 is not > 20000"
    );
    assert_eq!(cart.lines[1].coupon_discount, 1_000);
}

async fn apply_stacks_in_order_and_rejects_what_does_not_combine(backend: Backend) {
    let app = spawn_app(backend).await;
    let stack = |code: &str, amount, priority| pb::Coupon {
        stacking: Some(pb::Stacking {
            stackable: true,
            priority,
            ..Default::default()
        }),
        ..fixed(code, "INR", amount)
    };
    create(&app, stack("TEN", 1_000, 2)).await;
    create(&app, stack("FIVE", 500, 1)).await;
    create(&app, fixed("ALONE", "INR", 5_000)).await;
    let cart = apply(
        &app,
        &["five", "TEN", "ALONE", "ghost code"],
        checkout("INR", vec![item("a", 3_000, 1), item("b", 1_000, 1)]),
    )
    .await;
    // ALONE (exclusive) has default priority 0, below the stackable lead TEN.
    let applied: Vec<&str> = cart.applied.iter().map(|a| a.code.as_str()).collect();
    assert_eq!(applied, ["TEN", "FIVE"]);
    assert_eq!(cart.item_discount, 1_500);
    assert_eq!(
        cart.lines.iter().map(|l| l.coupon_discount).sum::<i64>(),
        1_500
    );
    assert_eq!(
        cart.lines[0].coupon_discount, 1_125,
        "3/4 of each discount on the 3000 line"
    );
    let rejected: Vec<(&str, &str)> = cart
        .rejected
        .iter()
        .map(|r| (r.code.as_str(), r.rejections[0].reason.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            ("ALONE", "NOT_COMBINABLE"),
            ("GHOST CODE", "COUPON_NOT_FOUND")
        ]
    );

    let again = apply(
        &app,
        &["five", "TEN", "ALONE", "ghost code"],
        checkout("INR", vec![item("a", 3_000, 1), item("b", 1_000, 1)]),
    )
    .await;
    assert_eq!(again, cart, "deterministic");
}

async fn list_applicable_ranks_and_names_near_misses(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        pb::Coupon {
            conditions: conditions(|c| c.min_subtotal = 149_900),
            ..fixed("SAVE200", "INR", 20_000)
        },
    )
    .await;
    create(&app, fixed("FLAT50", "INR", 5_000)).await;
    create(&app, percentage("TEN", 1_000, None)).await;
    let mut off = fixed("OFF", "INR", 9_999);
    off.active = Some(false);
    create(&app, off).await;
    let order = checkout("INR", vec![item("tee", 60_000, 2)]);
    let mut listing = app.coupons(&app.token);
    let first = listing
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(order.clone()),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let best = first.coupons[0].validation.as_ref().unwrap();
    assert_eq!((best.code.as_str(), best.discount), ("TEN", 12_000));
    assert_eq!(first.near_misses.len(), 1);
    let near = &first.near_misses[0];
    assert_eq!(near.missing_amount, 29_900);
    assert_eq!(near.hint, "Add ₹299 to unlock SAVE200");
    let second = listing
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(order.clone()),
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second.coupons[0].validation.as_ref().unwrap().code,
        "FLAT50"
    );
    assert!(
        second.next_page_token.is_empty(),
        "OFF is inactive, SAVE200 a near miss"
    );

    // The token is bound to the cart it ranked.
    let other_cart = checkout("INR", vec![item("tee", 10, 1)]);
    let status = listing
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(other_cart),
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

async fn validate_and_apply_read_coupons_in_one_statement(backend: Backend) {
    let app = spawn_app(backend).await;
    for code in ["ONE", "TWO", "THREE"] {
        create(&app, fixed(code, "INR", 100)).await;
    }
    let order = checkout("INR", vec![item("a", 1_000, 1)]);
    // The first call also looks up the API key; later ones find it cached.
    validate(&app, &["ONE"], order.clone(), "en").await;
    // However many codes: one statement for the coupons with their ledger views and the
    // tenant's policy.
    let validate_statements = fewest_statements(&app, || async {
        let answer = validate(&app, &["ONE", "TWO", "THREE", "NOPE"], order.clone(), "en").await;
        assert_eq!(answer.results.len(), 4);
    })
    .await;
    assert_eq!(validate_statements, 1, "one round trip for four codes");
    let apply_statements = fewest_statements(&app, || async {
        apply(&app, &["ONE", "TWO", "THREE"], order.clone()).await;
    })
    .await;
    assert_eq!(apply_statements, 1);
}

/// The fewest statements the server ran during any of three runs of `call`. The server's
/// background tasks (health checks, the event feed, settings refreshes) share the count and
/// can only add to it, so the fewest is the call's own.
async fn fewest_statements<F, Fut>(app: &TestApp, call: F) -> u64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut fewest = u64::MAX;
    for _ in 0..3 {
        let before = app.server_store.statements_executed();
        call().await;
        fewest = fewest.min(app.server_store.statements_executed() - before);
    }
    fewest
}

async fn bad_checkouts_are_invalid_arguments(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut coupons = app.coupons(&app.token);
    let overflow = checkout("INR", vec![item("a", i64::MAX / 2, 3)]);
    let status = coupons
        .apply(pb::ApplyRequest {
            codes: vec!["X".into()],
            checkout: Some(overflow),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["checkout.cart.items[0].quantity"]
    );
    let status = coupons
        .validate(pb::ValidateRequest {
            codes: vec![],
            checkout: Some(checkout("INR", vec![])),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["codes"]);
    let status = coupons
        .validate(pb::ValidateRequest {
            codes: vec!["X".into()],
            checkout: Some(checkout("ABC", vec![item("", 1, 0)])),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "checkout.cart.currency",
            "checkout.cart.items[0].product_id",
            "checkout.cart.items[0].quantity"
        ]
    );
}

async fn campaigns_generate_unique_codes_that_share_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let campaign = admin
        .create_campaign(pb::CreateCampaignRequest {
            campaign: Some(pb::Campaign {
                name: "Diwali".into(),
                template: Some(pb::Coupon {
                    limits: Some(pb::Limits {
                        max_redemptions: Some(1),
                        ..Default::default()
                    }),
                    ..fixed("", "INR", 10_000)
                }),
                code_pattern: Some(pb::CodePattern {
                    prefix: "dw-".into(),
                    length: 8,
                    charset: String::new(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let generated = admin
        .generate_codes(pb::GenerateCodesRequest {
            campaign_id: campaign.id.clone(),
            count: 5_000,
        })
        .await
        .unwrap()
        .into_inner()
        .codes;
    assert_eq!(generated.len(), 5_000);
    let unique: std::collections::HashSet<&String> = generated.iter().collect();
    assert_eq!(unique.len(), 5_000);
    assert!(generated
        .iter()
        .all(|c| c.starts_with("DW-") && c.len() == 11));
    let answer = validate(
        &app,
        &[&generated[0]],
        checkout("INR", vec![item("a", 50_000, 1)]),
        "en",
    )
    .await;
    assert!(answer.valid);
    assert_eq!(answer.results[0].discount, 10_000);
    let listed = admin
        .list_coupons(pb::ListCouponsRequest {
            campaign_id: campaign.id.clone(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.coupons.len(), 500);
    assert!(listed
        .coupons
        .iter()
        .all(|c| c.limits.as_ref().unwrap().max_redemptions == Some(1)));

    // Campaign codes are private: ListApplicable does not offer them.
    let offered = app
        .coupons(&app.token)
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(checkout("INR", vec![item("a", 50_000, 1)])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(offered.coupons.is_empty());

    let bad = admin
        .create_campaign(pb::CreateCampaignRequest {
            campaign: Some(pb::Campaign {
                name: String::new(),
                template: Some(percentage("", 20_000, None)),
                code_pattern: Some(pb::CodePattern {
                    prefix: String::new(),
                    length: 2,
                    charset: String::new(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&bad),
        [
            "campaign.name",
            "campaign.template.discount.percentage.basis_points",
            "campaign.code_pattern.length"
        ]
    );
}

crate::on_both_databases!(
    every_reason_in_both_languages,
    reproduces_the_payment_link_validation,
    reproduces_the_cart_apply,
    reproduces_the_promo_check,
    metadata_predicates_explain_themselves,
    apply_stacks_in_order_and_rejects_what_does_not_combine,
    list_applicable_ranks_and_names_near_misses,
    validate_and_apply_read_coupons_in_one_statement,
    bad_checkouts_are_invalid_arguments,
    campaigns_generate_unique_codes_that_share_rules,
);
