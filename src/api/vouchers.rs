//! VoucherService: products, and PIN purchases idempotent by reference.

use tonic::{Request, Response, Status};

use super::{
    convert::{timestamp_to_pb, voucher::product_to_pb},
    paging::{page_size, PageTokens},
    request::request_id,
    ApiError, Authenticator, InLocale,
};
use crate::{
    app::{
        vouchers::{Delivery, PurchaseCommand, Vouchers},
        AppError,
    },
    domain::{pin::PinKey, text::refuse_nul, InvalidInput, Problem, Scope, Violations},
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
    vouchers: Vouchers,
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
            vouchers: Vouchers::new(store.clone(), pin_key),
            store,
            metrics,
        }
    }
}

impl TryFrom<pb::PurchaseRequest> for PurchaseCommand {
    type Error = InvalidInput;

    fn try_from(request: pb::PurchaseRequest) -> Result<Self, InvalidInput> {
        let mut violations = Violations::new();
        let reference = request.reference.trim();
        violations.require(
            !reference.is_empty() && reference.len() <= MAX_REFERENCE_LEN,
            "reference",
            Problem::RequiredUpTo {
                max: MAX_REFERENCE_LEN,
            },
        );
        for (field, text) in [
            ("reference", &request.reference),
            ("value", &request.value),
            ("phone_number", &request.phone_number),
            ("email", &request.email),
            ("name", &request.name),
        ] {
            refuse_nul(field, text, &mut violations);
        }
        violations.finish(PurchaseCommand {
            reference: reference.to_owned(),
            value: request.value.trim().to_owned(),
            amount: request.amount,
            phone_number: request.phone_number.trim().to_owned(),
            email: request.email.trim().to_owned(),
            name: request.name.trim().to_owned(),
        })
    }
}

/// A delivered PIN as the PIN API's purchase answer.
fn delivery_to_pb(delivery: Delivery) -> pb::PurchaseResponse {
    let Delivery {
        sale,
        pin,
        notification,
        ..
    } = delivery;
    pb::PurchaseResponse {
        purchase: Some(pb::Purchase {
            id: sale.id,
            reference: sale.reference,
            product_value: sale.product_value,
            amount: sale.amount,
            currency: sale.currency.code().to_owned(),
            state: "Success".into(),
            message: format!("Your Pin number is '{pin}'"),
            pin,
            serial: sale.serial,
            credits_consumed: sale.amount,
            credits_available: sale.credits_available,
            phone_number: sale.phone_number,
            email: sale.email,
            name: sale.name,
            notification: Some(pb::Notification {
                sms: notification.sms,
                email_subject: notification.email_subject,
                email_body: notification.email_body,
            }),
            create_time: Some(timestamp_to_pb(sale.created_at)),
        }),
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
        let limit =
            page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE).in_locale(caller.locale)?;
        let tokens = PageTokens::new(&caller.tenant, "products");
        let after = tokens
            .decode(&request.page_token)
            .in_locale(caller.locale)?;
        let page = self
            .store
            .list_products(&caller.tenant, true, after.as_deref(), limit)
            .await
            .in_locale(caller.locale)?;
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
        let result = match PurchaseCommand::try_from(request.into_inner()) {
            Ok(command) => {
                self.vouchers
                    .purchase(&caller.tenant, command, &request_id)
                    .await
            }
            Err(invalid) => Err(AppError::from(invalid)),
        };
        let outcome = match &result {
            Ok(delivery) if delivery.replayed => "replayed",
            Ok(_) => "sold",
            Err(AppError::Duplicate { .. }) => "duplicate",
            Err(
                AppError::Invalid(_)
                | AppError::StateRefused { .. }
                | AppError::Store(StoreError::OutOfStock | StoreError::InsufficientCredits),
            ) => "refused",
            Err(_) => "error",
        };
        self.metrics.purchases.with_label_values(&[outcome]).inc();
        Ok(Response::new(delivery_to_pb(
            result.in_locale(caller.locale)?,
        )))
    }

    async fn get_purchase(
        &self,
        request: Request<pb::GetPurchaseRequest>,
    ) -> Result<Response<pb::PurchaseResponse>, Status> {
        let caller = self
            .auth
            .authenticate(request.metadata(), Scope::Purchase)
            .await?;
        let reference = crate::domain::text::parse_id("reference", &request.into_inner().reference)
            .in_locale(caller.locale)?;
        if reference.is_empty() {
            return Err(ApiError::invalid(
                InvalidInput::field("reference", Problem::Required),
                caller.locale,
            )
            .into());
        }
        let delivery = self
            .vouchers
            .find(&caller.tenant, &reference)
            .await
            .in_locale(caller.locale)?;
        Ok(Response::new(delivery_to_pb(delivery)))
    }
}
