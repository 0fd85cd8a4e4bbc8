//! Redeem, Confirm, Revert and the redemption reads: translation around the ledger.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;

use super::{
    convert::{checkout::checkout_from_pb, timestamp_to_pb},
    coupons::{candidate, CouponApi},
    paging::{page_size, PageTokens},
    ApiError, Caller, StoreResultExt,
};
use crate::{
    domain::{
        engine::{self, Candidate},
        messages::Locale,
        redemption::{
            RedeemOrder, Redemption, RedemptionDraft, RedemptionStatus, RESERVATION_TTL_RANGE,
        },
        Code, InvalidInput, Timestamp, Violations,
    },
    pb,
    store::{
        redemptions::{Recorded, RedemptionFilter},
        StoreError,
    },
};

const MAX_CODES: usize = 20;
const MAX_ORDER_ID_LEN: usize = 128;
const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 500;

/// The request id the request-id layer put on the call.
pub fn request_id(metadata: &MetadataMap) -> String {
    metadata
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Codes of a ledger request: each once, each a valid code.
fn ledger_codes(raw: &[String], required: bool) -> Result<Vec<Code>, InvalidInput> {
    let mut violations = Violations::new();
    if (required && raw.is_empty()) || raw.len() > MAX_CODES {
        violations.add(
            "codes",
            if required {
                "name 1 to 20 codes"
            } else {
                "name at most 20 codes"
            },
        );
    }
    let mut codes: Vec<Code> = Vec::with_capacity(raw.len());
    for (index, text) in raw.iter().enumerate() {
        if let Some(code) = violations.take(&format!("codes[{index}]"), Code::parse(text)) {
            if codes.contains(&code) {
                violations.add(format!("codes[{index}]"), "is named twice");
            }
            codes.push(code);
        }
    }
    violations.finish(codes)
}

fn order_id(raw: &str, violations: &mut Violations) -> String {
    let id = raw.trim();
    violations.require(
        !id.is_empty() && id.len() <= MAX_ORDER_ID_LEN,
        "order_id",
        "is required, at most 128 characters",
    );
    id.to_owned()
}

impl CouponApi {
    pub(super) async fn redeem_codes(
        &self,
        caller: &Caller,
        request: pb::RedeemRequest,
        request_id: String,
        locale: Locale,
    ) -> Result<pb::RedeemResponse, ApiError> {
        // Any difference in content, even in code case, makes a different request.
        let fingerprint = hex::encode(Sha256::digest(prost::Message::encode_to_vec(&request)));
        let mut violations = Violations::new();
        let order_id = order_id(&request.order_id, &mut violations);
        let completed = match pb::OrderStatus::try_from(request.order_status) {
            Ok(pb::OrderStatus::Pending) => false,
            Ok(pb::OrderStatus::Completed) => true,
            _ => {
                violations.add(
                    "order_status",
                    "must be ORDER_STATUS_PENDING or ORDER_STATUS_COMPLETED",
                );
                false
            }
        };
        let ttl = match request.reservation_ttl {
            None => self.reservation_ttl,
            Some(ttl) => {
                let ttl = Duration::try_from(ttl).unwrap_or_default();
                let (min, max) = RESERVATION_TTL_RANGE;
                violations.require(
                    (min..=max).contains(&ttl),
                    "reservation_ttl",
                    "must be from 1s to 7 days",
                );
                ttl
            }
        };
        violations.finish(())?;
        let codes = ledger_codes(&request.codes, true)?;
        let checkout = checkout_from_pb(request.checkout)?;
        if checkout.customer.id.is_empty() {
            return Err(InvalidInput::field(
                "checkout.customer.id",
                "is required: anonymous customers cannot redeem",
            )
            .into());
        }

        let existing = self
            .store
            .order_redemptions(&caller.tenant, &order_id, &codes)
            .await?;
        if !existing.is_empty() {
            return replay(existing, &codes, &fingerprint);
        }

        let mut found = self.load(caller, &codes, &checkout).await?;
        let candidates: Vec<Candidate> = codes
            .iter()
            .map(|code| candidate(code, &mut found))
            .collect();
        let now = Timestamp::now();
        let priced = engine::price(&checkout, candidates, now);
        if !priced.rejected.is_empty() {
            // An identical request may have committed since the check above and used the last
            // slot itself: then this is its retry, not a refusal.
            let existing = self
                .store
                .order_redemptions(&caller.tenant, &order_id, &codes)
                .await?;
            if !existing.is_empty() {
                return replay(existing, &codes, &fingerprint);
            }
            let refusals = priced
                .rejected
                .into_iter()
                .flat_map(|r| {
                    let code = r.code.to_string();
                    r.reasons
                        .into_iter()
                        .map(move |reason| (code.clone(), reason))
                })
                .collect();
            return Err(ApiError::Refused { refusals, locale });
        }
        let order = RedeemOrder {
            order_id: order_id.clone(),
            customer_id: checkout.customer.id.clone(),
            customer_email: checkout.customer.email.clone(),
            currency: checkout.cart.currency,
            completed,
            expires_at: Some(Timestamp(
                now.micros().saturating_add(ttl.as_micros() as i64),
            )),
            request_id,
            fingerprint: fingerprint.clone(),
            drafts: priced
                .applied
                .iter()
                .map(|applied| {
                    let limits = &applied.coupon.rules.limits;
                    RedemptionDraft {
                        coupon_id: applied.coupon.id.clone(),
                        code: applied.coupon.code.clone(),
                        campaign_id: applied.coupon.campaign_id.clone(),
                        discount: applied.benefit.total(),
                        counted: limits.max_redemptions.is_some() || limits.budget.is_some(),
                        per_customer_limit: limits.max_redemptions_per_customer,
                    }
                })
                .collect(),
        };
        match self.store.record_redemptions(&caller.tenant, &order).await {
            Ok(redemptions) => Ok(response(in_code_order(redemptions, &codes))),
            // An identical request raced this one and won: answer as it did.
            Err(StoreError::AlreadyExists) => {
                let existing = self
                    .store
                    .order_redemptions(&caller.tenant, &order_id, &codes)
                    .await?;
                replay(existing, &codes, &fingerprint)
            }
            Err(StoreError::Refused { code, reason }) => {
                let existing = self
                    .store
                    .order_redemptions(&caller.tenant, &order_id, &codes)
                    .await?;
                if !existing.is_empty() {
                    return replay(existing, &codes, &fingerprint);
                }
                Err(ApiError::Refused {
                    refusals: vec![(code.to_string(), reason)],
                    locale,
                })
            }
            Err(other) => Err(other.into()),
        }
    }

    pub(super) async fn confirm_order(
        &self,
        caller: &Caller,
        request: pb::ConfirmRequest,
    ) -> Result<pb::ConfirmResponse, ApiError> {
        let mut violations = Violations::new();
        let order_id = order_id(&request.order_id, &mut violations);
        violations.finish(())?;
        let codes = ledger_codes(&request.codes, false)?;
        let existing = self
            .store
            .order_redemptions(&caller.tenant, &order_id, &codes)
            .await?;
        if existing.is_empty() {
            return Err(ApiError::not_found("order", order_id));
        }
        if let Some(ended) = existing.iter().find(|r| !r.redemption.status.is_active()) {
            let (reason, state) = match ended.redemption.status {
                RedemptionStatus::Expired => ("REDEMPTION_EXPIRED", "expired"),
                _ => ("REDEMPTION_REVERTED", "reverted"),
            };
            return Err(ApiError::StateRefused {
                reason,
                message: format!(
                    "redemption of {} for order {order_id:?} is {state}",
                    ended.redemption.code
                ),
            });
        }
        let redemptions = self
            .store
            .confirm_order(&caller.tenant, &order_id, &codes)
            .await
            .about("order", &order_id, "")?;
        Ok(pb::ConfirmResponse {
            redemptions: redemptions.iter().map(redemption_to_pb).collect(),
        })
    }

    pub(super) async fn revert_order(
        &self,
        caller: &Caller,
        request: pb::RevertRequest,
        request_id: String,
    ) -> Result<pb::RevertResponse, ApiError> {
        let mut violations = Violations::new();
        let order_id = order_id(&request.order_id, &mut violations);
        violations.finish(())?;
        let codes = ledger_codes(&request.codes, false)?;
        let redemptions = self
            .store
            .revert_order(&caller.tenant, &order_id, &codes)
            .await?;
        if redemptions.is_empty() {
            return Err(ApiError::not_found("order", order_id));
        }
        tracing::info!(order_id, reason = %request.reason.trim(), reverted = redemptions.len(), "order reverted");
        Ok(pb::RevertResponse {
            redemptions: redemptions.iter().map(redemption_to_pb).collect(),
            request_id,
        })
    }

    pub(super) async fn find_redemption(
        &self,
        caller: &Caller,
        request: pb::GetRedemptionRequest,
    ) -> Result<pb::Redemption, ApiError> {
        let id = request.id.trim();
        if id.is_empty() {
            return Err(InvalidInput::field("id", "is required").into());
        }
        let redemption =
            self.store
                .get_redemption(&caller.tenant, id)
                .await
                .about("redemption", id, "")?;
        Ok(redemption_to_pb(&redemption))
    }

    pub(super) async fn list_ledger(
        &self,
        caller: &Caller,
        request: pb::ListRedemptionsRequest,
    ) -> Result<pb::ListRedemptionsResponse, ApiError> {
        let limit = page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let present = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let filter = RedemptionFilter {
            order_id: present(&request.order_id),
            coupon_id: present(&request.coupon_id),
            customer_id: present(&request.customer_id),
        };
        let tokens = PageTokens::new(&caller.tenant, &format!("redemptions {filter:?}"));
        let after = tokens.decode(&request.page_token)?;
        let page = self
            .store
            .list_redemptions(&caller.tenant, &filter, after.as_deref(), limit)
            .await?;
        Ok(pb::ListRedemptionsResponse {
            redemptions: page.items.iter().map(redemption_to_pb).collect(),
            next_page_token: tokens.encode(page.next_after),
        })
    }
}

/// The answer to a retry: the original redemptions when the request is the same, otherwise
/// ALREADY_EXISTS `DUPLICATE_ORDER`.
fn replay(
    existing: Vec<Recorded>,
    codes: &[Code],
    fingerprint: &str,
) -> Result<pb::RedeemResponse, ApiError> {
    let same =
        existing.len() == codes.len() && existing.iter().all(|r| r.fingerprint == fingerprint);
    if !same {
        return Err(ApiError::AlreadyExists {
            reason: "DUPLICATE_ORDER",
            message: "this order already redeemed these codes with a different request".into(),
        });
    }
    Ok(response(in_code_order(
        existing.into_iter().map(|r| r.redemption).collect(),
        codes,
    )))
}

fn in_code_order(mut redemptions: Vec<Redemption>, codes: &[Code]) -> Vec<Redemption> {
    redemptions.sort_by_key(|r| codes.iter().position(|c| c == &r.code));
    redemptions
}

fn response(redemptions: Vec<Redemption>) -> pb::RedeemResponse {
    pb::RedeemResponse {
        request_id: redemptions
            .first()
            .map(|r| r.request_id.clone())
            .unwrap_or_default(),
        redemptions: redemptions.iter().map(redemption_to_pb).collect(),
    }
}

/// A redemption as its proto message.
pub fn redemption_to_pb(r: &Redemption) -> pb::Redemption {
    let status = match r.status {
        RedemptionStatus::Pending => pb::RedemptionStatus::Pending,
        RedemptionStatus::Completed => pb::RedemptionStatus::Completed,
        RedemptionStatus::Reverted => pb::RedemptionStatus::Reverted,
        RedemptionStatus::Expired => pb::RedemptionStatus::Expired,
    };
    pb::Redemption {
        id: r.id.clone(),
        coupon_id: r.coupon_id.clone(),
        code: r.code.to_string(),
        campaign_id: r.campaign_id.clone().unwrap_or_default(),
        order_id: r.order_id.clone(),
        customer_id: r.customer_id.clone(),
        discount: r.discount,
        currency: r.currency.code().to_owned(),
        status: status as i32,
        request_id: r.request_id.clone(),
        create_time: Some(timestamp_to_pb(r.created_at)),
        update_time: Some(timestamp_to_pb(r.updated_at)),
        expire_time: r.expires_at.map(timestamp_to_pb),
    }
}
