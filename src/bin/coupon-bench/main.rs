//! `coupon-bench`: the load generator and benchmark suite of coupon-service.
//!
//! `coupon-bench suite` builds its own data through the public API, starts the release binaries
//! on free ports, loads them scenario by scenario beside their same-run ceilings (a no-op tonic
//! server with the same contract; the minimal SQL for the same durable work) and writes
//! `docs/benchmarks.md` and `docs/benchmarks.svg`. `coupon-bench run` loads one running server
//! with one scenario; `coupon-bench noop-server` is the framework ceiling.

#![forbid(unsafe_code)]

mod ceiling;
mod load;
mod noop;
mod processes;
mod report;
mod scenario;
mod setup;
mod stats;
mod suite;
mod watch;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use clap::{Parser, Subcommand};
use tonic::transport::{Channel, Endpoint};

use crate::{
    load::LoadSettings,
    scenario::{Bearer, Capture, Plan, Scenario},
};

#[derive(Debug, Parser)]
#[command(
    name = "coupon-bench",
    about = "Load generator and benchmark suite for coupon-service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load one running server with one scenario and print the measurement.
    Run(RunArgs),
    /// Serve the no-op ceiling with answers captured by earlier runs.
    NoopServer {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Directory of captured answers (`<rpc>.pb`).
        #[arg(long)]
        captures: PathBuf,
    },
    /// Run the whole suite and write the report.
    Suite(suite::SuiteArgs),
    /// Make the suite's coupons (and products with PINs) for a tenant of a running server, e.g.
    /// before profiling it under `run`.
    Setup {
        /// The server's gRPC address.
        #[arg(long)]
        addr: SocketAddr,
        /// Bearer token of a tenant with the admin scope.
        #[arg(long)]
        token: String,
        /// PIN stocks of the products to make (none by default).
        #[arg(long, value_delimiter = ',')]
        pin_stocks: Vec<usize>,
        /// Make this many ListApplicable coupons instead of the scenario coupons.
        #[arg(long)]
        catalogue: Option<usize>,
        /// Make Apply's two codes and this many automatic promotions (two of which match the
        /// Apply cart) instead of the scenario coupons.
        #[arg(long, conflicts_with = "catalogue")]
        automatic: Option<usize>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The server's gRPC address.
    #[arg(long)]
    addr: SocketAddr,
    /// Bearer token of the tenant.
    #[arg(long)]
    token: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Calls in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// HTTP/2 connections the calls are spread over (at most one per call in flight).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Unmeasured time before the measurement.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Measured time.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop after this many calls, warm-up included.
    #[arg(long)]
    requests: Option<u64>,
    /// Comma-separated coupon codes the requests use.
    #[arg(long, value_delimiter = ',')]
    codes: Vec<String>,
    /// Product value (slug) for purchase.
    #[arg(long, default_value = "")]
    product_value: String,
    /// Product price for purchase.
    #[arg(long, default_value_t = 0)]
    product_amount: i64,
    /// Write the first OK answer here (for the no-op server).
    #[arg(long)]
    capture_dir: Option<PathBuf>,
    /// Print the measurement as JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One HTTP/2 connection per channel, each connected before the load starts.
pub async fn connect_many(addr: SocketAddr, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(connections.max(1));
    for _ in 0..connections.max(1) {
        channels.push(
            Endpoint::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(channels)
}

/// Loads `channels` with `scenario` and returns the measurement and the captured first answer.
pub async fn load_scenario(
    channels: Vec<Channel>,
    token: &str,
    scenario: Scenario,
    plan: Plan,
    settings: &LoadSettings,
) -> anyhow::Result<(load::Measurement, Capture)> {
    let auth = Bearer::new(token)?;
    let capture = Capture::default();
    let plan = Arc::new(plan);
    let channels = Arc::new(channels);
    let measurement = {
        let capture = capture.clone();
        load::run(settings, move |worker, sequence| {
            let channel = channels[worker % channels.len()].clone();
            let auth = auth.clone();
            let plan = plan.clone();
            let capture = capture.clone();
            async move { scenario::call(scenario, channel, auth, &plan, sequence, &capture).await }
        })
        .await?
    };
    Ok((measurement, capture))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let channels = connect_many(args.addr, args.connections.min(args.concurrency)).await?;
    let settings = LoadSettings {
        concurrency: args.concurrency,
        warmup: args.warmup,
        duration: args.duration,
        max_calls: args.requests,
    };
    let plan = Plan {
        codes: args.codes,
        product_value: args.product_value,
        product_amount: args.product_amount,
        run_id: uuid::Uuid::new_v4().simple().to_string(),
    };
    let (measurement, capture) =
        load_scenario(channels, &args.token, args.scenario, plan, &settings).await?;
    if let (Some(dir), Some(bytes)) = (&args.capture_dir, capture.take()) {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(args.scenario.capture_file()), bytes)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&measurement)?);
    } else {
        println!("{}", report::one_line(args.scenario.name(), &measurement));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args).await,
        Command::NoopServer { listen, captures } => noop::serve(listen, &captures).await,
        Command::Suite(args) => suite::run(args).await,
        Command::Setup {
            addr,
            token,
            pin_stocks,
            catalogue,
            automatic,
        } => {
            let channel = connect_many(addr, 1).await?.remove(0);
            if let Some(count) = automatic {
                let codes = setup::apply_codes();
                setup::create_automatic(&channel, &token, &codes, count).await?;
                println!(
                    "apply: {}; {count} automatic promotions AUTO-0000..",
                    codes.join(",")
                );
            } else if let Some(count) = catalogue {
                setup::create_catalogue(&channel, &token, count).await?;
                println!("{count} ListApplicable coupons LIST-0000..");
            } else {
                let fixture = setup::create(&channel, &token, &pin_stocks).await?;
                println!(
                    "validate: {}; apply: {}; redeem: RDM-000..RDM-{:03}; hot: {}; products: {:?}",
                    fixture.validate_code,
                    fixture.apply_codes.join(","),
                    fixture.redeem_codes.len().saturating_sub(1),
                    fixture.hot_code,
                    fixture.products
                );
            }
            Ok(())
        }
    }
}
