//! The ledger's use cases: Redeem, Confirm, Revert and the redemption reads. The rules of the
//! ledger live here: which attempt a retry replays, when a reservation ends, which states refuse
//! an action, and what a counter that refused means to the caller.

use std::time::Duration;

use serde::Serialize;

use super::{
    idempotency::{replay, Conflict, Fingerprint},
    pricing::{is_automatic, Found},
    AppError, ErrorReason,
};
use crate::{
    domain::{
        cart::{Checkout, CustomerHistory},
        coupon::CustomerSegment,
        engine::{self, Reason},
        redemption::{RedeemOrder, Redemption, RedemptionDraft, RedemptionStatus},
        Code, TenantId, Timestamp,
    },
    store::{
        redemptions::{Exhausted, Recorded, RedemptionFilter},
        Page, Store, StoreError,
    },
};

/// Times Redeem prices an order again after automatic promotions ran out under it; each time
/// the ledger has fewer left, so more attempts are rarely needed.
const PRICING_ATTEMPTS: usize = 4;

const DUPLICATE_ORDER: Conflict = Conflict {
    reason: ErrorReason::DuplicateOrder,
    message: "this order already redeemed these codes with a different request",
};

/// Redeem's command, parsed at the edge.
#[derive(Clone, Debug)]
pub(crate) struct RedeemCommand {
    pub(crate) order_id: String,
    /// Each once, in the order the caller named them (the answer follows it); may be empty,
    /// when the order takes only the automatic promotions that apply.
    pub(crate) codes: Vec<Code>,
    /// Completed at once, or pending until confirmed or expired.
    pub(crate) completed: bool,
    /// How long a pending redemption holds usage; `None` takes the service's default.
    pub(crate) reservation_ttl: Option<Duration>,
    /// Has a customer id: anonymous customers cannot redeem.
    pub(crate) checkout: Checkout,
}

/// What makes two Redeem requests the same: everything in the command, with the codes as a set.
#[derive(Serialize)]
struct CanonicalRedeem<'a> {
    order_id: &'a str,
    codes: Vec<&'a Code>,
    completed: bool,
    reservation_ttl_micros: Option<u128>,
    checkout: &'a Checkout,
}

impl RedeemCommand {
    fn fingerprint(&self) -> Result<Fingerprint, AppError> {
        let mut codes: Vec<&Code> = self.codes.iter().collect();
        codes.sort();
        Fingerprint::of(
            "redeem",
            &CanonicalRedeem {
                order_id: &self.order_id,
                codes,
                completed: self.completed,
                reservation_ttl_micros: self.reservation_ttl.map(|ttl| ttl.as_micros()),
                checkout: &self.checkout,
            },
        )
    }
}

/// Confirm's and Revert's command: an order's codes, or all of them when none are named.
#[derive(Clone, Debug)]
pub(crate) struct OrderCodes {
    pub(crate) order_id: String,
    pub(crate) codes: Vec<Code>,
}

/// Redeem's answer.
#[derive(Clone, Debug)]
pub(crate) struct Redeemed {
    /// In the order the request named the codes.
    pub(crate) redemptions: Vec<Redemption>,
    /// An earlier identical request made them; this one changed nothing.
    pub(crate) replayed: bool,
}

/// The ledger's use cases over one store.
#[derive(Clone, Debug)]
pub(crate) struct Ledger {
    store: Store,
    /// How long a pending redemption holds usage when the request does not say.
    reservation_ttl: Duration,
}

impl Ledger {
    pub(crate) fn new(store: Store, reservation_ttl: Duration) -> Self {
        Self {
            store,
            reservation_ttl,
        }
    }

    /// Redeems every code for the order, or none, with every automatic promotion that applies
    /// to it: a retry of an active redemption replays it; a reverted or expired attempt does not
    /// block a new one.
    ///
    /// An automatic promotion that a racing order used up between pricing and recording is not
    /// a refusal: the order is priced again (without it, since the ledger now says so) and
    /// recorded, so the answer's redemptions are what the customer gets. A typed code that does
    /// not apply refuses the whole order, as always.
    pub(crate) async fn redeem(
        &self,
        tenant: &TenantId,
        command: RedeemCommand,
        request_id: &str,
        watch: &super::quota::CodeWatch,
        now: Timestamp,
    ) -> Result<Redeemed, AppError> {
        let fingerprint = command.fingerprint()?;
        for attempt in 0..PRICING_ATTEMPTS {
            let counted = if attempt == 0 { Some(watch) } else { None };
            let outcome = self
                .redeem_once(tenant, &command, &fingerprint, request_id, counted, now)
                .await?;
            if let Some(redeemed) = outcome {
                return Ok(redeemed);
            }
        }
        Err(AppError::Store(StoreError::Contention(
            sea_orm::DbErr::Custom("automatic promotions kept running out during the call".into()),
        )))
    }

