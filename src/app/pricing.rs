//! Validate, Apply and ListApplicable: read each request's coupons (and, for Validate and Apply,
//! the automatic promotions its checkout may get) with their ledger view in one statement, then
//! let the pure engine decide. Nothing is written.

use std::collections::{HashMap, HashSet};

use super::AppError;
use crate::{
    domain::{
        automatic::Lookup,
        cart::Checkout,
        coupon::Coupon,
        engine::{self, Candidate, Evaluation, LedgerView, NextTier, PricedCart, Reason, Rejected},
        policy::TenantPolicy,
        Code, TenantId, Timestamp,
    },
    store::Store,
};

use super::quota::CodeWatch;

/// A code as requested: parsed, or kept as typed (trimmed, upper-cased) when it cannot be a
/// code; then it is simply not found, as a customer's typo should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RequestedCode {
    Code(Code),
    Unknown(String),
}

impl RequestedCode {
    pub(crate) fn parse(text: &str) -> Self {
        match Code::parse(text) {
            Ok(code) => RequestedCode::Code(code),
            Err(_) => RequestedCode::Unknown(text.trim().to_uppercase()),
        }
    }

    pub(crate) fn text(&self) -> &str {
        match self {
            RequestedCode::Code(code) => code.as_str(),
            RequestedCode::Unknown(text) => text,
        }
    }
}

/// Validate's and Apply's command: the codes as typed and the checkout.
#[derive(Clone, Debug)]
pub(crate) struct PricingCommand {
    pub(crate) codes: Vec<RequestedCode>,
    pub(crate) checkout: Checkout,
    /// Whether the answer also shows the automatic promotions that did not apply, and why; the
    /// ones that apply are always shown.
    pub(crate) explain_automatic: bool,
}

/// One code, or one automatic promotion (its coupon says which), checked on its own.
#[derive(Clone, Debug)]
pub(crate) struct CodeValidation {
    pub(crate) text: String,
    pub(crate) coupon: Option<Coupon>,
    /// What it gives on the whole cart; zero when it does not apply.
    pub(crate) discount: i64,
    /// Every reason it does not apply; empty when it does.
    pub(crate) reasons: Vec<Reason>,
    /// A tiered coupon's next tier.
    pub(crate) next_tier: Option<NextTier>,
}

/// Apply's answer: the priced cart, and the typed texts that cannot be codes.
#[derive(Clone, Debug)]
pub(crate) struct AppliedCart {
    pub(crate) cart: PricedCart,
    pub(crate) untypeable: Vec<String>,
}

/// ListApplicable's command.
#[derive(Clone, Debug)]
pub(crate) struct ApplicableQuery {
    pub(crate) checkout: Checkout,
    /// Position of the page's first coupon in the ranking.
    pub(crate) offset: usize,
    pub(crate) limit: usize,
    pub(crate) near_miss_limit: usize,
}

/// A coupon that applies, with what it gives.
#[derive(Clone, Debug)]
pub(crate) struct Ranked {
    pub(crate) coupon: Coupon,
    pub(crate) discount: i64,
    pub(crate) evaluation: Evaluation,
}

/// A coupon the cart falls short of only by minimums.
#[derive(Clone, Debug)]
pub(crate) struct NearMiss {
    pub(crate) coupon: Coupon,
    pub(crate) evaluation: Evaluation,
    pub(crate) missing_amount: i64,
    pub(crate) missing_quantity: i64,
}

/// ListApplicable's answer: one page of the ranking, best first, and the closest near misses.
#[derive(Clone, Debug)]
pub(crate) struct Applicable {
    pub(crate) page: Vec<Ranked>,
    /// Where the next page starts, when there is one.
    pub(crate) next_offset: Option<usize>,
    pub(crate) near_misses: Vec<NearMiss>,
}

/// The coupons a request names, by code, and the automatic promotions its checkout may get,
/// with their ledger views, and the tenant's policy.
pub(crate) struct Found {
    coupons: HashMap<String, (Coupon, LedgerView)>,
    /// In code order, so that pricing does not depend on the order the store returned them in.
    automatic: Vec<(Coupon, LedgerView)>,
    policy: TenantPolicy,
}

