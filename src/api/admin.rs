//! AdminService: coupons, voucher products, PIN stock and credits. Every call needs `admin`.

use tonic::{Request, Response, Status};

use super::{
    convert::{
        self,
        voucher::{credit_entry_to_pb, product_to_pb},
    },
    paging::{page_size, PageTokens},
    ApiError, Authenticator, Caller, StoreResultExt,
};
use crate::{
    domain::{
        campaign::{Campaign, CodePattern, MAX_CODES_PER_CALL},
        coupon::NewCoupon,
        pin::PinKey,
        product::SealedPin,
        Code, InvalidInput, Scope, Violations,
    },
    pb::{self, admin_service_server::AdminService},
    store::{coupons::CouponFilter, Store},
};

const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 500;
const MAX_PINS_PER_IMPORT: usize = 10_000;

/// The AdminService handlers.
#[derive(Clone, Debug)]
pub struct AdminApi {
    auth: Authenticator,
    store: Store,
    pin_key: PinKey,
}

impl AdminApi {
    pub fn new(auth: Authenticator, store: Store, pin_key: PinKey) -> Self {
        Self {
            auth,
            store,
            pin_key,
        }
    }

    async fn admin<T>(&self, request: &Request<T>) -> Result<Caller, ApiError> {
        self.auth
            .authenticate(request.metadata(), Scope::Admin)
            .await
    }

    async fn find_coupon(
        &self,
        caller: &Caller,
        request: pb::GetCouponRequest,
    ) -> Result<pb::Coupon, ApiError> {
        let coupon = if !request.id.trim().is_empty() {
            let id = request.id.trim();
            self.store
                .get_coupon(&caller.tenant, id)
                .await
                .about("coupon", id, "")?
        } else if !request.code.trim().is_empty() {
            let code = Code::parse(&request.code)
                .map_err(|e| InvalidInput::field("code", e.to_string()))?;
            self.store
                .get_coupon_by_code(&caller.tenant, &code)
                .await
                .about("coupon", code.as_str(), "")?
        } else {
            return Err(InvalidInput::field("id", "an id or a code is required").into());
        };
        Ok(convert::coupon::coupon_to_pb(&coupon))
    }

    async fn update_coupon_rules(
        &self,
        caller: &Caller,
        request: pb::UpdateCouponRequest,
    ) -> Result<pb::Coupon, ApiError> {
        let update = request
            .coupon
            .ok_or_else(|| InvalidInput::field("coupon", "is required"))?;
        let mut violations = Violations::new();
        let paths = convert::mask_paths(
            request.update_mask.as_ref(),
            convert::coupon::UPDATABLE,
            &mut violations,
        );
        let id = update.id.trim();
        if id.is_empty() {
            violations.add("coupon.id", "is required");
        }
        violations.finish(())?;
        let existing = self
            .store
            .get_coupon(&caller.tenant, id)
            .await
            .about("coupon", id, "")?;
        let mut violations = Violations::new();
        let mut rules = existing.rules;
        let mut active = existing.active;
        convert::coupon::apply_update(&mut rules, &mut active, &update, &paths, &mut violations);
        rules.check("coupon", &mut violations);
        violations.finish(())?;
        let saved = self
            .store
            .save_coupon_rules(&caller.tenant, id, &rules, active)
            .await
            .about("coupon", id, "")?;
        Ok(convert::coupon::coupon_to_pb(&saved))
    }

    async fn update_product_spec(
        &self,
        caller: &Caller,
        request: pb::UpdateProductRequest,
    ) -> Result<pb::Product, ApiError> {
        let update = request
            .product
            .ok_or_else(|| InvalidInput::field("product", "is required"))?;
        let mut violations = Violations::new();
        let paths = convert::mask_paths(
            request.update_mask.as_ref(),
            convert::voucher::UPDATABLE,
            &mut violations,
        );
        let idx = update.idx.trim();
        if idx.is_empty() {
            violations.add("product.idx", "is required");
        }
        violations.finish(())?;
        let existing = self
            .store
            .get_product(&caller.tenant, idx)
            .await
            .about("product", idx, "")?;
        let mut violations = Violations::new();
        let mut spec = existing.spec;
        convert::voucher::apply_update(&mut spec, &update, &paths, &mut violations);
        spec.check("product", &mut violations);
        violations.finish(())?;
        let saved = self
            .store
            .save_product(&caller.tenant, idx, &spec)
            .await
            .about("product", idx, "")?;
        Ok(product_to_pb(&saved, true))
    }

