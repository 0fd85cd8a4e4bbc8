//! AdminService: coupons, campaigns, voucher products, PIN stock, credits, tenant settings, API
//! keys and the audit log. Every call needs `admin`; each handler authenticates, parses the
//! request into its command, calls its use case in `app`, and translates the answer.

use tonic::{Request, Response, Status};

use super::{
    convert::{
        admin::{self as parse, audit_to_pb, key_to_pb},
        coupon::{campaign_to_pb, coupon_to_pb},
        policy::policy_to_pb,
        quota::quota_to_pb,
        stats::{
            campaign_stats_from_pb, campaign_stats_to_pb, coupon_stats_from_pb, coupon_stats_to_pb,
        },
        voucher::{credit_entry_to_pb, product_to_pb},
    },
    paging::{page_size, PageTokens},
    ApiError, Authenticator, Caller, InLocale,
};
use crate::{
    app::{
        audit,
        campaigns::{self, NewCampaign},
        coupons::{self, CouponRef, UpdateCoupon},
        credits::{self, TopUpCommand},
        keys,
        products::{self, UpdateProduct},
        settings::{self, QuotaChange},
        stats,
    },
    domain::{coupon::NewCoupon, pin::PinKey, Scope, Timestamp},
    pb::{self, admin_service_server::AdminService},
    store::{audit::AuditFilter, coupons::CouponFilter, Store},
};

const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 500;

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
}

