//! Coupon administration: create, get, list, update, deactivate.

use coupon_service::pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::common::{error_reason, spawn_app, Backend};

/// A valid fixed-amount coupon, as the cart API's SAVE200.
pub fn save200(code: &str) -> pb::Coupon {
    pb::Coupon {
        code: code.to_owned(),
        description: "Get 200 off on orders above 1499".into(),
        currency: "INR".into(),
        discount: Some(pb::Discount {
            kind: Some(pb::discount::Kind::FixedAmount(pb::FixedAmount {
                amount: 20_000,
            })),
        }),
        conditions: Some(pb::Conditions {
            min_subtotal: 149_900,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn create_get_update_and_deactivate(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let created = admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(save200("  save200 ")),
        })
        .await
        .expect("create")
        .into_inner();
    assert!(created.id.starts_with("cpn_"));
    assert_eq!(created.code, "SAVE200", "trimmed and upper-cased");
    assert_eq!(created.active, Some(true), "active unless created inactive");
    assert_eq!(created.usage.unwrap_or_default(), pb::Usage::default());

    let by_code = admin
        .get_coupon(pb::GetCouponRequest {
            code: "Save200".into(),
            ..Default::default()
        })
        .await
        .expect("get by code, case-insensitively")
        .into_inner();
    assert_eq!(by_code.id, created.id);

    let duplicate = admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(save200("SAVE200")),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert_eq!(
        error_reason(&duplicate).as_deref(),
        Some("COUPON_CODE_EXISTS")
    );

    let mut change = created.clone();
    change.description = "changed".into();
    change.limits = Some(pb::Limits {
        max_redemptions: Some(50),
        ..Default::default()
    });
    change.currency = "IDR".into(); // not in the mask: must stay INR
    let updated = admin
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(change),
            update_mask: Some(FieldMask {
                paths: vec!["description".into(), "limits".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.description, "changed");
    assert_eq!(updated.limits.unwrap().max_redemptions, Some(50));
    assert_eq!(updated.currency, "INR");
    assert_eq!(updated.discount, created.discount);

    let deactivated = admin
        .deactivate_coupon(pb::DeactivateCouponRequest {
            id: created.id.clone(),
        })
        .await
        .expect("deactivate")
        .into_inner();
    assert_eq!(deactivated.active, Some(false));
    admin
        .deactivate_coupon(pb::DeactivateCouponRequest {
            id: created.id.clone(),
        })
        .await
        .expect("deactivating twice is harmless");

    let missing = admin
        .get_coupon(pb::GetCouponRequest {
            id: "cpn_missing".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

async fn list_pages_through_every_coupon_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    for n in 0..7 {
        admin
            .create_coupon(pb::CreateCouponRequest {
                coupon: Some(save200(&format!("CODE{n}"))),
            })
            .await
            .expect("create");
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_coupons(pb::ListCouponsRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        assert!(page.coupons.len() <= 3);
        seen.extend(page.coupons.into_iter().map(|c| c.code));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = (0..7).map(|n| format!("CODE{n}")).collect();
    assert_eq!(seen, expected, "oldest first, each once");

    // A token is bound to its query: reusing it with another filter is refused.
    let first = admin
        .list_coupons(pb::ListCouponsRequest {
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let status = admin
        .list_coupons(pb::ListCouponsRequest {
            page_size: 3,
            page_token: first.next_page_token,
            active_only: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

crate::on_both_databases!(
    create_get_update_and_deactivate,
    list_pages_through_every_coupon_once,
);
