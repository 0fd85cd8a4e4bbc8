//! The closed-loop load generator: a fixed number of calls in flight, every answer counted by its
//! gRPC status (an HTTP/2 load tool sees only the HTTP status, so a failing call would look like
//! a success), latencies in an HDR histogram.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tonic::Code;

/// How hard and how long to load.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Calls in flight at once (one worker each).
    pub concurrency: usize,
    /// Calls before this much time has passed are not measured.
    pub warmup: Duration,
    /// How long calls are measured after the warm-up.
    pub duration: Duration,
    /// Stops issuing measured calls after this many, e.g. to stay within PIN stock; the warm-up
    /// then makes at most a quarter as many calls.
    pub max_calls: Option<u64>,
}

/// One run's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measurement {
    /// Calls answered inside the measured window, whatever their status.
    pub calls: u64,
    /// Those calls by gRPC status name (`OK`, `FAILED_PRECONDITION`, ...).
    pub statuses: BTreeMap<String, u64>,
    /// Length of the measured window.
    pub seconds: f64,
    /// Calls answered per second, every status counted.
    pub throughput: f64,
    /// Calls answered OK per second.
    pub ok_per_second: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Measurement {
    /// Calls answered with `status`.
    pub fn count(&self, status: &str) -> u64 {
        self.statuses.get(status).copied().unwrap_or(0)
    }

    /// Builds the figures from a histogram of microseconds.
    pub fn from_histogram(
        histogram: &Histogram<u64>,
        statuses: BTreeMap<String, u64>,
        seconds: f64,
    ) -> Self {
        let ms = |us: u64| us as f64 / 1_000.0;
        let calls = statuses.values().sum::<u64>();
        let ok = statuses.get("OK").copied().unwrap_or(0);
        let per_second = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        Self {
            calls,
            seconds,
            throughput: per_second(calls),
            ok_per_second: per_second(ok),
            mean_ms: histogram.mean() / 1_000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            statuses,
        }
    }
}

/// A histogram of microseconds from 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// The canonical name of a gRPC status code, as the gRPC status guidance spells it.
pub fn status_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Runs `settings.concurrency` workers, each calling `call(worker, sequence)` again as soon as
/// its previous call is answered, and measures the calls that start after the warm-up and are
/// answered inside the window. `call` answers with the status name of the outcome.
pub async fn run<F, Fut>(settings: &LoadSettings, call: F) -> anyhow::Result<Measurement>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = &'static str> + Send,
{
    let call = Arc::new(call);
    let issued = Arc::new(AtomicU64::new(0));
    let warmup_issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + settings.warmup;
    let end = measure_from + settings.duration;
    let mut workers = Vec::with_capacity(settings.concurrency);
    for worker in 0..settings.concurrency.max(1) {
        let call = call.clone();
        let issued = issued.clone();
        let warmup_issued = warmup_issued.clone();
        let max_calls = settings.max_calls;
        workers.push(tokio::spawn(async move {
            let mut histogram = new_histogram()?;
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            let mut last_answer = measure_from;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let sequence = if started < measure_from {
                    let warm = warmup_issued.fetch_add(1, Ordering::Relaxed);
                    if max_calls.is_some_and(|max| warm >= max / 4) {
                        tokio::time::sleep_until(measure_from.into()).await;
                        continue;
                    }
                    // Warm-up calls count down from the top so they never collide with measured ones.
                    u64::MAX - warm
                } else {
                    let measured = issued.fetch_add(1, Ordering::Relaxed);
                    if max_calls.is_some_and(|max| measured >= max) {
                        break;
                    }
                    measured
                };
                let outcome = call(worker, sequence).await;
                let answered = Instant::now();
                if started >= measure_from && answered <= end {
                    histogram.record(answered.duration_since(started).as_micros().max(1) as u64)?;
                    *statuses.entry(outcome.to_owned()).or_default() += 1;
                    last_answer = last_answer.max(answered);
                }
            }
            anyhow::Ok((histogram, statuses, last_answer))
        }));
    }
    let mut histogram = new_histogram()?;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_answer = measure_from;
    for worker in workers {
        let (h, s, last) = worker.await??;
        histogram.add(&h)?;
        for (name, count) in s {
            *statuses.entry(name).or_default() += count;
        }
        last_answer = last_answer.max(last);
    }
    // A run cut short by its call budget is measured up to its last answer, not to the window's end.
    let ran_out = settings
        .max_calls
        .is_some_and(|max| issued.load(Ordering::Relaxed) >= max);
    let window_end = if ran_out { last_answer } else { end };
    let seconds = window_end.duration_since(measure_from).as_secs_f64();
    Ok(Measurement::from_histogram(&histogram, statuses, seconds))
}
