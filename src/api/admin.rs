//! AdminService: coupons, voucher products, PIN stock, credits, API keys and the audit log.
//! Every call needs `admin`; every change is audited in its own transaction.

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
    app::{
        credits::{self, TopUpCommand},
        keys, ErrorReason,
    },
    domain::{
        audit::{AuditEntry, RecordedAudit},
        campaign::{Campaign, CodePattern, MAX_CODES_PER_CALL},
        coupon::NewCoupon,
        pin::PinKey,
        policy::{PolicyField, TenantPolicy},
        product::{ProductSpec, SealedPin},
        tenant::KeySummary,
        text::refuse_nul,
        Code, InvalidInput, Scope, Scopes, Timestamp, Violations,
    },
    pb::{self, admin_service_server::AdminService},
    store::{audit::AuditFilter, coupons::CouponFilter, Store},
};

const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 500;
const MAX_PINS_PER_IMPORT: usize = 10_000;
const MAX_REFERENCE_LEN: usize = 128;

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
            let id = &crate::domain::text::parse_id("id", &request.id)?;
            self.store
                .get_coupon(&caller.tenant, id)
                .await
                .about("coupon", id)?
        } else if !request.code.trim().is_empty() {
            let code = Code::parse(&request.code)
                .map_err(|e| InvalidInput::field("code", e.to_string()))?;
            self.store
                .get_coupon_by_code(&caller.tenant, &code)
                .await
                .about("coupon", code.as_str())?
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
            .about("coupon", id)?;
        let mut violations = Violations::new();
        let mut rules = existing.rules;
        let mut active = existing.active;
        convert::coupon::apply_update(&mut rules, &mut active, &update, &paths, &mut violations);
        rules.check("coupon", &mut violations);
        if existing.automatic {
            crate::domain::automatic::check(&rules, "coupon", &mut violations);
        }
        violations.finish(())?;
        let audit = audit_of(caller, "UpdateCoupon", "coupon")
            .with("update_mask", paths)
            .with("active", active)
            .with("rules", serde_json::to_value(&rules).unwrap_or_default());
        let saved = self
            .store
            .save_coupon_rules(&caller.tenant, id, &rules, active, &audit)
            .await
            .about("coupon", id)?;
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
            .about("product", idx)?;
        let mut violations = Violations::new();
        let mut spec = existing.spec;
        convert::voucher::apply_update(&mut spec, &update, &paths, &mut violations);
        spec.check("product", &mut violations);
        violations.finish(())?;
        let audit = product_audit(caller, "UpdateProduct", &spec).with("update_mask", paths);
        let saved = self
            .store
            .save_product(&caller.tenant, idx, &spec, &audit)
            .await
            .about("product", idx)?;
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
        // Counts only: a PIN never reaches the audit log.
        let audit = audit_of(caller, "ImportPins", "product").with("offered", sealed.len());
        let outcome = self
            .store
            .import_pins(&caller.tenant, idx, sealed, &audit)
            .await
            .about("product", idx)?;
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
        let new = NewCoupon::new(
            code,
            rules,
            coupon.active.unwrap_or(true),
            coupon.automatic,
            violations,
        )
        .map_err(ApiError::from)?;
        let audit = audit_of(&caller, "CreateCoupon", "coupon")
            .with("code", new.code().as_str())
            .with("active", new.active())
            .with("automatic", new.automatic())
            .with(
                "rules",
                serde_json::to_value(new.rules()).unwrap_or_default(),
            );
        let created = self
            .store
            .insert_coupon(&caller.tenant, &new, &audit)
            .await
            .taken("coupon", new.code().as_str(), ErrorReason::CouponCodeExists)?;
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
            .deactivate_coupon(
                &caller.tenant,
                &id,
                &audit_of(&caller, "DeactivateCoupon", "coupon").with("active", false),
            )
            .await
            .about("coupon", &id)?;
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
        refuse_nul("campaign.name", name, &mut violations);
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
        let audit = audit_of(&caller, "CreateCampaign", "campaign")
            .with("name", name)
            .with("template", serde_json::to_value(&rules).unwrap_or_default())
            .with(
                "code_pattern",
                serde_json::to_value(&pattern).unwrap_or_default(),
            );
        let created = self
            .store
            .insert_campaign(&caller.tenant, name, &rules, &pattern, &audit)
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
            .about("campaign", id)?;
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
            .generate_codes(
                &caller.tenant,
                &campaign,
                count,
                // The count only: generated codes are bearer values, kept out of the log.
                &audit_of(&caller, "GenerateCodes", "campaign").with("generated", count),
            )
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
            .insert_product(
                &caller.tenant,
                &spec,
                &product_audit(&caller, "CreateProduct", &spec),
            )
            .await
            .taken("product", &spec.value, ErrorReason::ProductValueExists)?;
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
        let mut violations = Violations::new();
        violations.require(request.amount > 0, "amount", "must be greater than zero");
        violations.require(
            request.reference.trim().len() <= MAX_REFERENCE_LEN,
            "reference",
            "must be at most 128 characters",
        );
        refuse_nul("reference", &request.reference, &mut violations);
        refuse_nul("note", &request.note, &mut violations);
        violations.finish(()).map_err(ApiError::from)?;
        let reference = Some(request.reference.trim().to_owned()).filter(|r| !r.is_empty());
        let command = TopUpCommand {
            amount: request.amount,
            reference,
            note: request.note.trim().to_owned(),
        };
        let top_up = credits::top_up(
            &self.store,
            &caller.tenant,
            command,
            Timestamp::now(),
            &caller.key_id,
        )
        .await
        .map_err(ApiError::from)?;
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

    async fn get_tenant_policy(
        &self,
        request: Request<pb::GetTenantPolicyRequest>,
    ) -> Result<Response<pb::TenantPolicy>, Status> {
        let caller = self.admin(&request).await?;
        Ok(Response::new(
            read_tenant_policy(&self.store, &caller).await?,
        ))
    }

    async fn update_tenant_policy(
        &self,
        request: Request<pb::UpdateTenantPolicyRequest>,
    ) -> Result<Response<pb::TenantPolicy>, Status> {
        let caller = self.admin(&request).await?;
        Ok(Response::new(
            change_tenant_policy(&self.store, &caller, request.into_inner()).await?,
        ))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let scopes = violations.take("scopes", request.scopes.join(",").parse::<Scopes>());
        let expires_at = request.expire_time.as_ref().and_then(|ts| {
            let parsed = convert::timestamp_from_pb(ts);
            violations.require(parsed.is_some(), "expire_time", "is not a valid timestamp");
            parsed
        });
        let scopes = violations.finish(scopes).map_err(ApiError::from)?;
        let issued = keys::create(
            &self.store,
            &caller.tenant,
            &caller.key_id,
            scopes.unwrap_or_default(),
            expires_at,
            Timestamp::now(),
        )
        .await
        .map_err(ApiError::from)?;
        // A key id may have been probed before it existed: drop that memory.
        self.auth.forget_key(&issued.key.key_id);
        Ok(Response::new(pb::CreateApiKeyResponse {
            key: Some(key_to_pb(&issued.summary)),
            token: issued.key.token(),
            secret: issued.key.secret,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        let limit = page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let tokens = PageTokens::new(&caller.tenant, "api keys");
        let after = tokens.decode(&request.page_token)?;
        let page = self
            .store
            .list_keys(&caller.tenant, after.as_deref(), limit)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ListApiKeysResponse {
            keys: page.items.iter().map(key_to_pb).collect(),
            next_page_token: tokens.encode(page.next_after),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::ApiKey>, Status> {
        let caller = self.admin(&request).await?;
        let key_id = required_key_id(&request.get_ref().key_id)?;
        let revoked = keys::revoke(&self.store, &caller.tenant, &caller.key_id, &key_id)
            .await
            .map_err(ApiError::from)?;
        self.auth.forget_key(&key_id);
        Ok(Response::new(key_to_pb(&revoked)))
    }

    async fn rotate_api_key(
        &self,
        request: Request<pb::RotateApiKeyRequest>,
    ) -> Result<Response<pb::RotateApiKeyResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        let key_id = required_key_id(&request.key_id)?;
        let grace = match request.grace_period {
            None => keys::DEFAULT_GRACE,
            Some(duration) => std::time::Duration::try_from(duration).map_err(|_| {
                ApiError::from(InvalidInput::field(
                    "grace_period",
                    "must be from 0 to 30 days",
                ))
            })?,
        };
        let (issued, previous) = keys::rotate(
            &self.store,
            &caller.tenant,
            &caller.key_id,
            &key_id,
            grace,
            Timestamp::now(),
        )
        .await
        .map_err(ApiError::from)?;
        self.auth.forget_key(&key_id);
        Ok(Response::new(pb::RotateApiKeyResponse {
            key: Some(key_to_pb(&issued.summary)),
            token: issued.key.token(),
            secret: issued.key.secret,
            previous_key: Some(key_to_pb(&previous)),
        }))
    }

    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        let limit = page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let filter = AuditFilter {
            resource_type: Some(request.resource_type.trim().to_owned()).filter(|t| !t.is_empty()),
            resource_id: Some(request.resource_id.trim().to_owned()).filter(|t| !t.is_empty()),
        };
        let tokens = PageTokens::new(&caller.tenant, &format!("audit {filter:?}"));
        let before = tokens.decode(&request.page_token)?;
        let page = self
            .store
            .list_audit_entries(&caller.tenant, &filter, before.as_deref(), limit)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries: page.items.iter().map(audit_to_pb).collect(),
            next_page_token: tokens.encode(page.next_after),
        }))
    }

    async fn get_tenant_quota(
        &self,
        request: Request<pb::GetTenantQuotaRequest>,
    ) -> Result<Response<pb::TenantQuota>, Status> {
        let caller = self.admin(&request).await?;
        let quota = self
            .store
            .tenant_quota(&caller.tenant)
            .await
            .map_err(ApiError::from)?;
        let defaults = self.auth.quotas().defaults();
        Ok(Response::new(convert::quota::quota_to_pb(
            &quota, &defaults,
        )))
    }

    async fn update_tenant_quota(
        &self,
        request: Request<pb::UpdateTenantQuotaRequest>,
    ) -> Result<Response<pb::TenantQuota>, Status> {
        let caller = self.admin(&request).await?;
        Ok(Response::new(
            change_tenant_quota(&self.store, &self.auth, &caller, request.into_inner()).await?,
        ))
    }
}

