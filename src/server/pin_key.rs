//! Where the PIN key comes from.

use std::path::Path;

use anyhow::Context;

use crate::{config::ServeSettings, domain::pin::PinKey};

/// The PIN key from --pin-key, else from the key file; demo mode creates the file when missing.
pub fn load_pin_key(settings: &ServeSettings) -> anyhow::Result<PinKey> {
    if let Some(encoded) = &settings.pin_key {
        return PinKey::from_base64(encoded).context("COUPON_PIN_KEY");
    }
    let path = settings.pin_key_file.as_path();
    if !path.exists() && settings.demo {
        create_demo_key_file(path)?;
    }
    let encoded = std::fs::read_to_string(path).with_context(|| {
        format!(
            "no PIN key: set COUPON_PIN_KEY to base64 of 32 random bytes, or put it in {}",
            path.display()
        )
    })?;
    PinKey::from_base64(&encoded).with_context(|| format!("PIN key file {}", path.display()))
}

fn create_demo_key_file(path: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Whoever reads the key can unseal every PIN: only the service's own user may read it, from
    // the moment the file exists (not after a chmod that a reader could race).
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut file| file.write_all(PinKey::generate_base64().as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "demo mode generated a PIN key file; production keys belong in a secret (COUPON_PIN_KEY_FILE)"
    );
    Ok(())
}
