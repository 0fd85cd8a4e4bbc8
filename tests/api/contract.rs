//! The contract against the source APIs: payment-link scoping, metadata predicates, the public
//! coupon summary, `total_amount`, unavailable products, amounts in messages, refusals without a
//! discount, the sign-in reason, tenant policies, and error details readable through reflection.

use coupon_service::{
    domain::{Scope, Scopes},
    pb,
};
use prost::Message;
use tokio_stream::StreamExt;
use tonic::{Code, Status};
use tonic_reflection::pb::{v1, v1alpha};
use tonic_types::StatusExt;

use crate::{
    common::{error_reason, spawn_app, violated_fields, Backend, TestApp},
    engine::{apply, checkout, create, fixed, in_language, item},
};

// === builders ===

fn with_conditions(mut coupon: pb::Coupon, edit: impl FnOnce(&mut pb::Conditions)) -> pb::Coupon {
    let mut conditions = coupon.conditions.take().unwrap_or_default();
    edit(&mut conditions);
    coupon.conditions = Some(conditions);
    coupon
}

fn predicate(field: &str, operator: pb::PredicateOperator, value: &str) -> pb::Predicate {
    pb::Predicate {
        field: field.into(),
        operator: operator as i32,
        values: vec![value.into()],
    }
}

async fn validate_in(
    app: &TestApp,
    token: &str,
    code: &str,
    checkout: pb::Checkout,
    language: &'static str,
) -> pb::CodeValidation {
    let answer = app
        .coupons(token)
        .validate(in_language(
            pb::ValidateRequest {
                codes: vec![code.into()],
                checkout: Some(checkout),
                ..Default::default()
            },
            language,
        ))
        .await
        .expect("validate answers")
        .into_inner();
    answer.results.into_iter().next().expect("one result")
}

async fn validate(app: &TestApp, code: &str, checkout: pb::Checkout) -> pb::CodeValidation {
    validate_in(app, &app.token, code, checkout, "en").await
}

async fn redeem(app: &TestApp, order: &str, code: &str, checkout: pb::Checkout) -> Status {
    app.coupons(&app.token)
        .redeem(pb::RedeemRequest {
            codes: vec![code.into()],
            order_id: order.into(),
            order_status: pb::OrderStatus::Completed as i32,
            checkout: Some(checkout),
            reservation_ttl: None,
        })
        .await
        .expect_err("the redemption is refused")
}

fn reasons(validation: &pb::CodeValidation) -> Vec<&str> {
    validation
        .rejections
        .iter()
        .map(|r| r.reason.as_str())
        .collect()
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

async fn set_policy(app: &TestApp, policy: pb::TenantPolicy, paths: &[&str]) -> pb::TenantPolicy {
    app.admin(&app.token)
        .update_tenant_policy(pb::UpdateTenantPolicyRequest {
            policy: Some(policy),
            update_mask: mask(paths),
        })
        .await
        .expect("policy updated")
        .into_inner()
}

// === gaps against the source APIs ===

/// A coupon for one payment link is "not found" anywhere else, as the payment-link API says.
async fn payment_link_coupons_are_not_found_elsewhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = create(
        &app,
        with_conditions(fixed("LINK10", "IDR", 1_000_000), |c| {
            c.payment_link_ids = vec!["pl-1".into()]
        }),
    )
    .await;
    assert_eq!(
        created.conditions.as_ref().unwrap().payment_link_ids,
        ["pl-1"],
        "the admin sees the links"
    );
    let on_link = |link: &str| pb::Checkout {
        payment_link_id: link.into(),
        cart: Some(pb::Cart {
            currency: "IDR".into(),
            subtotal_override: 5_000_000,
            ..Default::default()
        }),
        ..checkout("IDR", vec![])
    };

    let valid = validate(&app, "link10", on_link("pl-1")).await;
    assert!(valid.valid, "{valid:?}");
    assert_eq!(valid.discount, 1_000_000);

    for other in ["pl-2", ""] {
        let refused = validate_in(&app, &app.token, "LINK10", on_link(other), "id").await;
        assert!(!refused.valid);
        assert_eq!(reasons(&refused), ["COUPON_NOT_FOUND"], "link {other:?}");
        assert_eq!(
            refused.rejections[0].message,
            "Gagal! Kode diskon ini tidak ditemukan."
        );
        assert!(refused.coupon.is_none(), "nothing about the coupon leaks");
        assert_eq!((refused.discount, refused.potential_discount), (0, 0));
    }

    let status = redeem(&app, "order-pl", "LINK10", on_link("pl-2")).await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&status).as_deref(), Some("COUPON_NOT_FOUND"));
}

