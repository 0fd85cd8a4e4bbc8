//! Authentication and scopes.

use base64::{engine::general_purpose::STANDARD, Engine};
use coupon_service::{
    domain::{Scope, Scopes},
    pb::{
        self, admin_service_client::AdminServiceClient, coupon_service_client::CouponServiceClient,
    },
};
use tonic::Code;
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

use crate::common::{error_reason, spawn_app, Auth, Backend};

async fn missing_or_bad_keys_are_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let (key_id, secret) = app.token.split_once('.').unwrap();
    let cases = [
        Auth::none(),
        Auth::header("Bearer"),
        Auth::header("Bearer not-a-key"),
        Auth::header(&format!("Bearer {key_id}.wrong-secret")),
        Auth::header(&format!("Bearer key_unknown.{secret}")),
        Auth::header(&format!(
            "Basic {}",
            STANDARD.encode(format!("{key_id}:wrong"))
        )),
        Auth::header("Digest abc"),
    ];
    for auth in cases {
        let mut client = AdminServiceClient::with_interceptor(app.channel.clone(), auth);
        let status = client
            .list_coupons(pb::ListCouponsRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
}

async fn bearer_and_basic_both_authenticate(backend: Backend) {
    let app = spawn_app(backend).await;
    let (key_id, secret) = app.token.split_once('.').unwrap();
    let basic = Auth::header(&format!(
        "Basic {}",
        STANDARD.encode(format!("{key_id}:{secret}"))
    ));
    for auth in [Auth::bearer(&app.token), basic] {
        let mut client = AdminServiceClient::with_interceptor(app.channel.clone(), auth);
        client
            .list_coupons(pb::ListCouponsRequest::default())
            .await
            .expect("valid key is accepted");
    }
}

async fn a_missing_scope_is_permission_denied(backend: Backend) {
    let app = spawn_app(backend).await;
    let reader = app.new_tenant("reader", Scopes::new([Scope::Read])).await;
    let status = app
        .admin(&reader)
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(error_reason(&status).as_deref(), Some("MISSING_SCOPE"));

    let status = app
        .coupons(&reader)
        .redeem(pb::RedeemRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // The read scope is enough for product listing.
    app.vouchers(&reader)
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("read scope lists products");
}

async fn health_and_reflection_need_no_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in [
        "",
        "coupons.v1.CouponService",
        "coupons.v1.VoucherService",
        "coupons.v1.AdminService",
    ] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health without a key")
            .into_inner();
        assert_eq!(answer.status, 1, "{service} SERVING");
    }
    // Unauthenticated calls to the API itself still fail.
    let mut client = CouponServiceClient::with_interceptor(app.channel.clone(), Auth::none());
    let status = client
        .validate(pb::ValidateRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

crate::on_both_databases!(
    missing_or_bad_keys_are_unauthenticated,
    bearer_and_basic_both_authenticate,
    a_missing_scope_is_permission_denied,
    health_and_reflection_need_no_key,
);
