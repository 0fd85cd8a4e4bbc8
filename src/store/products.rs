//! Voucher products and their stock counts.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use super::{
    audit,
    entities::{voucher_pin, voucher_product},
    new_id, Page, Store, StoreError,
};
use crate::domain::{
    audit::AuditEntry,
    product::{NotificationTemplates, Product, ProductDefinition, ProductSpec},
    Currency, TenantId, Timestamp,
};

impl Store {
    /// Stores a new product. A `value` the tenant already uses is `AlreadyExists`.
    #[tracing::instrument(name = "db.insert_product", skip_all, fields(db.system = self.db_system(), db.collection.name = "voucher_products"))]
    pub async fn insert_product(
        &self,
        tenant: &TenantId,
        spec: &ProductSpec,
        audit: &AuditEntry,
    ) -> Result<Product, StoreError> {
        let now = Timestamp::now().micros();
        let model = voucher_product::Model {
            id: new_id("prd"),
            tenant_id: tenant.0.clone(),
            value: spec.value.clone(),
            name: spec.name.trim().to_owned(),
            amount: spec.amount,
            currency: spec
                .currency
                .map(|c| c.code().to_owned())
                .unwrap_or_default(),
            active: spec.active,
            templates: encode_templates(&spec.templates)?,
            created_at: now,
            updated_at: now,
        };
        let txn = self.conn().begin().await?;
        voucher_product::Entity::insert(voucher_product::ActiveModel::from(model.clone()))
            .exec_without_returning(&txn)
            .await?;
        let written = audit::record(&txn, tenant, audit, &model.id).await?;
        txn.commit().await?;
        written.announce();
        decode(model, 0)
    }

    /// The tenant's product with this idx.
    #[tracing::instrument(name = "db.get_product", skip_all, fields(db.system = self.db_system(), db.collection.name = "voucher_products"))]
    pub async fn get_product(&self, tenant: &TenantId, idx: &str) -> Result<Product, StoreError> {
        let model = voucher_product::Entity::find_by_id(idx.to_owned())
            .filter(voucher_product::Column::TenantId.eq(tenant.0.as_str()))
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        let available = self.available_pins(&model.id).await?;
        decode(model, available)
    }

    /// The definition of the tenant's product with this `value` (slug), if any.
    #[tracing::instrument(name = "db.find_product_by_value", skip_all, fields(db.system = self.db_system(), db.collection.name = "voucher_products"))]
    pub async fn find_product_by_value(
        &self,
        tenant: &TenantId,
        value: &str,
    ) -> Result<Option<ProductDefinition>, StoreError> {
        voucher_product::Entity::find()
            .filter(voucher_product::Column::TenantId.eq(tenant.0.as_str()))
            .filter(voucher_product::Column::Value.eq(value))
            .one(self.conn())
            .await?
            .map(|model| decode(model, 0).map(definition))
            .transpose()
    }

    /// The definition of the tenant's product with this idx.
    #[tracing::instrument(name = "db.product_definition", skip_all, fields(db.system = self.db_system(), db.collection.name = "voucher_products"))]
    pub async fn product_definition(
        &self,
        tenant: &TenantId,
        idx: &str,
    ) -> Result<ProductDefinition, StoreError> {
        let model = voucher_product::Entity::find_by_id(idx.to_owned())
            .filter(voucher_product::Column::TenantId.eq(tenant.0.as_str()))
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        decode(model, 0).map(definition)
    }

    /// Saves a product's editable fields.
    #[tracing::instrument(name = "db.save_product", skip_all, fields(db.system = self.db_system(), db.collection.name = "voucher_products"))]
    pub async fn save_product(
        &self,
        tenant: &TenantId,
        idx: &str,
        spec: &ProductSpec,
        audit: &AuditEntry,
    ) -> Result<Product, StoreError> {
        let txn = self.conn().begin().await?;
        let result = voucher_product::Entity::update_many()
            .set(voucher_product::ActiveModel {
                name: Set(spec.name.trim().to_owned()),
                amount: Set(spec.amount),
                currency: Set(spec
                    .currency
                    .map(|c| c.code().to_owned())
                    .unwrap_or_default()),
                active: Set(spec.active),
                templates: Set(encode_templates(&spec.templates)?),
                updated_at: Set(Timestamp::now().micros()),
                ..Default::default()
            })
            .filter(voucher_product::Column::Id.eq(idx))
            .filter(voucher_product::Column::TenantId.eq(tenant.0.as_str()))
            .exec(&txn)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        let written = audit::record(&txn, tenant, audit, idx).await?;
        txn.commit().await?;
        written.announce();
        self.get_product(tenant, idx).await
    }

