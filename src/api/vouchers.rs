//! VoucherService: product listing. Purchases land with the voucher issue.

use tonic::{Request, Response, Status};

use super::{
    convert::voucher::product_to_pb,
    paging::{page_size, PageTokens},
    ApiError, Authenticator,
};
use crate::{
    domain::Scope,
    pb::{self, voucher_service_server::VoucherService},
    store::Store,
};

const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 500;

/// The VoucherService handlers.
#[derive(Clone, Debug)]
pub struct VoucherApi {
    auth: Authenticator,
    store: Store,
}

impl VoucherApi {
    pub fn new(auth: Authenticator, store: Store) -> Self {
        Self { auth, store }
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
        self.auth
            .authenticate(request.metadata(), Scope::Purchase)
            .await?;
        Err(ApiError::Unimplemented("Purchase (the voucher issue)").into())
    }

    async fn get_purchase(
        &self,
        request: Request<pb::GetPurchaseRequest>,
    ) -> Result<Response<pb::PurchaseResponse>, Status> {
        self.auth
            .authenticate(request.metadata(), Scope::Purchase)
            .await?;
        Err(ApiError::Unimplemented("GetPurchase (the voucher issue)").into())
    }
}