/// `metadata.` always means the caller's metadata, so the redeem API's `cart_qty` and item
/// `category` keys can be tested although built-in fields carry those names.
async fn metadata_keys_are_addressed_with_a_prefix(backend: Backend) {
    let app = spawn_app(backend).await;
    use pb::PredicateOperator::{Eq, Gt};
    create(
        &app,
        with_conditions(fixed("META", "INR", 100), |c| {
            c.order_predicates = vec![predicate("metadata.cart_qty", Gt, "10")]
        }),
    )
    .await;
    create(
        &app,
        with_conditions(fixed("UNITS", "INR", 100), |c| {
            c.order_predicates = vec![predicate("cart_qty", Gt, "10")]
        }),
    )
    .await;
    let mut three_units = checkout("INR", vec![item("a", 10_000, 3)]);
    three_units
        .cart
        .as_mut()
        .unwrap()
        .metadata
        .insert("cart_qty".into(), "11".into());
    assert!(validate(&app, "META", three_units.clone()).await.valid);
    let units = validate(&app, "UNITS", three_units).await;
    assert_eq!(
        reasons(&units),
        ["PREDICATE_FAILED"],
        "bare cart_qty is the unit count"
    );

    create(
        &app,
        with_conditions(fixed("SHOEMETA", "INR", 1_000), |c| {
            c.item_predicates = vec![predicate("metadata.category", Eq, "shoes")]
        }),
    )
    .await;
    create(
        &app,
        with_conditions(fixed("SHOECAT", "INR", 1_000), |c| {
            c.item_predicates = vec![predicate("category", Eq, "shoes")]
        }),
    )
    .await;
    let tagged = pb::LineItem {
        line_id: "tagged".into(),
        categories: vec!["apparel".into()],
        metadata: [("category".to_owned(), "shoes".to_owned())].into(),
        ..item("a", 10_000, 1)
    };
    let listed = pb::LineItem {
        line_id: "listed".into(),
        categories: vec!["shoes".into()],
        ..item("b", 10_000, 1)
    };
    let cart = checkout("INR", vec![tagged, listed]);
    let discounted = |priced: &pb::PricedCart| -> Vec<String> {
        priced
            .lines
            .iter()
            .filter(|l| l.coupon_discount > 0)
            .map(|l| l.line_id.clone())
            .collect()
    };
    assert_eq!(
        discounted(&apply(&app, &["SHOEMETA"], cart.clone()).await),
        ["tagged"]
    );
    assert_eq!(
        discounted(&apply(&app, &["SHOECAT"], cart).await),
        ["listed"]
    );

    let status = app
        .admin(&app.token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(with_conditions(fixed("NOKEY", "INR", 1), |c| {
                c.order_predicates = vec![predicate("metadata.", Gt, "1")]
            })),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["coupon.conditions.order_predicates[0].field"]
    );
}

