//! Operations: Prometheus metrics, OpenTelemetry traces with the caller's trace, the shutdown
//! order, and Kubernetes probes that name the services the server reports health for.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use coupon_service::pb;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        trace_service_server::{TraceService, TraceServiceServer},
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    },
    common::v1::{any_value, KeyValue},
    trace::v1::{span::SpanKind, Span},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{metadata::MetadataValue, Request, Response, Status};

use crate::common::{connect, fresh_database, spawn_app, Auth, Backend, TestApp, TEST_PIN_KEY};

/// The body of `GET /metrics`.
async fn scrape(app: &TestApp) -> String {
    let mut stream = tokio::net::TcpStream::connect(app.metrics_addr)
        .await
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The value of the sample whose name and labels start with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn metrics_move_with_calls_redemptions_stock_and_streams(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(pb::Coupon {
                code: "M1".into(),
                currency: "INR".into(),
                discount: Some(pb::Discount {
                    kind: Some(pb::discount::Kind::FixedAmount(pb::FixedAmount {
                        amount: 100,
                    })),
                }),
                limits: Some(pb::Limits {
                    max_redemptions: Some(1),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let product = admin
        .create_product(pb::CreateProductRequest {
            product: Some(pb::Product {
                name: "P".into(),
                value: "p".into(),
                amount: 100,
                currency: "NPR".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    admin
        .import_pins(pb::ImportPinsRequest {
            product_idx: product.idx,
            pins: vec![
                pb::PinInput {
                    pin: "A1".into(),
                    ..Default::default()
                },
                pb::PinInput {
                    pin: "B2".into(),
                    ..Default::default()
                },
            ],
        })
        .await
        .unwrap();
    admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let before = scrape(&app).await;
    let stock = |text: &str| sample(text, "coupon_pin_stock{product=\"p\"");
    assert_eq!(stock(&before), Some(2.0), "{before}");

    let mut coupons = app.coupons(&app.token);
    let order = |id: &str| pb::RedeemRequest {
        codes: vec!["M1".into()],
        order_id: id.into(),
        order_status: pb::OrderStatus::Completed as i32,
        checkout: Some(pb::Checkout {
            cart: Some(pb::Cart {
                currency: "INR".into(),
                items: vec![pb::LineItem {
                    product_id: "x".into(),
                    unit_price: 1_000,
                    quantity: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            customer: Some(pb::Customer {
                id: "c".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        reservation_ttl: None,
    };
    coupons.redeem(order("o1")).await.unwrap();
    coupons.redeem(order("o2")).await.unwrap_err();
    app.vouchers(&app.token)
        .purchase(pb::PurchaseRequest {
            reference: "r".into(),
            value: "p".into(),
            amount: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let watch = coupons
        .watch_redemptions(pb::WatchRedemptionsRequest::default())
        .await
        .unwrap()
        .into_inner();

    let after = scrape(&app).await;
    assert_eq!(stock(&after), Some(1.0));
    assert_eq!(
        sample(&after, "coupon_redemptions_total{outcome=\"redeemed\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "coupon_redemptions_total{outcome=\"refused\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "coupon_purchases_total{outcome=\"sold\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "coupon_rpc_requests_total{code=\"Ok\",method=\"CreateCoupon\",service=\"coupons.v1.AdminService\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "coupon_rpc_requests_total{code=\"FailedPrecondition\",method=\"Redeem\",service=\"coupons.v1.CouponService\"}"),
        Some(1.0)
    );
    assert!(
        sample(
            &after,
            "coupon_rpc_duration_seconds_count{method=\"Redeem\""
        )
        .unwrap()
            >= 2.0
    );
    assert_eq!(sample(&after, "coupon_event_streams_open"), Some(1.0));
    assert!(
        sample(&after, "coupon_db_statements_total").unwrap()
            > sample(&before, "coupon_db_statements_total").unwrap()
    );
    assert!(sample(&after, "coupon_db_pool_connections{state=\"idle\"}").is_some());

    drop(watch);
    // The stream task notices the closed client at its next wake-up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sample(&scrape(&app).await, "coupon_event_streams_open") != Some(0.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream is still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

crate::on_both_databases!(metrics_move_with_calls_redemptions_stock_and_streams);

/// An in-process OTLP collector that keeps every span it receives.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    span.attributes
        .iter()
        .find(|KeyValue { key: k, .. }| k == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// With OTLP configured, a call is a server span that continues the caller's trace, carries the
/// RPC attributes, has a database child span, and is flushed at shutdown, in this order:
/// NOT_SERVING, drain, stop, flush, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_the_collector_with_the_callers_trace_id() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let (url, dir) = fresh_database(Backend::Sqlite).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_coupon-service"))
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--grace-period",
            "5s",
        ])
        .env("DATABASE_URL", &url)
        .env("COUPON_PIN_KEY", TEST_PIN_KEY)
        .env("COUPON_PIN_KEY_FILE", dir.path().join("pin.key"))
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let addr: std::net::SocketAddr = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("listening on ").map(str::to_owned))
        .unwrap()
        .parse()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let mut admin = pb::admin_service_client::AdminServiceClient::with_interceptor(
        connect(addr).await,
        Auth::bearer(&coupon_service::demo::demo_token()),
    );
    let mut request = Request::new(pb::GetCouponRequest {
        code: "SAVE200".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        MetadataValue::try_from(format!("00-{trace_id}-{parent_span}-01")).unwrap(),
    );
    admin.get_coupon(request).await.unwrap();

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit 0, got {status:?}");

    let spans = collector.spans.lock().unwrap().clone();
    let ours: Vec<&Span> = spans
        .iter()
        .filter(|s| hex::encode(&s.trace_id) == trace_id)
        .collect();
    let server = ours
        .iter()
        .find(|s| s.name == "coupons.v1.AdminService/GetCoupon")
        .unwrap_or_else(|| panic!("the server span was exported: {ours:#?}"));
    assert_eq!(
        hex::encode(&server.parent_span_id),
        parent_span,
        "a child of the caller's span"
    );
    assert_eq!(server.kind, SpanKind::Server as i32);
    let text = |key| match attribute(server, key) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    };
    assert_eq!(text("rpc.system"), "grpc");
    assert_eq!(text("rpc.service"), "coupons.v1.AdminService");
    assert_eq!(text("rpc.method"), "GetCoupon");
    assert_eq!(
        attribute(server, "rpc.grpc.status_code"),
        Some(&any_value::Value::IntValue(0))
    );
    let database = ours
        .iter()
        .find(|s| s.name.starts_with("db.") && s.parent_span_id == server.span_id)
        .unwrap_or_else(|| panic!("a database child span: {ours:#?}"));
    assert!(
        matches!(attribute(database, "db.system"), Some(any_value::Value::StringValue(s)) if s == "sqlite")
    );

    let logs = logs.join().unwrap();
    let position = |needle: &str| {
        logs.iter()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} in the log:\n{}", logs.join("\n")))
    };
    let order = [
        position("shutting down: health NOT_SERVING"),
        position("drained"),
        position("stopped"),
        position("telemetry flushed"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "NOT_SERVING, drain, stop, flush: {order:?}"
    );
}

/// The Kubernetes probes ask the health service about services the server registers.
#[test]
fn deployment_probes_name_registered_health_services() {
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/base/deployment.yaml"
    ))
    .unwrap();
    let probed: Vec<String> = manifest
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("service:"))
        .map(|name| name.trim().trim_matches('"').to_owned())
        .collect();
    assert!(
        probed.len() >= 2,
        "liveness and readiness probes name a service: {probed:?}"
    );
    for name in &probed {
        assert!(
            name.is_empty() || coupon_service::server::SERVICE_NAMES.contains(&name.as_str()),
            "{name:?} is not a service the server reports health for"
        );
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        assert!(manifest.contains(probe), "{probe} is configured");
    }
}
