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
    trace::v1::{span::SpanKind, status::StatusCode, Span},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{metadata::MetadataValue, Request, Response, Status};

use coupon_service::{
    server::Application,
    store::{DatabaseSettings, Store},
};

use crate::common::{
    connect, fresh_database, spawn_app, spawn_app_with, test_settings, Auth, Backend, TestApp,
    TEST_PIN_KEY,
};

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
                    unit_price: Some(1_000),
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
    coupons.redeem(order("o1")).await.unwrap();
    coupons.redeem(order("o2")).await.unwrap_err();
    let purchase = pb::PurchaseRequest {
        reference: "r".into(),
        value: "p".into(),
        amount: 100,
        ..Default::default()
    };
    let mut vouchers = app.vouchers(&app.token);
    vouchers.purchase(purchase.clone()).await.unwrap();
    vouchers.purchase(purchase).await.unwrap();
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
        sample(&after, "coupon_redemptions_total{outcome=\"replayed\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "coupon_purchases_total{outcome=\"sold\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "coupon_purchases_total{outcome=\"replayed\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "coupon_rpc_requests_total{code=\"OK\",method=\"CreateCoupon\",service=\"coupons.v1.AdminService\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "coupon_rpc_requests_total{code=\"FAILED_PRECONDITION\",method=\"Redeem\",service=\"coupons.v1.CouponService\"}"),
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
    let mut text = scrape(&app).await;
    while sample(&text, "coupon_event_streams_open") != Some(0.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream is still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = scrape(&app).await;
    }
    // A stream's lifetime is measured apart from unary latency.
    assert_eq!(
        sample(
            &text,
            "coupon_rpc_stream_duration_seconds_count{method=\"WatchRedemptions\""
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "coupon_rpc_duration_seconds_count{method=\"WatchRedemptions\""
        ),
        None
    );
    assert_eq!(
        sample(
            &text,
            "coupon_rpc_requests_total{code=\"CANCELLED\",method=\"WatchRedemptions\""
        ),
        Some(1.0),
        "{text}"
    );
}

/// A call to a path the server does not serve, as a scanner would send it before any key.
async fn call_made_up_path(channel: tonic::transport::Channel, path: &str) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(
        Request::new(()),
        http::uri::PathAndQuery::try_from(path).unwrap(),
        tonic_prost::ProstCodec::<(), ()>::default(),
    )
    .await
    .unwrap_err()
}

/// Made-up paths sent without a key all land in one `_OTHER` series, however many there are;
/// the process's own figures and the build are exported; a scrape with nothing changed reads
/// nothing from the database, so the PIN stock costs no statement per scrape.
async fn metrics_stay_bounded_and_scrapes_stay_cheap(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        // Nothing in the background reads the database while statements are counted.
        settings.expiry_sweep_interval = Duration::from_secs(3_600);
        settings.event_poll_interval = Duration::from_secs(3_600);
    })
    .await;
    let before = scrape(&app).await;
    let series = |text: &str| text.lines().filter(|l| l.starts_with("coupon_rpc")).count();
    for n in 0..30 {
        let status =
            call_made_up_path(app.channel.clone(), &format!("/scan{n}.Service/Method{n}")).await;
        assert_eq!(status.code(), tonic::Code::Unimplemented);
    }
    let after = scrape(&app).await;
    assert!(!after.contains("scan"), "no label names a made-up path");
    assert_eq!(
        sample(
            &after,
            "coupon_rpc_requests_total{code=\"UNIMPLEMENTED\",method=\"_OTHER\",service=\"_OTHER\"}"
        ),
        Some(30.0),
        "{after}"
    );
    assert!(
        series(&after) <= series(&before) + 20,
        "30 made-up paths add one bucket's series, not 30: {} -> {}",
        series(&before),
        series(&after)
    );
    #[cfg(target_os = "linux")]
    assert!(sample(&after, "process_resident_memory_bytes").unwrap() > 0.0);
    assert_eq!(
        sample(
            &after,
            &format!(
                "coupon_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );

    let statements = app.server_store.statements_executed();
    scrape(&app).await;
    scrape(&app).await;
    assert_eq!(
        app.server_store.statements_executed(),
        statements,
        "scrapes with nothing changed read nothing"
    );
}

/// An in-process OTLP collector that keeps every span it receives and the service names the
/// spans came from.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    service_names: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for kv in resource.resource.iter().flat_map(|r| &r.attributes) {
                if let ("service.name", Some(any_value::Value::StringValue(name))) = (
                    kv.key.as_str(),
                    kv.value.as_ref().and_then(|v| v.value.as_ref()),
                ) {
                    self.service_names.lock().unwrap().push(name.clone());
                }
            }
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Serves on a free loopback port, over TLS with `identity` (certificate and key PEM).
    async fn start(identity: Option<(String, String)>) -> (Self, std::net::SocketAddr) {
        let collector = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = tonic::transport::Server::builder();
        if let Some((cert, key)) = identity {
            server = server
                .tls_config(
                    tonic::transport::ServerTlsConfig::new()
                        .identity(tonic::transport::Identity::from_pem(cert, key)),
                )
                .unwrap();
        }
        tokio::spawn(
            server
                .add_service(TraceServiceServer::new(collector.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (collector, addr)
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    span.attributes
        .iter()
        .find(|KeyValue { key: k, .. }| k == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text_attribute(span: &Span, key: &str) -> String {
    match attribute(span, key) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        other => panic!("{key}: {other:?} on {span:#?}"),
    }
}

/// The real binary in demo mode on a fresh SQLite database, with `env` added, its address read
/// from stdout and its stderr (the log) kept.
struct ServedBinary {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    logs: std::thread::JoinHandle<Vec<String>>,
    _dir: crate::common::TestDatabase,
}

impl ServedBinary {
    async fn start(env: &[(&str, String)]) -> Self {
        let (url, dir) = fresh_database(Backend::Sqlite).await;
        let mut command = Command::new(env!("CARGO_BIN_EXE_coupon-service"));
        command
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
            .env("RUST_LOG", "info")
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("OTEL_RESOURCE_ATTRIBUTES")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let addr = stdout
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
        Self {
            child,
            addr,
            logs,
            _dir: dir,
        }
    }

    fn admin(
        &self,
        channel: tonic::transport::Channel,
    ) -> pb::admin_service_client::AdminServiceClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Auth>,
    > {
        pb::admin_service_client::AdminServiceClient::with_interceptor(
            channel,
            Auth::bearer(&coupon_service::demo::demo_token()),
        )
    }

    /// SIGTERM, then the exit status and every log line.
    async fn stop(self) -> (std::process::ExitStatus, Vec<String>) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let logs = self.logs;
        let mut child = self.child;
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        (status, logs.join().unwrap())
    }
}

/// With OTLP configured, a call is a server span that continues the caller's trace, carries the
/// RPC attributes and the service name from OTEL_SERVICE_NAME, has a CLIENT database child span,
/// leaves its status unset for a client error (ERROR only for the server's), and is flushed at
/// shutdown, in this order: NOT_SERVING, drain, stop, flush, exit 0. The JSON log has one access
/// line per call, carrying the ids of the exported span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_the_collector_with_the_callers_trace_id() {
    let (collector, collector_addr) = Collector::start(None).await;
    let served = ServedBinary::start(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        ),
        ("OTEL_SERVICE_NAME", "coupons-under-test".to_owned()),
        ("COUPON_LOG_FORMAT", "json".to_owned()),
    ])
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let channel = connect(served.addr).await;
    let mut admin = served.admin(channel.clone());
    let mut request = Request::new(pb::GetCouponRequest {
        code: "SAVE200".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        MetadataValue::try_from(format!("00-{trace_id}-{parent_span}-01")).unwrap(),
    );
    admin.get_coupon(request).await.unwrap();
    let missing = admin
        .get_coupon(pb::GetCouponRequest {
            code: "NO-SUCH-CODE".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    call_made_up_path(channel.clone(), "/scan.Service/Probe").await;
    // A probe's health check is not an access line at info.
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();

    let (status, logs) = served.stop().await;
    assert!(status.success(), "exit 0, got {status:?}");

    let spans = collector.spans();
    assert!(
        collector
            .service_names
            .lock()
            .unwrap()
            .iter()
            .all(|name| name == "coupons-under-test"),
        "OTEL_SERVICE_NAME names the service"
    );
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
    assert_eq!(text_attribute(server, "rpc.system"), "grpc");
    assert_eq!(
        text_attribute(server, "rpc.service"),
        "coupons.v1.AdminService"
    );
    assert_eq!(text_attribute(server, "rpc.method"), "GetCoupon");
    assert_eq!(
        attribute(server, "rpc.grpc.status_code"),
        Some(&any_value::Value::IntValue(0))
    );
    let database = ours
        .iter()
        .find(|s| s.name.starts_with("db.") && s.parent_span_id == server.span_id)
        .unwrap_or_else(|| panic!("a database child span: {ours:#?}"));
    assert_eq!(
        database.kind,
        SpanKind::Client as i32,
        "a call to the database"
    );
    assert_eq!(text_attribute(database, "db.system"), "sqlite");
    assert_eq!(text_attribute(database, "db.system.name"), "sqlite");
    assert_eq!(
        text_attribute(database, "db.operation.name"),
        database.name.trim_start_matches("db.")
    );
    let reads = ours
        .iter()
        .find(|s| s.name == "db.get_coupon_by_code" && s.parent_span_id == server.span_id)
        .unwrap_or_else(|| panic!("GetCoupon's read: {ours:#?}"));
    assert_eq!(
        text_attribute(reads, "db.collection.name"),
        "coupons",
        "GetCoupon reads the coupons table"
    );

    let status_code = |span: &Span| span.status.as_ref().map_or(0, |s| s.code);
    let not_found = spans
        .iter()
        .find(|s| {
            s.name == "coupons.v1.AdminService/GetCoupon"
                && attribute(s, "rpc.grpc.status_code") == Some(&any_value::Value::IntValue(5))
        })
        .unwrap_or_else(|| panic!("the NOT_FOUND call's span: {spans:#?}"));
    assert_eq!(
        status_code(not_found),
        StatusCode::Unset as i32,
        "a client error leaves the server span unset"
    );
    let unknown = spans
        .iter()
        .find(|s| s.name == "_OTHER/_OTHER")
        .unwrap_or_else(|| panic!("the made-up path's span: {spans:#?}"));
    assert_eq!(status_code(unknown), StatusCode::Error as i32);

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

    let lines: Vec<serde_json::Value> = logs
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let access: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["target"] == "coupon_service::access")
        .collect();
    assert_eq!(
        access.len(),
        3,
        "one access line per call, health checks aside: {access:#?}"
    );
    let found = access
        .iter()
        .find(|line| line["span"]["trace_id"] == trace_id)
        .unwrap_or_else(|| panic!("the traced call's access line: {access:#?}"));
    assert_eq!(found["level"], "INFO");
    assert_eq!(
        found["fields"]["method"],
        "coupons.v1.AdminService/GetCoupon"
    );
    assert_eq!(found["fields"]["code"], "OK");
    assert!(found["fields"]["duration_ms"].as_f64().is_some(), "{found}");
    assert!(
        found["span"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{found}"
    );
    assert!(
        found["span"]["tenant"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{found}"
    );
    assert_eq!(
        found["span"]["span_id"].as_str(),
        Some(hex::encode(&server.span_id).as_str()),
        "the log line names the exported span"
    );
    assert!(access
        .iter()
        .any(|line| line["fields"]["code"] == "NOT_FOUND"));
}

/// A collector that cannot be reached is reported in the log, and the shutdown says the flush
/// failed instead of "telemetry flushed". With the access log turned off no call is logged, and
/// text written to a pipe carries no colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_is_reported_and_the_flush_is_honest() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let served = ServedBinary::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{closed}")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".to_owned()),
        ("COUPON_ACCESS_LOG", "false".to_owned()),
    ])
    .await;
    served
        .admin(connect(served.addr).await)
        .get_coupon(pb::GetCouponRequest {
            code: "SAVE200".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (status, logs) = served.stop().await;
    assert!(status.success(), "exit 0, got {status:?}");
    let log = logs.join("\n");
    assert!(log.contains("exporting spans failed"), "{log}");
    assert!(log.contains("flushing telemetry failed"), "{log}");
    assert!(!log.contains("telemetry flushed"), "{log}");
    assert!(
        !log.contains("coupon_service::access"),
        "the access log is off: {log}"
    );
    assert!(!log.contains('\u{1b}'), "no colour codes in a pipe: {log}");
}

/// An `https://` collector endpoint is reached over TLS, trusting the CA named by
/// OTEL_EXPORTER_OTLP_CERTIFICATE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_a_collector_over_tls() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let (collector, collector_addr) =
        Collector::start(Some((server_cert.pem(), server_key.serialize_pem()))).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("collector-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();

    let served = ServedBinary::start(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://localhost:{}", collector_addr.port()),
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ca_file.display().to_string(),
        ),
    ])
    .await;
    served
        .admin(connect(served.addr).await)
        .get_coupon(pb::GetCouponRequest {
            code: "SAVE200".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (status, logs) = served.stop().await;
    assert!(status.success(), "exit 0, got {status:?}");
    assert!(
        collector
            .spans()
            .iter()
            .any(|s| s.name == "coupons.v1.AdminService/GetCoupon"),
        "the span crossed TLS: {}",
        logs.join("\n")
    );
    assert!(logs.iter().any(|l| l.contains("telemetry flushed")));
}

/// The Kubernetes probes ask the health service about names the server reports: liveness (and
/// startup) about the name that stays SERVING through a database outage, so an outage restarts no
/// pod; readiness about one that follows the database.
#[test]
fn deployment_probes_name_registered_health_services() {
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/base/deployment.yaml"
    ))
    .unwrap();
    let probe_service = |probe: &str| -> String {
        let rest = &manifest[manifest
            .find(&format!("{probe}:"))
            .unwrap_or_else(|| panic!("{probe} is configured"))..];
        rest.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix("service:"))
            .unwrap_or_else(|| panic!("{probe} names a service"))
            .trim()
            .trim_matches('"')
            .to_owned()
    };
    let liveness = coupon_service::server::LIVENESS;
    assert_eq!(probe_service("livenessProbe"), liveness);
    assert_eq!(probe_service("startupProbe"), liveness);
    let readiness = probe_service("readinessProbe");
    assert!(
        readiness.is_empty() || coupon_service::server::SERVICE_NAMES.contains(&readiness.as_str()),
        "{readiness:?} is not a name that follows the database"
    );
}

// === migrations across replicas and the first start ===

/// Replicas starting together on PostgreSQL all migrate: one does the work under the advisory
/// lock, the others wait and find nothing pending, and every one succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once_under_a_lock() {
    use migration::MigratorTrait as _;
    let (url, _dir) = fresh_database(Backend::Postgres).await;
    let mut replicas = Vec::new();
    for _ in 0..6 {
        replicas.push(
            Store::connect(&DatabaseSettings {
                url: url.clone(),
                pool_size: 2,
                sqlite_synchronous: Default::default(),
            })
            .await
            .unwrap(),
        );
    }
    let outcomes = futures::future::join_all(replicas.iter().map(|store| store.migrate())).await;
    for outcome in &outcomes {
        assert!(outcome.is_ok(), "every replica starts: {outcomes:?}");
    }
    let connection = sea_orm::Database::connect(&url).await.unwrap();
    assert!(
        migration::Migrator::get_pending_migrations_read_only(&connection)
            .await
            .unwrap()
            .is_empty()
    );
    let applied = sea_orm::ConnectionTrait::query_one_raw(
        &connection,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ),
    )
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap();
    assert_eq!(applied as usize, migration::Migrator::migrations().len());
}