/// The summary shows the target and every condition a customer needs to know, as the coupon
/// states it, and nothing private.
async fn summaries_show_the_target_and_public_conditions_only(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        pb::Coupon {
            target: Some(pb::Target {
                categories: vec!["shoes".into()],
                product_ids: vec!["a".into()],
                ..Default::default()
            }),
            ..with_conditions(fixed("SHOES", "INR", 100), |c| {
                c.channels = vec!["app".into()];
                c.min_subtotal = 5_000;
                c.min_quantity = 1;
                c.customer_segment = pb::CustomerSegment::Listed as i32;
                c.customer_ids = vec!["cust-1".into(), "vip-2".into()];
                c.customer_emails = vec!["vip@example.com".into()];
                c.requires_verified_phone = true;
                c.referrer_customer_id = "owner-9".into();
            })
        },
    )
    .await;
    let mut order = checkout("INR", vec![item("a", 10_000, 1)]);
    order.channel = "app".into();
    order.customer.as_mut().unwrap().phone_verified = true;
    let validation = validate(&app, "SHOES", order.clone()).await;
    assert!(validation.valid, "{validation:?}");
    let summary = validation.coupon.expect("a summary");
    let target = summary.target.expect("the target");
    assert_eq!(target.categories, ["shoes"]);
    assert_eq!(target.product_ids, ["a"]);
    let shown = summary.validity.expect("the conditions");
    assert_eq!(shown.channels, ["app"]);
    assert_eq!(shown.min_subtotal, 5_000);
    assert_eq!(shown.min_quantity, 1);
    assert_eq!(shown.customer_segment, pb::CustomerSegment::Listed as i32);
    assert!(shown.requires_verified_phone);
    assert!(shown.customer_ids.is_empty(), "no customer list");
    assert!(shown.customer_emails.is_empty(), "no customer list");
    assert!(shown.referrer_customer_id.is_empty(), "no referral owner");

    let listing = app
        .coupons(&app.token)
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(order),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed = listing.coupons[0].validation.as_ref().unwrap();
    assert_eq!(
        listed
            .coupon
            .as_ref()
            .unwrap()
            .target
            .as_ref()
            .unwrap()
            .categories,
        ["shoes"],
        "the cart API lists each valid coupon's categories"
    );
}

/// The priced cart carries the promo-check API's `total_amount`, the total before coupons.
async fn priced_carts_carry_the_total_before_coupons(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, fixed("SAVE200", "INR", 20_000)).await;
    let mut order = checkout("INR", vec![item("a", 79_900, 2), item("b", 10_000, 1)]);
    let cart = order.cart.as_mut().unwrap();
    cart.shipping = 4_000;
    cart.tax = 1_500;
    let priced = apply(&app, &["SAVE200"], order).await;
    assert_eq!(priced.total_amount, 169_800 + 4_000 + 1_500);
    assert_eq!(priced.discount, 20_000);
    assert_eq!(priced.total, priced.total_amount - priced.discount);
}

