//! CouponService. Validate, Apply and ListApplicable read each request's coupons with their ledger
//! view in one statement, then let the domain engine decide; the ledger RPCs are in
//! `redemptions` and the event stream in `events`.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use tonic::{metadata::MetadataMap, Request, Response, Status};

use super::{
    convert::checkout::{checkout_from_pb, priced_cart_to_pb, validation_to_pb},
    paging::{page_size, PageTokens},
    redemptions::request_id,
    ApiError, Authenticator, Caller,
};
use crate::{
    domain::{
        cart::Checkout,
        coupon::Coupon,
        engine::{self, Candidate, LedgerView, Reason},
        messages::{unlock_hint, Locale},
        Code, InvalidInput, Scope, Timestamp,
    },
    pb::{self, coupon_service_server::CouponService},
    store::Store,
};

/// Most codes one request may name.
const MAX_CODES: usize = 20;
const DEFAULT_PAGE: u64 = 20;
const MAX_PAGE: u64 = 100;
const DEFAULT_NEAR_MISSES: usize = 3;
const MAX_NEAR_MISSES: usize = 20;

/// The CouponService handlers.
#[derive(Clone, Debug)]
pub struct CouponApi {
    auth: Authenticator,
    feed: std::sync::Arc<crate::events::EventFeed>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    pub(super) store: Store,
    /// How long a pending redemption holds usage when the request does not say.
    pub(super) reservation_ttl: std::time::Duration,
}

/// A code as requested: parsed, or kept as typed when it cannot be a code (then it is simply
/// not found, as a customer's typo should be).
enum Requested {
    Code(Code),
    Unknown(String),
}

/// The coupons a request names, by code, with their ledger views.
pub(super) type Found = HashMap<String, (Coupon, LedgerView)>;

/// The engine's input for `code`, taking its coupon (if any) out of `found`.
pub(super) fn candidate(code: &Code, found: &mut Found) -> Candidate {
    let entry = found.remove(code.as_str());
    Candidate {
        code: code.clone(),
        ledger: entry
            .as_ref()
            .map(|(_, ledger)| *ledger)
            .unwrap_or_default(),
        coupon: entry.map(|(coupon, _)| coupon),
    }
}

/// The requested texts that are codes.
fn parsed(requested: &[Requested]) -> Vec<Code> {
    requested
        .iter()
        .filter_map(|r| match r {
            Requested::Code(code) => Some(code.clone()),
            Requested::Unknown(_) => None,
        })
        .collect()
}

impl Requested {
    fn text(&self) -> &str {
        match self {
            Requested::Code(code) => code.as_str(),
            Requested::Unknown(text) => text,
        }
    }
}

fn requested_codes(raw: &[String]) -> Result<Vec<Requested>, InvalidInput> {
    if raw.is_empty() || raw.len() > MAX_CODES {
        return Err(InvalidInput::field("codes", "name 1 to 20 codes"));
    }
    Ok(raw
        .iter()
        .map(|text| match Code::parse(text) {
            Ok(code) => Requested::Code(code),
            Err(_) => Requested::Unknown(text.trim().to_uppercase()),
        })
        .collect())
}

fn locale(metadata: &MetadataMap) -> Locale {
    metadata
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .map(Locale::from_accept_language)
        .unwrap_or_default()
}

impl CouponApi {
    pub fn new(
        auth: Authenticator,
        store: Store,
        feed: std::sync::Arc<crate::events::EventFeed>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
        reservation_ttl: std::time::Duration,
    ) -> Self {
        Self {
            auth,
            feed,
            metrics,
            store,
            reservation_ttl,
        }
    }

    /// The coupons of `codes` with their ledger views for the checkout's customer, in one
    /// statement.
    pub(super) async fn load(
        &self,
        caller: &Caller,
        codes: &[Code],
        checkout: &Checkout,
    ) -> Result<Found, ApiError> {
        let mut codes = codes.to_vec();
        codes.sort();
        codes.dedup();
        let customer = checkout.customer.ledger_key();
        let found = self
            .store
            .coupons_with_ledger(&caller.tenant, &codes, customer.as_deref())
            .await?;
        Ok(found
            .into_iter()
            .map(|(coupon, ledger)| (coupon.code.to_string(), (coupon, ledger)))
            .collect())
    }

