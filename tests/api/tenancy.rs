//! Tenant isolation: another tenant's data does not exist, in both directions.

use coupon_service::{domain::Scopes, pb};
use prost_types::FieldMask;
use tonic::Code;

use super::admin_coupons::save200;
use crate::common::{spawn_app, Backend};

fn fifa() -> pb::Product {
    pb::Product {
        name: "Fifa-2026".into(),
        value: "fifa-2026".into(),
        amount: 10_000,
        currency: "NPR".into(),
        ..Default::default()
    }
}

async fn tenants_never_see_each_other(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.new_tenant("globex", Scopes::all()).await;

    // Each tenant creates the same code and product value: unique per tenant, not globally.
    let mut ids = Vec::new();
    for token in [&app.token, &other] {
        let mut admin = app.admin(token);
        let coupon = admin
            .create_coupon(pb::CreateCouponRequest {
                coupon: Some(save200("SAVE200")),
            })
            .await
            .expect("same code in each tenant")
            .into_inner();
        let product = admin
            .create_product(pb::CreateProductRequest {
                product: Some(fifa()),
            })
            .await
            .expect("same product value in each tenant")
            .into_inner();
        ids.push((coupon.id, product.idx));
    }

    for (me, (their_coupon, their_product)) in [(&app.token, &ids[1]), (&other, &ids[0])] {
        let mut admin = app.admin(me);
        let get = admin
            .get_coupon(pb::GetCouponRequest {
                id: their_coupon.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(get.code(), Code::NotFound);
        let deactivate = admin
            .deactivate_coupon(pb::DeactivateCouponRequest {
                id: their_coupon.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(deactivate.code(), Code::NotFound);
        let update = admin
            .update_coupon(pb::UpdateCouponRequest {
                coupon: Some(pb::Coupon {
                    id: their_coupon.clone(),
                    ..save200("X")
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(update.code(), Code::NotFound);
        let import = admin
            .import_pins(pb::ImportPinsRequest {
                product_idx: their_product.clone(),
                pins: vec![pb::PinInput {
                    pin: "123".into(),
                    ..Default::default()
                }],
            })
            .await
            .unwrap_err();
        assert_eq!(import.code(), Code::NotFound);
        let update_product = admin
            .update_product(pb::UpdateProductRequest {
                product: Some(pb::Product {
                    idx: their_product.clone(),
                    ..fifa()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["amount".into()],
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(update_product.code(), Code::NotFound);

        let listed = admin
            .list_coupons(pb::ListCouponsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.coupons.len(), 1, "only its own coupon");
        assert_ne!(&listed.coupons[0].id, their_coupon);
        let products = app
            .vouchers(me)
            .list_products(pb::ListProductsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(products.products.len(), 1);
        assert_ne!(&products.products[0].idx, their_product);
    }

    // Balances are per tenant too.
    app.admin(&app.token)
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let theirs = app
        .admin(&other)
        .get_balance(pb::GetBalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(theirs.balance, 0);
}

crate::on_both_databases!(tenants_never_see_each_other);