/// A switched-off product is "Product Currently Unavailable", not an invalid value.
async fn deactivated_products_are_unavailable(backend: Backend) {
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
    admin
        .import_pins(pb::ImportPinsRequest {
            product_idx: product.idx.clone(),
            pins: vec![pb::PinInput {
                pin: "PIN-1".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .update_product(pb::UpdateProductRequest {
            product: Some(pb::Product {
                idx: product.idx,
                active: Some(false),
                ..Default::default()
            }),
            update_mask: mask(&["active"]),
        })
        .await
        .unwrap();
    let buy = |value: &str| pb::PurchaseRequest {
        reference: format!("ref-{value}"),
        value: value.into(),
        amount: 10_000,
        ..Default::default()
    };
    let mut vouchers = app.vouchers(&app.token);
    let status = vouchers.purchase(buy("fifa-2026")).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("PRODUCT_UNAVAILABLE")
    );
    assert_eq!(status.message(), "Product Currently Unavailable");

    let status = vouchers.purchase(buy("no-such-product")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["value"]);
}

/// Money in predicate messages is written the local way; metadata values as the caller sent them.
async fn predicate_messages_write_amounts_the_local_way(backend: Backend) {
    let app = spawn_app(backend).await;
    use pb::PredicateOperator::Gt;
    for (code, currency) in [("BIGINR", "INR"), ("BIGIDR", "IDR")] {
        create(
            &app,
            with_conditions(fixed(code, currency, 100), |c| {
                c.order_predicates = vec![predicate("subtotal", Gt, "20000")]
            }),
        )
        .await;
    }
    create(
        &app,
        with_conditions(fixed("SELLING", "INR", 100), |c| {
            c.order_predicates = vec![predicate("selling_price", Gt, "200")]
        }),
    )
    .await;
    let small = |currency: &str| checkout(currency, vec![item("a", 10_000, 1)]);
    let inr = validate_in(&app, &app.token, "BIGINR", small("INR"), "en").await;
    assert_eq!(
        inr.rejections[0].message,
        "subtotal should be greater than ₹200."
    );
    assert_eq!(inr.rejections[0].metadata["currency"], "INR");
    let idr = validate_in(&app, &app.token, "BIGIDR", small("IDR"), "id").await;
    assert_eq!(
        idr.rejections[0].message,
        "Gagal! subtotal harus lebih dari Rp 200."
    );
    let mut with_metadata = small("INR");
    with_metadata
        .cart
        .as_mut()
        .unwrap()
        .metadata
        .insert("selling_price".into(), "150".into());
    let metadata = validate_in(&app, &app.token, "SELLING", with_metadata, "en").await;
    assert_eq!(
        metadata.rejections[0].message,
        "selling_price should be greater than 200."
    );
}

/// A refused code gives nothing; what it would give is in its own field.
async fn refusals_carry_no_discount(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        with_conditions(fixed("SAVE200", "INR", 20_000), |c| {
            c.min_subtotal = 149_900
        }),
    )
    .await;
    let order = checkout("INR", vec![item("a", 119_900, 1)]);
    let refused = validate(&app, "SAVE200", order.clone()).await;
    assert!(!refused.valid);
    assert_eq!(refused.discount, 0);
    assert_eq!(refused.potential_discount, 20_000);

    let priced = apply(&app, &["SAVE200"], order.clone()).await;
    assert_eq!(priced.rejected[0].discount, 0);
    assert_eq!(priced.discount, 0);

    let listing = app
        .coupons(&app.token)
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(order),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let near = listing.near_misses[0].validation.as_ref().unwrap();
    assert_eq!((near.discount, near.potential_discount), (0, 20_000));

    let enough = checkout("INR", vec![item("a", 159_800, 1)]);
    let valid = validate(&app, "SAVE200", enough).await;
    assert_eq!((valid.discount, valid.potential_discount), (20_000, 20_000));
}

/// A guest checking a new- or returning-customer coupon is asked to sign in.
async fn guests_are_told_to_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        with_conditions(fixed("WELCOME", "INR", 100), |c| {
            c.customer_segment = pb::CustomerSegment::New as i32
        }),
    )
    .await;
    let mut guest = checkout("INR", vec![item("a", 10_000, 1)]);
    guest.customer = None;
    let told = validate_in(&app, &app.token, "WELCOME", guest, "id").await;
    assert_eq!(reasons(&told), ["SIGN_IN_REQUIRED"]);
    assert_eq!(
        told.rejections[0].message,
        "Gagal! Silakan masuk untuk memakai kode diskon ini: hanya untuk pelanggan baru."
    );

    let mut returning = checkout("INR", vec![item("a", 10_000, 1)]);
    returning.customer.as_mut().unwrap().history = pb::CustomerHistory::Returning as i32;
    let refused = validate(&app, "WELCOME", returning).await;
    assert_eq!(reasons(&refused), ["CUSTOMER_NOT_ELIGIBLE"]);
}

// === tenant policies ===

