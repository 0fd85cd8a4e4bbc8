//! CouponService handlers: authenticate, parse the request into a command, call the use case,
//! translate the answer back. The decisions are in `app`.

use std::sync::Arc;

use tonic::{metadata::MetadataMap, Request, Response, Status};

use super::{
    convert::{
        checkout::{
            checkout_from_pb, next_tier_to_pb, priced_cart_to_pb, pricing_command, validation_to_pb,
        },
        ledger::{order_codes, redemption_to_pb},
    },
    paging::{page_size, PageTokens},
    request::{end_user, end_user_header, request_id},
    ApiError, Authenticator, Caller, InLocale,
};
use crate::{
    app::{
        idempotency::Fingerprint,
        pricing::{self, ApplicableQuery, PricingCommand},
        quota::CodeWatch,
        redemptions::{Ledger, RedeemCommand},
        AppError,
    },
    domain::{
        cart::Checkout,
        engine::{Evaluation, Reason},
        messages::{unlock_hint, Locale},
        text::parse_id,
        Code, InvalidInput, Problem, Scope, Timestamp,
    },
    events::EventFeed,
    metrics::Metrics,
    pb::{self, coupon_service_server::CouponService},
    store::{redemptions::RedemptionFilter, Store},
};

const DEFAULT_APPLICABLE_PAGE: u64 = 20;
const MAX_APPLICABLE_PAGE: u64 = 100;
const DEFAULT_LEDGER_PAGE: u64 = 50;
const MAX_LEDGER_PAGE: u64 = 500;
const DEFAULT_NEAR_MISSES: usize = 3;
const MAX_NEAR_MISSES: usize = 20;

/// The CouponService handlers.
#[derive(Clone, Debug)]
pub struct CouponApi {
    auth: Authenticator,
    feed: Arc<EventFeed>,
    metrics: Arc<Metrics>,
    store: Store,
    ledger: Ledger,
}

impl CouponApi {
    /// `reservation_ttl` is how long a pending redemption holds usage when the request does not
    /// say.
    pub fn new(
        auth: Authenticator,
        store: Store,
        feed: Arc<EventFeed>,
        metrics: Arc<Metrics>,
        reservation_ttl: std::time::Duration,
    ) -> Self {
        Self {
            auth,
            feed,
            metrics,
            ledger: Ledger::new(store.clone(), reservation_ttl),
            store,
        }
    }
}

impl CouponApi {
    /// Watches one call of the checkout's end customer for unknown codes; refused while that
    /// customer is throttled.
    async fn watch(
        &self,
        caller: &Caller,
        header: Option<String>,
        checkout: &Checkout,
    ) -> Result<CodeWatch, AppError> {
        self.auth
            .quotas()
            .watch(&caller.tenant, end_user(header, checkout))
            .await
    }

    /// What Validate and Apply start with: the caller (read scope), the parsed command, and
    /// the watch that counts the end customer's unknown codes.
    async fn pricing_call(
        &self,
        metadata: &MetadataMap,
        codes: &[String],
        codes_required: bool,
        checkout: Option<pb::Checkout>,
        explain_automatic: bool,
    ) -> Result<(Caller, PricingCommand, CodeWatch), ApiError> {
        let caller = self.auth.authenticate(metadata, Scope::Read).await?;
        let locale = caller.locale;
        let header = end_user_header(metadata).in_locale(locale)?;
        let command = pricing_command(codes, codes_required, checkout, explain_automatic)
            .in_locale(locale)?;
        let watch = self
            .watch(&caller, header, &command.checkout)
            .await
            .in_locale(locale)?;
        Ok((caller, command, watch))
    }
}

fn unlock_hint_units(code: &Code, units: i64, locale: Locale) -> String {
    match locale {
        Locale::En => format!("Add {units} more item(s) to unlock {code}"),
        Locale::Id => format!("Tambah {units} produk lagi untuk memakai {code}"),
    }
}

fn near_miss_limit(requested: i32) -> Result<usize, InvalidInput> {
    match requested {
        n if n < 0 => Err(InvalidInput::field("near_miss_limit", Problem::Negative)),
        0 => Ok(DEFAULT_NEAR_MISSES),
        n => Ok(usize::try_from(n)
            .unwrap_or(MAX_NEAR_MISSES)
            .min(MAX_NEAR_MISSES)),
    }
}

