//! Mutual TLS: callers present a certificate from the client CA; health stays reachable in
//! plaintext on its own port for probes that cannot.

use std::path::Path;

use coupon_service::{
    domain::{api_key::IssuedKey, Scopes},
    pb,
    server::Application,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

use crate::common::{fresh_database, test_settings, Auth, Backend};

struct Pem {
    cert: String,
    key: String,
}

/// A CA, a server certificate for localhost and 127.0.0.1, and a client certificate.
fn certificates() -> (Pem, Pem, Pem) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Pem {
        cert: ca_cert.pem(),
        key: ca_key.serialize_pem(),
    };
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    };
    let server = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
    let client = leaf(vec!["checkout.internal".into()]);
    (ca, server, client)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_client_certificates_and_keeps_health_reachable() {
    let (ca, server, client) = certificates();
    let (url, dir) = fresh_database(Backend::Sqlite).await;
    let mut settings = test_settings(&url, dir.path());
    settings.tls_cert = Some(write(dir.path(), "server.pem", &server.cert));
    settings.tls_key = Some(write(dir.path(), "server.key", &server.key));
    settings.tls_client_ca = Some(write(dir.path(), "ca.pem", &ca.cert));
    settings.health_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = Application::build(settings).await.unwrap();
    let (addr, health_addr) = (
        app.local_addr(),
        app.health_addr().expect("a plaintext health port"),
    );
    let key = IssuedKey::generate();
    app.store()
        .create_tenant("acme", &Scopes::all(), &key)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(app.run_until_stopped(async {
        stopped.await.ok();
    }));

    let endpoint = |tls: ClientTlsConfig| {
        Endpoint::from_shared(format!("https://localhost:{}", addr.port()))
            .unwrap()
            .tls_config(tls.domain_name("localhost"))
            .unwrap()
    };
    let trusted = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.cert));
    let channel = endpoint(
        trusted
            .clone()
            .identity(Identity::from_pem(&client.cert, &client.key)),
    )
    .connect()
    .await
    .expect("a client with a certificate connects");
    let mut admin = pb::admin_service_client::AdminServiceClient::with_interceptor(
        channel,
        Auth::bearer(&key.token()),
    );
    admin
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .expect("calls work over mutual TLS");

    // Without a client certificate the handshake (or the first call) fails.
    let anonymous = match endpoint(trusted).connect().await {
        Err(_) => true,
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
    };
    assert!(anonymous, "a client without a certificate is refused");
    // Plaintext on the TLS port is refused too.
    let plaintext = match Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
    };
    assert!(plaintext, "plaintext is refused on the TLS port");

    // The probe's port: health in plaintext, for every registered service.
    let mut health = HealthClient::new(
        Endpoint::from_shared(format!("http://{health_addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    for service in ["", "coupons.v1.CouponService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, 1, "{service:?} SERVING");
    }
    // Only health is served there.
    let mut coupons = pb::coupon_service_client::CouponServiceClient::new(
        Endpoint::from_shared(format!("http://{health_addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let status = coupons
        .validate(pb::ValidateRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    stop.send(()).ok();
    server_task.await.unwrap().unwrap();
}
