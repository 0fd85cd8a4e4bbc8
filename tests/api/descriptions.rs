//! BadRequest descriptions follow `accept-language` like refusal messages do: the same fields in
//! every language, each described in Indonesian for `accept-language: id` and in English
//! otherwise, whether the problem was found while parsing, by a rule or by a handler.

use coupon_service::pb;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::{
    common::{spawn_app, Backend, TestApp},
    engine::{checkout, item},
    vouchers::{buy, stocked},
};

/// `message` with `accept-language` set to `language`, or without the header.
fn asking<T>(message: T, language: Option<&'static str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(language) = language {
        request
            .metadata_mut()
            .insert("accept-language", language.parse().expect("a header value"));
    }
    request
}

/// (field, description) of each field violation.
type Violations = Vec<(String, String)>;

/// Each field violation of an INVALID_ARGUMENT status.
fn violations(status: &Status) -> Violations {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("a BadRequest")
        .field_violations
        .into_iter()
        .map(|v| (v.field, v.description))
        .collect()
}

/// The same bad request answered without `accept-language` and with `id`: the same fields in
/// the same order and the same (English) message, every description translated. Returns the
/// English and the Indonesian violations.
fn translated(english: &Status, indonesian: &Status) -> (Violations, Violations) {
    let (en, id) = (violations(english), violations(indonesian));
    let fields = |all: &[(String, String)]| all.iter().map(|v| v.0.clone()).collect::<Vec<_>>();
    assert_eq!(fields(&en), fields(&id));
    assert!(!en.is_empty());
    for ((field, english), (_, indonesian)) in en.iter().zip(&id) {
        assert_ne!(
            english, indonesian,
            "{field} is described in English for id"
        );
    }
    assert_eq!(english.message(), indonesian.message());
    (en, id)
}

fn described<'a>(violations: &'a [(String, String)], field: &str) -> &'a str {
    violations
        .iter()
        .find(|(f, _)| f == field)
        .map(|(_, description)| description.as_str())
        .unwrap_or_else(|| panic!("no violation of {field} in {violations:?}"))
}

async fn validate(app: &TestApp, language: Option<&'static str>) -> Status {
    app.coupons(&app.token)
        .validate(asking(
            pb::ValidateRequest {
                codes: vec!["SAVE200".into()],
                checkout: Some(checkout("ABC", vec![item("", 100, 0)])),
                ..Default::default()
            },
            language,
        ))
        .await
        .unwrap_err()
}

/// A currency that fails to parse, a missing product id and a zero quantity, in Validate.
async fn validate_describes_bad_input_in_the_callers_language(backend: Backend) {
    let app = spawn_app(backend).await;
    let (en, id) = translated(
        &validate(&app, None).await,
        &validate(&app, Some("id-ID,id;q=0.9,en;q=0.8")).await,
    );
    assert_eq!(
        en,
        [
            (
                "checkout.cart.currency".to_owned(),
                "\"ABC\" is not an ISO-4217 currency code".to_owned()
            ),
            (
                "checkout.cart.items[0].product_id".to_owned(),
                "is required".to_owned()
            ),
            (
                "checkout.cart.items[0].quantity".to_owned(),
                "must be at least 1".to_owned()
            ),
        ]
    );
    assert_eq!(
        described(&id, "checkout.cart.currency"),
        "\"ABC\" bukan kode mata uang ISO-4217"
    );
    assert_eq!(
        described(&id, "checkout.cart.items[0].product_id"),
        "wajib diisi"
    );
    assert_eq!(
        described(&id, "checkout.cart.items[0].quantity"),
        "paling sedikit 1"
    );
    // An explicit English header answers like no header.
    assert_eq!(violations(&validate(&app, Some("en")).await), en);
}

async fn redeem(app: &TestApp, language: Option<&'static str>) -> Status {
    let mut order = checkout("INR", vec![item("ABC123", 14_999, 2)]);
    order.customer = None;
    app.coupons(&app.token)
        .redeem(asking(
            pb::RedeemRequest {
                codes: vec!["SAVE 200".into()],
                order_id: String::new(),
                order_status: 99,
                checkout: Some(order),
                reservation_ttl: None,
            },
            language,
        ))
        .await
        .unwrap_err()
}

/// A code that fails to parse, a missing order id, an unknown status and an anonymous customer,
/// in Redeem.
async fn redeem_describes_bad_input_in_the_callers_language(backend: Backend) {
    let app = spawn_app(backend).await;
    let (en, id) = translated(&redeem(&app, None).await, &redeem(&app, Some("id")).await);
    assert_eq!(
        described(&en, "codes[0]"),
        "code may contain only letters A-Z, digits, '-' and '_'"
    );
    assert_eq!(
        described(&id, "codes[0]"),
        "kode hanya boleh berisi huruf A-Z, angka, '-' dan '_'"
    );
    assert_eq!(
        described(&en, "order_id"),
        "is required, at most 128 characters"
    );
    assert_eq!(
        described(&id, "order_id"),
        "wajib diisi, paling banyak 128 karakter"
    );
    assert_eq!(
        described(&id, "checkout.customer.id"),
        "wajib diisi: pelanggan anonim tidak dapat memakai kode diskon"
    );
    described(&id, "order_status");
}