#[tonic::async_trait]
impl CouponService for CouponApi {
    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let (caller, command, watch) = self
            .pricing_call(
                &metadata,
                &request.codes,
                true,
                request.checkout,
                request.explain_automatic,
            )
            .await?;
        let locale = caller.locale;
        let currency = command.checkout.cart.currency;
        let checked = pricing::validate(
            &self.store,
            &caller.tenant,
            command,
            &watch,
            Timestamp::now(),
        )
        .await
        .map_err(|e| ApiError::from_app(e, locale))?;
        let results: Vec<pb::CodeValidation> = checked
            .iter()
            .map(|c| pb::CodeValidation {
                next_tier: c
                    .next_tier
                    .as_ref()
                    .map(|next| next_tier_to_pb(next, currency, locale)),
                ..validation_to_pb(&c.text, c.coupon.as_ref(), c.discount, &c.reasons, locale)
            })
            .collect();
        Ok(Response::new(pb::ValidateResponse {
            valid: results.iter().all(|r| r.valid || r.automatic),
            results,
        }))
    }

    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let (caller, command, watch) = self
            .pricing_call(
                &metadata,
                &request.codes,
                false,
                request.checkout,
                request.explain_automatic,
            )
            .await?;
        let locale = caller.locale;
        let currency = command.checkout.cart.currency;
        let applied = pricing::apply(
            &self.store,
            &caller.tenant,
            command,
            &watch,
            Timestamp::now(),
        )
        .await
        .map_err(|e| ApiError::from_app(e, locale))?;
        let mut cart = priced_cart_to_pb(&applied.cart, currency, locale);
        cart.rejected.extend(
            applied
                .untypeable
                .iter()
                .map(|text| validation_to_pb(text, None, 0, &[Reason::CouponNotFound], locale)),
        );
        Ok(Response::new(pb::ApplyResponse { cart: Some(cart) }))
    }

    async fn list_applicable(
        &self,
        request: Request<pb::ListApplicableRequest>,
    ) -> Result<Response<pb::ListApplicableResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        let locale = caller.locale;
        let request = request.into_inner();
        let limit = page_size(
            request.page_size,
            DEFAULT_APPLICABLE_PAGE,
            MAX_APPLICABLE_PAGE,
        )
        .in_locale(locale)?;
        let near_miss_limit = near_miss_limit(request.near_miss_limit).in_locale(locale)?;
        let checkout = checkout_from_pb(request.checkout).in_locale(locale)?;
        // The page token is bound to this exact checkout, since the ranking depends on it.
        let fingerprint = Fingerprint::of("applicable", &checkout).in_locale(locale)?;
        let tokens = PageTokens::new(
            &caller.tenant,
            &format!("applicable {}", fingerprint.as_str()),
        );
        let offset = match tokens.decode(&request.page_token).in_locale(locale)? {
            None => 0,
            Some(position) => position.parse().map_err(|_| {
                ApiError::invalid(
                    InvalidInput::field("page_token", Problem::UnknownPageToken),
                    locale,
                )
            })?,
        };
        let currency = checkout.cart.currency;
        let query = ApplicableQuery {
            checkout,
            offset,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            near_miss_limit,
        };
        let found = pricing::list_applicable(&self.store, &caller.tenant, query, Timestamp::now())
            .await
            .map_err(|e| ApiError::from_app(e, locale))?;
        let next_tier = |evaluation: &Evaluation| {
            evaluation
                .benefit
                .next_tier
                .as_ref()
                .map(|next| next_tier_to_pb(next, currency, locale))
        };
        Ok(Response::new(pb::ListApplicableResponse {
            coupons: found
                .page
                .iter()
                .map(|ranked| pb::ApplicableCoupon {
                    validation: Some(pb::CodeValidation {
                        next_tier: next_tier(&ranked.evaluation),
                        ..validation_to_pb(
                            ranked.coupon.code.as_str(),
                            Some(&ranked.coupon),
                            ranked.discount,
                            &ranked.evaluation.reasons,
                            locale,
                        )
                    }),
                })
                .collect(),
            next_page_token: tokens.encode(found.next_offset.map(|end| end.to_string())),
            near_misses: found
                .near_misses
                .iter()
                .map(|near| pb::NearMiss {
                    validation: Some(pb::CodeValidation {
                        next_tier: next_tier(&near.evaluation),
                        ..validation_to_pb(
                            near.coupon.code.as_str(),
                            Some(&near.coupon),
                            near.evaluation.benefit.total(),
                            &near.evaluation.reasons,
                            locale,
                        )
                    }),
                    missing_amount: near.missing_amount,
                    missing_quantity: near.missing_quantity,
                    hint: if near.missing_amount > 0 {
                        unlock_hint(&near.coupon.code, near.missing_amount, currency, locale)
                    } else {
                        unlock_hint_units(&near.coupon.code, near.missing_quantity, locale)
                    },
                })
                .collect(),
        }))
    }

    async fn redeem(
        &self,
        request: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Redeem)
            .await?;
        let locale = caller.locale;
        let request_id = request_id(request.metadata());
        let header = end_user_header(request.metadata()).in_locale(locale)?;
        let result = match RedeemCommand::try_from(request.into_inner()) {
            Ok(command) => match self.watch(&caller, header, &command.checkout).await {
                Ok(watch) => {
                    self.ledger
                        .redeem(
                            &caller.tenant,
                            command,
                            &request_id,
                            &watch,
                            Timestamp::now(),
                        )
                        .await
                }
                Err(throttled) => Err(throttled),
            },
            Err(invalid) => Err(AppError::from(invalid)),
        };
        let outcome = match &result {
            Ok(redeemed) if redeemed.replayed => "replayed",
            Ok(_) => "redeemed",
            Err(AppError::Refused { .. }) => "refused",
            Err(AppError::Duplicate { .. }) => "duplicate",
            Err(_) => "error",
        };
        self.metrics.redemptions.with_label_values(&[outcome]).inc();
        let redeemed = result.map_err(|e| ApiError::from_app(e, locale))?;
        Ok(Response::new(pb::RedeemResponse {
            redemptions: redeemed.redemptions.iter().map(redemption_to_pb).collect(),
            request_id,
        }))
    }

    async fn confirm(
        &self,
        request: Request<pb::ConfirmRequest>,
    ) -> Result<Response<pb::ConfirmResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Redeem)
            .await?;
        let locale = caller.locale;
        let request = request.into_inner();
        let command = order_codes(&request.order_id, &request.codes).in_locale(locale)?;
        let redemptions = self
            .ledger
            .confirm(&caller.tenant, command, Timestamp::now())
            .await
            .map_err(|e| ApiError::from_app(e, locale))?;
        Ok(Response::new(pb::ConfirmResponse {
            redemptions: redemptions.iter().map(redemption_to_pb).collect(),
        }))
    }

    async fn revert(
        &self,
        request: Request<pb::RevertRequest>,
    ) -> Result<Response<pb::RevertResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Redeem)
            .await?;
        let locale = caller.locale;
        let request_id = request_id(request.metadata());
        let request = request.into_inner();
        let command = order_codes(&request.order_id, &request.codes).in_locale(locale)?;
        let order_id = command.order_id.clone();
        let redemptions = self
            .ledger
            .revert(&caller.tenant, command, Timestamp::now())
            .await
            .map_err(|e| ApiError::from_app(e, locale))?;
        let reason: String = request.reason.trim().chars().take(200).collect();
        tracing::info!(
            order_id,
            reason,
            reverted = redemptions.len(),
            "order reverted"
        );
        Ok(Response::new(pb::RevertResponse {
            redemptions: redemptions.iter().map(redemption_to_pb).collect(),
            request_id,
        }))
    }

    async fn get_redemption(
        &self,
        request: Request<pb::GetRedemptionRequest>,
    ) -> Result<Response<pb::Redemption>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        let locale = caller.locale;
        let id = parse_id("id", &request.into_inner().id).in_locale(locale)?;
        if id.is_empty() {
            return Err(
                ApiError::invalid(InvalidInput::field("id", Problem::Required), locale).into(),
            );
        }
        let redemption = self
            .ledger
            .get(&caller.tenant, &id)
            .await
            .in_locale(locale)?;
        Ok(Response::new(redemption_to_pb(&redemption)))
    }

    async fn list_redemptions(
        &self,
        request: Request<pb::ListRedemptionsRequest>,
    ) -> Result<Response<pb::ListRedemptionsResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        let locale = caller.locale;
        let request = request.into_inner();
        let limit =
            page_size(request.page_size, DEFAULT_LEDGER_PAGE, MAX_LEDGER_PAGE).in_locale(locale)?;
        let present = |field: &str, raw: &str| {
            parse_id(field, raw).map(|id| Some(id).filter(|id| !id.is_empty()))
        };
        let filter = RedemptionFilter {
            order_id: present("order_id", &request.order_id).in_locale(locale)?,
            coupon_id: present("coupon_id", &request.coupon_id).in_locale(locale)?,
            customer_id: present("customer_id", &request.customer_id).in_locale(locale)?,
        };
        let tokens = PageTokens::new(&caller.tenant, &format!("redemptions {filter:?}"));
        let after = tokens.decode(&request.page_token).in_locale(locale)?;
        let page = self
            .ledger
            .list(&caller.tenant, &filter, after.as_deref(), limit)
            .await
            .in_locale(locale)?;
        Ok(Response::new(pb::ListRedemptionsResponse {
            redemptions: page.items.iter().map(redemption_to_pb).collect(),
            next_page_token: tokens.encode(page.next_after),
        }))
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
