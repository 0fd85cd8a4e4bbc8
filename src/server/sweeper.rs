//! The background release of expired reservations.

use tokio_util::sync::CancellationToken;

use crate::{domain::Timestamp, store::Store};

/// Releases expired reservations every `interval` until told to stop. Replicas may sweep at once:
/// each release is guarded, so none is released twice.
pub async fn sweep_expired_reservations(
    store: Store,
    interval: std::time::Duration,
    stop: CancellationToken,
) {
    const BATCH: u64 = 500;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        loop {
            match store.expire_due(Timestamp::now(), BATCH).await {
                Ok(expired) if expired as u64 == BATCH => continue,
                Ok(0) => break,
                Ok(expired) => {
                    tracing::info!(expired, "released expired reservations");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "expiring reservations failed; will retry");
                    break;
                }
            }
        }
    }
}
