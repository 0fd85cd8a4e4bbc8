//! PIN purchases, idempotent by the client's reference, and their delivery texts.

use serde::Serialize;

use super::{
    idempotency::{replay, Conflict, Fingerprint},
    AppError, ErrorReason,
};
use crate::{
    domain::{
        pin::PinKey,
        product::ProductDefinition,
        purchase::{render, PurchaseOrder, RenderedNotification, Sale},
        InvalidInput, Problem, TenantId,
    },
    store::{Store, StoreError},
};

/// The PIN API's words for a reused reference.
const DUPLICATE_REFERENCE: Conflict = Conflict {
    reason: ErrorReason::DuplicateReference,
    message: "Request with duplicate reference id obtained",
};

/// Purchase's command, parsed at the edge (text trimmed).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PurchaseCommand {
    pub(crate) reference: String,
    /// The product's value (the PIN API's `value`).
    pub(crate) value: String,
    pub(crate) amount: i64,
    pub(crate) phone_number: String,
    pub(crate) email: String,
    pub(crate) name: String,
}

/// A sold PIN, opened, with its notification texts.
#[derive(Clone)]
pub(crate) struct Delivery {
    pub(crate) sale: Sale,
    pub(crate) pin: String,
    pub(crate) notification: RenderedNotification,
    /// An earlier identical request bought it; this one changed nothing.
    pub(crate) replayed: bool,
}

/// The voucher use cases over one store and PIN key.
#[derive(Clone, Debug)]
pub(crate) struct Vouchers {
    store: Store,
    pin_key: PinKey,
}

impl Vouchers {
    pub(crate) fn new(store: Store, pin_key: PinKey) -> Self {
        Self { store, pin_key }
    }

    /// Sells one PIN of the product, or replays the sale an identical request made.
    pub(crate) async fn purchase(
        &self,
        tenant: &TenantId,
        command: PurchaseCommand,
        request_id: &str,
    ) -> Result<Delivery, AppError> {
        let fingerprint = Fingerprint::of("purchase", &command)?;
        if let Some(earlier) = self.store.find_sale(tenant, &command.reference).await? {
            return self.replayed(tenant, earlier, &fingerprint).await;
        }
        let product = self
            .store
            .find_product_by_value(tenant, &command.value)
            .await?
            .ok_or_else(|| InvalidInput::field("value", Problem::UnknownProduct))?;
        // A product that exists but is switched off is unavailable, as the PIN API says of it.
        if !product.spec.active {
            return Err(AppError::StateRefused {
                reason: ErrorReason::ProductUnavailable,
                message: "Product Currently Unavailable".into(),
            });
        }
        // The currency first: the price in the amount's description is written in it.
        let currency = product
            .spec
            .currency
            .ok_or_else(|| InvalidInput::field("value", Problem::ProductWithoutCurrency))?;
        if command.amount != product.spec.amount {
            return Err(InvalidInput::field(
                "amount",
                Problem::AmountNotPrice {
                    price: product.spec.amount,
                    currency,
                },
            )
            .into());
        }
        let order = PurchaseOrder {
            reference: command.reference.clone(),
            fingerprint: fingerprint.as_str().to_owned(),
            product_id: product.idx.clone(),
            product_value: product.spec.value.clone(),
            amount: product.spec.amount,
            currency,
            phone_number: command.phone_number,
            email: command.email,
            name: command.name,
            request_id: request_id.to_owned(),
        };
        match self.store.sell_pin(tenant, &order).await {
            Ok(sale) => self.deliver(sale, &product, false),
            // An identical request raced this one and won: answer as it did.
            Err(StoreError::AlreadyExists) => {
                let earlier = self
                    .store
                    .find_sale(tenant, &order.reference)
                    .await?
                    .ok_or(StoreError::Contention(sea_orm::DbErr::Custom(
                        "the reference's purchase vanished during the call".into(),
                    )))?;
                self.replayed(tenant, earlier, &fingerprint).await
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The purchase made with this reference.
    pub(crate) async fn find(
        &self,
        tenant: &TenantId,
        reference: &str,
    ) -> Result<Delivery, AppError> {
        let sale = self
            .store
            .find_sale(tenant, reference)
            .await?
            .ok_or_else(|| AppError::not_found("purchase", reference))?;
        let product = self.product_of(tenant, &sale).await?;
        self.deliver(sale, &product, true)
    }

    async fn replayed(
        &self,
        tenant: &TenantId,
        sale: Sale,
        fingerprint: &Fingerprint,
    ) -> Result<Delivery, AppError> {
        let earlier = Fingerprint::stored(sale.fingerprint.clone());
        let sale = replay(sale, &earlier, fingerprint, DUPLICATE_REFERENCE)?;
        let product = self.product_of(tenant, &sale).await?;
        self.deliver(sale, &product, true)
    }

    async fn product_of(
        &self,
        tenant: &TenantId,
        sale: &Sale,
    ) -> Result<ProductDefinition, AppError> {
        self.store
            .product_definition(tenant, &sale.product_id)
            .await
            .map_err(|error| match error {
                StoreError::NotFound => AppError::Internal(anyhow::anyhow!(
                    "purchase {} names a product that does not exist",
                    sale.id
                )),
                other => other.into(),
            })
    }

    fn deliver(
        &self,
        sale: Sale,
        product: &ProductDefinition,
        replayed: bool,
    ) -> Result<Delivery, AppError> {
        let pin = self
            .pin_key
            .open(&sale.sealed_pin)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("purchase {}: {e}", sale.id)))?;
        let notification = render(
            &product.spec.templates,
            &pin,
            &sale.serial,
            &product.spec.name,
        );
        Ok(Delivery {
            sale,
            pin,
            notification,
            replayed,
        })
    }
}