impl Found {
    /// The coupons of `codes` and the automatic promotions indexed under the checkout's keys,
    /// with their ledger views for the checkout's customer, in one statement.
    pub(crate) async fn load(
        store: &Store,
        tenant: &TenantId,
        codes: &[Code],
        checkout: &Checkout,
    ) -> Result<Self, AppError> {
        let mut codes = codes.to_vec();
        codes.sort();
        codes.dedup();
        let customer = checkout.customer.ledger_key();
        let lookup = Lookup::of(checkout);
        let found = store
            .coupons_with_ledger(tenant, &codes, Some(&lookup), customer.as_deref())
            .await?;
        let (mut automatic, typed): (Vec<_>, Vec<_>) = found
            .coupons
            .into_iter()
            .partition(|(coupon, _)| coupon.automatic);
        automatic.sort_by(|a, b| a.0.code.cmp(&b.0.code));
        Ok(Self {
            coupons: typed
                .into_iter()
                .map(|(coupon, ledger)| (coupon.code.to_string(), (coupon, ledger)))
                .collect(),
            automatic,
            policy: found.policy,
        })
    }

    /// The engine's input for every automatic promotion found, taking them out.
    pub(crate) fn automatic_candidates(&mut self) -> Vec<Candidate> {
        std::mem::take(&mut self.automatic)
            .into_iter()
            .map(|(coupon, ledger)| Candidate {
                code: coupon.code.clone(),
                coupon: Some(coupon),
                ledger,
            })
            .collect()
    }

    fn get(&self, code: &str) -> Option<&(Coupon, LedgerView)> {
        self.coupons.get(code)
    }

    /// The checkout under the tenant's policy, which the engine checks before each coupon's own
    /// conditions.
    pub(crate) fn under_policy(&self, checkout: Checkout) -> Checkout {
        checkout.under_policy(self.policy.clone())
    }

    /// The engine's input for `code`, taking its coupon (if any) out.
    pub(crate) fn candidate(&mut self, code: &Code) -> Candidate {
        let entry = self.coupons.remove(code.as_str());
        Candidate {
            code: code.clone(),
            ledger: entry
                .as_ref()
                .map(|(_, ledger)| *ledger)
                .unwrap_or_default(),
            coupon: entry.map(|(coupon, _)| coupon),
        }
    }
}

/// The requested texts that are codes.
fn parsed(requested: &[RequestedCode]) -> Vec<Code> {
    requested
        .iter()
        .filter_map(|r| match r {
            RequestedCode::Code(code) => Some(code.clone()),
            RequestedCode::Unknown(_) => None,
        })
        .collect()
}

/// Checks each code on its own against the checkout, then each automatic promotion found for
/// it: those that apply, and with `explain_automatic` those that do not.
pub(crate) async fn validate(
    store: &Store,
    tenant: &TenantId,
    command: PricingCommand,
    watch: &CodeWatch,
    now: Timestamp,
) -> Result<Vec<CodeValidation>, AppError> {
    let found = Found::load(store, tenant, &parsed(&command.codes), &command.checkout).await?;
    let checkout = found.under_policy(command.checkout);
    watch.count_unknown(
        command
            .codes
            .iter()
            .filter(|requested| found.get(requested.text()).is_none())
            .count(),
    )?;
    let automatic = found.automatic.iter().filter_map(|(coupon, ledger)| {
        let evaluation = engine::evaluate(coupon, ledger, &checkout, now);
        let shown = evaluation.is_valid()
            || (command.explain_automatic && explainable(&evaluation.reasons));
        shown.then(|| CodeValidation {
            text: coupon.code.to_string(),
            coupon: Some(coupon.clone()),
            discount: evaluation.benefit.total(),
            reasons: evaluation.reasons,
            next_tier: evaluation.benefit.next_tier,
        })
    });
    let typed: Vec<CodeValidation> = command
        .codes
        .iter()
        .map(|requested| match found.get(requested.text()) {
            None => CodeValidation {
                text: requested.text().to_owned(),
                coupon: None,
                discount: 0,
                reasons: vec![Reason::CouponNotFound],
                next_tier: None,
            },
            Some((coupon, ledger)) => {
                let evaluation = engine::evaluate(coupon, ledger, &checkout, now);
                CodeValidation {
                    text: requested.text().to_owned(),
                    coupon: Some(coupon.clone()),
                    discount: evaluation.benefit.total(),
                    reasons: evaluation.reasons,
                    next_tier: evaluation.benefit.next_tier,
                }
            }
        })
        .collect();
    Ok(typed.into_iter().chain(automatic).collect())
}

