//! The whole suite: for SQLite and then PostgreSQL, a fresh database, tenants made with the
//! command line, data made through AdminService, the release binary started on free ports, every
//! scenario loaded, the storage ceilings beside them; then the no-op ceiling at the same
//! concurrencies; then the report.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, TransactionTrait};

use crate::{
    ceiling::{self, Work},
    connect_many,
    load::{LoadSettings, Measurement},
    load_scenario,
    processes::{self, Running},
    report::{self, Point, Report, Row},
    scenario::{Plan, Scenario},
    setup::{self, Fixture, AUTOMATIC_MATCHING, AUTOMATIC_PROMOTIONS, REDEEM_COUPONS},
    stats::{self, COUPON_REDEMPTIONS, OTHER_REDEMPTIONS, STATS_CODE},
    watch,
};

/// Options of `coupon-bench suite`.
#[derive(Debug, clap::Args)]
pub struct SuiteArgs {
    /// Where `benchmarks.md`, `benchmarks.svg` and `benchmarks.json` are written.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// A PostgreSQL URL the suite may create and drop its own `cs_bench_*` database through.
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Leave PostgreSQL out.
    #[arg(long)]
    no_postgres: bool,
    /// Leave SQLite out.
    #[arg(long)]
    no_sqlite: bool,
    /// Measured time of each run.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up of each run.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Concurrencies of the Validate sweep drawn in the chart.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    sweep: Vec<usize>,
    /// Watchers of the watch scenario, split over two server processes.
    #[arg(long, default_value_t = 200)]
    watchers: usize,
    /// Coupons of ListApplicable's tenant.
    #[arg(long, default_value_t = 1_000)]
    list_coupons: usize,
    /// PIN stocks of the two purchase runs.
    #[arg(long, value_delimiter = ',', default_value = "2000,200000")]
    pin_stocks: Vec<usize>,
    /// Run only the GetCouponStats measurement against a million other redemptions (the
    /// report then holds its rows alone).
    #[arg(long)]
    only_coupon_stats: bool,
}

/// Concurrency of the scenarios (the measurements used the same).
const VALIDATE_IN_FLIGHT: usize = 64;
const APPLY_IN_FLIGHT: usize = 64;
const LIST_IN_FLIGHT: usize = 16;
const WRITE_IN_FLIGHT: usize = 32;
const WATCH_WRITERS: usize = 8;
/// HTTP/2 connections per run (calls beyond this share connections).
const CONNECTIONS: usize = 16;
/// The service's default pool, which the SQLite ceiling loop uses too.
const SERVICE_POOL: u32 = 16;

struct Context_ {
    args: SuiteArgs,
    scratch: Scratch,
    captures: PathBuf,
    report: Report,
}

/// A directory for logs, captured answers and scripts, removed when the suite ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("coupon-bench-{}", run_id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn settings(args: &SuiteArgs, concurrency: usize, max_calls: Option<u64>) -> LoadSettings {
    LoadSettings {
        concurrency,
        warmup: args.warmup,
        duration: args.duration,
        max_calls,
    }
}

