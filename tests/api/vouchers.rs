//! VoucherService: PIN purchases, idempotent by reference, safe under concurrency, secret in logs
//! and at rest.

use std::collections::HashSet;

use coupon_service::{
    domain::{Scope, Scopes},
    pb,
};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::{transport::Channel, Code, Status};

use crate::common::{
    connect, error_reason, server_processes, spawn_app, violated_fields, Auth, Backend,
    ServerProcess, TestApp,
};

const PRICE: i64 = 10_000;

/// A product with `pins` PINs ("PIN-SECRET-0000" ...) and `credits` credits; returns its idx.
pub(crate) async fn stocked(app: &TestApp, pins: usize, credits: i64) -> String {
    let mut admin = app.admin(&app.token);
    let product = admin
        .create_product(pb::CreateProductRequest {
            product: Some(pb::Product {
                name: "Fifa-2026".into(),
                value: "fifa-2026".into(),
                amount: PRICE,
                currency: "NPR".into(),
                templates: Some(pb::NotificationTemplates {
                    sms: "Thank you for subscribing via {company}. Your coupon code is {pin}."
                        .into(),
                    email_subject: "Purchase Confirmation — {product}".into(),
                    email_body: "Your Coupon Code: {pin} (serial {serial})\n{company}".into(),
                    company_name: "Khalti".into(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    if pins > 0 {
        admin
            .import_pins(pb::ImportPinsRequest {
                product_idx: product.idx.clone(),
                pins: (0..pins)
                    .map(|n| pb::PinInput {
                        pin: format!("PIN-SECRET-{n:04}"),
                        serial: format!("S{n}"),
                        ..Default::default()
                    })
                    .collect(),
            })
            .await
            .unwrap();
    }
    if credits > 0 {
        admin
            .top_up_credits(pb::TopUpCreditsRequest {
                amount: credits,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    product.idx
}

pub(crate) fn buy(reference: &str) -> pb::PurchaseRequest {
    pb::PurchaseRequest {
        reference: reference.into(),
        value: "fifa-2026".into(),
        amount: PRICE,
        phone_number: "9860848045".into(),
        email: "a@gmail.com".into(),
        name: "Dishhome test".into(),
    }
}

/// The ledger sums to the balance, and purchases debited exactly their prices.
async fn assert_credits_consistent(app: &TestApp, sold: i64, topped_up: i64) {
    let mut admin = app.admin(&app.token);
    let balance = admin
        .get_balance(pb::GetBalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.consumed, sold * PRICE);
    assert_eq!(balance.balance, topped_up - sold * PRICE);
    let mut sum = 0;
    let mut token = String::new();
    loop {
        let page = admin
            .list_credit_entries(pb::ListCreditEntriesRequest {
                page_size: 500,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        sum += page.entries.iter().map(|e| e.amount).sum::<i64>();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(sum, balance.balance, "the ledger sums to the balance");
}

async fn a_purchase_returns_its_pin_and_notification(backend: Backend) {
    let app = spawn_app(backend).await;
    stocked(&app, 3, 25_000).await;
    let mut vouchers = app.vouchers(&app.token);
    let sold = vouchers
        .purchase(buy("ref-1"))
        .await
        .unwrap()
        .into_inner()
        .purchase
        .unwrap();
    assert_eq!(sold.state, "Success");
    assert!(sold.pin.starts_with("PIN-SECRET-"), "{}", sold.pin);
    assert_eq!(sold.message, format!("Your Pin number is '{}'", sold.pin));
    assert_eq!(
        (sold.credits_consumed, sold.credits_available),
        (PRICE, 15_000)
    );
    let notification = sold.notification.clone().unwrap();
    assert_eq!(
        notification.sms,
        format!(
            "Thank you for subscribing via Khalti. Your coupon code is {}.",
            sold.pin
        )
    );
    assert_eq!(
        notification.email_subject,
        "Purchase Confirmation — Fifa-2026"
    );
    assert_eq!(
        notification.email_body,
        format!(
            "Your Coupon Code: {} (serial {})\nKhalti",
            sold.pin, sold.serial
        )
    );

    let again = vouchers
        .purchase(buy("ref-1"))
        .await
        .unwrap()
        .into_inner()
        .purchase
        .unwrap();
    assert_eq!(again, sold, "a retry gets the original purchase");
    let fetched = vouchers
        .get_purchase(pb::GetPurchaseRequest {
            reference: "ref-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .purchase
        .unwrap();
    assert_eq!(fetched, sold);

    let mut different = buy("ref-1");
    different.email = "b@gmail.com".into();
    let duplicate = vouchers.purchase(different).await.unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    assert_eq!(
        error_reason(&duplicate).as_deref(),
        Some("DUPLICATE_REFERENCE")
    );

    let unknown = vouchers
        .purchase(pb::PurchaseRequest {
            value: "web".into(),
            ..buy("ref-2")
        })
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.code(), violated_fields(&unknown)),
        (Code::InvalidArgument, vec!["value".to_owned()])
    );
    let wrong_amount = vouchers
        .purchase(pb::PurchaseRequest {
            amount: 100,
            ..buy("ref-2")
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&wrong_amount), ["amount"]);

    vouchers.purchase(buy("ref-2")).await.unwrap();
    let poor = vouchers.purchase(buy("ref-3")).await.unwrap_err();
    assert_eq!(poor.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&poor).as_deref(), Some("INSUFFICIENT_CREDITS"));
    app.admin(&app.token)
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    vouchers.purchase(buy("ref-3")).await.unwrap();
    let empty = vouchers.purchase(buy("ref-4")).await.unwrap_err();
    assert_eq!(error_reason(&empty).as_deref(), Some("PRODUCT_UNAVAILABLE"));
    assert_eq!(empty.message(), "Product currently unavailable");
    let missing = vouchers
        .get_purchase(pb::GetPurchaseRequest {
            reference: "ref-4".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let products = vouchers
        .list_products(pb::ListProductsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!products.products[0].in_stock);

    let reader = app.new_tenant("reader", Scopes::new([Scope::Read])).await;
    let denied = app
        .vouchers(&reader)
        .purchase(buy("ref-5"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_credits_consistent(&app, 3, 125_000).await;
}

async fn race(
    channels: &[Channel],
    token: &str,
    requests: Vec<pb::PurchaseRequest>,
) -> (Vec<pb::Purchase>, Vec<Status>) {
    let mut tasks = Vec::new();
    for (n, request) in requests.into_iter().enumerate() {
        let mut client = pb::voucher_service_client::VoucherServiceClient::with_interceptor(
            channels[n % channels.len()].clone(),
            Auth::bearer(token),
        );
        tasks.push(tokio::spawn(async move { client.purchase(request).await }));
    }
    let (mut won, mut lost) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            Ok(answer) => won.extend(answer.into_inner().purchase),
            Err(status) => lost.push(status),
        }
    }
    (won, lost)
}

async fn concurrent_purchases_sell_each_pin_once(backend: Backend) {
    let app = spawn_app(backend).await;
    stocked(&app, 50, 1_000_000).await;
    let (_processes, channels) = server_processes(&app, 2).await;
    let (won, lost) = race(
        &channels,
        &app.token,
        (0..64).map(|n| buy(&format!("race-{n}"))).collect(),
    )
    .await;
    assert_eq!(won.len(), 50, "every PIN sold");
    let pins: HashSet<&str> = won.iter().map(|p| p.pin.as_str()).collect();
    assert_eq!(pins.len(), 50, "each PIN sold once");
    assert_eq!(lost.len(), 14);
    assert!(
        lost.iter()
            .all(|s| error_reason(s).as_deref() == Some("PRODUCT_UNAVAILABLE")),
        "{lost:?}"
    );
    assert_credits_consistent(&app, 50, 1_000_000).await;
}

async fn racing_retries_of_one_reference_sell_one_pin(backend: Backend) {
    let app = spawn_app(backend).await;
    stocked(&app, 10, 1_000_000).await;
    let (_processes, channels) = server_processes(&app, 2).await;
    let (won, lost) = race(
        &channels,
        &app.token,
        (0..20).map(|_| buy("the-one")).collect(),
    )
    .await;
    assert!(lost.is_empty(), "{lost:?}");
    assert!(won.iter().all(|p| p == &won[0]), "every answer identical");
    let db = Database::connect(&app.database_url).await.unwrap();
    let sold = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS sold FROM voucher_pins WHERE purchase_id IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sold.try_get::<i64>("", "sold").unwrap(), 1);
    assert_credits_consistent(&app, 1, 1_000_000).await;
}

async fn pins_and_keys_never_reach_the_logs(backend: Backend) {
    let app = spawn_app(backend).await;
    stocked(&app, 2, 100_000).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let process = ServerProcess::spawn_logging(&app.database_url, Some(&log));
    let channel = connect(process.addr).await;
    let mut client = pb::voucher_service_client::VoucherServiceClient::with_interceptor(
        channel,
        Auth::bearer(&app.token),
    );
    let sold = client
        .purchase(buy("logged"))
        .await
        .unwrap()
        .into_inner()
        .purchase
        .unwrap();
    client
        .get_purchase(pb::GetPurchaseRequest {
            reference: "logged".into(),
        })
        .await
        .unwrap();
    client
        .purchase(pb::PurchaseRequest {
            amount: 1,
            ..buy("bad")
        })
        .await
        .unwrap_err();
    drop(process);
    let text = std::fs::read_to_string(&log).unwrap();
    // Every line logged inside a call names its request, method and tenant.
    let call_lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["span"]["name"] == "grpc")
        .collect();
    assert!(call_lines.len() >= 6, "the calls were logged: {text}");
    for line in &call_lines {
        let span = &line["span"];
        assert!(
            span["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{line}"
        );
        assert!(
            span["rpc.method"].as_str().is_some_and(|m| !m.is_empty()),
            "{line}"
        );
        assert!(
            span["tenant"]
                .as_str()
                .is_some_and(|t| t.starts_with("ten_")),
            "{line}"
        );
    }
    assert!(call_lines
        .iter()
        .any(|l| l["span"]["rpc.method"] == "Purchase"));
    let secret = app.token.split_once('.').unwrap().1;
    assert!(!text.contains(&sold.pin), "a PIN reached the log");
    assert!(!text.contains("PIN-SECRET"), "a PIN reached the log");
    assert!(!text.contains(secret), "the API key reached the log");
}

crate::on_both_databases!(
    a_purchase_returns_its_pin_and_notification,
    concurrent_purchases_sell_each_pin_once,
    racing_retries_of_one_reference_sell_one_pin,
    pins_and_keys_never_reach_the_logs,
);
