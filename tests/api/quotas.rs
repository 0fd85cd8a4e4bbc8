//! Per-tenant quotas and the code-guessing throttle: RESOURCE_EXHAUSTED with QuotaFailure and
//! RetryInfo, limits set through AdminService, shared among replicas as documented, and a
//! guessing end customer throttled while a normal one is not.

use std::time::{Duration, Instant};

use coupon_service::{domain::Scopes, pb};
use prost_types::FieldMask;
use tonic::{transport::Channel, Code, Request, Status};
use tonic_types::StatusExt;

use super::ledger::{limited, order};
use crate::common::{
    connect, error_reason, spawn_app, violated_fields, Auth, Backend, ServerProcess,
};

type Coupons = pb::coupon_service_client::CouponServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Auth>,
>;
type Admin = pb::admin_service_client::AdminServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Auth>,
>;

/// A cart SAVE200 (1000 off, no conditions) applies to, for `customer`.
fn checkout(customer: &str) -> pb::Checkout {
    order(&[], "unused", customer, pb::OrderStatus::Pending)
        .checkout
        .expect("a checkout")
}

fn validate(code: &str, customer: &str) -> pb::ValidateRequest {
    pb::ValidateRequest {
        codes: vec![code.into()],
        checkout: Some(checkout(customer)),
        ..Default::default()
    }
}

/// `request` with an `x-end-user` header.
fn from_end_user<T>(end_user: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-end-user", end_user.parse().expect("header value"));
    request
}