async fn measure(
    addr: std::net::SocketAddr,
    token: &str,
    scenario: Scenario,
    plan: Plan,
    settings: &LoadSettings,
    captures: Option<&Path>,
) -> anyhow::Result<Measurement> {
    let channels = connect_many(addr, CONNECTIONS.min(settings.concurrency)).await?;
    let (measurement, capture) = load_scenario(channels, token, scenario, plan, settings).await?;
    if let (Some(dir), Some(bytes)) = (captures, capture.take()) {
        let path = dir.join(scenario.capture_file());
        if !path.exists() {
            std::fs::write(path, bytes)?;
        }
    }
    eprintln!("  {}", report::one_line(scenario.name(), &measurement));
    Ok(measurement)
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

fn plan_for(scenario: Scenario, fixture: &Fixture, product: Option<&(String, i64, usize)>) -> Plan {
    let codes = match scenario {
        Scenario::Validate => vec![fixture.validate_code.clone()],
        Scenario::Apply | Scenario::ApplySerial => fixture.apply_codes.clone(),
        Scenario::Redeem => fixture.redeem_codes.clone(),
        Scenario::RedeemHot => vec![fixture.hot_code.clone()],
        Scenario::CouponStats => vec![STATS_CODE.to_owned()],
        Scenario::ListApplicable | Scenario::Purchase => vec![],
    };
    Plan {
        codes,
        product_value: product.map(|p| p.0.clone()).unwrap_or_default(),
        product_amount: product.map(|p| p.1).unwrap_or_default(),
        run_id: run_id(),
    }
}

/// Runs one database's part of the suite; returns the rows whose ceiling is the no-op server,
/// to be completed once it has run.
async fn database_part(ctx: &mut Context_, database: &str, url: &str) -> anyhow::Result<()> {
    eprintln!("{database}: setting up");
    let logs = ctx.scratch.path().join(format!("{database}-server.log"));
    if ctx.args.only_coupon_stats {
        let token = processes::create_tenant(url, "bench")?;
        let service = processes::start_service(url, true, &logs)?;
        return coupon_stats_part(ctx, database, url, service.addr, &token).await;
    }
    let token = processes::create_tenant(url, "bench")?;
    let list_token = processes::create_tenant(url, "bench-list")?;
    let automatic_token = processes::create_tenant(url, "bench-automatic")?;
    let service = processes::start_service(url, true, &logs)?;
    let idle_at_start = service.rss_kib();
    let admin_channel = connect_many(service.addr, 1).await?.remove(0);
    let fixture = setup::create(&admin_channel, &token, &ctx.args.pin_stocks).await?;
    let list_started = Instant::now();
    setup::create_catalogue(&admin_channel, &list_token, ctx.args.list_coupons).await?;
    setup::create_automatic(
        &admin_channel,
        &automatic_token,
        &fixture.apply_codes,
        AUTOMATIC_PROMOTIONS,
    )
    .await?;
    ctx.report.facts.push((
        format!("{database}: setup through AdminService"),
        format!(
            "{} coupons and {} PINs in {:.1} s; {} ListApplicable coupons and {} automatic promotions in {:.1} s",
            4 + REDEEM_COUPONS,
            ctx.args.pin_stocks.iter().sum::<usize>(),
            fixture.setup_time.as_secs_f64(),
            ctx.args.list_coupons,
            AUTOMATIC_PROMOTIONS,
            list_started.elapsed().as_secs_f64()
        ),
    ));
    ctx.report.facts.push((
        format!("{database}: start to listening"),
        format!("{} ms", service.startup.as_millis()),
    ));
    let idle = service.rss_kib();
    let args = &ctx.args;
    let captures = Some(ctx.captures.as_path());
    let addr = service.addr;
    let mut rows = Vec::new();

    eprintln!("{database}: unary scenarios");
    for &c in &args.sweep {
        let m = measure(
            addr,
            &token,
            Scenario::Validate,
            plan_for(Scenario::Validate, &fixture, None),
            &settings(args, c, None),
            captures,
        )
        .await?;
        ctx.report.sweep.push(Point {
            series: format!("Validate, service, {database}"),
            concurrency: c,
            throughput: m.ok_per_second,
            p99_ms: m.p99_ms,
        });
        if c == 1 || c == VALIDATE_IN_FLIGHT {
            rows.push(row("validate", database, c, m, ""));
        }
    }
    let mut apply_throughput = None;
    for (scenario, c) in [
        (Scenario::Apply, APPLY_IN_FLIGHT),
        (Scenario::ApplySerial, 1),
    ] {
        let m = measure(
            addr,
            &token,
            scenario,
            plan_for(scenario, &fixture, None),
            &settings(args, c, None),
            captures,
        )
        .await?;
        if scenario == Scenario::Apply {
            apply_throughput = Some(m.ok_per_second);
        }
        rows.push(row(
            scenario.name(),
            database,
            c,
            m,
            "20 lines, 2 stacked codes",
        ));
    }
    // The same Apply for a tenant that also has automatic promotions, against the run above:
    // the promotions that cannot match must cost nothing.
    let m = measure(
        addr,
        &automatic_token,
        Scenario::Apply,
        plan_for(Scenario::Apply, &fixture, None),
        &settings(args, APPLY_IN_FLIGHT, None),
        None,
    )
    .await?;
    let ratio = apply_throughput
        .filter(|t| *t > 0.0)
        .map(|t| format!("{:.2}", m.ok_per_second / t))
        .unwrap_or_else(|| "?".to_owned());
    rows.push(row(
        "apply-automatic",
        database,
        APPLY_IN_FLIGHT,
        m,
        &format!(
            "as apply, with {AUTOMATIC_PROMOTIONS} automatic promotions of which \
             {AUTOMATIC_MATCHING} match; {ratio} x apply's throughput (0 automatic promotions)"
        ),
    ));
    let m = measure(
        addr,
        &list_token,
        Scenario::ListApplicable,
        plan_for(Scenario::ListApplicable, &fixture, None),
        &settings(args, LIST_IN_FLIGHT, None),
        captures,
    )
    .await?;
    rows.push(row(
        "list-applicable",
        database,
        LIST_IN_FLIGHT,
        m,
        &format!("{} coupons", args.list_coupons),
    ));

    let mut write_rows = Vec::new();
    for (scenario, note) in [
        (
            Scenario::Redeem,
            format!("{REDEEM_COUPONS} coupons round robin, new orders"),
        ),
        (Scenario::RedeemHot, "one coupon".to_owned()),
    ] {
        let m = measure(
            addr,
            &token,
            scenario,
            plan_for(scenario, &fixture, None),
            &settings(args, WRITE_IN_FLIGHT, None),
            captures,
        )
        .await?;
        write_rows.push((
            scenario,
            row(scenario.name(), database, WRITE_IN_FLIGHT, m, &note),
        ));
    }
    // The smallest stock bounds every purchase run, so both stocks sell the same number of PINs.
    let smallest = args.pin_stocks.iter().copied().min().unwrap_or(0);
    let purchase_budget = (smallest as u64 * 3 / 4).max(1);
    for product in &fixture.products {
        let m = measure(
            addr,
            &token,
            Scenario::Purchase,
            plan_for(Scenario::Purchase, &fixture, Some(product)),
            &settings(args, WRITE_IN_FLIGHT, Some(purchase_budget)),
            captures,
        )
        .await?;
        write_rows.push((
            Scenario::Purchase,
            row(
                "purchase",
                database,
                WRITE_IN_FLIGHT,
                m,
                &format!(
                    "{} PINs in stock, at most {purchase_budget} sold",
                    product.2
                ),
            ),
        ));
    }
    let loaded = service.rss_kib();
    let peak = peak_rss_kib(&service);
    ctx.report.facts.push((
        format!("{database}: server memory"),
        format!(
            "RSS idle after start {} MiB, idle after setup {} MiB, after the unary and write runs {} MiB, peak {} MiB",
            mib(idle_at_start),
            mib(idle),
            mib(loaded),
            mib(peak)
        ),
    ));

    let tenant_id = ceiling::tenant_of(url, &fixture.hot_code).await?;
    let (drift, sold_twice) = ceiling::ledger_integrity(url, &tenant_id, &fixture.hot_code).await?;
    ctx.report.servers.push(report::ServerFacts {
        database: database.to_owned(),
        startup_ms: service.startup.as_millis(),
        idle_rss_kib: idle_at_start,
        peak_rss_kib: peak,
        hot_counter_drift: Some(drift),
        pins_sold_twice: Some(sold_twice),
    });

    eprintln!("{database}: watch");
    let second = processes::start_service(
        url,
        false,
        &ctx.scratch.path().join(format!("{database}-second.log")),
    )?;
    let watch_settings = settings(args, WATCH_WRITERS, None);
    let servers = [service.addr, second.addr];
    let result = watch::run(
        &servers,
        &token,
        args.watchers,
        plan_for(Scenario::Redeem, &fixture, None),
        &watch_settings,
    )
    .await?;
    rows.push(watch_row(
        database,
        &result,
        if database == "SQLite" {
            "a process learns of the other's commits only by polling (every 1 s by default)"
        } else {
            ""
        },
    ));
    if database == "PostgreSQL" {
        let held = hold_elsewhere(&args.postgres_url, args.warmup + Duration::from_millis(500));
        let result = watch::run(
            &servers,
            &token,
            args.watchers,
            plan_for(Scenario::Redeem, &fixture, None),
            &watch_settings,
        )
        .await?;
        let held_for = held.await.context("holding task")??;
        rows.push(watch_row(
            database,
            &result,
            &format!(
                "while a transaction in another database of the cluster stayed open {:.1} s",
                held_for.as_secs_f64()
            ),
        ));
    }
    drop(second);

    eprintln!("{database}: storage ceilings");
    let ceiling_settings = settings(args, WRITE_IN_FLIGHT, None);
    let largest = fixture
        .products
        .iter()
        .max_by_key(|p| p.2)
        .map(|p| p.0.clone())
        .unwrap_or_default();
    let mut purchase_ceiling: Option<(String, Measurement)> = None;
    for (scenario, mut r) in write_rows {
        // Every purchase row shares one ceiling: the claim costs the same whatever the stock.
        if let (Scenario::Purchase, Some(c)) = (scenario, &purchase_ceiling) {
            r.ceiling = Some(c.clone());
            rows.push(r);
            continue;
        }
        let work = match scenario {
            Scenario::Redeem => Work::Redeem {
                coupons: REDEEM_COUPONS,
                hot: None,
            },
            Scenario::RedeemHot => Work::Redeem {
                coupons: 1,
                hot: Some(fixture.hot_code.clone()),
            },
            _ => Work::Purchase {
                value: largest.clone(),
            },
        };
        let (kind, c) = if database == "PostgreSQL" {
            // The service reaches PostgreSQL through a pool of 16 connections, which on 2 cores
            // can beat 32 clients; the ceiling is the better of both.
            let mut best: Option<(usize, Measurement)> = None;
            for clients in [WRITE_IN_FLIGHT, SERVICE_POOL as usize] {
                let m = ceiling::pgbench(
                    url,
                    &tenant_id,
                    &work,
                    clients,
                    args.duration,
                    ctx.scratch.path(),
                )?;
                if best
                    .as_ref()
                    .is_none_or(|(_, b)| m.throughput > b.throughput)
                {
                    best = Some((clients, m));
                }
            }
            let (clients, m) = best.context("pgbench ran")?;
            (format!("storage (pgbench, {clients} clients)"), m)
        } else {
            let mut s = ceiling_settings.clone();
            if matches!(work, Work::Purchase { .. }) {
                s.max_calls = Some(purchase_budget);
            }
            (
                "storage (SQLite loop)".to_owned(),
                ceiling::sqlite_loop(url, &tenant_id, &work, &s, SERVICE_POOL).await?,
            )
        };
        eprintln!("  ceiling {}", report::one_line(scenario.name(), &c));
        if scenario == Scenario::Purchase {
            purchase_ceiling = Some((kind.clone(), c.clone()));
        }
        r.ceiling = Some((kind, c));
        rows.push(r);
    }
    ctx.report.rows.extend(rows);
    // Last, because it adds a million redemptions that no other scenario should meet.
    coupon_stats_part(ctx, database, url, service.addr, &token).await?;
    drop(service);
    Ok(())
}

/// GetCouponStats of a coupon with a few hundred redemptions, one call at a time, after a
/// million redemptions of other coupons were added; its ceiling is the same call before them.
async fn coupon_stats_part(
    ctx: &mut Context_,
    database: &str,
    url: &str,
    addr: std::net::SocketAddr,
    token: &str,
) -> anyhow::Result<()> {
    eprintln!("{database}: coupon stats against the size of the ledger");
    let channel = connect_many(addr, 1).await?.remove(0);
    let serial = settings(&ctx.args, 1, None);
    let result = stats::run(&channel, token, url, |plan| {
        measure(addr, token, Scenario::CouponStats, plan, &serial, None)
    })
    .await?;
    let mut r = row(
        Scenario::CouponStats.name(),
        database,
        1,
        result.after,
        &format!(
            "a coupon with {COUPON_REDEMPTIONS} redemptions, measured after {OTHER_REDEMPTIONS} \
             redemptions of other coupons (half of its tenant's, half another's) were added in \
             {:.0} s; the ceiling is the same call before them",
            result.seed_time.as_secs_f64()
        ),
    );
    r.ceiling = Some((
        "same call, without the other redemptions".to_owned(),
        result.before,
    ));
    ctx.report.rows.push(r);
    Ok(())
}

fn row(scenario: &str, database: &str, concurrency: usize, m: Measurement, note: &str) -> Row {
    Row {
        scenario: scenario.to_owned(),
        database: database.to_owned(),
        concurrency,
        service: m,
        ceiling: None,
        note: note.to_owned(),
    }
}

fn watch_row(database: &str, result: &watch::WatchResult, extra: &str) -> Row {
    let note = format!(
        "{} watchers on 2 processes, {:.0} events/s written by {WATCH_WRITERS} writers, {} deliveries; latency is commit to delivery{}{}",
        result.watchers,
        result.writes.ok_per_second,
        result.delivery.calls,
        if extra.is_empty() { "" } else { ", " },
        extra
    );
    let mut delivery = result.delivery.clone();
    delivery.ok_per_second = delivery.throughput;
    row("watch", database, result.watchers, delivery, &note)
}

/// Opens a writing transaction in a scratch database of the same cluster after `delay`, keeps it
/// open 3 s, rolls it back and drops the database; answers how long it was held.
fn hold_elsewhere(
    admin_url: &str,
    delay: Duration,
) -> tokio::task::JoinHandle<anyhow::Result<Duration>> {
    let admin_url = admin_url.to_owned();
    tokio::spawn(async move {
        let name = format!("cs_bench_other_{}", run_id());
        let admin = Database::connect(&admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        let other_url = replace_database(&admin_url, &name)?;
        tokio::time::sleep(delay).await;
        let held_for = {
            let other = Database::connect(&other_url).await?;
            let txn = other.begin().await?;
            txn.execute_unprepared("CREATE TABLE unrelated_work (n integer)")
                .await?;
            let started = Instant::now();
            tokio::time::sleep(Duration::from_secs(3)).await;
            txn.rollback().await?;
            let held_for = started.elapsed();
            other.close().await.ok();
            held_for
        };
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        admin.close().await.ok();
        Ok(held_for)
    })
}

fn replace_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (prefix, _) = url.rsplit_once('/').context("database URL has no path")?;
    Ok(format!("{prefix}/{name}"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.0}", k as f64 / 1024.0))
        .unwrap_or_else(|| "?".to_owned())
}

fn peak_rss_kib(process: &Running) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", process.pid())).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn noop_part(ctx: &mut Context_) -> anyhow::Result<()> {
    eprintln!("no-op ceiling");
    let noop = processes::start_noop(&ctx.captures)?;
    let args = &ctx.args;
    let plan = Plan {
        codes: vec!["NOOP".to_owned(), "NOOP2".to_owned()],
        product_value: "noop".to_owned(),
        product_amount: 1,
        run_id: run_id(),
    };
    for &c in &args.sweep {
        let m = measure(
            noop.addr,
            "noop",
            Scenario::Validate,
            plan.clone(),
            &settings(args, c, None),
            None,
        )
        .await?;
        ctx.report.sweep.push(Point {
            series: "Validate, no-op ceiling".to_owned(),
            concurrency: c,
            throughput: m.ok_per_second,
            p99_ms: m.p99_ms,
        });
        attach_noop(&mut ctx.report.rows, "validate", c, &m);
    }
    for (scenario, c) in [
        (Scenario::Apply, APPLY_IN_FLIGHT),
        (Scenario::ApplySerial, 1),
        (Scenario::ListApplicable, LIST_IN_FLIGHT),
    ] {
        let m = measure(
            noop.addr,
            "noop",
            scenario,
            plan.clone(),
            &settings(args, c, None),
            None,
        )
        .await?;
        attach_noop(&mut ctx.report.rows, scenario.name(), c, &m);
    }
    for scenario in [Scenario::Redeem, Scenario::Purchase] {
        let m = measure(
            noop.addr,
            "noop",
            scenario,
            plan.clone(),
            &settings(args, WRITE_IN_FLIGHT, None),
            None,
        )
        .await?;
        ctx.report.facts.push((
            format!(
                "no-op ceiling of {} at {WRITE_IN_FLIGHT} in flight",
                scenario.name()
            ),
            format!(
                "{:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms",
                m.ok_per_second, m.p50_ms, m.p99_ms
            ),
        ));
    }
    Ok(())
}

fn attach_noop(rows: &mut [Row], scenario: &str, concurrency: usize, m: &Measurement) {
    for row in rows
        .iter_mut()
        .filter(|r| r.scenario == scenario && r.concurrency == concurrency && r.ceiling.is_none())
    {
        row.ceiling = Some(("no-op".to_owned(), m.clone()));
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}

fn machine_facts() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "?".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| "?".to_owned());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".to_owned());
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".to_owned());
    vec![
        (
            "CPU".to_owned(),
            format!("{model}, {cores} cores shared by client and server"),
        ),
        ("memory".to_owned(), memory),
        (
            "kernel".to_owned(),
            read_trimmed("/proc/sys/kernel/osrelease"),
        ),
        ("commit".to_owned(), commit),
        (
            "load average at start".to_owned(),
            read_trimmed("/proc/loadavg"),
        ),
    ]
}

