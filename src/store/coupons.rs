//! Coupons. The limit columns beside the JSON rules are what redemption locks and counts on.

use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DeriveIden, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use super::{audit, entities::coupon, new_id, Page, Store, StoreError};
use crate::domain::{
    audit::AuditEntry,
    automatic,
    coupon::{Coupon, CouponRules, NewCoupon, Usage},
    Code, TenantId, Timestamp,
};

/// Where automatic promotions are indexed by the keys a checkout looks up (see
/// `domain::automatic`).
#[derive(DeriveIden)]
pub(super) enum AutomaticPromotionKeys {
    Table,
    TenantId,
    Currency,
    Channel,
    Target,
    CouponId,
}

/// Which coupons a listing returns.
#[derive(Clone, Debug, Default)]
pub struct CouponFilter {
    pub campaign_id: Option<String>,
    pub active_only: bool,
}

impl Store {
    /// Stores a new coupon. A code the tenant already uses is `AlreadyExists`.
    #[tracing::instrument(name = "db.insert_coupon", skip_all, fields(db.system = self.db_system(), db.collection.name = "coupons"))]
    pub async fn insert_coupon(
        &self,
        tenant: &TenantId,
        coupon: &NewCoupon,
        audit: &AuditEntry,
    ) -> Result<Coupon, StoreError> {
        let now = Timestamp::now().micros();
        let rules = coupon.rules();
        let model = coupon::Model {
            id: new_id("cpn"),
            tenant_id: tenant.0.clone(),
            code: coupon.code().as_str().to_owned(),
            campaign_id: None,
            active: coupon.active(),
            rules: encode_rules(rules)?,
            max_redemptions: rules.limits.max_redemptions,
            max_redemptions_per_customer: rules.limits.max_redemptions_per_customer,
            budget: rules.limits.budget,
            redemptions: 0,
            budget_used: 0,
            created_at: now,
            updated_at: now,
            automatic: coupon.automatic(),
        };
        let txn = self.conn().begin().await?;
        coupon::Entity::insert(coupon::ActiveModel::from(model.clone()))
            .exec_without_returning(&txn)
            .await?;
        if model.automatic {
            index_promotion(&txn, tenant, &model.id, rules).await?;
        }
        let written = audit::record(&txn, tenant, audit, &model.id).await?;
        txn.commit().await?;
        written.announce();
        decode(model)
    }

    /// The tenant's coupon with this id.
    #[tracing::instrument(name = "db.get_coupon", skip_all, fields(db.system = self.db_system(), db.collection.name = "coupons"))]
    pub async fn get_coupon(&self, tenant: &TenantId, id: &str) -> Result<Coupon, StoreError> {
        find_coupon(self.conn(), tenant, id).await
    }

    /// The tenant's coupon with this code.
    #[tracing::instrument(name = "db.get_coupon_by_code", skip_all, fields(db.system = self.db_system(), db.collection.name = "coupons"))]
    pub async fn get_coupon_by_code(
        &self,
        tenant: &TenantId,
        code: &Code,
    ) -> Result<Coupon, StoreError> {
        let found = coupon::Entity::find()
            .filter(coupon::Column::TenantId.eq(tenant.0.as_str()))
            .filter(coupon::Column::Code.eq(code.as_str()))
            .one(self.conn())
            .await?;
        found.map(decode).unwrap_or(Err(StoreError::NotFound))
    }

