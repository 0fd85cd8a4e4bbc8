//! Per-tenant request quotas and the code-guessing throttle, enforced in this process.
//!
//! Both are GCRA limiters from `governor`, held per tenant and rebuilt only when the tenant's
//! limits change. A tenant's limits are read from the store at most once per
//! [`SETTINGS_TTL`] per process, so a change made through any replica reaches every replica
//! within that time without a query per call.
//!
//! Replicas share nothing: each process enforces `1 / replicas` of every limit (rate, burst and
//! unknown-code allowance, each share rounded up), so N replicas together let through at most
//! about the tenant's limit (plus at most one call per replica from rounding) when calls are
//! spread over them. A client whose calls all reach one replica gets only that replica's share;
//! `replicas = 1` enforces the whole limit in every process instead (then N replicas together
//! allow N times the limit).

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use governor::{
    clock::{Clock, DefaultClock},
    DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter,
};

use super::{AppError, ErrorReason};
use crate::{
    domain::{
        quota::{QuotaLimits, TenantQuota},
        TenantId,
    },
    store::Store,
};

/// How long a process trusts the limits it read for a tenant; bounds how long a change made on
/// another replica takes to apply here.
pub const SETTINGS_TTL: Duration = Duration::from_secs(2);

/// Most end customers one process tracks unknown codes for, per tenant. Past it (a guesser that
/// sends a new end-user key with every call), unknown codes of customers not yet tracked share
/// one overflow allowance, so memory stays bounded and rotating keys gains a guesser nothing.
const MAX_TRACKED_END_USERS: usize = 100_000;
/// The key of that shared allowance; never an end-user key, which all carry a prefix or are empty.
const OVERFLOW_END_USER: &str = "\u{0}overflow";

/// Why a call was refused with RESOURCE_EXHAUSTED, and when to try again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Exhausted {
    pub(crate) reason: ErrorReason,
    /// The QuotaFailure subject: what ran out.
    pub(crate) subject: String,
    pub(crate) description: String,
    pub(crate) retry_after: Duration,
}

/// The limiter state of every tenant this process has served.
#[derive(Clone)]
pub(crate) struct Quotas {
    inner: Arc<Inner>,
}

struct Inner {
    store: Option<Store>,
    defaults: QuotaLimits,
    replicas: NonZeroU32,
    clock: DefaultClock,
    tenants: Mutex<HashMap<TenantId, (Instant, Arc<TenantLimiters>)>>,
}

/// One tenant's limiters, built from its limits in force.
struct TenantLimiters {
    limits: QuotaLimits,
    requests: Option<DefaultDirectRateLimiter>,
    unknown_codes: Option<DefaultKeyedRateLimiter<String>>,
    /// End customers refused until the instant given: once throttled, every code they send is
    /// refused, so the refusal itself cannot tell a guesser which codes exist.
    blocked: Mutex<HashMap<String, Instant>>,
    /// Most end customers tracked in `unknown_codes` before the overflow allowance is used.
    tracked_capacity: usize,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("defaults", &self.inner.defaults)
            .field("replicas", &self.inner.replicas)
            .finish_non_exhaustive()
    }
}

impl Quotas {
    /// Limits read from `store`, `defaults` for what a tenant did not choose, each enforced as a
    /// `1 / replicas` share.
    pub(crate) fn new(store: Store, defaults: QuotaLimits, replicas: NonZeroU32) -> Self {
        Self::build(Some(store), defaults, replicas)
    }

    /// No quota and no throttle, for servers assembled without a configuration.
    pub(crate) fn unlimited() -> Self {
        let off = QuotaLimits {
            requests_per_second: 0,
            burst: 0,
            unknown_code_limit: 0,
            unknown_code_window: Duration::ZERO,
        };
        Self::build(None, off, NonZeroU32::MIN)
    }

