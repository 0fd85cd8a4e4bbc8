//! The retry of transactions that lost to contention.

use std::time::Duration;

use rand::Rng;

use super::StoreError;

/// Attempts of a transaction that lost to contention before the caller gets ABORTED.
const ATTEMPTS: u32 = 8;

/// Runs `attempt` again while it loses to contention, with a growing, jittered pause.
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(StoreError::Contention(error)) if tries + 1 < ATTEMPTS => {
                tries += 1;
                let base = 5u64 << tries.min(6);
                let pause = base + rand::rng().random_range(0..base);
                tracing::debug!(%error, tries, "transaction lost to contention; retrying");
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}