/// The policy is read and changed through AdminService, field by field, per tenant.
async fn tenant_policies_are_set_by_field_mask(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let empty = admin
        .get_tenant_policy(pb::GetTenantPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty, pb::TenantPolicy::default(), "never set: empty");

    let everything = pb::TenantPolicy {
        refuse_loyalty_points: true,
        requires_verified_phone: true,
        excluded_order_types: vec![" payment_request ".into(), "fundraising".into()],
        default_channel: "app".into(),
        update_time: None,
    };
    let phone_only = set_policy(&app, everything.clone(), &["requires_verified_phone"]).await;
    assert!(phone_only.requires_verified_phone);
    assert!(!phone_only.refuse_loyalty_points, "not in the mask");
    assert!(
        phone_only.excluded_order_types.is_empty(),
        "not in the mask"
    );
    assert!(phone_only.update_time.is_some());

    set_policy(
        &app,
        everything,
        &[
            "refuse_loyalty_points",
            "excluded_order_types",
            "default_channel",
        ],
    )
    .await;
    let read = admin
        .get_tenant_policy(pb::GetTenantPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(read.refuse_loyalty_points && read.requires_verified_phone);
    assert_eq!(
        read.excluded_order_types,
        ["payment_request", "fundraising"]
    );
    assert_eq!(read.default_channel, "app");

    for (paths, policy) in [
        (vec!["nonsense"], Some(pb::TenantPolicy::default())),
        (vec![], Some(pb::TenantPolicy::default())),
    ] {
        let status = admin
            .update_tenant_policy(pb::UpdateTenantPolicyRequest {
                policy,
                update_mask: mask(&paths),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&status), ["update_mask"]);
    }
    let status = admin
        .update_tenant_policy(pb::UpdateTenantPolicyRequest {
            policy: Some(pb::TenantPolicy {
                default_channel: "x".repeat(65),
                ..Default::default()
            }),
            update_mask: mask(&["default_channel"]),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["policy.default_channel"]);

    let reader = app.new_tenant("reader", Scopes::new([Scope::Read])).await;
    let status = app
        .admin(&reader)
        .get_tenant_policy(pb::GetTenantPolicyRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let other = app.new_tenant("globex", Scopes::all()).await;
    let theirs = app
        .admin(&other)
        .get_tenant_policy(pb::GetTenantPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        theirs,
        pb::TenantPolicy::default(),
        "one tenant's policy is not another's"
    );
}

/// The engine applies the policy before each coupon's own conditions, with the same reasons,
/// to coupons that never set the matching flag.
async fn tenant_policies_apply_to_every_coupon(backend: Backend) {
    let app = spawn_app(backend).await;
    create(&app, fixed("PLAIN", "INR", 100)).await;
    create(
        &app,
        with_conditions(fixed("APPONLY", "INR", 100), |c| {
            c.channels = vec!["app".into()];
            c.requires_verified_phone = true;
        }),
    )
    .await;
    create(
        &app,
        with_conditions(fixed("WEBONLY", "INR", 100), |c| {
            c.channels = vec!["web".into()]
        }),
    )
    .await;
    let clean = || {
        let mut order = checkout("INR", vec![item("a", 10_000, 1)]);
        order.customer.as_mut().unwrap().phone_verified = true;
        order
    };
    let mut breaking = clean();
    breaking.order_type = "PAYMENT_REQUEST".into();
    breaking.loyalty_points_used = 500;
    breaking.customer.as_mut().unwrap().phone_verified = false;

    // Before the policy, nothing refuses the plain coupon, and no channel means none.
    assert!(validate(&app, "PLAIN", breaking.clone()).await.valid);
    assert_eq!(
        reasons(&validate(&app, "APPONLY", clean()).await),
        ["CHANNEL_NOT_ELIGIBLE"]
    );

    set_policy(
        &app,
        pb::TenantPolicy {
            refuse_loyalty_points: true,
            requires_verified_phone: true,
            excluded_order_types: vec!["payment_request".into()],
            default_channel: "app".into(),
            update_time: None,
        },
        &[
            "refuse_loyalty_points",
            "requires_verified_phone",
            "excluded_order_types",
            "default_channel",
        ],
    )
    .await;

    let refused = validate(&app, "PLAIN", breaking.clone()).await;
    assert_eq!(
        reasons(&refused),
        [
            "ORDER_TYPE_NOT_ELIGIBLE",
            "PHONE_NOT_VERIFIED",
            "NOT_COMBINABLE_WITH_POINTS"
        ]
    );
    assert_eq!(
        reasons(&validate(&app, "APPONLY", breaking.clone()).await),
        [
            "ORDER_TYPE_NOT_ELIGIBLE",
            "PHONE_NOT_VERIFIED",
            "NOT_COMBINABLE_WITH_POINTS"
        ],
        "a rule both state is reported once"
    );
    assert!(
        validate(&app, "APPONLY", clean()).await.valid,
        "the default channel is app"
    );
    let web = validate(&app, "WEBONLY", clean()).await;
    assert_eq!(reasons(&web), ["CHANNEL_NOT_ELIGIBLE"]);
    assert_eq!(web.rejections[0].metadata["channel"], "app");
    assert!(validate(&app, "PLAIN", clean()).await.valid);

    let priced = apply(&app, &["PLAIN"], breaking.clone()).await;
    assert_eq!(priced.discount, 0);
    let listing = app
        .coupons(&app.token)
        .list_applicable(pb::ListApplicableRequest {
            checkout: Some(breaking.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listing.coupons.is_empty(), "{listing:?}");
    let status = redeem(&app, "order-policy", "PLAIN", breaking.clone()).await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("ORDER_TYPE_NOT_ELIGIBLE")
    );

    // Another tenant's coupons follow their own (empty) policy.
    let other = app.new_tenant("globex", Scopes::all()).await;
    app.admin(&other)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(fixed("PLAIN", "INR", 100)),
        })
        .await
        .unwrap();
    assert!(
        validate_in(&app, &other, "PLAIN", breaking, "en")
            .await
            .valid
    );
}

// === errors a person can read ===

/// Reflection serves google.rpc's error details and status in both versions, so grpcurl can
/// decode BadRequest, ErrorInfo and LocalizedMessage.
async fn reflection_serves_the_error_detail_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    for (symbol, file) in [
        ("google.rpc.BadRequest", "google/rpc/error_details.proto"),
        ("google.rpc.ErrorInfo", "google/rpc/error_details.proto"),
        (
            "google.rpc.LocalizedMessage",
            "google/rpc/error_details.proto",
        ),
        ("google.rpc.Status", "google/rpc/status.proto"),
    ] {
        let mut client =
            v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
        let request = v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(symbol.into()),
            ),
        };
        let answer = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner()
            .next()
            .await
            .unwrap()
            .unwrap();
        let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
            answer.message_response
        else {
            panic!("v1 does not know {symbol}: {answer:?}");
        };
        let first =
            prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice())
                .unwrap();
        assert_eq!(first.name(), file, "v1 {symbol}");

        let mut client =
            v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
        let request = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                    symbol.into(),
                ),
            ),
        };
        let answer = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner()
            .next()
            .await
            .unwrap()
            .unwrap();
        let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(
            files,
        )) = answer.message_response
        else {
            panic!("v1alpha does not know {symbol}: {answer:?}");
        };
        let first =
            prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice())
                .unwrap();
        assert_eq!(first.name(), file, "v1alpha {symbol}");
    }
}