/// Prices the checkout with the codes and the automatic promotions found for it, stacked by the
/// engine's rules; each code counts once. Refused automatic promotions are shown only with
/// `explain_automatic`.
pub(crate) async fn apply(
    store: &Store,
    tenant: &TenantId,
    command: PricingCommand,
    watch: &CodeWatch,
    now: Timestamp,
) -> Result<AppliedCart, AppError> {
    let mut found = Found::load(store, tenant, &parsed(&command.codes), &command.checkout).await?;
    let checkout = found.under_policy(command.checkout);
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    let mut untypeable = Vec::new();
    for requested in command
        .codes
        .iter()
        .filter(|r| seen.insert(r.text().to_owned()))
    {
        match requested {
            RequestedCode::Code(code) => candidates.push(found.candidate(code)),
            RequestedCode::Unknown(text) => untypeable.push(text.clone()),
        }
    }
    watch.count_unknown(
        untypeable.len() + candidates.iter().filter(|c| c.coupon.is_none()).count(),
    )?;
    candidates.extend(found.automatic_candidates());
    let mut cart = engine::price(&checkout, candidates, now);
    cart.rejected.retain(|rejected| {
        !is_automatic(rejected) || (command.explain_automatic && explainable(&rejected.reasons))
    });
    Ok(AppliedCart { cart, untypeable })
}

/// Whether a refused automatic promotion may be explained to this checkout: one that is "not
/// found" (limited to other payment links) stays unknown to it, as a typed code would.
fn explainable(reasons: &[Reason]) -> bool {
    !reasons.contains(&Reason::CouponNotFound)
}

/// Whether a refused candidate is an automatic promotion rather than a typed code.
pub(crate) fn is_automatic(rejected: &Rejected) -> bool {
    rejected.coupon.as_ref().is_some_and(|c| c.automatic)
}

/// Ranks the tenant's public coupons for the checkout: those that apply, most discount first
/// (then by code), and those short only of a minimum amount or quantity, closest first.
pub(crate) async fn list_applicable(
    store: &Store,
    tenant: &TenantId,
    query: ApplicableQuery,
    now: Timestamp,
) -> Result<Applicable, AppError> {
    let customer = query.checkout.customer.ledger_key();
    let found = store
        .public_coupons_with_ledger(tenant, customer.as_deref())
        .await?;
    let checkout = query.checkout.under_policy(found.policy);
    let coupons = found.coupons;
    let mut applicable = Vec::new();
    let mut near = Vec::new();
    for (coupon, ledger) in coupons {
        let evaluation = engine::evaluate(&coupon, &ledger, &checkout, now);
        if evaluation.is_valid() {
            applicable.push(Ranked {
                discount: evaluation.benefit.total(),
                coupon,
                evaluation,
            });
        } else if let Some((missing_amount, missing_quantity)) =
            only_short_of_minimums(&evaluation.reasons)
        {
            near.push(NearMiss {
                coupon,
                evaluation,
                missing_amount,
                missing_quantity,
            });
        }
    }
    applicable.sort_by(|a, b| {
        b.discount
            .cmp(&a.discount)
            .then_with(|| a.coupon.code.cmp(&b.coupon.code))
    });
    near.sort_by(|a, b| {
        (a.missing_amount, a.missing_quantity, &a.coupon.code).cmp(&(
            b.missing_amount,
            b.missing_quantity,
            &b.coupon.code,
        ))
    });
    near.truncate(query.near_miss_limit);
    let total = applicable.len();
    let end = query.offset.saturating_add(query.limit).min(total);
    let page: Vec<Ranked> = applicable
        .into_iter()
        .skip(query.offset)
        .take(end.saturating_sub(query.offset))
        .collect();
    Ok(Applicable {
        page,
        next_offset: (end < total).then_some(end),
        near_misses: near,
    })
}

/// The missing amount and units when the only reasons are minimums the cart falls short of.
fn only_short_of_minimums(reasons: &[Reason]) -> Option<(i64, i64)> {
    let mut missing = (0, 0);
    for reason in reasons {
        match reason {
            Reason::BelowMinimumAmount {
                missing: amount, ..
            } => missing.0 = *amount,
            Reason::BelowMinimumQuantity { missing: units, .. } => missing.1 = *units,
            _ => return None,
        }
    }
    Some(missing)
}