async fn set_quota(admin: &mut Admin, quota: pb::TenantQuota, paths: &[&str]) -> pb::TenantQuota {
    admin
        .update_tenant_quota(pb::UpdateTenantQuotaRequest {
            quota: Some(quota),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .expect("quota updated")
        .into_inner()
}

/// Asserts `status` is a throttled answer with every detail the contract promises, and returns
/// its retry delay.
fn assert_exhausted(status: &Status, reason: &str, subject_prefix: &str) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(error_reason(status).as_deref(), Some(reason));
    let failure = status.get_details_quota_failure().expect("QuotaFailure");
    assert!(
        failure.violations[0].subject.starts_with(subject_prefix),
        "{failure:?}"
    );
    let retry = status.get_details_retry_info().expect("RetryInfo");
    let delay = retry.retry_delay.expect("a retry delay");
    assert!(delay > Duration::ZERO);
    delay
}

async fn a_tenant_over_its_quota_is_refused_with_retry_info(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.new_tenant("globex", Scopes::all()).await;
    let mut admin = app.admin(&app.token);

    // Never set: the service's defaults.
    let defaults = admin
        .get_tenant_quota(pb::GetTenantQuotaRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (defaults.requests_per_second, defaults.burst),
        (1_000, 2_000)
    );
    assert_eq!(defaults.update_time, None);

    // A tenant's own key may tighten its quota, never loosen it past the default.
    let looser = admin
        .update_tenant_quota(pb::UpdateTenantQuotaRequest {
            quota: Some(pb::TenantQuota {
                requests_per_second: 5_000,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["requests_per_second".into(), "rate".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(looser.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&looser),
        ["update_mask", "quota.requests_per_second"]
    );

    let set = set_quota(
        &mut admin,
        pb::TenantQuota {
            requests_per_second: 1,
            burst: 5,
            ..Default::default()
        },
        &["requests_per_second", "burst"],
    )
    .await;
    assert_eq!((set.requests_per_second, set.burst), (1, 5));
    assert_eq!(set.unknown_code_limit, defaults.unknown_code_limit);
    assert!(set.update_time.is_some());

    let mut coupons = app.coupons(&app.token);
    let started = Instant::now();
    let mut admitted = 0_u64;
    let mut refusal = None;
    // Admin calls count as well as the others.
    for n in 0..20 {
        let outcome = if n % 2 == 0 {
            coupons
                .validate(validate("SAVE200", "alice"))
                .await
                .map(drop)
        } else {
            admin
                .get_tenant_quota(pb::GetTenantQuotaRequest {})
                .await
                .map(drop)
        };
        match outcome {
            Ok(()) => admitted += 1,
            Err(status) => refusal = Some(status),
        }
    }
    let elapsed = started.elapsed();
    // The burst, plus one call per second that passed.
    assert!(admitted >= 5, "admitted {admitted}");
    assert!(
        admitted <= 5 + elapsed.as_secs() + 1,
        "admitted {admitted} in {elapsed:?}"
    );
    let refusal = refusal.expect("calls past the quota are refused");
    let delay = assert_exhausted(&refusal, "QUOTA_EXCEEDED", "tenant:");
    assert!(delay <= Duration::from_secs(1), "{delay:?}");

    app.coupons(&other)
        .validate(validate("SAVE200", "alice"))
        .await
        .expect("another tenant has its own quota");

    // Waiting as long as RetryInfo says is enough.
    let again = loop {
        match coupons.validate(validate("SAVE200", "alice")).await {
            Err(status) => {
                tokio::time::sleep(assert_exhausted(&status, "QUOTA_EXCEEDED", "tenant:")).await
            }
            Ok(answer) => break answer,
        }
    };
    assert!(!again.into_inner().valid, "no such coupon in this tenant");
    app.stop().await;
}

/// Calls `coupons` `calls` times and counts the admitted ones; any other failure fails the test.
async fn count_admitted(mut coupons: Coupons, calls: usize) -> u64 {
    let mut admitted = 0;
    for _ in 0..calls {
        match coupons.validate(validate("SAVE200", "alice")).await {
            Ok(_) => admitted += 1,
            Err(status) => {
                assert_exhausted(&status, "QUOTA_EXCEEDED", "tenant:");
            }
        }
    }
    admitted
}

fn client(channel: Channel, token: &str) -> Coupons {
    pb::coupon_service_client::CouponServiceClient::with_interceptor(channel, Auth::bearer(token))
}

/// Two processes started with `--quota-replicas 2` each enforce half of the tenant's limit: what
/// both let through together stays within the documented bound, burst + rate x elapsed + one call
/// per replica for rounding, although each process alone would allow the whole burst.
async fn replicas_share_a_tenant_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    set_quota(
        &mut app.admin(&app.token),
        pb::TenantQuota {
            requests_per_second: 1,
            burst: 10,
            ..Default::default()
        },
        &["requests_per_second", "burst"],
    )
    .await;
    let processes: Vec<ServerProcess> = (0..2)
        .map(|_| ServerProcess::spawn_with_args(&app.database_url, &["--quota-replicas", "2"]))
        .collect();
    let mut clients = Vec::new();
    for process in &processes {
        clients.push(client(connect(process.addr).await, &app.token));
    }
    let started = Instant::now();
    let counts: Vec<u64> = futures::future::join_all(
        clients
            .into_iter()
            .map(|coupons| tokio::spawn(count_admitted(coupons, 30))),
    )
    .await
    .into_iter()
    .map(|joined| joined.expect("client task"))
    .collect();
    let elapsed = started.elapsed();
    let total: u64 = counts.iter().sum();
    for admitted in &counts {
        // Each process grants its share of the burst, 10 / 2.
        assert!(*admitted >= 5, "{counts:?}");
    }
    assert!(
        total <= 10 + elapsed.as_secs() + 1 + 2,
        "{counts:?} in {elapsed:?}"
    );
    app.stop().await;
}

/// A quota changed through one replica reaches the other within the settings TTL, without a
/// restart.
async fn a_quota_change_reaches_every_replica(backend: Backend) {
    let app = spawn_app(backend).await;
    let processes: Vec<ServerProcess> = (0..2)
        .map(|_| ServerProcess::spawn(&app.database_url))
        .collect();
    let first = connect(processes[0].addr).await;
    let mut second = client(connect(processes[1].addr).await, &app.token);
    // The second replica has read the default quota.
    second.validate(validate("SAVE200", "alice")).await.unwrap();

    pb::admin_service_client::AdminServiceClient::with_interceptor(first, Auth::bearer(&app.token))
        .update_tenant_quota(pb::UpdateTenantQuotaRequest {
            quota: Some(pb::TenantQuota {
                requests_per_second: 1,
                burst: 1,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["requests_per_second".into(), "burst".into()],
            }),
        })
        .await
        .unwrap();

    // Under the default quota nothing is refused; a refusal means the new quota arrived.
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        assert!(
            Instant::now() < deadline,
            "the change never reached the replica"
        );
        if let Err(status) = second.validate(validate("SAVE200", "alice")).await {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_exhausted(&refused, "QUOTA_EXCEEDED", "tenant:");
    app.stop().await;
}

/// Fires one unknown code at the service through Validate, Apply or Redeem (by `attempt`), and
/// returns the refusal when the call was throttled.
async fn guess(coupons: &mut Coupons, attempt: usize, end_user: &str) -> Option<Status> {
    let code = format!("GUESS{attempt:04}");
    // A new customer id each time: the guesser is recognised by the end-user key alone.
    let customer = format!("mallory{attempt}");
    let outcome = match attempt % 3 {
        0 => coupons
            .validate(from_end_user(end_user, validate(&code, &customer)))
            .await
            .map(|answer| {
                let result = &answer.get_ref().results[0];
                assert_eq!(result.rejections[0].reason, "COUPON_NOT_FOUND");
            }),
        1 => coupons
            .apply(from_end_user(
                end_user,
                pb::ApplyRequest {
                    codes: vec![code],
                    checkout: Some(checkout(&customer)),
                    ..Default::default()
                },
            ))
            .await
            .map(|answer| {
                let cart = answer.into_inner().cart.expect("a cart");
                assert_eq!(cart.rejected[0].rejections[0].reason, "COUPON_NOT_FOUND");
            }),
        _ => {
            let refused = coupons
                .redeem(from_end_user(
                    end_user,
                    order(
                        &[&code],
                        &format!("o{attempt}"),
                        &customer,
                        pb::OrderStatus::Completed,
                    ),
                ))
                .await
                .unwrap_err();
            if refused.code() == Code::FailedPrecondition {
                assert_eq!(error_reason(&refused).as_deref(), Some("COUPON_NOT_FOUND"));
                Ok(())
            } else {
                Err(refused)
            }
        }
    };
    outcome.err()
}

async fn a_guessing_end_user_is_throttled_while_a_normal_customer_is_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(limited("SAVE200", 1_000, pb::Limits::default())),
        })
        .await
        .unwrap();
    let set = set_quota(
        &mut admin,
        pb::TenantQuota {
            unknown_code_limit: 6,
            unknown_code_window_seconds: 3_600,
            ..Default::default()
        },
        &["unknown_code_limit", "unknown_code_window_seconds"],
    )
    .await;
    assert_eq!(
        (set.unknown_code_limit, set.unknown_code_window_seconds),
        (6, 3_600)
    );

    // The guessing loop runs beside a normal customer who checks and redeems a real code.
    let mut guesser = app.coupons(&app.token);
    let guessing = tokio::spawn(async move {
        for attempt in 0..20 {
            if let Some(refused) = guess(&mut guesser, attempt, "203.0.113.7").await {
                // Every earlier attempt was answered.
                return (attempt, refused, guesser);
            }
        }
        panic!("twenty unknown codes and never throttled");
    });
    let mut shopper = app.coupons(&app.token);
    for n in 0..10 {
        let answer = shopper
            .validate(from_end_user("198.51.100.1", validate("SAVE200", "alice")))
            .await
            .expect("the normal customer is never throttled")
            .into_inner();
        assert!(answer.valid);
        if n == 0 {
            // A typo of hers is answered as usual.
            let typo = shopper
                .validate(from_end_user("198.51.100.1", validate("SAVE20O", "alice")))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(typo.results[0].rejections[0].reason, "COUPON_NOT_FOUND");
        }
    }
    let (answered, refused, mut guesser) = guessing.await.expect("guessing task");
    // Six unknown codes over Validate, Apply and Redeem are answered; the seventh is throttled.
    assert_eq!(answered, 6);
    let delay = assert_exhausted(&refused, "TOO_MANY_UNKNOWN_CODES", "end_user");
    assert!(delay > Duration::from_secs(60), "{delay:?}");

    // Once throttled, even a real code is refused for the guesser, so the answer tells it
    // nothing about which codes exist.
    let real = guesser
        .validate(from_end_user("203.0.113.7", validate("SAVE200", "mallory")))
        .await
        .unwrap_err();
    assert_exhausted(&real, "TOO_MANY_UNKNOWN_CODES", "end_user");

    // The normal customer redeems the real code.
    let redeemed = shopper
        .redeem(from_end_user(
            "198.51.100.1",
            order(&["SAVE200"], "alice-1", "alice", pb::OrderStatus::Completed),
        ))
        .await
        .expect("redeemed")
        .into_inner();
    assert_eq!(redeemed.redemptions.len(), 1);
    app.stop().await;
}

/// Without an `x-end-user` header the checkout's customer is the end user: a customer guessing
/// is throttled, another customer of the same tenant is not.
async fn without_a_header_the_checkout_customer_is_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(limited("SAVE200", 1_000, pb::Limits::default())),
        })
        .await
        .unwrap();
    set_quota(
        &mut admin,
        pb::TenantQuota {
            unknown_code_limit: 2,
            ..Default::default()
        },
        &["unknown_code_limit"],
    )
    .await;
    let mut coupons = app.coupons(&app.token);
    for n in 0..2 {
        coupons
            .validate(validate(&format!("NOPE{n}"), "mallory"))
            .await
            .expect("within the allowance");
    }
    let refused = coupons
        .validate(validate("NOPE2", "mallory"))
        .await
        .unwrap_err();
    assert_exhausted(&refused, "TOO_MANY_UNKNOWN_CODES", "end_user");
    let alice = coupons
        .validate(validate("SAVE200", "alice"))
        .await
        .expect("another customer is unaffected")
        .into_inner();
    assert!(alice.valid);
    app.stop().await;
}

