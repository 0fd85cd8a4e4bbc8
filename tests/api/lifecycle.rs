//! Request ids, reflection, migrations, the command line, demo mode and graceful shutdown.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use coupon_service::{demo, pb, store::Store};
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use tokio_stream::StreamExt;
use tonic::{metadata::MetadataValue, Code, Request};
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
use tonic_reflection::pb::{v1, v1alpha};

use crate::common::{connect, fresh_database, spawn_app, spawn_app_with, Backend, TEST_PIN_KEY};

const BINARY: &str = env!("CARGO_BIN_EXE_coupon-service");

async fn request_ids_round_trip(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let mut request = Request::new(pb::ListCouponsRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::from_static("caller-req-42"));
    let response = admin.list_coupons(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "caller-req-42"
    );

    let response = admin
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap();
    let made = response
        .metadata()
        .get("x-request-id")
        .expect("a request id is made");
    assert!(
        uuid::Uuid::parse_str(made.to_str().unwrap()).is_ok(),
        "{made:?}"
    );

    let mut request = Request::new(pb::GetCouponRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", MetadataValue::from_static("failing-req-7"));
    let status = admin.get_coupon(request).await.unwrap_err();
    assert_eq!(
        status.metadata().get("x-request-id").unwrap(),
        "failing-req-7"
    );
}

async fn reflection_lists_every_service_in_both_versions(backend: Backend) {
    let app = spawn_app(backend).await;
    let expected = [
        "coupons.v1.AdminService",
        "coupons.v1.CouponService",
        "coupons.v1.VoucherService",
        "grpc.health.v1.Health",
    ];

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1 reflection without a key")
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in expected {
        assert!(
            names.iter().any(|n| n == name),
            "v1 lists {name}: {names:?}"
        );
    }

    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1alpha reflection without a key")
        .into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in expected {
        assert!(
            names.iter().any(|n| n == name),
            "v1alpha lists {name}: {names:?}"
        );
    }
}

async fn migrations_run_and_rerun_cleanly(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let store = Store::connect(&coupon_service::store::DatabaseSettings {
        url: url.clone(),
        pool_size: 2,
        sqlite_synchronous: Default::default(),
    })
    .await
    .unwrap();
    store.migrate().await.expect("first run");
    store.migrate().await.expect("second run is a no-op");
    let db = Database::connect(&url).await.unwrap();
    for table in [
        "tenants",
        "api_keys",
        "coupons",
        "voucher_products",
        "voucher_pins",
        "credit_balances",
        "credit_entries",
        "settings",
    ] {
        db.execute_unprepared(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap_or_else(|e| panic!("table {table} exists: {e}"));
    }
}

async fn the_command_line_migrates_and_creates_tenants(backend: Backend) {
    let (url, dir) = fresh_database(backend).await;
    let migrate = Command::new(BINARY)
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let created = Command::new(BINARY)
        .args([
            "tenant",
            "create",
            "initech",
            "--scopes",
            "read",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout
        .lines()
        .find_map(|line| line.strip_prefix("API key (shown once): "))
        .expect("the key is printed")
        .to_owned();

    let bad_scope = Command::new(BINARY)
        .args([
            "tenant",
            "create",
            "x",
            "--scopes",
            "owner",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(!bad_scope.status.success(), "an unknown scope is refused");

    // The printed key works against a server on that database, with exactly its scopes.
    let app = spawn_app_with(backend, |s| {
        s.database.database_url = url.clone();
        s.pin_key_file = dir.path().join("pin.key");
    })
    .await;
    app.vouchers(&token)
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("read scope works");
    let status = app
        .admin(&token)
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn demo_mode_seeds_the_documented_data_once(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.demo = true).await;
    let token = demo::demo_token();
    assert_eq!(token, "demo.coupon-demo-secret");
    let mut admin = app.admin(&token);
    let coupons = admin
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .expect("the documented demo key works")
        .into_inner()
        .coupons;
    let codes: Vec<&str> = coupons.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "SAVE200",
            "FIRST20",
            "FREEDEL",
            "SPENDMORE",
            "MONSOON-UMBRELLAS"
        ]
    );
    let automatic: Vec<bool> = coupons.iter().map(|c| c.automatic).collect();
    assert_eq!(automatic, [false, false, false, false, true]);
    let save200 = &coupons[0];
    assert_eq!(
        save200.discount.as_ref().unwrap().kind,
        Some(pb::discount::Kind::FixedAmount(pb::FixedAmount {
            amount: 20_000
        }))
    );
    assert_eq!(save200.conditions.as_ref().unwrap().min_subtotal, 149_900);
    let first20 = coupons[1].conditions.as_ref().unwrap();
    assert_eq!(first20.customer_segment, pb::CustomerSegment::New as i32);

    let products = app
        .vouchers(&token)
        .list_products(pb::ListProductsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .products;
    assert_eq!(products.len(), 1);
    let fifa = &products[0];
    assert_eq!(
        (fifa.name.as_str(), fifa.value.as_str()),
        ("Fifa-2026", "fifa-2026")
    );
    assert_eq!((fifa.amount, fifa.currency.as_str()), (10_000, "NPR"));
    assert!(fifa.in_stock);
    assert_eq!(fifa.available_count, 100);
    let balance = admin
        .get_balance(pb::GetBalanceRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balance.balance, 100_000_000);

    // Seeding again (a restart in demo mode) adds nothing.
    demo::seed(&app.store, &app.pin_key).await.unwrap();
    let again = admin
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.coupons.len(), 5);
}

async fn a_wrong_pin_key_is_refused_at_start(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.database_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::common::test_settings(&url, dir.path());
    settings.pin_key = Some(coupon_service::domain::pin::PinKey::generate_base64());
    let error = coupon_service::server::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("PIN key does not match"),
        "{error:#}"
    );
}

crate::on_both_databases!(
    request_ids_round_trip,
    reflection_lists_every_service_in_both_versions,
    migrations_run_and_rerun_cleanly,
    the_command_line_migrates_and_creates_tenants,
    demo_mode_seeds_the_documented_data_once,
    a_wrong_pin_key_is_refused_at_start,
    oversized_requests_are_refused_and_change_nothing,
);

/// SIGTERM with an open stream and an in-flight call: health turns NOT_SERVING at once, new calls
/// are refused, the call finishes, the process exits 0 within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_calls_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/coupons.db?mode=rwc", dir.path().display());
    let grace = Duration::from_secs(4);
    let mut child = Command::new(BINARY)
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--grace-period",
            "4s",
        ])
        .env("DATABASE_URL", &url)
        .env("COUPON_PIN_KEY", TEST_PIN_KEY)
        .env("RUST_LOG", "info,coupon_service=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let addr: std::net::SocketAddr = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("listening on ").map(str::to_owned))
        .expect("the server prints its address")
        .parse()
        .unwrap();
    // Server log lines, read on a thread so the test can wait for a specific one.
    let (log_tx, log_rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if log_tx.send(line).is_err() {
                break;
            }
        }
    });

    let channel = connect(addr).await;
    let mut health = HealthClient::new(channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "coupons.v1.AdminService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status, 1, "SERVING");

    // Hold SQLite's write lock so the next write waits inside the server.
    let db = Database::connect(&url).await.unwrap();
    let lock = db.begin().await.unwrap();
    lock.execute_unprepared("INSERT INTO settings (name, value) VALUES ('held', 'x')")
        .await
        .unwrap();
    let mut admin = pb::admin_service_client::AdminServiceClient::with_interceptor(
        channel.clone(),
        crate::common::Auth::bearer(&demo::demo_token()),
    );
    let in_flight = tokio::spawn(async move {
        admin
            .create_coupon(pb::CreateCouponRequest {
                coupon: Some(super::admin_coupons::save200("DRAINED")),
            })
            .await
    });
    // The call is in flight once the server logs that it authenticated it.
    let started = tokio::task::spawn_blocking(move || {
        log_rx
            .iter()
            .any(|line| line.contains("authenticated") && line.contains("CreateCoupon"))
    });
    assert!(started.await.unwrap(), "the server saw the call");

    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(
        watch.next().await.unwrap().unwrap().status,
        2,
        "NOT_SERVING at once"
    );

    // New calls are refused: a fresh connection gets no answer.
    let refused = tokio::time::timeout(Duration::from_secs(2), async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
        match endpoint.connect().await {
            Err(_) => true,
            Ok(fresh) => HealthClient::new(fresh)
                .check(HealthCheckRequest::default())
                .await
                .is_err(),
        }
    })
    .await
    .unwrap_or(true);
    assert!(refused, "no new calls after SIGTERM");

    lock.commit().await.unwrap();
    let created = in_flight
        .await
        .unwrap()
        .expect("the in-flight call completes");
    assert_eq!(created.into_inner().code, "DRAINED");

    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit code 0, got {status:?}");
    assert!(
        signalled.elapsed() < grace + Duration::from_secs(2),
        "exited within the grace period: {:?}",
        signalled.elapsed()
    );
}

