//! VoucherService: products, and PIN purchases idempotent by reference.

use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::{
    convert::{timestamp_to_pb, voucher::product_to_pb},
    paging::{page_size, PageTokens},
    redemptions::request_id,
    ApiError, Authenticator, Caller,
};
use crate::{
    domain::{
        pin::PinKey,
        product::Product,
        purchase::{render, PurchaseOrder, Sale},
        InvalidInput, Scope, Violations,
    },
    pb::{self, voucher_service_server::VoucherService},
    store::{Store, StoreError},
};

const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 500;
const MAX_REFERENCE_LEN: usize = 128;

/// The VoucherService handlers.
#[derive(Clone, Debug)]
pub struct VoucherApi {
    auth: Authenticator,
    store: Store,
    pin_key: PinKey,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl VoucherApi {
    pub fn new(
        auth: Authenticator,
        store: Store,
        pin_key: PinKey,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            auth,
            store,
            pin_key,
            metrics,
        }
    }

    async fn buy(
        &self,
        caller: &Caller,
        request: pb::PurchaseRequest,
        request_id: String,
    ) -> Result<pb::PurchaseResponse, ApiError> {
        let fingerprint = hex::encode(Sha256::digest(prost::Message::encode_to_vec(&request)));
        let mut violations = Violations::new();
        let reference = request.reference.trim();
        violations.require(
            !reference.is_empty() && reference.len() <= MAX_REFERENCE_LEN,
            "reference",
            "is required, at most 128 characters",
        );
        violations.finish(())?;
        if let Some(earlier) = self.store.find_sale(&caller.tenant, reference).await? {
            return self.replay(caller, earlier, &fingerprint).await;
        }
        let product = self
            .store
            .find_product_by_value(&caller.tenant, request.value.trim())
            .await?
            .filter(|p| p.spec.active)
            .ok_or_else(|| InvalidInput::field("value", "Invalid value for product"))?;
        if request.amount != product.spec.amount {
            return Err(InvalidInput::field(
                "amount",
                "enter valid amount: it must equal the product's price",
            )
            .into());
        }
        let currency = product
            .spec
            .currency
            .ok_or_else(|| InvalidInput::field("value", "the product has no currency"))?;
        let order = PurchaseOrder {
            reference: reference.to_owned(),
            fingerprint: fingerprint.clone(),
            product_id: product.idx.clone(),
            product_value: product.spec.value.clone(),
            amount: product.spec.amount,
            currency,
            phone_number: request.phone_number.trim().to_owned(),
            email: request.email.trim().to_owned(),
            name: request.name.trim().to_owned(),
            request_id,
        };
        match self.store.sell_pin(&caller.tenant, &order).await {
            Ok(sale) => self.answer(&sale, &product),
            // An identical request raced this one and won: answer as it did.
            Err(StoreError::AlreadyExists) => {
                let earlier = self
                    .store
                    .find_sale(&caller.tenant, reference)
                    .await?
                    .ok_or(ApiError::Aborted(StoreError::AlreadyExists))?;
                self.replay(caller, earlier, &fingerprint).await
            }
            Err(other) => Err(other.into()),
        }
    }

    /// A retry gets the original purchase; the same reference with other content is refused.
    async fn replay(
        &self,
        caller: &Caller,
        sale: Sale,
        fingerprint: &str,
    ) -> Result<pb::PurchaseResponse, ApiError> {
        if sale.fingerprint != fingerprint {
            return Err(ApiError::AlreadyExists {
                reason: "DUPLICATE_REFERENCE",
                message: "Request with duplicate reference id obtained".into(),
            });
        }
        let product = self
            .store
            .get_product(&caller.tenant, &sale.product_id)
            .await?;
        self.answer(&sale, &product)
    }

    fn answer(&self, sale: &Sale, product: &Product) -> Result<pb::PurchaseResponse, ApiError> {
        let pin = self.pin_key.open(&sale.sealed_pin).map_err(|e| {
            ApiError::Internal(StoreError::Corrupt(format!("purchase {}: {e}", sale.id)))
        })?;
        let notification = render(
            &product.spec.templates,
            &pin,
            &sale.serial,
            &product.spec.name,
        );
        Ok(pb::PurchaseResponse {
            purchase: Some(pb::Purchase {
                id: sale.id.clone(),
                reference: sale.reference.clone(),
                product_value: sale.product_value.clone(),
                amount: sale.amount,
                currency: sale.currency.code().to_owned(),
                state: "Success".into(),
                message: format!("Your Pin number is '{pin}'"),
                pin,
                serial: sale.serial.clone(),
                credits_consumed: sale.amount,
                credits_available: sale.credits_available,
                phone_number: sale.phone_number.clone(),
                email: sale.email.clone(),
                name: sale.name.clone(),
                notification: Some(pb::Notification {
                    sms: notification.sms,
                    email_subject: notification.email_subject,
                    email_body: notification.email_body,
                }),
                create_time: Some(timestamp_to_pb(sale.created_at)),
            }),
        })
    }
}

#[tonic::async_trait]
impl VoucherService for VoucherApi {
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Read)
            .await?;
        let request = request.into_inner();
        let limit = page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let tokens = PageTokens::new(&caller.tenant, "products");
        let after = tokens.decode(&request.page_token)?;
        let page = self
            .store
            .list_products(&caller.tenant, true, after.as_deref(), limit)
            .await
            .map_err(ApiError::from)?;
        let admin = caller.has(Scope::Admin);
        Ok(Response::new(pb::ListProductsResponse {
            products: page.items.iter().map(|p| product_to_pb(p, admin)).collect(),
            next_page_token: tokens.encode(page.next_after),
        }))
    }

    async fn purchase(
        &self,
        request: Request<pb::PurchaseRequest>,
    ) -> Result<Response<pb::PurchaseResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Purchase)
            .await?;
        let request_id = request_id(request.metadata());
        let result = self.buy(&caller, request.into_inner(), request_id).await;
        let outcome = match &result {
            Ok(_) => "sold",
            Err(ApiError::StateRefused { .. }) | Err(ApiError::InvalidInput(_)) => "refused",
            Err(ApiError::AlreadyExists { .. }) => "duplicate",
            Err(_) => "error",
        };
        self.metrics.purchases.with_label_values(&[outcome]).inc();
        Ok(Response::new(result?))
    }

    async fn get_purchase(
        &self,
        request: Request<pb::GetPurchaseRequest>,
    ) -> Result<Response<pb::PurchaseResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Purchase)
            .await?;
        let reference = request.into_inner().reference.trim().to_owned();
        if reference.is_empty() {
            return Err(ApiError::from(InvalidInput::field("reference", "is required")).into());
        }
        let sale = self
            .store
            .find_sale(&caller.tenant, &reference)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::not_found("purchase", reference.clone()))?;
        let product = self
            .store
            .get_product(&caller.tenant, &sale.product_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(self.answer(&sale, &product)?))
    }
}