    /// A page of the tenant's products in creation order, with their stock.
    #[tracing::instrument(name = "db.list_products", skip_all, fields(db.system = self.db_system(), db.collection.name = "voucher_products"))]
    pub async fn list_products(
        &self,
        tenant: &TenantId,
        active_only: bool,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Page<Product>, StoreError> {
        let mut query = voucher_product::Entity::find()
            .filter(voucher_product::Column::TenantId.eq(tenant.0.as_str()));
        if active_only {
            query = query.filter(voucher_product::Column::Active.eq(true));
        }
        if let Some(after) = after {
            query = query.filter(voucher_product::Column::Id.gt(after));
        }
        let rows = query
            .order_by_asc(voucher_product::Column::Id)
            .limit(limit + 1)
            .all(self.conn())
            .await?;
        let ids: Vec<&str> = rows.iter().map(|m| m.id.as_str()).collect();
        let stock = self.stock_of(&ids).await?;
        let products = rows
            .into_iter()
            .map(|model| {
                let available = stock.get(&model.id).copied().unwrap_or(0);
                decode(model, available)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(products, limit, |p| p.idx.clone()))
    }

    /// (tenant, product value, PINs in stock) of every active product: the stock gauge.
    pub async fn pin_stock(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let products: Vec<(String, String, String)> = voucher_product::Entity::find()
            .select_only()
            .column(voucher_product::Column::Id)
            .column(voucher_product::Column::TenantId)
            .column(voucher_product::Column::Value)
            .filter(voucher_product::Column::Active.eq(true))
            .into_tuple()
            .all(self.conn())
            .await?;
        let ids: Vec<&str> = products.iter().map(|(id, _, _)| id.as_str()).collect();
        let stock = self.stock_of(&ids).await?;
        Ok(products
            .iter()
            .map(|(id, tenant, value)| {
                let available = stock.get(id).copied().unwrap_or(0);
                (tenant.clone(), value.clone(), available)
            })
            .collect())
    }

    /// PINs of a product that are neither sold nor expired.
    pub(crate) async fn available_pins(&self, product_id: &str) -> Result<i64, StoreError> {
        Ok(self
            .stock_of(&[product_id])
            .await?
            .get(product_id)
            .copied()
            .unwrap_or(0))
    }

    /// PINs in stock of each of these products, in one statement.
    async fn stock_of(&self, product_ids: &[&str]) -> Result<HashMap<String, i64>, StoreError> {
        if product_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let now = Timestamp::now().micros();
        let counts: Vec<(String, i64)> = voucher_pin::Entity::find()
            .select_only()
            .column(voucher_pin::Column::ProductId)
            .column_as(voucher_pin::Column::Id.count(), "available")
            .filter(voucher_pin::Column::ProductId.is_in(product_ids.iter().copied()))
            .filter(voucher_pin::Column::PurchaseId.is_null())
            .filter(
                Condition::any()
                    .add(voucher_pin::Column::ExpiresAt.is_null())
                    .add(voucher_pin::Column::ExpiresAt.gt(now)),
            )
            .group_by(voucher_pin::Column::ProductId)
            .into_tuple()
            .all(self.conn())
            .await?;
        Ok(counts.into_iter().collect())
    }
}

fn encode_templates(templates: &NotificationTemplates) -> Result<String, StoreError> {
    serde_json::to_string(templates).map_err(|e| StoreError::Corrupt(format!("templates: {e}")))
}

fn definition(product: Product) -> ProductDefinition {
    ProductDefinition {
        idx: product.idx,
        spec: product.spec,
    }
}

fn decode(model: voucher_product::Model, available: i64) -> Result<Product, StoreError> {
    let templates = serde_json::from_str(&model.templates)
        .map_err(|e| StoreError::Corrupt(format!("product {} templates: {e}", model.id)))?;
    let currency = Currency::parse(&model.currency)
        .map_err(|e| StoreError::Corrupt(format!("product {}: {e}", model.id)))?;
    Ok(Product {
        idx: model.id,
        spec: ProductSpec {
            name: model.name,
            value: model.value,
            amount: model.amount,
            currency: Some(currency),
            active: model.active,
            templates,
        },
        available,
        created_at: Timestamp(model.created_at),
    })
}