// === keys and audit ===

fn required_key_id(key_id: &str) -> Result<String, ApiError> {
    let key_id = key_id.trim();
    if key_id.is_empty() {
        return Err(InvalidInput::field("key_id", "is required").into());
    }
    Ok(crate::domain::text::parse_id("key_id", key_id)?)
}

fn key_to_pb(key: &KeySummary) -> pb::ApiKey {
    pb::ApiKey {
        key_id: key.key_id.clone(),
        scopes: key.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        create_time: Some(convert::timestamp_to_pb(key.created_at)),
        last_use_time: key.last_used_at.map(convert::timestamp_to_pb),
        expire_time: key.expires_at.map(convert::timestamp_to_pb),
        revoke_time: key.revoked_at.map(convert::timestamp_to_pb),
    }
}

fn audit_to_pb(entry: &RecordedAudit) -> pb::AuditEntry {
    pb::AuditEntry {
        id: entry.id.clone(),
        key_id: entry.actor.clone(),
        rpc: entry.rpc.clone(),
        resource_type: entry.resource_type.clone(),
        resource_id: entry.resource_id.clone(),
        create_time: Some(convert::timestamp_to_pb(entry.at)),
        changes_json: serde_json::Value::Object(entry.changes.clone()).to_string(),
    }
}