    /// One pricing and recording of the order; `None` when an automatic promotion ran out
    /// before it was recorded, so the order must be priced again. `watch` counts unknown codes
    /// on the first attempt only.
    async fn redeem_once(
        &self,
        tenant: &TenantId,
        command: &RedeemCommand,
        fingerprint: &Fingerprint,
        request_id: &str,
        watch: Option<&super::quota::CodeWatch>,
        now: Timestamp,
    ) -> Result<Option<Redeemed>, AppError> {
        // A retry is recognized when its redemptions cannot be recorded (the order and codes are
        // taken) or its coupons no longer apply (it used the last slot itself), so a first
        // attempt, the common case, reads the order's redemptions not at all.
        let mut found = Found::load(&self.store, tenant, &command.codes, &command.checkout).await?;
        let checkout = &found.under_policy(command.checkout.clone());
        let mut candidates: Vec<_> = command
            .codes
            .iter()
            .map(|code| found.candidate(code))
            .collect();
        if let Some(watch) = watch {
            watch.count_unknown(candidates.iter().filter(|c| c.coupon.is_none()).count())?;
        }
        candidates.extend(found.automatic_candidates());
        let priced = engine::price(checkout, candidates, now);
        // Automatic promotions that do not apply are simply left out.
        let refused: Vec<_> = priced
            .rejected
            .iter()
            .filter(|r| !is_automatic(r))
            .collect();
        if !refused.is_empty() {
            // An identical request may have committed and used the last slot itself: then this
            // is its retry, not a refusal.
            if let Some(replayed) = self.earlier_attempt(tenant, command, fingerprint).await? {
                return Ok(Some(replayed));
            }
            return Err(AppError::Refused {
                refusals: refused
                    .into_iter()
                    .flat_map(|r| {
                        let code = r.code.to_string();
                        r.reasons
                            .iter()
                            .map(move |reason| (code.clone(), reason.clone()))
                    })
                    .collect(),
            });
        }
        // Without a typed code, no unique key of a typed code tells a retry apart, and what
        // applies may have changed because the first attempt consumed it: read the order first.
        // A racing identical first attempt either committed before the read above (then this
        // read sees it) or is recorded with the same promotions (then their keys collide).
        if command.codes.is_empty() {
            if let Some(replayed) = self.earlier_attempt(tenant, command, fingerprint).await? {
                return Ok(Some(replayed));
            }
            if priced.applied.is_empty() {
                return Ok(Some(Redeemed {
                    redemptions: Vec::new(),
                    replayed: false,
                }));
            }
        }
        let granted =
            if !command.codes.is_empty() && priced.applied.iter().any(|a| a.coupon.automatic) {
                self.automatic_granted(tenant, &command.order_id).await?
            } else {
                Vec::new()
            };
        let ttl = command.reservation_ttl.unwrap_or(self.reservation_ttl);
        // Only a decision the service makes from its own ledger is claimed; a caller that says
        // who is new answers for it.
        let claims_new_customer = checkout.customer.history == CustomerHistory::Unknown
            && priced
                .applied
                .iter()
                .any(|a| a.coupon.rules.conditions.customer_segment == CustomerSegment::New);
        let order = RedeemOrder {
            order_id: command.order_id.clone(),
            customer_id: checkout.customer.id.clone(),
            customer_email: checkout.customer.email.clone(),
            currency: checkout.cart.currency,
            completed: command.completed,
            expires_at: Some(Timestamp(
                now.micros()
                    .saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)),
            )),
            request_id: request_id.to_owned(),
            fingerprint: fingerprint.as_str().to_owned(),
            claims_new_customer,
            drafts: priced
                .applied
                .iter()
                // A promotion an earlier Redeem of this order got stays that call's: it still
                // prices the cart, as Apply would, but is not recorded twice.
                .filter(|applied| !granted.contains(&applied.coupon.id))
                .map(|applied| RedemptionDraft {
                    coupon_id: applied.coupon.id.clone(),
                    code: applied.coupon.code.clone(),
                    campaign_id: applied.coupon.campaign_id.clone(),
                    discount: applied.benefit.total(),
                    automatic: applied.coupon.automatic,
                })
                .collect(),
        };
        let refused = match self.store.record_redemptions(tenant, &order, now).await {
            Ok(redemptions) => {
                return Ok(Some(Redeemed {
                    redemptions: in_code_order(redemptions, &command.codes),
                    replayed: false,
                }))
            }
            Err(StoreError::AlreadyExists) => None,
            Err(StoreError::LimitReached {
                coupon_id,
                exhausted,
            }) => Some((coupon_id, exhausted)),
            Err(other) => return Err(other.into()),
        };
        // A racing identical request may have won the keys or the last slot: answer as it did.
        if let Some(replayed) = self.earlier_attempt(tenant, command, fingerprint).await? {
            return Ok(Some(replayed));
        }
        match refused {
            Some((coupon_id, exhausted)) => {
                let coupon = priced
                    .applied
                    .iter()
                    .find(|a| a.coupon.id == coupon_id)
                    .map(|a| &a.coupon);
                if coupon.is_some_and(|c| c.automatic) {
                    return Ok(None);
                }
                Err(AppError::Refused {
                    refusals: vec![(
                        coupon.map(|c| c.code.to_string()).unwrap_or_default(),
                        refusal_reason(exhausted),
                    )],
                })
            }
            // The keys were taken by an attempt that ended before this read: contention.
            None => Err(AppError::Store(StoreError::Contention(
                sea_orm::DbErr::Custom("the order's redemptions changed during the call".into()),
            ))),
        }
    }

    /// The automatic promotions (by coupon id) the order's active redemptions already hold.
    /// Read only when a promotion applies to a Redeem naming codes, so an order adding a code
    /// in a later call keeps the promotion it got instead of colliding with it, and orders
    /// without promotions keep their single round trip.
    async fn automatic_granted(
        &self,
        tenant: &TenantId,
        order_id: &str,
    ) -> Result<Vec<String>, AppError> {
        Ok(self
            .store
            .order_redemptions(tenant, order_id, &[])
            .await?
            .into_iter()
            .filter(|r| r.redemption.automatic && r.redemption.status.is_active())
            .map(|r| r.redemption.coupon_id)
            .collect())
    }

    /// The answer an earlier attempt of this order and these codes dictates: a replay when its
    /// active redemptions (of these codes, and the order's automatic ones) are this very
    /// request's, ALREADY_EXISTS when they are another's, and nothing when no attempt is active
    /// (ended attempts never block a new one). A replay answers with the automatic promotions
    /// the attempt got, even if they have run out since.
    async fn earlier_attempt(
        &self,
        tenant: &TenantId,
        command: &RedeemCommand,
        fingerprint: &Fingerprint,
    ) -> Result<Option<Redeemed>, AppError> {
        let (typed, automatic): (Vec<Recorded>, Vec<Recorded>) = self
            .store
            .order_redemptions(tenant, &command.order_id, &[])
            .await?
            .into_iter()
            .filter(|r| {
                r.redemption.status.is_active()
                    && (r.redemption.automatic || command.codes.contains(&r.redemption.code))
            })
            .partition(|r| !r.redemption.automatic);
        // An attempt of these codes holds one of them; without codes, the promotions it got.
        let first = if command.codes.is_empty() {
            automatic.first()
        } else {
            typed.first()
        };
        let Some(first) = first else {
            return Ok(None);
        };
        let anchor = first.fingerprint.clone();
        let same_attempt =
            typed.len() == command.codes.len() && typed.iter().all(|r| r.fingerprint == anchor);
        // The promotions the attempt got; those an earlier call of the order got stay its own.
        let automatic = automatic
            .into_iter()
            .filter(|r| command.codes.is_empty() || r.fingerprint == anchor);
        let active: Vec<Recorded> = typed.into_iter().chain(automatic).collect();
        let earlier = Fingerprint::stored(anchor);
        let earlier = if same_attempt {
            earlier
        } else {
            // Part of the codes is held by another request: never the same as this one.
            Fingerprint::stored(String::new())
        };
        let redemptions = active.into_iter().map(|r| r.redemption).collect();
        replay(
            Redeemed {
                redemptions: in_code_order(redemptions, &command.codes),
                replayed: true,
            },
            &earlier,
            fingerprint,
            DUPLICATE_ORDER,
        )
        .map(Some)
    }

    /// Completes the order's pending redemptions; an ended one refuses.
    pub(crate) async fn confirm(
        &self,
        tenant: &TenantId,
        command: OrderCodes,
        now: Timestamp,
    ) -> Result<Vec<Redemption>, AppError> {
        let latest = self.latest(tenant, &command).await?;
        if let Some(ended) = latest.iter().find(|r| !r.status.is_active()) {
            let (reason, state) = match ended.status {
                RedemptionStatus::Expired => (ErrorReason::RedemptionExpired, "expired"),
                _ => (ErrorReason::RedemptionReverted, "reverted"),
            };
            return Err(AppError::StateRefused {
                reason,
                message: format!(
                    "redemption of {} for order {:?} is {state}",
                    ended.code, command.order_id
                ),
            });
        }
        Ok(self
            .store
            .confirm_order(tenant, &command.order_id, &command.codes, now)
            .await?)
    }

    /// Reverts the order's active redemptions and releases their usage; reverting again answers
    /// the same.
    pub(crate) async fn revert(
        &self,
        tenant: &TenantId,
        command: OrderCodes,
        now: Timestamp,
    ) -> Result<Vec<Redemption>, AppError> {
        self.latest(tenant, &command).await?;
        Ok(self
            .store
            .revert_order(tenant, &command.order_id, &command.codes, now)
            .await?)
    }

    /// The order's latest redemption of each named code; NOT_FOUND names the first code the
    /// order never used, or the order when it has none.
    async fn latest(
        &self,
        tenant: &TenantId,
        command: &OrderCodes,
    ) -> Result<Vec<Redemption>, AppError> {
        let rows = self
            .store
            .order_redemptions(tenant, &command.order_id, &command.codes)
            .await?;
        if rows.is_empty() {
            return Err(AppError::not_found("order", command.order_id.clone()));
        }
        if let Some(unused) = command
            .codes
            .iter()
            .find(|code| !rows.iter().any(|r| &r.redemption.code == *code))
        {
            return Err(AppError::not_found(
                "redemption",
                format!("{} of order {}", unused, command.order_id),
            ));
        }
        let mut latest: Vec<Redemption> = Vec::new();
        for row in rows {
            match latest.iter_mut().find(|r| r.code == row.redemption.code) {
                Some(slot) => *slot = row.redemption,
                None => latest.push(row.redemption),
            }
        }
        Ok(latest)
    }

    /// The tenant's redemption with this id.
    pub(crate) async fn get(&self, tenant: &TenantId, id: &str) -> Result<Redemption, AppError> {
        self.store
            .get_redemption(tenant, id)
            .await
            .map_err(|error| match error {
                StoreError::NotFound => AppError::not_found("redemption", id),
                other => other.into(),
            })
    }

    /// A page of the tenant's redemptions, oldest first.
    pub(crate) async fn list(
        &self,
        tenant: &TenantId,
        filter: &RedemptionFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<Redemption>, AppError> {
        Ok(self
            .store
            .list_redemptions(tenant, filter, after, limit)
            .await?)
    }
}

/// What a counter that refused at commit means to the customer.
fn refusal_reason(exhausted: Exhausted) -> Reason {
    match exhausted {
        Exhausted::TotalLimit => Reason::UsageLimitReached,
        Exhausted::Budget => Reason::BudgetExhausted,
        Exhausted::CustomerLimit => Reason::CustomerLimitReached,
        Exhausted::NewCustomer => Reason::CustomerNotEligible {
            segment: CustomerSegment::New,
        },
    }
}

/// The typed codes' redemptions in the order the request named them, then the automatic
/// promotions' by code.
fn in_code_order(mut redemptions: Vec<Redemption>, codes: &[Code]) -> Vec<Redemption> {
    redemptions.sort_by(|a, b| {
        let position = |r: &Redemption| codes.iter().position(|c| c == &r.code);
        (position(a).is_none(), position(a), &a.code).cmp(&(
            position(b).is_none(),
            position(b),
            &b.code,
        ))
    });
    redemptions
}