    fn build(store: Option<Store>, defaults: QuotaLimits, replicas: NonZeroU32) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                defaults,
                replicas,
                clock: DefaultClock::default(),
                tenants: Mutex::default(),
            }),
        }
    }

    /// The service's default limits, which also bound what a tenant may set for itself.
    pub(crate) fn defaults(&self) -> QuotaLimits {
        self.inner.defaults
    }

    /// Admits one call of `tenant`, or refuses it with when to retry.
    pub(crate) async fn admit(&self, tenant: &TenantId) -> Result<(), AppError> {
        let limiters = self.limiters(tenant).await?;
        let Some(requests) = &limiters.requests else {
            return Ok(());
        };
        requests.check().map_err(|not_until| {
            let limits = limiters.limits;
            AppError::Exhausted(Exhausted {
                reason: ErrorReason::QuotaExceeded,
                subject: format!("tenant:{tenant}"),
                description: format!(
                    "the tenant's quota of {} calls per second (burst {}) is used up",
                    limits.requests_per_second, limits.burst
                ),
                retry_after: self.wait(&not_until),
            })
        })
    }

    /// Starts watching one call of `end_user` (a key naming the tenant's end customer) for
    /// unknown codes; refuses it while that customer is throttled.
    pub(crate) async fn watch(
        &self,
        tenant: &TenantId,
        end_user: String,
    ) -> Result<CodeWatch, AppError> {
        let limiters = self.limiters(tenant).await?;
        let watch = CodeWatch {
            quotas: self.clone(),
            limiters: Some(limiters),
            end_user,
        };
        watch.refuse_while_blocked()?;
        Ok(watch)
    }

    /// Forgets the limits read for `tenant`, so this process applies a change at once.
    pub(crate) fn forget(&self, tenant: &TenantId) {
        if let Ok(mut tenants) = self.inner.tenants.lock() {
            tenants.remove(tenant);
        }
    }

    async fn limiters(&self, tenant: &TenantId) -> Result<Arc<TenantLimiters>, AppError> {
        if let Some(fresh) = self.cached(tenant) {
            return Ok(fresh);
        }
        let chosen = match &self.inner.store {
            Some(store) => store.tenant_quota(tenant).await?,
            None => TenantQuota::default(),
        };
        let limits = chosen.over(&self.inner.defaults);
        let mut tenants = self
            .inner
            .tenants
            .lock()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("quota map poisoned")))?;
        // Unchanged limits keep their limiter, and with it what the tenant has used.
        let limiters = match tenants.get(tenant) {
            Some((_, current)) if current.limits == limits => {
                current.forget_idle();
                current.clone()
            }
            _ => Arc::new(TenantLimiters::new(limits, self.inner.replicas)),
        };
        tenants.insert(tenant.clone(), (Instant::now(), limiters.clone()));
        Ok(limiters)
    }

    /// The tenant's limiters while their limits are fresh. When they are stale the first caller
    /// gets `None` and re-reads them, while concurrent callers keep using the old limiters
    /// instead of each querying the store.
    fn cached(&self, tenant: &TenantId) -> Option<Arc<TenantLimiters>> {
        let mut tenants = self.inner.tenants.lock().ok()?;
        let (read_at, limiters) = tenants.get_mut(tenant)?;
        if read_at.elapsed() < SETTINGS_TTL {
            return Some(limiters.clone());
        }
        *read_at = Instant::now();
        None
    }

    fn wait(&self, not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
        not_until.wait_time_from(self.inner.clock.now())
    }
}

impl TenantLimiters {
    fn new(limits: QuotaLimits, replicas: NonZeroU32) -> Self {
        let requests = NonZeroU32::new(limits.requests_per_second).and_then(|rate| {
            // This process's share: rate / replicas per second, so one call per replicas / rate.
            let period = Duration::from_secs(u64::from(replicas.get())) / rate.get();
            share_quota(period, limits.burst.max(1), replicas)
        });
        let unknown_codes = NonZeroU32::new(limits.unknown_code_limit).and_then(|limit| {
            let period = limits.unknown_code_window * replicas.get() / limit.get();
            share_quota(period, limit.get(), replicas).map(RateLimiter::keyed)
        });
        Self {
            limits,
            requests: requests.map(RateLimiter::direct),
            unknown_codes,
            blocked: Mutex::default(),
            tracked_capacity: MAX_TRACKED_END_USERS,
        }
    }

    /// The key `end_user`'s unknown codes are counted under: its own, or the overflow allowance
    /// while the tracker is full even after forgetting idle customers.
    fn counting_key<'a>(
        &self,
        unknown_codes: &DefaultKeyedRateLimiter<String>,
        end_user: &'a str,
    ) -> &'a str {
        if unknown_codes.len() < self.tracked_capacity {
            return end_user;
        }
        unknown_codes.retain_recent();
        if unknown_codes.len() < self.tracked_capacity {
            end_user
        } else {
            OVERFLOW_END_USER
        }
    }

    /// Drops the state of end customers that are back to a full allowance, so a guesser that
    /// changes its key each call leaves nothing behind once the window has passed.
    fn forget_idle(&self) {
        if let Some(unknown_codes) = &self.unknown_codes {
            unknown_codes.retain_recent();
        }
        if let Ok(mut blocked) = self.blocked.lock() {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
    }
}

/// A GCRA quota of one `period` per cell with a burst of `ceil(total / replicas)`; `None` when
/// the period is zero (a limit too high to enforce at nanosecond resolution, which is none).
fn share_quota(period: Duration, total: u32, replicas: NonZeroU32) -> Option<Quota> {
    let burst = NonZeroU32::new(total.div_ceil(replicas.get()).max(1))?;
    Some(Quota::with_period(period)?.allow_burst(burst))
}

