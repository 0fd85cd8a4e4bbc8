//! TLS for the gRPC port (rustls), optionally mutual: callers must present a certificate that
//! chains to the configured client CA.

use std::path::Path;

use anyhow::Context;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::ServeSettings;

/// The TLS configuration the settings ask for, read from its PEM files; `None` for plaintext.
pub fn server_tls(settings: &ServeSettings) -> anyhow::Result<Option<ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        return Ok(None);
    };
    let identity = Identity::from_pem(read(cert, "TLS certificate")?, read(key, "TLS key")?);
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &settings.tls_client_ca {
        config = config.client_ca_root(Certificate::from_pem(read(ca, "TLS client CA")?));
    }
    Ok(Some(config))
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} at {}", path.display()))
}