    async fn validate_codes(
        &self,
        caller: &Caller,
        request: pb::ValidateRequest,
        locale: Locale,
    ) -> Result<pb::ValidateResponse, ApiError> {
        let requested = requested_codes(&request.codes)?;
        let checkout = checkout_from_pb(request.checkout)?;
        let found = self.load(caller, &parsed(&requested), &checkout).await?;
        let now = Timestamp::now();
        let results: Vec<pb::CodeValidation> = requested
            .iter()
            .map(|r| match found.get(r.text()) {
                None => validation_to_pb(r.text(), None, 0, &[Reason::CouponNotFound], locale),
                Some((coupon, ledger)) => {
                    let evaluation = engine::evaluate(coupon, ledger, &checkout, now);
                    validation_to_pb(
                        r.text(),
                        Some(coupon),
                        evaluation.benefit.total(),
                        &evaluation.reasons,
                        locale,
                    )
                }
            })
            .collect();
        Ok(pb::ValidateResponse {
            valid: results.iter().all(|r| r.valid),
            results,
        })
    }

    async fn apply_codes(
        &self,
        caller: &Caller,
        request: pb::ApplyRequest,
        locale: Locale,
    ) -> Result<pb::ApplyResponse, ApiError> {
        let requested = requested_codes(&request.codes)?;
        let checkout = checkout_from_pb(request.checkout)?;
        let mut found = self.load(caller, &parsed(&requested), &checkout).await?;
        let mut seen = std::collections::HashSet::new();
        let mut candidates = Vec::new();
        let mut untypeable = Vec::new();
        for r in requested
            .iter()
            .filter(|r| seen.insert(r.text().to_owned()))
        {
            match r {
                Requested::Code(code) => candidates.push(candidate(code, &mut found)),
                Requested::Unknown(text) => untypeable.push(text.clone()),
            }
        }
        let priced = engine::price(&checkout, candidates, Timestamp::now());
        let mut cart = priced_cart_to_pb(&priced, checkout.cart.currency.code(), locale);
        cart.rejected.extend(
            untypeable
                .iter()
                .map(|text| validation_to_pb(text, None, 0, &[Reason::CouponNotFound], locale)),
        );
        Ok(pb::ApplyResponse { cart: Some(cart) })
    }

    async fn list_applicable_coupons(
        &self,
        caller: &Caller,
        request: pb::ListApplicableRequest,
        locale: Locale,
    ) -> Result<pb::ListApplicableResponse, ApiError> {
        let limit = page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let near_miss_limit = match request.near_miss_limit {
            n if n < 0 => {
                return Err(InvalidInput::field("near_miss_limit", "must not be negative").into())
            }
            0 => DEFAULT_NEAR_MISSES,
            n => (n as usize).min(MAX_NEAR_MISSES),
        };
        // The page token is bound to this exact checkout, since the ranking depends on it.
        let fingerprint = hex::encode(Sha256::digest(prost::Message::encode_to_vec(
            request
                .checkout
                .as_ref()
                .unwrap_or(&pb::Checkout::default()),
        )));
        let tokens = PageTokens::new(&caller.tenant, &format!("applicable {fingerprint}"));
        let offset: usize = match tokens.decode(&request.page_token)? {
            None => 0,
            Some(position) => position.parse().map_err(|_| {
                InvalidInput::field("page_token", "is not a token from this listing")
            })?,
        };
        let checkout = checkout_from_pb(request.checkout)?;
        let customer = checkout.customer.ledger_key();
        let coupons = self
            .store
            .public_coupons_with_ledger(&caller.tenant, customer.as_deref())
            .await?;
        let now = Timestamp::now();
        let mut applicable = Vec::new();
        let mut near = Vec::new();
        for (coupon, ledger) in &coupons {
            let evaluation = engine::evaluate(coupon, ledger, &checkout, now);
            let discount = evaluation.benefit.total();
            if evaluation.is_valid() {
                applicable.push((discount, coupon, evaluation));
            } else if let Some((amount, quantity)) = only_short_of_minimums(&evaluation.reasons) {
                near.push((amount, quantity, coupon, evaluation));
            }
        }
        applicable.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.code.cmp(&b.1.code)));
        near.sort_by(|a, b| (a.0, a.1, &a.2.code).cmp(&(b.0, b.1, &b.2.code)));
        let end = (offset + limit as usize).min(applicable.len());
        let page = applicable.get(offset..end).unwrap_or_default();
        let currency = checkout.cart.currency;
        Ok(pb::ListApplicableResponse {
            coupons: page
                .iter()
                .map(|(discount, coupon, e)| pb::ApplicableCoupon {
                    validation: Some(validation_to_pb(
                        coupon.code.as_str(),
                        Some(coupon),
                        *discount,
                        &e.reasons,
                        locale,
                    )),
                })
                .collect(),
            next_page_token: tokens.encode((end < applicable.len()).then(|| end.to_string())),
            near_misses: near
                .iter()
                .take(near_miss_limit)
                .map(|(amount, quantity, coupon, e)| pb::NearMiss {
                    validation: Some(validation_to_pb(
                        coupon.code.as_str(),
                        Some(coupon),
                        e.benefit.total(),
                        &e.reasons,
                        locale,
                    )),
                    missing_amount: *amount,
                    missing_quantity: *quantity,
                    hint: if *amount > 0 {
                        unlock_hint(&coupon.code, *amount, currency, locale)
                    } else {
                        unlock_hint_units(&coupon.code, *quantity, locale)
                    },
                })
                .collect(),
        })
    }
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