/// A server told not to migrate refuses an unmigrated database at start, saying what to do,
/// instead of failing call by call with "no such table".
async fn a_server_that_must_not_migrate_refuses_an_older_schema(backend: Backend) {
    let (url, dir) = fresh_database(backend).await;
    let mut settings = test_settings(&url, dir.path());
    settings.no_migrate = true;
    let refused = Application::build(settings).await.err().expect("refused");
    assert!(
        format!("{refused:#}").contains("run `coupon-service migrate`"),
        "{refused:#}"
    );
}

/// A taken port fails the start before the database is touched: nothing is migrated or seeded.
async fn a_taken_port_fails_the_start_before_anything_is_written(backend: Backend) {
    use migration::MigratorTrait as _;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (url, dir) = fresh_database(backend).await;
    let mut settings = test_settings(&url, dir.path());
    settings.listen = taken.local_addr().unwrap();
    settings.demo = true;
    let refused = Application::build(settings).await.err().expect("refused");
    assert!(
        format!("{refused:#}").contains("cannot listen"),
        "{refused:#}"
    );
    let connection = sea_orm::Database::connect(&url).await.unwrap();
    assert_eq!(
        migration::Migrator::get_pending_migrations_read_only(&connection)
            .await
            .unwrap()
            .len(),
        migration::Migrator::migrations().len(),
        "no migration ran"
    );
}