/// A trimmed filter value; blank is no filter.
fn given(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_coupon(
        &self,
        request: Request<pb::CreateCouponRequest>,
    ) -> Result<Response<pb::Coupon>, Status> {
        let caller = self.admin(&request).await?;
        let coupon = NewCoupon::try_from(request.into_inner()).in_locale(caller.locale)?;
        let created = coupons::create(&self.store, &caller.tenant, &caller.key_id, &coupon)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(coupon_to_pb(&created)))
    }

    async fn get_coupon(
        &self,
        request: Request<pb::GetCouponRequest>,
    ) -> Result<Response<pb::Coupon>, Status> {
        let caller = self.admin(&request).await?;
        let wanted = CouponRef::try_from(request.into_inner()).in_locale(caller.locale)?;
        let coupon = coupons::find(&self.store, &caller.tenant, &wanted)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(coupon_to_pb(&coupon)))
    }

    async fn list_coupons(
        &self,
        request: Request<pb::ListCouponsRequest>,
    ) -> Result<Response<pb::ListCouponsResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        let limit =
            page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE).in_locale(caller.locale)?;
        let filter = CouponFilter {
            campaign_id: given(&request.campaign_id),
            active_only: request.active_only,
        };
        let tokens = PageTokens::new(&caller.tenant, &format!("coupons {filter:?}"));
        let after = tokens
            .decode(&request.page_token)
            .in_locale(caller.locale)?;
        let page = coupons::list(
            &self.store,
            &caller.tenant,
            &filter,
            after.as_deref(),
            limit,
        )
        .await
        .in_locale(caller.locale)?;
        Ok(Response::new(pb::ListCouponsResponse {
            coupons: page.items.iter().map(coupon_to_pb).collect(),
            next_page_token: tokens.encode(page.next_after),
        }))
    }

    async fn update_coupon(
        &self,
        request: Request<pb::UpdateCouponRequest>,
    ) -> Result<Response<pb::Coupon>, Status> {
        let caller = self.admin(&request).await?;
        let command = UpdateCoupon::try_from(request.into_inner()).in_locale(caller.locale)?;
        let saved = coupons::update(&self.store, &caller.tenant, &caller.key_id, command)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(coupon_to_pb(&saved)))
    }

    async fn deactivate_coupon(
        &self,
        request: Request<pb::DeactivateCouponRequest>,
    ) -> Result<Response<pb::Coupon>, Status> {
        let caller = self.admin(&request).await?;
        let id = parse::id("id", &request.get_ref().id).in_locale(caller.locale)?;
        let coupon = coupons::deactivate(&self.store, &caller.tenant, &caller.key_id, &id)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(coupon_to_pb(&coupon)))
    }

    async fn create_campaign(
        &self,
        request: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let caller = self.admin(&request).await?;
        let campaign = NewCampaign::try_from(request.into_inner()).in_locale(caller.locale)?;
        let created = campaigns::create(&self.store, &caller.tenant, &caller.key_id, &campaign)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(campaign_to_pb(&created)))
    }

    async fn generate_codes(
        &self,
        request: Request<pb::GenerateCodesRequest>,
    ) -> Result<Response<pb::GenerateCodesResponse>, Status> {
        let caller = self.admin(&request).await?;
        let (campaign_id, count) =
            parse::codes_wanted(request.get_ref()).in_locale(caller.locale)?;
        let codes = campaigns::generate_codes(
            &self.store,
            &caller.tenant,
            &caller.key_id,
            &campaign_id,
            count,
        )
        .await
        .in_locale(caller.locale)?;
        Ok(Response::new(pb::GenerateCodesResponse {
            codes: codes.into_iter().map(|c| c.to_string()).collect(),
        }))
    }

    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let caller = self.admin(&request).await?;
        let spec = parse::new_product(request.into_inner()).in_locale(caller.locale)?;
        let created = products::create(&self.store, &caller.tenant, &caller.key_id, &spec)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(product_to_pb(&created, true)))
    }

    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let caller = self.admin(&request).await?;
        let command = UpdateProduct::try_from(request.into_inner()).in_locale(caller.locale)?;
        let saved = products::update(&self.store, &caller.tenant, &caller.key_id, command)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(product_to_pb(&saved, true)))
    }

    async fn import_pins(
        &self,
        request: Request<pb::ImportPinsRequest>,
    ) -> Result<Response<pb::ImportPinsResponse>, Status> {
        let caller = self.admin(&request).await?;
        let (idx, pins) = parse::pins_to_import(request.get_ref()).in_locale(caller.locale)?;
        let outcome = products::import_pins(
            &self.store,
            &self.pin_key,
            &caller.tenant,
            &caller.key_id,
            &idx,
            pins,
        )
        .await
        .in_locale(caller.locale)?;
        Ok(Response::new(pb::ImportPinsResponse {
            imported: outcome.imported,
            duplicates: outcome.duplicates,
            available_count: outcome.available,
        }))
    }

    async fn top_up_credits(
        &self,
        request: Request<pb::TopUpCreditsRequest>,
    ) -> Result<Response<pb::TopUpCreditsResponse>, Status> {
        let caller = self.admin(&request).await?;
        let command = TopUpCommand::try_from(request.into_inner()).in_locale(caller.locale)?;
        let top_up = credits::top_up(
            &self.store,
            &caller.tenant,
            command,
            Timestamp::now(),
            &caller.key_id,
        )
        .await
        .in_locale(caller.locale)?;
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
        let balance = credits::balance(&self.store, &caller.tenant)
            .await
            .in_locale(caller.locale)?;
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
        let limit =
            page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE).in_locale(caller.locale)?;
        let tokens = PageTokens::new(&caller.tenant, "credit entries");
        let before = tokens
            .decode(&request.page_token)
            .in_locale(caller.locale)?;
        let page = credits::entries(&self.store, &caller.tenant, before.as_deref(), limit)
            .await
            .in_locale(caller.locale)?;
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
        let policy = settings::policy(&self.store, &caller.tenant)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(policy_to_pb(&policy)))
    }

    async fn update_tenant_policy(
        &self,
        request: Request<pb::UpdateTenantPolicyRequest>,
    ) -> Result<Response<pb::TenantPolicy>, Status> {
        let caller = self.admin(&request).await?;
        let (values, fields) = parse::policy_change(request.get_ref()).in_locale(caller.locale)?;
        let saved = settings::update_policy(
            &self.store,
            &caller.tenant,
            &caller.key_id,
            &values,
            &fields,
        )
        .await
        .in_locale(caller.locale)?;
        Ok(Response::new(policy_to_pb(&saved)))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let caller = self.admin(&request).await?;
        let (scopes, expires_at) =
            parse::key_to_create(request.get_ref()).in_locale(caller.locale)?;
        let issued = keys::create(
            &self.store,
            &caller.tenant,
            &caller.key_id,
            scopes,
            expires_at,
            Timestamp::now(),
        )
        .await
        .in_locale(caller.locale)?;
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
        let limit =
            page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE).in_locale(caller.locale)?;
        let tokens = PageTokens::new(&caller.tenant, "api keys");
        let after = tokens
            .decode(&request.page_token)
            .in_locale(caller.locale)?;
        let page = keys::list(&self.store, &caller.tenant, after.as_deref(), limit)
            .await
            .in_locale(caller.locale)?;
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
        let key_id = parse::id("key_id", &request.get_ref().key_id).in_locale(caller.locale)?;
        let revoked = keys::revoke(&self.store, &caller.tenant, &caller.key_id, &key_id)
            .await
            .in_locale(caller.locale)?;
        self.auth.forget_key(&key_id);
        Ok(Response::new(key_to_pb(&revoked)))
    }

    async fn rotate_api_key(
        &self,
        request: Request<pb::RotateApiKeyRequest>,
    ) -> Result<Response<pb::RotateApiKeyResponse>, Status> {
        let caller = self.admin(&request).await?;
        let (key_id, grace) = parse::key_to_rotate(request.get_ref()).in_locale(caller.locale)?;
        let (issued, previous) = keys::rotate(
            &self.store,
            &caller.tenant,
            &caller.key_id,
            &key_id,
            grace,
            Timestamp::now(),
        )
        .await
        .in_locale(caller.locale)?;
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
        let limit =
            page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE).in_locale(caller.locale)?;
        let filter = AuditFilter {
            resource_type: given(&request.resource_type),
            resource_id: given(&request.resource_id),
        };
        let tokens = PageTokens::new(&caller.tenant, &format!("audit {filter:?}"));
        let before = tokens
            .decode(&request.page_token)
            .in_locale(caller.locale)?;
        let page = audit::list(
            &self.store,
            &caller.tenant,
            &filter,
            before.as_deref(),
            limit,
        )
        .await
        .in_locale(caller.locale)?;
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
        let (quota, defaults) = settings::quota(&self.store, self.auth.quotas(), &caller.tenant)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(quota_to_pb(&quota, &defaults)))
    }

    async fn update_tenant_quota(
        &self,
        request: Request<pb::UpdateTenantQuotaRequest>,
    ) -> Result<Response<pb::TenantQuota>, Status> {
        let caller = self.admin(&request).await?;
        let change = QuotaChange::from(request.get_ref());
        let (saved, defaults) = settings::update_quota(
            &self.store,
            self.auth.quotas(),
            &caller.tenant,
            &caller.key_id,
            change,
        )
        .await
        .in_locale(caller.locale)?;
        Ok(Response::new(quota_to_pb(&saved, &defaults)))
    }

    async fn get_coupon_stats(
        &self,
        request: Request<pb::GetCouponStatsRequest>,
    ) -> Result<Response<pb::RedemptionStats>, Status> {
        let caller = self.admin(&request).await?;
        let (coupon, days) = coupon_stats_from_pb(request.get_ref()).in_locale(caller.locale)?;
        let stats =
            stats::coupon_stats(&self.store, &caller.tenant, &coupon, days, Timestamp::now())
                .await
                .in_locale(caller.locale)?;
        Ok(Response::new(coupon_stats_to_pb(&stats)))
    }

    async fn get_campaign_stats(
        &self,
        request: Request<pb::GetCampaignStatsRequest>,
    ) -> Result<Response<pb::RedemptionStats>, Status> {
        let caller = self.admin(&request).await?;
        let (id, days) = campaign_stats_from_pb(request.get_ref()).in_locale(caller.locale)?;
        let stats = stats::campaign_stats(&self.store, &caller.tenant, &id, days, Timestamp::now())
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(campaign_stats_to_pb(&id, &stats)))
    }
}