    async fn import(
        &self,
        caller: &Caller,
        request: pb::ImportPinsRequest,
    ) -> Result<pb::ImportPinsResponse, ApiError> {
        let mut violations = Violations::new();
        let idx = request.product_idx.trim();
        violations.require(!idx.is_empty(), "product_idx", "is required");
        violations.require(
            (1..=MAX_PINS_PER_IMPORT).contains(&request.pins.len()),
            "pins",
            "send 1 to 10000 PINs per call",
        );
        let pins = convert::voucher::pins_from_pb(&request.pins, &mut violations);
        let pins = violations.finish(pins)?;
        let mut sealed = Vec::with_capacity(pins.len());
        for pin in pins {
            let ciphertext = self
                .pin_key
                .seal(&pin.pin)
                .map_err(|_| InvalidInput::field("pins", "a PIN could not be sealed"))?;
            sealed.push(SealedPin {
                ciphertext,
                digest: self.pin_key.digest(&pin.pin),
                serial: pin.serial,
                expires_at: pin.expires_at,
            });
        }
        let outcome = self
            .store
            .import_pins(&caller.tenant, idx, sealed)
            .await
            .about("product", idx, "")?;
        Ok(pb::ImportPinsResponse {
            imported: outcome.imported,
            duplicates: outcome.duplicates,
            available_count: outcome.available,
        })
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_coupon(
        &self,
        request: Request<pb::CreateCouponRequest>,
    ) -> Result<Response<pb::Coupon>, Status> {
        let caller = self.admin(&request).await?;
        let coupon = request
            .into_inner()
            .coupon
            .ok_or_else(|| ApiError::from(InvalidInput::field("coupon", "is required")))?;
        let mut violations = Violations::new();
        let code = violations.take("coupon.code", Code::parse(&coupon.code));
        let rules = convert::coupon::rules_from_pb(&coupon, &mut violations);
        let new = NewCoupon::new(code, rules, coupon.active.unwrap_or(true), violations)
            .map_err(ApiError::from)?;
        let created = self.store.insert_coupon(&caller.tenant, &new).await.about(
            "coupon",
            new.code().as_str(),
            "COUPON_CODE_EXISTS",
        )?;
        Ok(Response::new(convert::coupon::coupon_to_pb(&created)))
    }

    async fn get_coupon(
        &self,
        request: Request<pb::GetCouponRequest>,
    ) -> Result<Response<pb::Coupon>, Status> {
        let caller = self.admin(&request).await?;
        Ok(Response::new(
            self.find_coupon(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_coupons(
        &self,
        request: Request<pb::ListCouponsRequest>,
    ) -> Result<Response<pb::ListCouponsResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        let limit = page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let filter = CouponFilter {
            campaign_id: Some(request.campaign_id.trim().to_owned()).filter(|c| !c.is_empty()),
            active_only: request.active_only,
        };
        let tokens = PageTokens::new(&caller.tenant, &format!("coupons {filter:?}"));
        let after = tokens.decode(&request.page_token)?;
        let page = self
            .store
            .list_coupons(&caller.tenant, &filter, after.as_deref(), limit)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ListCouponsResponse {
            coupons: page
                .items
                .iter()
                .map(convert::coupon::coupon_to_pb)
                .collect(),
            next_page_token: tokens.encode(page.next_after),
        }))
    }

    async fn update_coupon(
        &self,
        request: Request<pb::UpdateCouponRequest>,
    ) -> Result<Response<pb::Coupon>, Status> {
        let caller = self.admin(&request).await?;
        Ok(Response::new(
            self.update_coupon_rules(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn deactivate_coupon(
        &self,
        request: Request<pb::DeactivateCouponRequest>,
    ) -> Result<Response<pb::Coupon>, Status> {
        let caller = self.admin(&request).await?;
        let id = request.into_inner().id.trim().to_owned();
        if id.is_empty() {
            return Err(ApiError::from(InvalidInput::field("id", "is required")).into());
        }
        let coupon = self
            .store
            .deactivate_coupon(&caller.tenant, &id)
            .await
            .about("coupon", &id, "")?;
        Ok(Response::new(convert::coupon::coupon_to_pb(&coupon)))
    }

    async fn create_campaign(
        &self,
        request: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let caller = self.admin(&request).await?;
        let campaign = request
            .into_inner()
            .campaign
            .ok_or_else(|| ApiError::from(InvalidInput::field("campaign", "is required")))?;
        let mut violations = Violations::new();
        let name = campaign.name.trim();
        violations.require(!name.is_empty(), "campaign.name", "is required");
        let template = campaign.template.unwrap_or_default();
        let mut template_violations = Violations::new();
        let rules = convert::coupon::rules_from_pb(&template, &mut template_violations);
        rules.check("coupon", &mut template_violations);
        violations.absorb(template_violations, "coupon", "campaign.template");
        let pattern = campaign.code_pattern.unwrap_or_default();
        let pattern = CodePattern::parse(
            &pattern.prefix,
            pattern.length,
            &pattern.charset,
            &mut violations,
        );
        violations.finish(()).map_err(ApiError::from)?;
        let created = self
            .store
            .insert_campaign(&caller.tenant, name, &rules, &pattern)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(campaign_to_pb(&created)))
    }

    async fn generate_codes(
        &self,
        request: Request<pb::GenerateCodesRequest>,
    ) -> Result<Response<pb::GenerateCodesResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        let id = request.campaign_id.trim();
        let mut violations = Violations::new();
        violations.require(!id.is_empty(), "campaign_id", "is required");
        let count = usize::try_from(request.count).unwrap_or(0);
        violations.require(
            (1..=MAX_CODES_PER_CALL).contains(&count),
            "count",
            "must be from 1 to 100000",
        );
        violations.finish(()).map_err(ApiError::from)?;
        let campaign = self
            .store
            .get_campaign(&caller.tenant, id)
            .await
            .about("campaign", id, "")?;
        // Keep the pattern's space far larger than its codes, so drawing stays fast and codes
        // stay hard to guess.
        let wanted = (campaign.code_count as u128 + count as u128) * 1_000;
        if campaign.pattern.capacity() < wanted {
            return Err(ApiError::from(InvalidInput::field(
                "count",
                "the campaign's code pattern is too short for that many unique codes",
            ))
            .into());
        }
        let codes = self
            .store
            .generate_codes(&caller.tenant, &campaign, count)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::GenerateCodesResponse {
            codes: codes.into_iter().map(|c| c.to_string()).collect(),
        }))
    }

    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let caller = self.admin(&request).await?;
        let product = request
            .into_inner()
            .product
            .ok_or_else(|| ApiError::from(InvalidInput::field("product", "is required")))?;
        let mut violations = Violations::new();
        let spec = convert::voucher::spec_from_pb(&product, &mut violations);
        spec.check("product", &mut violations);
        let spec = violations.finish(spec).map_err(ApiError::from)?;
        let created = self
            .store
            .insert_product(&caller.tenant, &spec)
            .await
            .about("product", &spec.value, "PRODUCT_VALUE_EXISTS")?;
        Ok(Response::new(product_to_pb(&created, true)))
    }

    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let caller = self.admin(&request).await?;
        Ok(Response::new(
            self.update_product_spec(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn import_pins(
        &self,
        request: Request<pb::ImportPinsRequest>,
    ) -> Result<Response<pb::ImportPinsResponse>, Status> {
        let caller = self.admin(&request).await?;
        Ok(Response::new(
            self.import(&caller, request.into_inner()).await?,
        ))
    }

    async fn top_up_credits(
        &self,
        request: Request<pb::TopUpCreditsRequest>,
    ) -> Result<Response<pb::TopUpCreditsResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        if request.amount <= 0 {
            return Err(
                ApiError::from(InvalidInput::field("amount", "must be greater than zero")).into(),
            );
        }
        // Without a reference every call is a new top-up; with one, retries add nothing.
        let reference = match request.reference.trim() {
            "" => crate::store::new_id("topup"),
            given => given.to_owned(),
        };
        let top_up = self
            .store
            .top_up_credits(
                &caller.tenant,
                request.amount,
                &reference,
                request.note.trim(),
            )
            .await
            .about("top-up", &reference, "DUPLICATE_REFERENCE")?;
        Ok(Response::new(pb::TopUpCreditsResponse {
            entry: Some(credit_entry_to_pb(&top_up.entry)),
            balance: top_up.balance,
        }))
    }

    async fn get_balance(
        &self,
        request: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::GetBalanceResponse>, Status> {
        let caller = self.admin(&request).await?;
        let balance = self
            .store
            .balance(&caller.tenant)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::GetBalanceResponse {
            balance: balance.available,
            consumed: balance.consumed,
        }))
    }

    async fn list_credit_entries(
        &self,
        request: Request<pb::ListCreditEntriesRequest>,
    ) -> Result<Response<pb::ListCreditEntriesResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        let limit = page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let tokens = PageTokens::new(&caller.tenant, "credit entries");
        let before = tokens.decode(&request.page_token)?;
        let page = self
            .store
            .list_credit_entries(&caller.tenant, before.as_deref(), limit)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ListCreditEntriesResponse {
            entries: page.items.iter().map(credit_entry_to_pb).collect(),
            next_page_token: tokens.encode(page.next_after),
        }))
    }
}

fn campaign_to_pb(campaign: &Campaign) -> pb::Campaign {
    pb::Campaign {
        id: campaign.id.clone(),
        name: campaign.name.clone(),
        template: Some(convert::coupon::rules_to_pb(&campaign.rules)),
        code_pattern: Some(pb::CodePattern {
            prefix: campaign.pattern.prefix.clone(),
            length: campaign.pattern.length as i32,
            charset: campaign.pattern.charset.iter().collect(),
        }),
        code_count: campaign.code_count,
        create_time: Some(convert::timestamp_to_pb(campaign.created_at)),
    }
}
