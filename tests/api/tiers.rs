//! Tiered discounts through the API: definitions that round-trip, the tier reached at every
//! threshold, the next tier as a near miss, and Redeem charging what Apply priced.

use coupon_service::pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::common::{spawn_app, violated_fields, Backend, TestApp};
use crate::engine::{apply, checkout, create, in_language, item};
use crate::ledger::order;

fn tier(threshold: i64, reward: pb::tier::Reward) -> pb::Tier {
    pb::Tier {
        threshold,
        reward: Some(reward),
    }
}

fn tiered(code: &str, basis: pb::TierBasis, tiers: Vec<pb::Tier>) -> pb::Coupon {
    pb::Coupon {
        code: code.into(),
        currency: "INR".into(),
        discount: Some(pb::Discount {
            kind: Some(pb::discount::Kind::Tiered(pb::Tiered {
                basis: basis as i32,
                tiers,
            })),
        }),
        ..Default::default()
    }
}

/// 5% from ₹1,000, 10% from ₹2,500, 15% from ₹5,000.
fn ladder() -> pb::Coupon {
    use pb::tier::Reward::BasisPoints;
    tiered(
        "LADDER",
        pb::TierBasis::Spend,
        vec![
            tier(100_000, BasisPoints(500)),
            tier(250_000, BasisPoints(1_000)),
            tier(500_000, BasisPoints(1_500)),
        ],
    )
}

/// 1 free unit from 3, 2 from 5.
fn bulk() -> pb::Coupon {
    use pb::tier::Reward::FreeUnits;
    tiered(
        "BULK",
        pb::TierBasis::Quantity,
        vec![tier(3, FreeUnits(1)), tier(5, FreeUnits(2))],
    )
}

async fn validate_one(
    app: &TestApp,
    code: &str,
    cart: pb::Checkout,
    language: &'static str,
) -> pb::CodeValidation {
    app.coupons(&app.token)
        .validate(in_language(
            pb::ValidateRequest {
                codes: vec![code.into()],
                checkout: Some(cart),
                ..Default::default()
            },
            language,
        ))
        .await
        .expect("validate answers")
        .into_inner()
        .results
        .remove(0)
}

async fn get(app: &TestApp, code: &str) -> pb::Coupon {
    app.admin(&app.token)
        .get_coupon(pb::GetCouponRequest {
            code: code.into(),
            ..Default::default()
        })
        .await
        .expect("get coupon")
        .into_inner()
}

