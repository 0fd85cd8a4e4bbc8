//! The watch scenario: watchers spread over two server processes on one database while writers
//! redeem through both; each delivery's latency runs from the event's `occurred_time` (stamped
//! inside the writing transaction, same machine clock) to its arrival at the watcher.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use coupon_service::pb::{self, coupon_service_client::CouponServiceClient};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::{
    connect_many,
    load::{self, LoadSettings, Measurement},
    scenario::{self, Bearer, Capture, Plan, Scenario},
};

/// Watchers per HTTP/2 connection, well under the server's stream limit.
const WATCHERS_PER_CONNECTION: usize = 50;

/// What the watch scenario measured.
pub struct WatchResult {
    /// Commit-to-delivery latency over every delivery of an event written in the window.
    pub delivery: Measurement,
    /// The writers' Redeem calls.
    pub writes: Measurement,
    /// Watchers that were open.
    pub watchers: usize,
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// Runs `watchers` watchers over `servers` and writers at `settings`, redeeming `plan.codes`.
pub async fn run(
    servers: &[SocketAddr],
    token: &str,
    watchers: usize,
    plan: Plan,
    settings: &LoadSettings,
) -> anyhow::Result<WatchResult> {
    let auth = Bearer::new(token)?;
    let mut watcher_channels = Vec::new();
    for addr in servers {
        let per_server = watchers.div_ceil(servers.len().max(1));
        watcher_channels
            .push(connect_many(*addr, per_server.div_ceil(WATCHERS_PER_CONNECTION)).await?);
    }
    let warmup_wall = now_micros() + settings.warmup.as_micros() as i64;
    let end_wall = warmup_wall + settings.duration.as_micros() as i64;
    // Watchers keep reading a little after the writers stop, for events still on their way.
    let stop_at = Instant::now() + settings.warmup + settings.duration + Duration::from_secs(2);
    let mut streams = Vec::with_capacity(watchers);
    for i in 0..watchers {
        let server = &watcher_channels[i % watcher_channels.len()];
        let channel = server[(i / watcher_channels.len()) % server.len()].clone();
        let stream = CouponServiceClient::with_interceptor(channel, auth.clone())
            .watch_redemptions(pb::WatchRedemptionsRequest {
                start: pb::WatchStart::Now as i32,
                ..Default::default()
            })
            .await?
            .into_inner();
        streams.push(stream);
    }
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut histogram = load::new_histogram()?;
                let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
                while let Ok(Some(item)) =
                    tokio::time::timeout_at(stop_at.into(), stream.next()).await
                {
                    let arrived = now_micros();
                    let Ok(event) = item else {
                        *statuses.entry("STREAM_ERROR".to_owned()).or_default() += 1;
                        break;
                    };
                    let Some(occurred) = event.occurred_time else {
                        continue;
                    };
                    let occurred = occurred.seconds * 1_000_000 + i64::from(occurred.nanos) / 1_000;
                    if occurred >= warmup_wall && occurred <= end_wall {
                        histogram.record((arrived - occurred).max(1) as u64)?;
                        *statuses.entry("DELIVERED".to_owned()).or_default() += 1;
                    }
                }
                anyhow::Ok((histogram, statuses))
            })
        })
        .collect();

    let mut write_channels: Vec<Channel> = Vec::new();
    for addr in servers {
        write_channels.extend(connect_many(*addr, 2).await?);
    }
    let write_channels = Arc::new(write_channels);
    let plan = Arc::new(plan);
    let writes = load::run(settings, move |worker, sequence| {
        let channel = write_channels[worker % write_channels.len()].clone();
        let auth = auth.clone();
        let plan = plan.clone();
        async move {
            scenario::call(
                Scenario::Redeem,
                channel,
                auth,
                &plan,
                sequence,
                &Capture::default(),
            )
            .await
        }
    })
    .await?;

    let mut histogram = load::new_histogram()?;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        let (h, s) = task.await??;
        histogram.add(&h)?;
        for (name, count) in s {
            *statuses.entry(name).or_default() += count;
        }
    }
    let delivery =
        Measurement::from_histogram(&histogram, statuses, settings.duration.as_secs_f64());
    eprintln!("  {}", crate::report::one_line("watch writes", &writes));
    eprintln!(
        "  {}",
        crate::report::one_line("watch deliveries", &delivery)
    );
    Ok(WatchResult {
        delivery,
        writes,
        watchers,
    })
}