    /// A page of the tenant's coupons in id (creation) order, after the id `after`.
    #[tracing::instrument(name = "db.list_coupons", skip_all, fields(db.system = self.db_system(), db.collection.name = "coupons"))]
    pub async fn list_coupons(
        &self,
        tenant: &TenantId,
        filter: &CouponFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<Coupon>, StoreError> {
        let mut query =
            coupon::Entity::find().filter(coupon::Column::TenantId.eq(tenant.0.as_str()));
        if let Some(campaign) = &filter.campaign_id {
            query = query.filter(coupon::Column::CampaignId.eq(campaign.as_str()));
        }
        if filter.active_only {
            query = query.filter(coupon::Column::Active.eq(true));
        }
        if let Some(after) = after {
            query = query.filter(coupon::Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(coupon::Column::Id)
            .limit(limit + 1)
            .all(self.conn())
            .await?;
        let coupons = rows
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(coupons, limit, |c| c.id.clone()))
    }

    /// Saves a coupon's rules and active flag. Usage counters are never written here: they belong
    /// to the redemption ledger.
    #[tracing::instrument(name = "db.save_coupon_rules", skip_all, fields(db.system = self.db_system(), db.collection.name = "coupons"))]
    pub async fn save_coupon_rules(
        &self,
        tenant: &TenantId,
        id: &str,
        rules: &CouponRules,
        active: bool,
        audit: &AuditEntry,
    ) -> Result<Coupon, StoreError> {
        let txn = self.conn().begin().await?;
        let result = coupon::Entity::update_many()
            .set(coupon::ActiveModel {
                rules: Set(encode_rules(rules)?),
                active: Set(active),
                max_redemptions: Set(rules.limits.max_redemptions),
                max_redemptions_per_customer: Set(rules.limits.max_redemptions_per_customer),
                budget: Set(rules.limits.budget),
                updated_at: Set(Timestamp::now().micros()),
                ..Default::default()
            })
            .filter(coupon::Column::Id.eq(id))
            .filter(coupon::Column::TenantId.eq(tenant.0.as_str()))
            .exec(&txn)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        let saved = find_coupon(&txn, tenant, id).await?;
        if saved.automatic {
            index_promotion(&txn, tenant, id, rules).await?;
        }
        let written = audit::record(&txn, tenant, audit, id).await?;
        txn.commit().await?;
        written.announce();
        Ok(saved)
    }

    /// Makes a coupon unusable; harmless when it already is.
    #[tracing::instrument(name = "db.deactivate_coupon", skip_all, fields(db.system = self.db_system(), db.collection.name = "coupons"))]
    pub async fn deactivate_coupon(
        &self,
        tenant: &TenantId,
        id: &str,
        audit: &AuditEntry,
    ) -> Result<Coupon, StoreError> {
        let txn = self.conn().begin().await?;
        let result = coupon::Entity::update_many()
            .set(coupon::ActiveModel {
                active: Set(false),
                updated_at: Set(Timestamp::now().micros()),
                ..Default::default()
            })
            .filter(coupon::Column::Id.eq(id))
            .filter(coupon::Column::TenantId.eq(tenant.0.as_str()))
            .exec(&txn)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        let saved = find_coupon(&txn, tenant, id).await?;
        let written = audit::record(&txn, tenant, audit, id).await?;
        txn.commit().await?;
        written.announce();
        Ok(saved)
    }
}

/// Replaces an automatic promotion's index keys with those of `rules`, in the transaction that
/// saves them, so pricing never reads a promotion under keys its rules no longer have.
async fn index_promotion(
    txn: &impl ConnectionTrait,
    tenant: &TenantId,
    coupon_id: &str,
    rules: &CouponRules,
) -> Result<(), StoreError> {
    txn.execute(
        Query::delete()
            .from_table(AutomaticPromotionKeys::Table)
            .and_where(Expr::col(AutomaticPromotionKeys::CouponId).eq(coupon_id)),
    )
    .await?;
    let keys = automatic::keys(rules);
    // Bounded by `automatic::MAX_KEYS`; chunked so that no statement carries too many values.
    for chunk in keys.chunks(200) {
        let mut insert = Query::insert();
        insert.into_table(AutomaticPromotionKeys::Table).columns([
            AutomaticPromotionKeys::TenantId,
            AutomaticPromotionKeys::Currency,
            AutomaticPromotionKeys::Channel,
            AutomaticPromotionKeys::Target,
            AutomaticPromotionKeys::CouponId,
        ]);
        for key in chunk {
            insert.values_panic([
                tenant.0.as_str().into(),
                key.currency.as_str().into(),
                key.channel.as_str().into(),
                key.target.as_str().into(),
                coupon_id.into(),
            ]);
        }
        txn.execute(&insert).await?;
    }
    Ok(())
}

async fn find_coupon(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &str,
) -> Result<Coupon, StoreError> {
    let found = coupon::Entity::find_by_id(id.to_owned())
        .filter(coupon::Column::TenantId.eq(tenant.0.as_str()))
        .one(conn)
        .await?;
    found.map(decode).unwrap_or(Err(StoreError::NotFound))
}

fn encode_rules(rules: &CouponRules) -> Result<String, StoreError> {
    serde_json::to_string(rules).map_err(|e| StoreError::Corrupt(format!("coupon rules: {e}")))
}

pub(super) fn decode(model: coupon::Model) -> Result<Coupon, StoreError> {
    let rules: CouponRules = serde_json::from_str(&model.rules)
        .map_err(|e| StoreError::Corrupt(format!("coupon {} rules: {e}", model.id)))?;
    let code = Code::parse(&model.code)
        .map_err(|e| StoreError::Corrupt(format!("coupon {} code: {e}", model.id)))?;
    Ok(Coupon {
        id: model.id,
        code,
        campaign_id: model.campaign_id,
        active: model.active,
        automatic: model.automatic,
        rules,
        usage: Usage {
            redemptions: model.redemptions,
            budget_used: model.budget_used,
        },
        created_at: Timestamp(model.created_at),
        updated_at: Timestamp(model.updated_at),
    })
}
