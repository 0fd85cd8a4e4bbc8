//! The redemption event feed: one tail per process reads the outbox as events become final and
//! fans them out; each watcher catches up from the outbox by its cursor, then follows the tail.
//!
//! A watcher that falls behind (a slow or stuck client) overflows only its own place in the
//! bounded broadcast; it then catches up from the outbox again. Redemptions never wait for
//! watchers, memory stays bounded, and other watchers are unaffected.

use std::{sync::Arc, time::Duration};

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{
        event::{EventFilter, EventPosition, RedemptionEvent},
        TenantId, Timestamp,
    },
    store::{Store, StoreError},
};

/// Events read from the outbox per query.
const BATCH: u64 = 500;
/// Events buffered per watcher stream before its task waits for the client.
const STREAM_BUFFER: usize = 256;
/// How often retention is enforced.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Why a watch ended early.
#[derive(Debug, thiserror::Error)]
pub enum WatchEnd {
    /// The server is shutting down: reconnect elsewhere with the last cursor.
    #[error("server shutting down")]
    ShuttingDown,
    /// The outbox could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the feed runs.
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// Wake-up interval when no commit notification arrives (a lost notification, or SQLite
    /// writes by another process).
    pub poll_interval: Duration,
    /// How long events are kept.
    pub retention: Duration,
    /// Live events buffered for watchers; one that falls further behind catches up from the
    /// outbox.
    pub live_buffer: usize,
}

/// The process's event feed.
#[derive(Debug)]
pub struct EventFeed {
    store: Store,
    open_streams: prometheus::IntGauge,
    live: broadcast::Sender<Arc<RedemptionEvent>>,
    shutdown: CancellationToken,
}

impl EventFeed {
    /// Starts the tail, the commit listener and retention; all stop with `shutdown`.
    pub async fn start(
        store: Store,
        settings: FeedSettings,
        open_streams: prometheus::IntGauge,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, StoreError> {
        let (live, _) = broadcast::channel(settings.live_buffer.max(1));
        let feed = Arc::new(Self {
            store,
            open_streams,
            live,
            shutdown,
        });
        let start = feed.store.latest_event_position().await?;
        tokio::spawn(feed.clone().tail(start, settings.poll_interval));
        tokio::spawn(feed.clone().listen());
        tokio::spawn(feed.clone().announce());
        tokio::spawn(feed.clone().prune(settings.retention));
        Ok(feed)
    }

    /// Streams `tenant`'s events matching `filter` after `after`, then live ones, until the
    /// client goes away or the server shuts down.
    pub fn watch(
        self: &Arc<Self>,
        tenant: TenantId,
        after: EventPosition,
        filter: EventFilter,
    ) -> ReceiverStream<Result<RedemptionEvent, WatchEnd>> {
        let (events, stream) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(self.clone().follow(tenant, after, filter, events));
        ReceiverStream::new(stream)
    }

    async fn follow(
        self: Arc<Self>,
        tenant: TenantId,
        mut cursor: EventPosition,
        filter: EventFilter,
        events: mpsc::Sender<Result<RedemptionEvent, WatchEnd>>,
    ) {
        let _open = OpenStream::new(&self.open_streams);
        loop {
            // Subscribe before catching up: whatever the tail publishes from now on arrives live,
            // and everything it published before is final, so the catch-up read sees it.
            let mut live = self.live.subscribe();
            loop {
                let batch = match self.store.events_after(cursor, Some(&tenant), BATCH).await {
                    Ok(batch) => batch,
                    Err(error) => {
                        events.send(Err(error.into())).await.ok();
                        return;
                    }
                };
                let full = batch.len() as u64 == BATCH;
                for event in batch {
                    cursor = event.position;
                    if filter.matches(&event) && events.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                if !full {
                    break;
                }
            }
            loop {
                let next = tokio::select! {
                    () = self.shutdown.cancelled() => {
                        events.send(Err(WatchEnd::ShuttingDown)).await.ok();
                        return;
                    }
                    () = events.closed() => return,
                    next = live.recv() => next,
                };
                match next {
                    Ok(event) => {
                        if event.position <= cursor || event.tenant != tenant {
                            continue;
                        }
                        cursor = event.position;
                        if filter.matches(&event)
                            && events.send(Ok((*event).clone())).await.is_err()
                        {
                            return;
                        }
                    }
                    // Too slow for the live buffer: catch up from the outbox again.
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "watcher fell behind; catching up from the outbox");
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }

    /// Tells the other replicas of this process's commits, reconnecting after failures; until
    /// then their polling finds the events.
    async fn announce(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                result = self.store.announce_commits() => {
                    if let Err(error) = result {
                        tracing::warn!(%error, "announcing commits failed; replicas poll until it recovers");
                    }
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Publishes final events in feed order as they commit.
    async fn tail(self: Arc<Self>, mut position: EventPosition, poll_interval: Duration) {
        let committed = self.store.events_committed();
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = committed.notified() => {}
                () = tokio::time::sleep(poll_interval) => {}
            }
            loop {
                let batch = match self.store.events_after(position, None, BATCH).await {
                    Ok(batch) => batch,
                    Err(error) => {
                        tracing::warn!(%error, "reading the outbox failed; will retry");
                        break;
                    }
                };
                let full = batch.len() as u64 == BATCH;
                for event in batch {
                    position = event.position;
                    // No receiver is not an error: nobody watches right now.
                    self.live.send(Arc::new(event)).ok();
                }
                if !full {
                    break;
                }
            }
        }
    }

    /// Turns other replicas' commit notifications into wake-ups, reconnecting after failures.
    async fn listen(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                result = self.store.forward_event_notifications() => {
                    if let Err(error) = result {
                        tracing::warn!(%error, "event notifications lost; polling until reconnected");
                    }
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Deletes events older than `retention`, now and then.
    async fn prune(self: Arc<Self>, retention: Duration) {
        loop {
            let cutoff = Timestamp(Timestamp::now().micros() - retention.as_micros() as i64);
            match self.store.prune_events(cutoff).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned old redemption events"),
                Err(error) => tracing::warn!(%error, "pruning redemption events failed"),
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(PRUNE_EVERY) => {}
            }
        }
    }
}

/// Counts a stream as open for as long as it lives.
struct OpenStream(prometheus::IntGauge);

impl OpenStream {
    fn new(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}