/// A refusal carries exactly the details reflection now describes: ErrorInfo and a
/// LocalizedMessage in the caller's language.
async fn refusals_carry_decodable_details(backend: Backend) {
    let app = spawn_app(backend).await;
    create(
        &app,
        with_conditions(fixed("SAVE200", "IDR", 20_000), |c| {
            c.min_subtotal = 149_900
        }),
    )
    .await;
    let status = app
        .coupons(&app.token)
        .redeem(in_language(
            pb::RedeemRequest {
                codes: vec!["SAVE200".into()],
                order_id: "order-1".into(),
                order_status: pb::OrderStatus::Completed as i32,
                checkout: Some(checkout("IDR", vec![item("a", 119_900, 1)])),
                reservation_ttl: None,
            },
            "id-ID",
        ))
        .await
        .unwrap_err();
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "BELOW_MINIMUM_AMOUNT");
    assert_eq!(info.domain, "coupons.v1");
    let localized = status
        .get_details_localized_message()
        .expect("LocalizedMessage");
    assert_eq!(localized.locale, "id-ID");
    assert_eq!(
        localized.message,
        "Kode diskon ini hanya berlaku untuk transaksi dengan harga minimal Rp 1.499."
    );
}

crate::on_both_databases!(
    payment_link_coupons_are_not_found_elsewhere,
    metadata_keys_are_addressed_with_a_prefix,
    summaries_show_the_target_and_public_conditions_only,
    priced_carts_carry_the_total_before_coupons,
    deactivated_products_are_unavailable,
    predicate_messages_write_amounts_the_local_way,
    refusals_carry_no_discount,
    guests_are_told_to_sign_in,
    tenant_policies_are_set_by_field_mask,
    tenant_policies_apply_to_every_coupon,
    reflection_serves_the_error_detail_messages,
    refusals_carry_decodable_details,
);