/// Counts the unknown codes one call of an end customer meets.
pub(crate) struct CodeWatch {
    quotas: Quotas,
    limiters: Option<Arc<TenantLimiters>>,
    end_user: String,
}

impl CodeWatch {
    /// Records `unknown` unknown-code answers; past the customer's allowance the answer becomes
    /// RESOURCE_EXHAUSTED and the customer is refused until its allowance refills.
    pub(crate) fn count_unknown(&self, unknown: usize) -> Result<(), AppError> {
        let Some(limiters) = &self.limiters else {
            return Ok(());
        };
        let Some(unknown_codes) = &limiters.unknown_codes else {
            return Ok(());
        };
        for _ in 0..unknown {
            let key = limiters.counting_key(unknown_codes, &self.end_user);
            if let Err(not_until) = unknown_codes.check_key(&key.to_owned()) {
                let retry_after = self.quotas.wait(&not_until);
                if let Ok(mut blocked) = limiters.blocked.lock() {
                    blocked.insert(self.end_user.clone(), Instant::now() + retry_after);
                }
                tracing::warn!(retry_after = ?retry_after, "end customer throttled for unknown codes");
                return Err(self.exhausted(retry_after));
            }
        }
        Ok(())
    }

    fn refuse_while_blocked(&self) -> Result<(), AppError> {
        let Some(limiters) = &self.limiters else {
            return Ok(());
        };
        let until = limiters
            .blocked
            .lock()
            .ok()
            .and_then(|blocked| blocked.get(&self.end_user).copied());
        match until.and_then(|until| until.checked_duration_since(Instant::now())) {
            Some(retry_after) if !retry_after.is_zero() => Err(self.exhausted(retry_after)),
            _ => Ok(()),
        }
    }

    fn exhausted(&self, retry_after: Duration) -> AppError {
        let limits = self
            .limiters
            .as_ref()
            .map(|l| l.limits)
            .unwrap_or(self.quotas.inner.defaults);
        AppError::Exhausted(Exhausted {
            reason: ErrorReason::TooManyUnknownCodes,
            subject: "end_user".to_owned(),
            description: format!(
                "more than {} unknown codes in {}s for this end customer",
                limits.unknown_code_limit,
                limits.unknown_code_window.as_secs()
            ),
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32, unknown: u32) -> QuotaLimits {
        QuotaLimits {
            requests_per_second: rate,
            burst,
            unknown_code_limit: unknown,
            unknown_code_window: Duration::from_secs(3_600),
        }
    }

    #[test]
    fn each_replica_enforces_its_share_of_the_burst() {
        let two = NonZeroU32::new(2).unwrap();
        let limiters = TenantLimiters::new(limits(1, 11, 0), two);
        let requests = limiters.requests.as_ref().unwrap();
        let admitted = (0..100).filter(|_| requests.check().is_ok()).count();
        // ceil(11 / 2) = 6, and at one call per two seconds none refills during the loop.
        assert_eq!(admitted, 6);
    }

    #[test]
    fn a_throttled_customer_is_refused_and_others_are_not() {
        let limiters = Arc::new(TenantLimiters::new(limits(0, 0, 3), NonZeroU32::MIN));
        let watch = |who: &str| CodeWatch {
            quotas: Quotas::unlimited(),
            limiters: Some(limiters.clone()),
            end_user: who.to_owned(),
        };
        assert!(watch("guesser").count_unknown(3).is_ok());
        let refused = watch("guesser").count_unknown(1).unwrap_err();
        assert!(matches!(refused, AppError::Exhausted(ref e) if e.retry_after > Duration::ZERO));
        assert!(watch("guesser").refuse_while_blocked().is_err());
        assert!(watch("shopper").refuse_while_blocked().is_ok());
        assert!(watch("shopper").count_unknown(1).is_ok());
    }

    #[test]
    fn end_users_past_the_tracker_share_one_allowance() {
        let mut limiters = TenantLimiters::new(limits(0, 0, 2), NonZeroU32::MIN);
        limiters.tracked_capacity = 3;
        let limiters = Arc::new(limiters);
        let watch = |who: String| CodeWatch {
            quotas: Quotas::unlimited(),
            limiters: Some(limiters.clone()),
            end_user: who,
        };
        // Three tracked customers, each within its allowance of two.
        for n in 0..3 {
            assert!(watch(format!("end-user:{n}")).count_unknown(1).is_ok());
        }
        // New keys beyond the tracker share the overflow allowance of two, whatever their name.
        assert!(watch("end-user:a".into()).count_unknown(1).is_ok());
        assert!(watch("end-user:b".into()).count_unknown(1).is_ok());
        assert!(watch("end-user:c".into()).count_unknown(1).is_err());
        assert!(limiters.unknown_codes.as_ref().unwrap().len() <= 4);
    }
}