// === tenant policy use cases ===

/// GetTenantPolicy: the caller's tenant's policy, empty when never set.
async fn read_tenant_policy(store: &Store, caller: &Caller) -> Result<pb::TenantPolicy, ApiError> {
    let policy = store.tenant_policy(&caller.tenant).await?;
    Ok(convert::policy::policy_to_pb(&policy))
}

/// UpdateTenantPolicy: checks the mask and the new values, then writes only the named fields.
async fn change_tenant_policy(
    store: &Store,
    caller: &Caller,
    request: pb::UpdateTenantPolicyRequest,
) -> Result<pb::TenantPolicy, ApiError> {
    let mut violations = Violations::new();
    let paths = convert::mask_paths(
        request.update_mask.as_ref(),
        &convert::policy::updatable(),
        &mut violations,
    );
    let update = match request.policy.as_ref() {
        Some(policy) => convert::policy::policy_from_pb(policy),
        None => {
            violations.add("policy", "is required");
            TenantPolicy::default()
        }
    };
    update.check("policy", &mut violations);
    violations.finish(())?;
    let fields = convert::policy::fields(&paths);
    let mut audit = audit_of(caller, "UpdateTenantPolicy", "tenant_policy");
    for field in &fields {
        audit = match field {
            PolicyField::RefuseLoyaltyPoints => {
                audit.with("refuse_loyalty_points", update.refuse_loyalty_points)
            }
            PolicyField::RequiresVerifiedPhone => {
                audit.with("requires_verified_phone", update.requires_verified_phone)
            }
            PolicyField::ExcludedOrderTypes => {
                audit.with("excluded_order_types", update.excluded_order_types.clone())
            }
            PolicyField::DefaultChannel => {
                audit.with("default_channel", update.default_channel.as_str())
            }
        };
    }
    let saved = store
        .update_tenant_policy(&caller.tenant, &update, &fields, &audit)
        .await?;
    Ok(convert::policy::policy_to_pb(&saved))
}