/// The operator's command line sets any limit, even above the service default, and the API
/// reports it; out-of-range values and unknown tenants fail with a reason.
async fn the_command_line_sets_a_tenant_quota(backend: Backend) {
    let app = spawn_app(backend).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_coupon-service"))
            .args(["tenant", "quota"])
            .args(args)
            .args(["--database-url", &app.database_url])
            .env("RUST_LOG", "warn")
            .output()
            .expect("the binary runs")
    };
    let set = run(&["acme", "--requests-per-second", "5000", "--burst", "1"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let stdout = String::from_utf8_lossy(&set.stdout);
    assert!(stdout.contains("requests per second: 5000"), "{stdout}");
    assert!(stdout.contains("unknown-code limit: default"), "{stdout}");

    let quota = app
        .admin(&app.token)
        .get_tenant_quota(pb::GetTenantQuotaRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((quota.requests_per_second, quota.burst), (5_000, 1));

    let out_of_range = run(&["acme", "--unknown-code-limit", "2000000"]);
    assert!(!out_of_range.status.success());
    assert!(String::from_utf8_lossy(&out_of_range.stderr).contains("quota.unknown_code_limit"));
    let unknown = run(&["nobody", "--burst", "3"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no tenant called"));
    app.stop().await;
}

crate::on_both_databases!(
    the_command_line_sets_a_tenant_quota,
    a_tenant_over_its_quota_is_refused_with_retry_info,
    replicas_share_a_tenant_limit,
    a_quota_change_reaches_every_replica,
    a_guessing_end_user_is_throttled_while_a_normal_customer_is_not,
    without_a_header_the_checkout_customer_is_counted,
);