crate::on_both_databases!(
    metrics_move_with_calls_redemptions_stock_and_streams,
    metrics_stay_bounded_and_scrapes_stay_cheap,
    a_server_that_must_not_migrate_refuses_an_older_schema,
    a_taken_port_fails_the_start_before_anything_is_written,
    a_schema_migrated_by_a_newer_release_is_served_as_it_is
);

/// A database that a newer release migrated further (a rollback, or an old pod restarting during
/// a rollout) is served as it is; one that also lacks a migration this binary needs is refused.
async fn a_schema_migrated_by_a_newer_release_is_served_as_it_is(backend: Backend) {
    use sea_orm::ConnectionTrait as _;
    let app = spawn_app(backend).await;
    let connection = sea_orm::Database::connect(&app.database_url).await.unwrap();
    connection
        .execute_unprepared(
            "INSERT INTO seaql_migrations (version, applied_at) \
             VALUES ('m20991231_000001_from_the_future', 0)",
        )
        .await
        .unwrap();
    let store = || async {
        Store::connect(&DatabaseSettings {
            url: app.database_url.clone(),
            pool_size: 2,
            sqlite_synchronous: Default::default(),
        })
        .await
        .unwrap()
    };
    store()
        .await
        .migrate()
        .await
        .expect("a newer schema is served");

    connection
        .execute_unprepared(
            "DELETE FROM seaql_migrations WHERE version = 'm20261121_000006_redemption_events'",
        )
        .await
        .unwrap();
    let refused = store().await.migrate().await.unwrap_err();
    assert!(refused.to_string().contains("lacks 1"), "{refused}");
}

/// The PIN key that demo mode creates is readable by its owner only.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_pin_key_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let (url, dir) = fresh_database(Backend::Sqlite).await;
    let mut settings = test_settings(&url, dir.path());
    settings.demo = true;
    settings.pin_key = None;
    let key_file = settings.pin_key_file.clone();
    let app = Application::build(settings).await.unwrap();
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    app.store().clone().close().await;
}
