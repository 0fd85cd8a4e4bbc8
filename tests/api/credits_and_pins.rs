//! Credit top-ups and PIN stock.

use coupon_service::pb;
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

use crate::common::{error_reason, spawn_app, Backend};

async fn top_ups_are_idempotent_by_reference(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let first = admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 10_000,
            reference: "tx-1".into(),
            note: "first".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.balance, 10_000);
    let again = admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 10_000,
            reference: "tx-1".into(),
            note: "first".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.entry, first.entry,
        "a retry returns the original entry"
    );
    assert_eq!(again.balance, 10_000, "and adds nothing");

    let conflict = admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 99,
            reference: "tx-1".into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);
    assert_eq!(
        error_reason(&conflict).as_deref(),
        Some("DUPLICATE_REFERENCE")
    );

    admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    let balance = admin
        .get_balance(pb::GetBalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.balance, 10_005);

    let entries = admin
        .list_credit_entries(pb::ListCreditEntriesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(entries.entries.len(), 1);
    assert_eq!(entries.entries[0].amount, 5, "newest first");
    assert_eq!(entries.entries[0].balance_after, 10_005);
    let rest = admin
        .list_credit_entries(pb::ListCreditEntriesRequest {
            page_size: 10,
            page_token: entries.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.entries.len(), 1);
    assert_eq!(rest.entries[0].reference, "tx-1");
    assert!(rest.next_page_token.is_empty());
}

async fn pins_are_imported_sealed_and_deduplicated(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let product = admin
        .create_product(pb::CreateProductRequest {
            product: Some(pb::Product {
                name: "Fifa-2026".into(),
                value: "fifa-2026".into(),
                amount: 10_000,
                currency: "NPR".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!product.in_stock);
    let pin = |p: &str| pb::PinInput {
        pin: p.into(),
        ..Default::default()
    };
    let first = admin
        .import_pins(pb::ImportPinsRequest {
            product_idx: product.idx.clone(),
            pins: vec![
                pin("PIN-1111-AAAA"),
                pin("PIN-2222-BBBB"),
                pin("PIN-1111-AAAA"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (first.imported, first.duplicates, first.available_count),
        (2, 1, 2)
    );
    let second = admin
        .import_pins(pb::ImportPinsRequest {
            product_idx: product.idx.clone(),
            pins: vec![pin("PIN-2222-BBBB"), pin("PIN-3333-CCCC")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (second.imported, second.duplicates, second.available_count),
        (1, 1, 3)
    );

    let listed = app
        .vouchers(&app.token)
        .list_products(pb::ListProductsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.products[0].in_stock);
    assert_eq!(listed.products[0].available_count, 3);

    // The raw table holds no PIN in clear text.
    let raw = Database::connect(&app.database_url).await.unwrap();
    let rows = raw
        .query_all_raw(Statement::from_string(
            raw.get_database_backend(),
            "SELECT pin_ciphertext, pin_digest, serial FROM voucher_pins",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        for column in ["pin_ciphertext", "pin_digest", "serial"] {
            let value: String = row.try_get("", column).unwrap();
            assert!(!value.contains("PIN-"), "{column} leaks a PIN: {value}");
        }
    }
}

crate::on_both_databases!(
    top_ups_are_idempotent_by_reference,
    pins_are_imported_sealed_and_deduplicated,
);