async fn create_coupon(app: &TestApp, language: Option<&'static str>) -> Status {
    app.admin(&app.token)
        .create_coupon(asking(
            pb::CreateCouponRequest {
                coupon: Some(pb::Coupon {
                    code: "BAD".into(),
                    currency: "INR".into(),
                    discount: Some(pb::Discount {
                        kind: Some(pb::discount::Kind::Percentage(pb::Percentage {
                            basis_points: 12_000,
                            max_discount: None,
                        })),
                    }),
                    conditions: Some(pb::Conditions {
                        min_subtotal: -1,
                        start_time: Some(prost_types::Timestamp {
                            seconds: i64::MAX,
                            nanos: 0,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            language,
        ))
        .await
        .unwrap_err()
}

/// A timestamp that fails to parse and two broken rules, in CreateCoupon (the README example).
async fn create_coupon_describes_bad_input_in_the_callers_language(backend: Backend) {
    let app = spawn_app(backend).await;
    let (en, id) = translated(
        &create_coupon(&app, None).await,
        &create_coupon(&app, Some("id")).await,
    );
    let field = "coupon.discount.percentage.basis_points";
    assert_eq!(
        described(&en, field),
        "must be from 1 to 10000 (0.01% to 100%)"
    );
    assert_eq!(
        described(&id, field),
        "harus antara 1 dan 10000 (0,01% sampai 100%)"
    );
    assert_eq!(
        described(&en, "coupon.conditions.min_subtotal"),
        "must not be negative"
    );
    assert_eq!(
        described(&id, "coupon.conditions.min_subtotal"),
        "tidak boleh negatif"
    );
    assert_eq!(
        described(&en, "coupon.conditions.start_time"),
        "is not a valid timestamp"
    );
    assert_eq!(
        described(&id, "coupon.conditions.start_time"),
        "bukan cap waktu yang valid"
    );
}

/// Problems found by handlers rather than parsers, in both languages: a page token, a key id,
/// a stream cursor and a purchase amount (written the local way).
async fn handler_checks_describe_bad_input_in_the_callers_language(backend: Backend) {
    let app = spawn_app(backend).await;
    stocked(&app, 1, 0).await;
    let list = |language| {
        let mut coupons = app.coupons(&app.token);
        async move {
            coupons
                .list_redemptions(asking(
                    pb::ListRedemptionsRequest {
                        page_token: "garbage".into(),
                        ..Default::default()
                    },
                    language,
                ))
                .await
                .unwrap_err()
        }
    };
    let (en, id) = translated(&list(None).await, &list(Some("id")).await);
    assert_eq!(
        described(&en, "page_token"),
        "is not a token from this listing"
    );
    assert_eq!(described(&id, "page_token"), "bukan token dari daftar ini");

    let revoke = |language| {
        let mut admin = app.admin(&app.token);
        async move {
            admin
                .revoke_api_key(asking(pb::RevokeApiKeyRequest::default(), language))
                .await
                .unwrap_err()
        }
    };
    let (en, id) = translated(&revoke(None).await, &revoke(Some("id")).await);
    assert_eq!(described(&en, "key_id"), "is required");
    assert_eq!(described(&id, "key_id"), "wajib diisi");

    let watch = |language| {
        let mut coupons = app.coupons(&app.token);
        async move {
            coupons
                .watch_redemptions(asking(
                    pb::WatchRedemptionsRequest {
                        after_cursor: "bad".into(),
                        ..Default::default()
                    },
                    language,
                ))
                .await
                .unwrap_err()
        }
    };
    let (en, id) = translated(&watch(None).await, &watch(Some("id")).await);
    assert_eq!(
        described(&en, "after_cursor"),
        "is not a cursor from this stream"
    );
    assert_eq!(
        described(&id, "after_cursor"),
        "bukan kursor dari aliran ini"
    );

    let purchase = |language| {
        let mut vouchers = app.vouchers(&app.token);
        async move {
            vouchers
                .purchase(asking(
                    pb::PurchaseRequest {
                        amount: 100,
                        ..buy("ref-1")
                    },
                    language,
                ))
                .await
                .unwrap_err()
        }
    };
    let (en, id) = translated(&purchase(None).await, &purchase(Some("id")).await);
    assert_eq!(
        described(&en, "amount"),
        "enter valid amount: it must equal the product's price, Rs 100"
    );
    assert_eq!(
        described(&id, "amount"),
        "masukkan jumlah yang valid: harus sama dengan harga produk, Rs 100"
    );
}

crate::on_both_databases!(
    validate_describes_bad_input_in_the_callers_language,
    redeem_describes_bad_input_in_the_callers_language,
    create_coupon_describes_bad_input_in_the_callers_language,
    handler_checks_describe_bad_input_in_the_callers_language,
);