async fn oversized_requests_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.max_message_bytes = 2_048).await;
    let mut coupon = super::admin_coupons::save200("HUGE");
    coupon.conditions.as_mut().unwrap().customer_ids =
        (0..300).map(|n| format!("customer-{n:06}")).collect();
    let status = app
        .admin(&app.token)
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(coupon),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    let missing = app
        .admin(&app.token)
        .get_coupon(pb::GetCouponRequest {
            code: "HUGE".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

/// A call the database cannot serve within its deadline is answered UNAVAILABLE and dropped
/// whole: its transaction never commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_commits_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut admin = app.admin(&app.token);
    admin
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap();
    // Hold SQLite's write lock so the call waits inside the server until its deadline passes.
    let db = Database::connect(&app.database_url).await.unwrap();
    let lock = db.begin().await.unwrap();
    lock.execute_unprepared("INSERT INTO settings (name, value) VALUES ('held', 'x')")
        .await
        .unwrap();
    let mut request = Request::new(pb::CreateCouponRequest {
        coupon: Some(super::admin_coupons::save200("LATE")),
    });
    request.set_timeout(Duration::from_millis(300));
    let status = admin.create_coupon(request).await.unwrap_err();
    // Answered just before the deadline, so the caller learns it can retry.
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    lock.rollback().await.unwrap();
    let missing = admin
        .get_coupon(pb::GetCouponRequest {
            code: "LATE".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "nothing was committed");
    admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(super::admin_coupons::save200("LATE")),
        })
        .await
        .expect("the server carries on");
}
