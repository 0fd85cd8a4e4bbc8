//! Campaigns and their generated unique codes.

use std::collections::{HashMap, HashSet};

use rand::SeedableRng;

use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, TransactionTrait, TryInsertResult,
};

use super::{
    audit,
    entities::{campaign, coupon},
    new_id, Store, StoreError,
};
use crate::domain::{
    audit::AuditEntry,
    campaign::{Campaign, CodePattern},
    coupon::CouponRules,
    Code, TenantId, Timestamp,
};

/// Codes per INSERT: 13 bound values each stays under every backend's parameter limit.
const CODES_PER_INSERT: usize = 500;

impl Store {
    /// Stores a new campaign.
    #[tracing::instrument(name = "db.insert_campaign", skip_all, fields(db.system = self.db_system(), db.collection.name = "campaigns"))]
    pub async fn insert_campaign(
        &self,
        tenant: &TenantId,
        name: &str,
        rules: &CouponRules,
        pattern: &CodePattern,
        audit: &AuditEntry,
    ) -> Result<Campaign, StoreError> {
        let model = campaign::Model {
            id: new_id("cmp"),
            tenant_id: tenant.0.clone(),
            name: name.to_owned(),
            rules: to_json(rules)?,
            pattern: to_json(pattern)?,
            code_count: 0,
            created_at: Timestamp::now().micros(),
        };
        let txn = self.conn().begin().await?;
        campaign::Entity::insert(campaign::ActiveModel::from(model.clone()))
            .exec_without_returning(&txn)
            .await?;
        let written = audit::record(&txn, tenant, audit, &model.id).await?;
        txn.commit().await?;
        written.announce();
        decode(model)
    }

    /// The tenant's campaign with this id.
    #[tracing::instrument(name = "db.get_campaign", skip_all, fields(db.system = self.db_system(), db.collection.name = "campaigns"))]
    pub async fn get_campaign(&self, tenant: &TenantId, id: &str) -> Result<Campaign, StoreError> {
        campaign::Entity::find_by_id(id.to_owned())
            .filter(campaign::Column::TenantId.eq(tenant.0.as_str()))
            .one(self.conn())
            .await?
            .map(decode)
            .unwrap_or(Err(StoreError::NotFound))
    }

    /// Makes `count` new unique codes for a campaign, in one transaction: codes already taken by
    /// the tenant are skipped and drawn again, so exactly `count` are added.
    #[tracing::instrument(name = "db.generate_codes", skip_all, fields(db.system = self.db_system(), db.collection.name = "coupons"))]
    pub async fn generate_codes(
        &self,
        tenant: &TenantId,
        campaign: &Campaign,
        count: usize,
        audit: &AuditEntry,
    ) -> Result<Vec<Code>, StoreError> {
        let now = Timestamp::now().micros();
        let rules_json = to_json(&campaign.rules)?;
        let limits = &campaign.rules.limits;
        let txn = self.conn().begin().await?;
        let mut made: Vec<Code> = Vec::with_capacity(count);
        let mut drawn: HashSet<Code> = HashSet::with_capacity(count);
        // A cryptographic generator that can be held across awaits (the thread-local one cannot).
        let mut rng = rand::rngs::StdRng::from_os_rng();
        while made.len() < count {
            let mut batch: HashMap<String, Code> = HashMap::new();
            while batch.len() < CODES_PER_INSERT.min(count - made.len()) {
                let Some(code) = campaign.pattern.generate(&mut rng) else {
                    return Err(StoreError::Corrupt(
                        "campaign pattern makes invalid codes".into(),
                    ));
                };
                if drawn.insert(code.clone()) {
                    batch.insert(new_id("cpn"), code);
                }
            }
            let rows: Vec<coupon::ActiveModel> = batch
                .iter()
                .map(|(id, code)| coupon::ActiveModel {
                    id: Set(id.clone()),
                    tenant_id: Set(tenant.0.clone()),
                    code: Set(code.as_str().to_owned()),
                    campaign_id: Set(Some(campaign.id.clone())),
                    active: Set(true),
                    rules: Set(rules_json.clone()),
                    max_redemptions: Set(limits.max_redemptions),
                    max_redemptions_per_customer: Set(limits.max_redemptions_per_customer),
                    budget: Set(limits.budget),
                    redemptions: Set(0),
                    budget_used: Set(0),
                    created_at: Set(now),
                    updated_at: Set(now),
                    automatic: Set(false),
                })
                .collect();
            let inserted = coupon::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([coupon::Column::TenantId, coupon::Column::Code])
                .exec_with_returning_keys(&txn)
                .await?;
            if let TryInsertResult::Inserted(ids) = inserted {
                made.extend(ids.into_iter().filter_map(|id| batch.remove(&id)));
            }
        }
        campaign::Entity::update_many()
            .col_expr(
                campaign::Column::CodeCount,
                Expr::col(campaign::Column::CodeCount).add(count as i64),
            )
            .filter(campaign::Column::Id.eq(campaign.id.as_str()))
            .exec(&txn)
            .await?;
        let written = audit::record(&txn, tenant, audit, &campaign.id).await?;
        txn.commit().await?;
        written.announce();
        Ok(made)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode(model: campaign::Model) -> Result<Campaign, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("campaign {}: {e}", model.id));
    Ok(Campaign {
        rules: serde_json::from_str(&model.rules).map_err(corrupt)?,
        pattern: serde_json::from_str(&model.pattern).map_err(corrupt)?,
        id: model.id.clone(),
        name: model.name,
        code_count: model.code_count,
        created_at: Timestamp(model.created_at),
    })
}