async fn postgres_version(url: &str) -> String {
    let Ok(db) = Database::connect(url).await else {
        return "?".to_owned();
    };
    let version = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT version() AS v",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<String>("", "v").ok())
        .unwrap_or_else(|| "?".to_owned());
    db.close().await.ok();
    version
}

/// Runs the suite and writes the report.
pub async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let scratch = Scratch::new()?;
    let captures = scratch.path().join("captures");
    std::fs::create_dir_all(&captures)?;
    let mut report = Report {
        machine: machine_facts(),
        command: "scripts/bench".to_owned(),
        settings: vec![
            (
                "warm-up, measured time per run".to_owned(),
                format!("{:?}, {:?}", args.warmup, args.duration),
            ),
            (
                "HTTP/2 connections per run".to_owned(),
                format!("up to {CONNECTIONS}"),
            ),
            (
                "service".to_owned(),
                "release build, default settings (pool 2 x cores + 2, SQLite WAL with synchronous=FULL)"
                    .to_owned(),
            ),
        ],
        ..Default::default()
    };
    if !args.no_postgres {
        report.machine.push((
            "PostgreSQL".to_owned(),
            postgres_version(&args.postgres_url).await,
        ));
    }
    let mut ctx = Context_ {
        args,
        scratch,
        captures,
        report,
    };
    if !ctx.args.no_sqlite {
        let url = format!(
            "sqlite://{}/bench.db?mode=rwc",
            ctx.scratch.path().display()
        );
        database_part(&mut ctx, "SQLite", &url).await?;
    }
    if !ctx.args.no_postgres {
        let name = format!("cs_bench_{}", run_id());
        let admin = Database::connect(&ctx.args.postgres_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        let url = replace_database(&ctx.args.postgres_url, &name)?;
        let outcome = database_part(&mut ctx, "PostgreSQL", &url).await;
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .ok();
        admin.close().await.ok();
        outcome?;
    }
    if !ctx.args.only_coupon_stats {
        noop_part(&mut ctx).await?;
    }
    ctx.report.machine.push((
        "load average at end".to_owned(),
        read_trimmed("/proc/loadavg"),
    ));
    ctx.report.elapsed_seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&ctx.args.out)?;
    std::fs::write(
        ctx.args.out.join("benchmarks.md"),
        report::markdown(&ctx.report),
    )?;
    std::fs::write(
        ctx.args.out.join("benchmarks.svg"),
        report::svg(
            &ctx.report,
            "Validate: service beside the no-op ceiling, same run",
        ),
    )?;
    std::fs::write(
        ctx.args.out.join("benchmarks.json"),
        serde_json::to_string_pretty(&ctx.report)?,
    )?;
    eprintln!(
        "wrote {} in {:.0} s",
        ctx.args.out.join("benchmarks.md").display(),
        ctx.report.elapsed_seconds
    );
    Ok(())
}