/// The audit entry of a change the caller is making.
fn audit_of(caller: &Caller, rpc: &'static str, resource: &'static str) -> AuditEntry {
    AuditEntry::new(&caller.key_id, rpc, resource)
}

fn product_audit(caller: &Caller, rpc: &'static str, spec: &ProductSpec) -> AuditEntry {
    audit_of(caller, rpc, "product")
        .with("value", spec.value.as_str())
        .with("name", spec.name.as_str())
        .with("amount", spec.amount)
        .with(
            "currency",
            spec.currency
                .map(|c| c.code().to_owned())
                .unwrap_or_default(),
        )
        .with("active", spec.active)
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

// === tenant quota use cases ===

/// UpdateTenantQuota: checks the mask and the new limits (a tenant may only tighten the service
/// default), writes only the named fields, and applies them on this replica at once.
async fn change_tenant_quota(
    store: &Store,
    auth: &Authenticator,
    caller: &Caller,
    request: pb::UpdateTenantQuotaRequest,
) -> Result<pb::TenantQuota, ApiError> {
    let mut violations = Violations::new();
    let paths = convert::mask_paths(
        request.update_mask.as_ref(),
        &convert::quota::updatable(),
        &mut violations,
    );
    let fields = convert::quota::fields(&paths);
    let update = match request.quota.as_ref() {
        Some(quota) => convert::quota::quota_from_pb(quota, &fields),
        None => {
            violations.add("quota", "is required");
            Default::default()
        }
    };
    let defaults = auth.quotas().defaults();
    update.check("quota", &mut violations);
    update.check_within(&defaults, "quota", &mut violations);
    violations.finish(())?;
    let audit = update.audited(
        audit_of(caller, "UpdateTenantQuota", "tenant_quota"),
        &fields,
    );
    let saved = store
        .update_tenant_quota(&caller.tenant, &update, &fields, &audit)
        .await?;
    auth.quotas().forget(&caller.tenant);
    Ok(convert::quota::quota_to_pb(&saved, &defaults))
}
