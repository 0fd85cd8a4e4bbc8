//! The load generator's smoke test: against a real server it counts every answer under its real
//! gRPC status, so a failing call can never pass for a success in a benchmark.

use coupon_service::pb;

use crate::common::{spawn_app, Backend, TestApp};

const CALLS: u64 = 20;

/// Runs `coupon-bench run` for exactly `CALLS` calls and returns its JSON measurement.
async fn bench(app: &TestApp, token: &str, scenario: &str, codes: &str) -> serde_json::Value {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_coupon-bench"))
        .args([
            "run",
            "--addr",
            &app.addr.to_string(),
            "--token",
            token,
            "--scenario",
            scenario,
            "--codes",
            codes,
            "--concurrency",
            "4",
            "--connections",
            "2",
            "--warmup",
            "0s",
            // An upper bound only: the run ends after CALLS calls.
            "--duration",
            "120s",
            "--requests",
            &CALLS.to_string(),
            "--json",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "coupon-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn statuses(measurement: &serde_json::Value) -> Vec<(String, u64)> {
    measurement["statuses"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, count)| (name.clone(), count.as_u64().unwrap()))
        .collect()
}

async fn counts_every_answer_by_its_status(backend: Backend) {
    let app = spawn_app(backend).await;
    app.admin(&app.token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(pb::Coupon {
                code: "SMOKE".into(),
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

    let ok = bench(&app, &app.token, "validate", "SMOKE").await;
    assert_eq!(statuses(&ok), [("OK".to_owned(), CALLS)]);
    assert_eq!(ok["calls"].as_u64(), Some(CALLS));

    // What the service answers to Redeem of a code that does not exist, asked directly.
    let refused = app
        .coupons(&app.token)
        .redeem(pb::RedeemRequest {
            codes: vec!["NOPE-1".into()],
            order_id: "direct".into(),
            order_status: pb::OrderStatus::Pending as i32,
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
                    id: "direct".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            reservation_ttl: None,
        })
        .await
        .unwrap_err();
    let expected = format!("{:?}", refused.code());
    let wrong_codes = bench(&app, &app.token, "redeem", "NOPE-1,NOPE-2").await;
    let counted = statuses(&wrong_codes);
    assert_eq!(counted.len(), 1, "one status for every call: {counted:?}");
    let (name, count) = &counted[0];
    assert_eq!(*count, CALLS);
    assert_ne!(name, "OK", "a refused call never counts as a success");
    // The generator's canonical UPPER_SNAKE name of the code the service gave.
    assert_eq!(
        name.replace('_', "").to_lowercase(),
        expected.to_lowercase()
    );

    let unauthenticated = bench(&app, "not-a-key", "validate", "SMOKE").await;
    assert_eq!(
        statuses(&unauthenticated),
        [("UNAUTHENTICATED".to_owned(), CALLS)]
    );
}

crate::on_both_databases!(counts_every_answer_by_its_status);