async fn tiered_coupons_round_trip_and_bad_tiers_are_refused_together(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = create(&app, ladder()).await;
    assert_eq!(created.discount, ladder().discount);
    assert_eq!(get(&app, "LADDER").await.discount, ladder().discount);

    let updated = app
        .admin(&app.token)
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(pb::Coupon {
                id: created.id.clone(),
                ..bulk()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["discount".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.discount, bulk().discount);
    assert_eq!(get(&app, "LADDER").await.discount, bulk().discount);

    use pb::tier::Reward::{Amount, BasisPoints, FreeUnits};
    let bad = tiered(
        "BADTIERS",
        pb::TierBasis::Unspecified,
        vec![
            tier(0, BasisPoints(500)),
            tier(250_000, BasisPoints(20_000)),
            tier(200_000, BasisPoints(400)),
            tier(300_000, Amount(100)),
            tier(400_000, FreeUnits(-1)),
        ],
    );
    let status = app
        .admin(&app.token)
        .create_coupon(pb::CreateCouponRequest { coupon: Some(bad) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [
            "coupon.discount.tiered.basis",
            "coupon.discount.tiered.tiers[0].threshold",
            "coupon.discount.tiered.tiers[1].basis_points",
            "coupon.discount.tiered.tiers[2].threshold",
            "coupon.discount.tiered.tiers[2].basis_points",
            "coupon.discount.tiered.tiers[3]",
            "coupon.discount.tiered.tiers[4].free_units",
        ]
    );
    let mut missing_reward = bulk();
    missing_reward.code = "NOREWARD".into();
    if let Some(pb::discount::Kind::Tiered(t)) = missing_reward
        .discount
        .as_mut()
        .and_then(|d| d.kind.as_mut())
    {
        t.tiers[1].reward = None;
    }
    let status = app
        .admin(&app.token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(missing_reward),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["coupon.discount.tiered.tiers[1]"]
    );
    let empty = tiered("EMPTY", pb::TierBasis::Spend, vec![]);
    let status = app
        .admin(&app.token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(empty),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["coupon.discount.tiered.tiers"]);
    // Nothing refused was stored.
    let listed = app
        .admin(&app.token)
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .coupons;
    assert_eq!(listed.len(), 1);
}

async fn spend_tiers_apply_at_every_threshold(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, ladder()).await;
    let thresholds = [100_000, 250_000, 500_000];
    let rates = [500, 1_000, 1_500];
    for (index, threshold) in thresholds.into_iter().enumerate() {
        for spend in [threshold - 1, threshold, threshold + 1] {
            let cart = checkout("INR", vec![item("tee", spend, 1)]);
            let reached = if spend >= threshold {
                Some(index)
            } else {
                index.checked_sub(1)
            };
            // 5% of 100,001 is 5,000.05: half-up to the minor unit, as percentages round.
            let expected = reached.map_or(0, |tier| (spend * rates[tier] + 5_000) / 10_000);
            let checked = validate_one(&app, "LADDER", cart.clone(), "en").await;
            let priced = apply(&app, &["LADDER"], cart).await;
            assert_eq!(checked.valid, reached.is_some(), "{spend}");
            assert_eq!(checked.discount, expected, "{spend}");
            assert_eq!(priced.discount, expected, "{spend}");
            let next = reached.map_or(0, |tier| tier + 1);
            let (validated_next, priced_next) = match reached {
                None => {
                    assert_eq!(checked.rejections[0].reason, "BELOW_MINIMUM_AMOUNT");
                    assert_eq!(checked.rejections[0].metadata["missing_amount"], "1");
                    (checked.next_tier, priced.rejected[0].next_tier.clone())
                }
                Some(_) => (checked.next_tier, priced.applied[0].next_tier.clone()),
            };
            assert_eq!(validated_next, priced_next, "{spend}");
            match validated_next {
                Some(found) => {
                    assert_eq!(found.missing_amount, thresholds[next] - spend, "{spend}");
                    assert_eq!(found.missing_quantity, 0);
                    assert_eq!(
                        found.tier.map(|t| t.threshold),
                        Some(thresholds[next]),
                        "{spend}"
                    );
                }
                None => assert_eq!(next, thresholds.len(), "{spend}"),
            }
        }
    }

    // The near miss in words, in both languages.
    let cart = checkout("INR", vec![item("tee", 220_000, 1)]);
    let english = validate_one(&app, "LADDER", cart.clone(), "en").await;
    assert_eq!(english.next_tier.unwrap().hint, "Add ₹300 for 10% off");
    let indonesian = validate_one(&app, "LADDER", cart.clone(), "id").await;
    assert_eq!(
        indonesian.next_tier.unwrap().hint,
        "Tambah ₹300 lagi untuk diskon 10%"
    );

    // ListApplicable: the applying coupon carries its next tier; below the first tier it is a
    // near miss whose next tier is the first.
    let mut listing = app.coupons(&app.token);
    let listed = listing
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(cart),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let offered = listed.coupons[0].validation.as_ref().unwrap();
    assert_eq!(
        (offered.code.as_str(), offered.discount),
        ("LADDER", 11_000)
    );
    assert_eq!(
        offered.next_tier.as_ref().unwrap().hint,
        "Add ₹300 for 10% off"
    );
    let short = listing
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(checkout("INR", vec![item("tee", 90_000, 1)])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(short.coupons.is_empty());
    let near = &short.near_misses[0];
    assert_eq!(near.missing_amount, 10_000);
    assert_eq!(near.hint, "Add ₹100 to unlock LADDER");
    assert_eq!(
        near.validation
            .as_ref()
            .unwrap()
            .next_tier
            .as_ref()
            .unwrap()
            .hint,
        "Add ₹100 for 5% off"
    );
}

async fn quantity_tiers_apply_at_every_threshold(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, bulk()).await;
    // (units, units freed, units still missing for the next tier)
    for (units, freed, missing) in [(2, 0, 1), (3, 1, 2), (4, 1, 1), (5, 2, 0), (6, 2, 0)] {
        // One dear unit and cheap ones: the cheapest go free.
        let cart = checkout(
            "INR",
            vec![item("dear", 50_000, 1), item("cheap", 10_000, units - 1)],
        );
        let checked = validate_one(&app, "BULK", cart.clone(), "en").await;
        let priced = apply(&app, &["BULK"], cart).await;
        assert_eq!(checked.valid, freed > 0, "{units}");
        assert_eq!(checked.discount, freed * 10_000, "{units}");
        assert_eq!(priced.discount, freed * 10_000, "{units}");
        assert_eq!(priced.lines[1].free_units, freed, "{units}");
        if freed == 0 {
            assert_eq!(checked.rejections[0].reason, "BELOW_MINIMUM_QUANTITY");
            assert_eq!(checked.rejections[0].metadata["missing_quantity"], "1");
        }
        let next = checked
            .next_tier
            .map(|n| (n.missing_quantity, n.missing_amount));
        assert_eq!(next, (missing > 0).then_some((missing, 0)), "{units}");
    }
    let cart = checkout("INR", vec![item("cheap", 10_000, 3)]);
    let priced = apply(&app, &["BULK"], cart).await;
    assert_eq!(
        priced.applied[0].next_tier.as_ref().unwrap().hint,
        "Add 2 more item(s) for 2 free item(s)"
    );
}

async fn redeem_charges_the_tier_apply_priced(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, ladder()).await;
    create(&app, bulk()).await;
    for (code, units) in [("LADDER", 9), ("LADDER", 20), ("BULK", 3), ("BULK", 6)] {
        let mut request = order(
            &[code],
            &format!("o-{code}-{units}"),
            "c-1",
            pb::OrderStatus::Pending,
        );
        let checkout = request.checkout.as_mut().unwrap();
        checkout.cart.as_mut().unwrap().items = vec![item("tee", 29_900, units)];
        let priced = apply(&app, &[code], checkout.clone()).await;
        assert!(priced.discount > 0, "{code} {units}");
        let redeemed = app
            .coupons(&app.token)
            .redeem(request)
            .await
            .expect("redeem")
            .into_inner();
        assert_eq!(
            redeemed.redemptions[0].discount, priced.discount,
            "{code} {units}"
        );
    }
}

crate::on_both_databases!(
    tiered_coupons_round_trip_and_bad_tiers_are_refused_together,
    spend_tiers_apply_at_every_threshold,
    quantity_tiers_apply_at_every_threshold,
    redeem_charges_the_tier_apply_priced,
);
