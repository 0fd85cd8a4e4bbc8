//! The framework ceiling: a tonic server with the service's contract that does no work. Each RPC
//! the scenarios call answers with a real answer captured from the service (so the messages are
//! the same size); the others are UNIMPLEMENTED. Loaded by the same generator at the same
//! concurrency, it shows what HTTP/2, protobuf and tonic cost on this machine.

use std::{net::SocketAddr, path::Path, pin::Pin};

use anyhow::Context;
use coupon_service::pb::{
    self, coupon_service_server::CouponServiceServer, voucher_service_server::VoucherServiceServer,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio_stream::{wrappers::TcpListenerStream, Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::scenario::Scenario;

/// The captured answers.
#[derive(Default)]
struct Answers {
    validate: Option<pb::ValidateResponse>,
    apply: Option<pb::ApplyResponse>,
    list_applicable: Option<pb::ListApplicableResponse>,
    redeem: Option<pb::RedeemResponse>,
    purchase: Option<pb::PurchaseResponse>,
}

fn load<M: Message + Default>(dir: &Path, scenario: Scenario) -> anyhow::Result<Option<M>> {
    let path = dir.join(scenario.capture_file());
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(
        M::decode(bytes.as_slice()).with_context(|| format!("decoding {}", path.display()))?,
    ))
}

fn answer<M: Clone>(captured: &Option<M>) -> Result<Response<M>, Status> {
    captured
        .clone()
        .map(Response::new)
        .ok_or_else(|| Status::unimplemented("no captured answer for this RPC"))
}

/// The no-op CouponService and VoucherService.
pub struct NoopService {
    answers: std::sync::Arc<Answers>,
}

impl Clone for NoopService {
    fn clone(&self) -> Self {
        Self {
            answers: self.answers.clone(),
        }
    }
}

impl NoopService {
    /// Loads the answers captured in `dir`.
    pub fn from_captures(dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            answers: std::sync::Arc::new(Answers {
                validate: load(dir, Scenario::Validate)?,
                apply: load(dir, Scenario::Apply)?,
                list_applicable: load(dir, Scenario::ListApplicable)?,
                redeem: load(dir, Scenario::Redeem)?,
                purchase: load(dir, Scenario::Purchase)?,
            }),
        })
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RedemptionEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::coupon_service_server::CouponService for NoopService {
    async fn validate(
        &self,
        _: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        answer(&self.answers.validate)
    }

    async fn apply(
        &self,
        _: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        answer(&self.answers.apply)
    }

    async fn list_applicable(
        &self,
        _: Request<pb::ListApplicableRequest>,
    ) -> Result<Response<pb::ListApplicableResponse>, Status> {
        answer(&self.answers.list_applicable)
    }

    async fn redeem(
        &self,
        _: Request<pb::RedeemRequest>,
    ) -> Result<Response<pb::RedeemResponse>, Status> {
        answer(&self.answers.redeem)
    }

    async fn confirm(
        &self,
        _: Request<pb::ConfirmRequest>,
    ) -> Result<Response<pb::ConfirmResponse>, Status> {
        Err(Status::unimplemented("not part of any scenario"))
    }

    async fn revert(
        &self,
        _: Request<pb::RevertRequest>,
    ) -> Result<Response<pb::RevertResponse>, Status> {
        Err(Status::unimplemented("not part of any scenario"))
    }

    async fn get_redemption(
        &self,
        _: Request<pb::GetRedemptionRequest>,
    ) -> Result<Response<pb::Redemption>, Status> {
        Err(Status::unimplemented("not part of any scenario"))
    }

    async fn list_redemptions(
        &self,
        _: Request<pb::ListRedemptionsRequest>,
    ) -> Result<Response<pb::ListRedemptionsResponse>, Status> {
        Err(Status::unimplemented("not part of any scenario"))
    }

    type WatchRedemptionsStream = EventStream;

    async fn watch_redemptions(
        &self,
        _: Request<pb::WatchRedemptionsRequest>,
    ) -> Result<Response<Self::WatchRedemptionsStream>, Status> {
        Err(Status::unimplemented("not part of any scenario"))
    }
}

#[tonic::async_trait]
impl pb::voucher_service_server::VoucherService for NoopService {
    async fn list_products(
        &self,
        _: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        Err(Status::unimplemented("not part of any scenario"))
    }

    async fn purchase(
        &self,
        _: Request<pb::PurchaseRequest>,
    ) -> Result<Response<pb::PurchaseResponse>, Status> {
        answer(&self.answers.purchase)
    }

    async fn get_purchase(
        &self,
        _: Request<pb::GetPurchaseRequest>,
    ) -> Result<Response<pb::PurchaseResponse>, Status> {
        Err(Status::unimplemented("not part of any scenario"))
    }
}

/// Serves the no-op services on `listen` until the process ends; prints `listening on ADDR`.
pub async fn serve(listen: SocketAddr, captures: &Path) -> anyhow::Result<()> {
    let service = NoopService::from_captures(captures)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("listening on {}", listener.local_addr()?);
    // The same accepted-socket treatment as the service: Nagle off on every connection.
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            stream.set_nodelay(true).ok();
        })
    });
    tonic::transport::Server::builder()
        .add_service(CouponServiceServer::new(service.clone()))
        .add_service(VoucherServiceServer::new(service))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
