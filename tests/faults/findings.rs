//! Input faults: each test fails on the code before its fix.

use coupon_service::{domain::Scopes, pb, store::SqliteSynchronous};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;
use tonic_types::StatusExt;

use crate::common::{error_reason, spawn_app, spawn_app_with, violated_fields, Backend, TestApp};

pub fn coupon(code: &str, kind: pb::discount::Kind, limits: pb::Limits) -> pb::Coupon {
    pb::Coupon {
        code: code.into(),
        currency: "INR".into(),
        discount: Some(pb::Discount { kind: Some(kind) }),
        limits: Some(limits),
        ..Default::default()
    }
}

pub fn one_use() -> pb::Limits {
    pb::Limits {
        max_redemptions: Some(1),
        ..Default::default()
    }
}

pub fn fixed(amount: i64) -> pb::discount::Kind {
    pb::discount::Kind::FixedAmount(pb::FixedAmount { amount })
}

pub fn line(price: Option<i64>, quantity: i64) -> pb::LineItem {
    pb::LineItem {
        product_id: "SKU-1".into(),
        unit_price: price,
        quantity,
        ..Default::default()
    }
}

pub fn redeem(
    code: &str,
    order_id: &str,
    items: Vec<pb::LineItem>,
    shipping: i64,
) -> pb::RedeemRequest {
    pb::RedeemRequest {
        codes: vec![code.into()],
        order_id: order_id.into(),
        order_status: pb::OrderStatus::Completed as i32,
        checkout: Some(pb::Checkout {
            cart: Some(pb::Cart {
                currency: "INR".into(),
                items,
                shipping,
                ..Default::default()
            }),
            customer: Some(pb::Customer {
                id: "cust-1".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        reservation_ttl: None,
    }
}

pub async fn create(app: &TestApp, coupon: pb::Coupon) -> pb::Coupon {
    app.admin(&app.token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(coupon),
        })
        .await
        .expect("create coupon")
        .into_inner()
}

async fn used(app: &TestApp, code: &str) -> i64 {
    app.admin(&app.token)
        .get_coupon(pb::GetCouponRequest {
            code: code.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .usage
        .map(|u| u.redemptions)
        .unwrap_or_default()
}

/// Finding 4: a NUL byte is INVALID_ARGUMENT at the edge; where one gets past the edge,
/// PostgreSQL's data exception (22021) is INVALID_ARGUMENT too, never ABORTED "retry it".
async fn nul_bytes_are_invalid_argument_never_contention(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, coupon("NUL1", fixed(100), one_use())).await;
    let mut client = app.coupons(&app.token);
    let mut request = redeem("NUL1", "o-1", vec![line(Some(1_000), 1)], 0);
    let checkout = request.checkout.as_mut().unwrap();
    checkout.customer.as_mut().unwrap().id = "cust\0".into();
    checkout.cart.as_mut().unwrap().items[0]
        .metadata
        .insert("brand".into(), "a\0b".into());
    let status = client.redeem(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        violated_fields(&status),
        ["checkout.customer.id", "checkout.cart.items[0].metadata"]
    );
    assert_eq!(used(&app, "NUL1").await, 0, "nothing changed");

    let status = app
        .vouchers(&app.token)
        .purchase(pb::PurchaseRequest {
            reference: "nul-buy".into(),
            value: "first".into(),
            amount: 100,
            name: "Bu\0yer".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["name"]);
    let idx = product(&app, &app.token, "first").await;
    let status = app
        .admin(&app.token)
        .import_pins(pins(&idx, &["PIN\0"]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["pins[0].pin"]);

    // Every other caller text is refused at the edge too, on both databases alike (PostgreSQL's
    // own refusal, SQLSTATE 22021, is classified INVALID_ARGUMENT as well: store::error's tests).
    let mut admin = app.admin(&app.token);
    let status = admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 5,
            reference: "nul\0ref".into(),
            note: "paid\0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["reference", "note"]);
    let mut described = coupon("NUL2", fixed(100), one_use());
    described.description = "half\0off".into();
    let status = admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(described),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["coupon.description"]);
    // An update refuses what a create refuses, and an id with a NUL is no id.
    let existing = admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(coupon("NUL3", fixed(100), one_use())),
        })
        .await
        .unwrap()
        .into_inner();
    let status = admin
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(pb::Coupon {
                id: existing.id.clone(),
                description: "half\0off".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["description".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["coupon.description"]);
    let status = admin
        .deactivate_coupon(pb::DeactivateCouponRequest { id: "cpn\0".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
    let status = client
        .list_redemptions(pb::ListRedemptionsRequest {
            order_id: "o\0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["order_id"]);
    let balance = admin
        .get_balance(pb::GetBalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.balance, 0, "nothing changed");
}

/// Finding 5: a PIN is unique per tenant across products; an import naming a PIN another
/// product holds is refused whole, with the PIN's position.
async fn a_pin_is_stock_of_one_product_per_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = product(&app, &app.token, "first").await;
    let second = product(&app, &app.token, "second").await;
    let mut admin = app.admin(&app.token);
    let imported = admin
        .import_pins(pins(&first, &["PIN-A", "PIN-B"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.imported, 2);
    let refused = admin
        .import_pins(pins(&second, &["PIN-C", "PIN-B"]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert_eq!(
        error_reason(&refused).as_deref(),
        Some("PIN_IN_ANOTHER_PRODUCT")
    );
    assert!(
        refused.message().contains("pins[1]"),
        "{}",
        refused.message()
    );
    let again = admin
        .import_pins(pins(&second, &["PIN-C"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.imported, again.available_count),
        (1, 1),
        "the refused import left nothing behind"
    );
    let repeat = admin
        .import_pins(pins(&first, &["PIN-A"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (repeat.imported, repeat.duplicates),
        (0, 1),
        "the same product counts it a duplicate"
    );

    let other = app.new_tenant("other", Scopes::all()).await;
    let theirs = product(&app, &other, "first").await;
    app.admin(&other)
        .import_pins(pins(&theirs, &["PIN-A"]))
        .await
        .expect("another tenant's PINs are its own");
}

/// Finding 5, existing data: a database that already holds one PIN in two products still
/// migrates. An unsold copy of a sold PIN leaves stock, of unsold copies the first stays, and a
/// PIN sold twice keeps both sales.
async fn duplicate_pins_of_an_old_database_are_settled_by_the_migration(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = product(&app, &app.token, "first").await;
    let second = product(&app, &app.token, "second").await;
    let mut admin = app.admin(&app.token);
    admin
        .import_pins(pins(&first, &["SOLD-TWICE", "SOLD-ONCE", "NEVER-SOLD"]))
        .await
        .unwrap();
    let db = Database::connect(&app.database_url).await.unwrap();
    let backend_kind = db.get_database_backend();
    // Back to just before the migration that made PINs unique per tenant.
    let migrations = Migrator::migrations();
    let position = migrations
        .iter()
        .position(|m| m.name().contains("pin_unique_per_tenant"))
        .unwrap();
    let steps = u32::try_from(migrations.len() - position).unwrap();
    Migrator::down(&db, Some(steps)).await.unwrap();
    let exec = |sql: String| {
        let db = &db;
        async move {
            db.execute_raw(Statement::from_string(backend_kind, sql))
                .await
                .unwrap();
        }
    };
    // Copies in the second product, as the old import allowed, with ids sorting after.
    exec(format!(
        "INSERT INTO voucher_pins (id, tenant_id, product_id, pin_ciphertext, pin_digest, serial, \
         expires_at, purchase_id, created_at) SELECT id || '-copy', tenant_id, '{second}', \
         pin_ciphertext, pin_digest, serial, expires_at, NULL, created_at FROM voucher_pins"
    ))
    .await;
    let digest = |pin: &str| app.pin_key.digest(pin);
    for (pin, sold_copies) in [("SOLD-TWICE", 2), ("SOLD-ONCE", 1)] {
        let limit = if sold_copies == 2 {
            ""
        } else {
            " AND product_id <> '{second}'"
        };
        let limit = limit.replace("{second}", &second);
        exec(format!(
            "UPDATE voucher_pins SET purchase_id = 'pur-' || id WHERE pin_digest = '{}'{limit}",
            digest(pin)
        ))
        .await;
    }
    Migrator::up(&db, None)
        .await
        .expect("the migration settles duplicates");

    let rows = db
        .query_all_raw(Statement::from_string(
            backend_kind,
            "SELECT product_id, pin_digest, purchase_id FROM voucher_pins ORDER BY id",
        ))
        .await
        .unwrap();
    let rows: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "product_id").unwrap(),
                r.try_get("", "pin_digest").unwrap(),
                r.try_get("", "purchase_id").unwrap(),
            )
        })
        .collect();
    let copies = |pin: &str| {
        rows.iter()
            .filter(|(_, d, _)| d.starts_with(&digest(pin)))
            .map(|(p, _, sold)| (p == &first, sold.is_some()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        copies("SOLD-TWICE"),
        [(true, true), (false, true)],
        "both sales stay"
    );
    assert_eq!(
        copies("SOLD-ONCE"),
        [(true, true)],
        "the unsold copy left stock"
    );
    assert_eq!(
        copies("NEVER-SOLD"),
        [(true, false)],
        "the first copy stays in stock"
    );
    let refused = admin
        .import_pins(pins(&second, &["SOLD-ONCE"]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
}

async fn product(app: &TestApp, token: &str, value: &str) -> String {
    app.admin(token)
        .create_product(pb::CreateProductRequest {
            product: Some(pb::Product {
                name: value.into(),
                value: value.into(),
                amount: 100,
                currency: "NPR".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .idx
}

fn pins(product_idx: &str, pins: &[&str]) -> pb::ImportPinsRequest {
    pb::ImportPinsRequest {
        product_idx: product_idx.into(),
        pins: pins
            .iter()
            .map(|pin| pb::PinInput {
                pin: (*pin).into(),
                ..Default::default()
            })
            .collect(),
    }
}

/// Finding 6: sums of caller numbers are checked. A top-up that would overflow the balance is
/// FAILED_PRECONDITION and changes nothing; a cart whose unit count overflows is
/// INVALID_ARGUMENT, not "missing 7 units".
async fn sums_of_caller_numbers_never_wrap(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let status = admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: i64::MAX,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(error_reason(&status).as_deref(), Some("BALANCE_OVERFLOW"));
    let balance = admin
        .get_balance(pb::GetBalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.balance, 10, "nothing was added");
    let entries = admin
        .list_credit_entries(pb::ListCreditEntriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(entries.entries.len(), 1, "and nothing was written");

    let mut minimum = coupon("FIVE-UNITS", fixed(100), pb::Limits::default());
    minimum.conditions = Some(pb::Conditions {
        min_quantity: 5,
        ..Default::default()
    });
    create(&app, minimum).await;
    let status = app
        .coupons(&app.token)
        .redeem(redeem(
            "FIVE-UNITS",
            "o-max",
            vec![line(Some(0), i64::MAX), line(Some(0), i64::MAX)],
            0,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        violated_fields(&status)
            .iter()
            .any(|f| f.starts_with("checkout.cart.items[") && f.ends_with("quantity")),
        "{status:?}"
    );
}

/// Finding 7: a caller value is echoed as a short prefix at most, and ids are capped, so
/// trailers stay far below the 16 KiB gRPC-core clients accept.
async fn errors_echo_bounded_prefixes_of_caller_values(backend: Backend) {
    let app = spawn_app(backend).await;
    let huge = "x".repeat(10_000);
    let size = |status: &tonic::Status| status.message().len() + status.details().len();
    let missing = app
        .admin(&app.token)
        .get_coupon(pb::GetCouponRequest {
            id: huge.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        missing.code(),
        Code::InvalidArgument,
        "ids are capped: {missing:?}"
    );
    assert!(size(&missing) < 1_024, "{} bytes", size(&missing));
    let missing = app
        .coupons(&app.token)
        .get_redemption(pb::GetRedemptionRequest { id: huge.clone() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument, "{missing:?}");
    assert!(size(&missing) < 1_024, "{} bytes", size(&missing));

    // An id of the longest allowed length is echoed as a short prefix only.
    let longest = "y".repeat(coupon_service::domain::text::MAX_ID_LEN);
    let missing = app
        .admin(&app.token)
        .get_coupon(pb::GetCouponRequest {
            id: longest.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert!(
        !missing.message().contains(&longest),
        "{}",
        missing.message()
    );
    let info = missing.get_details_resource_info().expect("resource info");
    assert!(
        info.resource_name.chars().count() <= 65,
        "{}",
        info.resource_name
    );

    let mut many = redeem("ANY", &huge, vec![], 0);
    many.checkout.as_mut().unwrap().cart.as_mut().unwrap().items = (0..1_000)
        .map(|n| pb::LineItem {
            line_id: format!("{n}{}", &huge[..1_000]),
            quantity: 0,
            ..Default::default()
        })
        .collect();
    many.order_id = "o-many".into();
    let invalid = app.coupons(&app.token).redeem(many).await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert!(size(&invalid) < 8 * 1_024, "{} bytes", size(&invalid));
}

/// Finding 8: the embedded default syncs every commit (survives a power or OS crash); the
/// faster mode only when asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_commits_are_durable_unless_told_otherwise() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(
        app.server_store.sqlite_synchronous().await.unwrap(),
        Some(SqliteSynchronous::Full)
    );
    let fast = spawn_app_with(Backend::Sqlite, |s| {
        s.database.sqlite_synchronous = SqliteSynchronous::Normal
    })
    .await;
    assert_eq!(
        fast.server_store.sqlite_synchronous().await.unwrap(),
        Some(SqliteSynchronous::Normal)
    );
}

/// Finding 10: a line without a price is refused, and a coupon that would take nothing off is
/// refused with NO_DISCOUNT instead of using up its one redemption.
async fn redemptions_that_give_nothing_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, coupon("ONCE", fixed(500), one_use())).await;
    create(
        &app,
        coupon(
            "SHIPFREE",
            pb::discount::Kind::FreeShipping(pb::FreeShipping { max_discount: None }),
            one_use(),
        ),
    )
    .await;
    let mut client = app.coupons(&app.token);
    let unpriced = client
        .redeem(redeem("ONCE", "o-1", vec![line(None, 1)], 0))
        .await
        .unwrap_err();
    assert_eq!(unpriced.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&unpriced),
        ["checkout.cart.items[0].unit_price"]
    );
    assert_eq!(used(&app, "ONCE").await, 0);

    let nothing = client
        .redeem(redeem("SHIPFREE", "o-2", vec![line(Some(1_000), 1)], 0))
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), Code::FailedPrecondition, "{nothing:?}");
    assert_eq!(error_reason(&nothing).as_deref(), Some("NO_DISCOUNT"));
    assert_eq!(used(&app, "SHIPFREE").await, 0, "no use was consumed");
    let shipped = client
        .redeem(redeem("SHIPFREE", "o-3", vec![line(Some(1_000), 1)], 400))
        .await
        .expect("with shipping to waive it applies")
        .into_inner();
    assert_eq!(shipped.redemptions[0].discount, 400);
}

crate::on_both_databases!(
    nul_bytes_are_invalid_argument_never_contention,
    a_pin_is_stock_of_one_product_per_tenant,
    duplicate_pins_of_an_old_database_are_settled_by_the_migration,
    sums_of_caller_numbers_never_wrap,
    errors_echo_bounded_prefixes_of_caller_values,
    redemptions_that_give_nothing_are_refused,
);
