//! CouponService: authentication is in place for every RPC; the rules engine, the redemption
//! ledger and the event stream land with their own issues and answer UNIMPLEMENTED until then.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{ApiError, Authenticator};
use crate::{
    domain::Scope,
    pb::{self, coupon_service_server::CouponService},
};

/// The CouponService handlers.
#[derive(Clone, Debug)]
pub struct CouponApi {
    auth: Authenticator,
}

impl CouponApi {
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }

    /// Authenticates, then reports that `rpc` has not landed yet.
    async fn not_yet<T, R>(
        &self,
        request: &Request<T>,
        scope: Scope,
        rpc: &'static str,
    ) -> Result<R, Status> {
        self.auth.authenticate(request.metadata(), scope).await?;
        Err(ApiError::Unimplemented(rpc).into())
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RedemptionEvent, Status>> + Send>>;

#[tonic::async_trait]
impl CouponService for CouponApi {
    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        self.not_yet(&request, Scope::Read, "Validate").await
    }

    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        self.not_yet(&request, Scope::Read, "Apply").await
    }

    async fn list_applicable(
        &self,
        request: Request<pb::ListApplicableRequest>,
    ) -> Result<Response<pb::ListApplicableResponse>, Status> {
        self.not_yet(&request, Scope::Read, "ListApplicable").await
    }

    async fn redeem(
        &self,
        request: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemResponse>, Status> {
        self.not_yet(&request, Scope::Redeem, "Redeem").await
    }

    async fn confirm(
        &self,
        request: Request<pb::ConfirmRequest>,
    ) -> Result<Response<pb::ConfirmResponse>, Status> {
        self.not_yet(&request, Scope::Redeem, "Confirm").await
    }

    async fn revert(
        &self,
        request: Request<pb::RevertRequest>,
    ) -> Result<Response<pb::RevertResponse>, Status> {
        self.not_yet(&request, Scope::Redeem, "Revert").await
    }

    async fn get_redemption(
        &self,
        request: Request<pb::GetRedemptionRequest>,
    ) -> Result<Response<pb::Redemption>, Status> {
        self.not_yet(&request, Scope::Read, "GetRedemption").await
    }

    async fn list_redemptions(
        &self,
        request: Request<pb::ListRedemptionsRequest>,
    ) -> Result<Response<pb::ListRedemptionsResponse>, Status> {
        self.not_yet(&request, Scope::Read, "ListRedemptions").await
    }

    type WatchRedemptionsStream = EventStream;

    async fn watch_redemptions(
        &self,
        request: Request<pb::WatchRedemptionsRequest>,
    ) -> Result<Response<Self::WatchRedemptionsStream>, Status> {
        self.not_yet(&request, Scope::Read, "WatchRedemptions")
            .await
    }
}