fn unlock_hint_units(code: &Code, units: i64, locale: Locale) -> String {
    match locale {
        Locale::En => format!("Add {units} more item(s) to unlock {code}"),
        Locale::Id => format!("Tambah {units} produk lagi untuk memakai {code}"),
    }
}

#[tonic::async_trait]
impl CouponService for CouponApi {
    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        let locale = locale(request.metadata());
        Ok(Response::new(
            self.validate_codes(&caller, request.into_inner(), locale)
                .await?,
        ))
    }

    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        let locale = locale(request.metadata());
        Ok(Response::new(
            self.apply_codes(&caller, request.into_inner(), locale)
                .await?,
        ))
    }

    async fn list_applicable(
        &self,
        request: Request<pb::ListApplicableRequest>,
    ) -> Result<Response<pb::ListApplicableResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        let locale = locale(request.metadata());
        Ok(Response::new(
            self.list_applicable_coupons(&caller, request.into_inner(), locale)
                .await?,
        ))
    }

    async fn redeem(
        &self,
        request: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Redeem)
            .await?;
        let locale = locale(request.metadata());
        let request_id = request_id(request.metadata());
        let result = self
            .redeem_codes(&caller, request.into_inner(), request_id.clone(), locale)
            .await;
        let outcome = match &result {
            Ok(answer) if answer.request_id == request_id => "redeemed",
            Ok(_) => "replayed",
            Err(ApiError::Refused { .. }) => "refused",
            Err(ApiError::AlreadyExists { .. }) => "duplicate",
            Err(_) => "error",
        };
        self.metrics.redemptions.with_label_values(&[outcome]).inc();
        Ok(Response::new(result?))
    }

    async fn confirm(
        &self,
        request: Request<pb::ConfirmRequest>,
    ) -> Result<Response<pb::ConfirmResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Redeem)
            .await?;
        Ok(Response::new(
            self.confirm_order(&caller, request.into_inner()).await?,
        ))
    }

    async fn revert(
        &self,
        request: Request<pb::RevertRequest>,
    ) -> Result<Response<pb::RevertResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Redeem)
            .await?;
        let request_id = request_id(request.metadata());
        Ok(Response::new(
            self.revert_order(&caller, request.into_inner(), request_id)
                .await?,
        ))
    }

    async fn get_redemption(
        &self,
        request: Request<pb::GetRedemptionRequest>,
    ) -> Result<Response<pb::Redemption>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        Ok(Response::new(
            self.find_redemption(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_redemptions(
        &self,
        request: Request<pb::ListRedemptionsRequest>,
    ) -> Result<Response<pb::ListRedemptionsResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        Ok(Response::new(
            self.list_ledger(&caller, request.into_inner()).await?,
        ))
    }

    type WatchRedemptionsStream = super::events::EventStream;

    async fn watch_redemptions(
        &self,
        request: Request<pb::WatchRedemptionsRequest>,
    ) -> Result<Response<Self::WatchRedemptionsStream>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        let stream =
            super::events::watch(&self.feed, &self.store, &caller, request.into_inner()).await?;
        Ok(Response::new(stream))
    }
}
