//! Every admin validation error is INVALID_ARGUMENT with BadRequest field violations, and
//! changes nothing.

use coupon_service::pb;
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

use super::admin_coupons::save200;
use crate::common::{spawn_app, violated_fields, Backend};

fn with(edit: impl FnOnce(&mut pb::Coupon)) -> pb::Coupon {
    let mut coupon = save200("VALID");
    edit(&mut coupon);
    coupon
}

fn percentage(bps: i32) -> Option<pb::Discount> {
    Some(pb::Discount {
        kind: Some(pb::discount::Kind::Percentage(pb::Percentage {
            basis_points: bps,
            max_discount: None,
        })),
    })
}

async fn bad_coupon_definitions_name_their_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let cases: Vec<(pb::Coupon, Vec<&str>)> = vec![
        (with(|c| c.code = "  ".into()), vec!["coupon.code"]),
        (with(|c| c.code = "SAVE 200".into()), vec!["coupon.code"]),
        (with(|c| c.discount = None), vec!["coupon.discount"]),
        (
            with(|c| c.discount = percentage(10_001)),
            vec!["coupon.discount.percentage.basis_points"],
        ),
        (
            with(|c| c.discount = percentage(0)),
            vec!["coupon.discount.percentage.basis_points"],
        ),
        (
            with(|c| {
                c.discount = Some(pb::Discount {
                    kind: Some(pb::discount::Kind::FixedAmount(pb::FixedAmount {
                        amount: -5,
                    })),
                })
            }),
            vec!["coupon.discount.fixed_amount.amount"],
        ),
        (
            with(|c| c.currency = String::new()),
            vec!["coupon.currency"],
        ),
        (with(|c| c.currency = "XYZ".into()), vec!["coupon.currency"]),
        (
            with(|c| {
                c.discount = Some(pb::Discount {
                    kind: Some(pb::discount::Kind::BuyGet(pb::BuyGet {
                        buy_quantity: 0,
                        get_quantity: 0,
                        max_applications: 0,
                    })),
                })
            }),
            vec![
                "coupon.discount.buy_get.buy_quantity",
                "coupon.discount.buy_get.get_quantity",
            ],
        ),
        (
            with(|c| {
                c.conditions = Some(pb::Conditions {
                    start_time: Some(Timestamp {
                        seconds: 2_000,
                        nanos: 0,
                    }),
                    end_time: Some(Timestamp {
                        seconds: 1_000,
                        nanos: 0,
                    }),
                    min_subtotal: -1,
                    min_quantity: -1,
                    ..Default::default()
                })
            }),
            vec![
                "coupon.conditions.end_time",
                "coupon.conditions.min_subtotal",
                "coupon.conditions.min_quantity",
            ],
        ),
        (
            with(|c| {
                c.conditions = Some(pb::Conditions {
                    order_predicates: vec![pb::Predicate {
                        field: "cart_qty".into(),
                        operator: 42,
                        values: vec!["10".into()],
                    }],
                    ..Default::default()
                })
            }),
            vec!["coupon.conditions.order_predicates[0].operator"],
        ),
        (
            with(|c| {
                c.limits = Some(pb::Limits {
                    max_redemptions: Some(0),
                    max_redemptions_per_customer: Some(-1),
                    budget: Some(0),
                })
            }),
            vec![
                "coupon.limits.max_redemptions",
                "coupon.limits.max_redemptions_per_customer",
                "coupon.limits.budget",
            ],
        ),
    ];
    for (coupon, expected) in cases {
        let status = admin
            .create_coupon(pb::CreateCouponRequest {
                coupon: Some(coupon.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{coupon:?}");
        assert_eq!(violated_fields(&status), expected, "{coupon:?}");
    }
    let status = admin
        .create_coupon(pb::CreateCouponRequest { coupon: None })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["coupon"]);

    let listed = admin
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.coupons.is_empty(),
        "refused definitions change nothing"
    );
}

async fn bad_updates_and_listings_name_their_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let created = admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(save200("SAVE200")),
        })
        .await
        .unwrap()
        .into_inner();

    let no_mask = admin
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(created.clone()),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_mask), vec!["update_mask"]);

    let unknown_path = admin
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(created.clone()),
            update_mask: Some(FieldMask {
                paths: vec!["usage".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&unknown_path), vec!["update_mask"]);

    let mut bad = created.clone();
    bad.discount = percentage(20_000);
    let bad_value = admin
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(bad),
            update_mask: Some(FieldMask {
                paths: vec!["discount".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_value.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad_value),
        vec!["coupon.discount.percentage.basis_points"]
    );
    let unchanged = admin
        .get_coupon(pb::GetCouponRequest {
            id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unchanged.discount, created.discount,
        "a refused update changes nothing"
    );

    let negative_page = admin
        .list_coupons(pb::ListCouponsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&negative_page), vec!["page_size"]);
    let bad_token = admin
        .list_coupons(pb::ListCouponsRequest {
            page_token: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_token), vec!["page_token"]);
    let no_id = admin
        .get_coupon(pb::GetCouponRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_id), vec!["id"]);
}

async fn bad_products_pins_and_top_ups_name_their_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let status = admin
        .create_product(pb::CreateProductRequest {
            product: Some(pb::Product {
                name: " ".into(),
                value: "Fifa 2026".into(),
                amount: 0,
                currency: "NOPE".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        vec![
            "product.currency",
            "product.name",
            "product.value",
            "product.amount"
        ]
    );

    let empty_import = admin
        .import_pins(pb::ImportPinsRequest {
            product_idx: String::new(),
            pins: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&empty_import), vec!["product_idx", "pins"]);

    let blank_pin = admin
        .import_pins(pb::ImportPinsRequest {
            product_idx: "prd_x".into(),
            pins: vec![pb::PinInput {
                pin: " ".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&blank_pin), vec!["pins[0].pin"]);

    let zero = admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&zero), vec!["amount"]);
}

crate::on_both_databases!(
    bad_coupon_definitions_name_their_fields,
    bad_updates_and_listings_name_their_fields,
    bad_products_pins_and_top_ups_name_their_fields,
);
