//! The storage ceiling: the minimal SQL doing the same durable work as one Redeem or one
//! Purchase (the guarded counter or stock update, the ledger rows, the outbox row, one
//! transaction), on the service's own tables and indexes, at the same concurrency. PostgreSQL
//! runs it with pgbench; SQLite with an equivalent loop here (pgbench speaks only PostgreSQL),
//! connected with the same settings as the service.

use std::{collections::BTreeMap, path::Path, process::Command, sync::Arc, time::Duration};

use anyhow::{bail, Context};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};

use crate::load::{self, LoadSettings, Measurement};

/// Which durable work.
#[derive(Debug, Clone)]
pub enum Work {
    /// One Redeem of one of `coupons` codes `RDM-000`.. (or of `hot` when given).
    Redeem { coupons: usize, hot: Option<String> },
    /// One Purchase of product `value`.
    Purchase { value: String },
}

/// One statement with its placeholders written once: `{tenant}`, `{code}`, `{uid}` (unique per
/// transaction), `{product}`, `{txid}`, `{lock}`.
fn templates(work: &Work) -> Vec<&'static str> {
    match work {
        Work::Redeem { .. } => vec![
            "INSERT INTO redemptions (id, tenant_id, coupon_id, code, campaign_id, order_id, \
             customer_id, customer_email, discount, currency, status, request_id, fingerprint, \
             counted, customer_counted, created_at, updated_at, expires_at) VALUES ('rdm_' || {uid}, \
             {tenant}, (SELECT id FROM coupons WHERE tenant_id = {tenant} AND code = {code}), {code}, \
             NULL, 'ord_' || {uid}, 'cust_' || {uid}, '', 100, 'INR', 'pending', 'req', 'fp', TRUE, \
             FALSE, 0, 0, 1)",
            "INSERT INTO redemption_events (txid, tenant_id, kind, occurred_at, redemption_id, \
             coupon_id, code, campaign_id, order_id, customer_id, discount, currency, status, \
             request_id, created_at, updated_at, expires_at) VALUES ({txid}, {tenant}, \
             'redeemed_pending', 0, 'rdm_' || {uid}, 'cpn_ceiling', {code}, NULL, 'ord_' || {uid}, \
             'cust_' || {uid}, 100, 'INR', 'pending', 'req', 0, 0, 1)",
            "{notify}",
            "UPDATE coupons SET redemptions = redemptions + 1, budget_used = budget_used + 100 \
             WHERE tenant_id = {tenant} AND code = {code} AND (max_redemptions IS NULL OR \
             redemptions < max_redemptions) AND (budget IS NULL OR budget_used + 100 <= budget)",
        ],
        Work::Purchase { .. } => vec![
            "INSERT INTO purchases (id, tenant_id, reference, fingerprint, product_id, \
             product_value, amount, currency, pin_id, phone_number, email, name, \
             credits_available, request_id, created_at) VALUES ('pur_' || {uid}, {tenant}, \
             'ceiling_' || {uid}, 'fp', (SELECT id FROM voucher_products WHERE tenant_id = {tenant} \
             AND value = {product}), {product}, 10000, 'INR', '', '', '', '', 0, 'req', 0)",
            "UPDATE voucher_pins SET purchase_id = 'pur_' || {uid} WHERE purchase_id IS NULL AND \
             id = (SELECT id FROM voucher_pins WHERE product_id = (SELECT id FROM voucher_products \
             WHERE tenant_id = {tenant} AND value = {product}) AND purchase_id IS NULL AND \
             (expires_at IS NULL OR expires_at > 0) ORDER BY product_id, id LIMIT 1 {lock}) \
             RETURNING id",
            "UPDATE credit_balances SET balance = balance - 10000, consumed = consumed + 10000 \
             WHERE tenant_id = {tenant} AND balance >= 10000 RETURNING balance",
            "INSERT INTO credit_entries (id, tenant_id, amount, balance_after, kind, reference, \
             note, created_at) VALUES ('crd_' || {uid}, {tenant}, -10000, 0, 'purchase', \
             'pur_' || {uid}, 'ceiling', 0)",
            "UPDATE purchases SET pin_id = 'pin', credits_available = 0 WHERE id = 'pur_' || {uid}",
        ],
    }
}

/// The pgbench script of `work`.
fn pgbench_script(work: &Work) -> String {
    let code = match work {
        Work::Redeem { hot: Some(hot), .. } => format!("'{hot}'"),
        _ => "('RDM-' || lpad(CAST(:c AS text), 3, '0'))".to_owned(),
    };
    let coupons = match work {
        Work::Redeem { coupons, .. } => (*coupons).max(1),
        Work::Purchase { .. } => 1,
    };
    let mut script = format!(
        "\\set c random(0, {})\n\\set u random(1, 9000000000000000000)\nBEGIN;\n",
        coupons - 1
    );
    for template in templates(work) {
        let statement = template
            .replace("{notify}", "NOTIFY coupon_events")
            .replace("{tenant}", ":tenant")
            .replace("{code}", &code)
            .replace("{uid}", "CAST(:u AS text)")
            .replace("{product}", ":product")
            .replace("{txid}", "pg_current_xact_id()::text::bigint")
            .replace("{lock}", "FOR UPDATE SKIP LOCKED");
        script.push_str(&statement);
        script.push_str(";\n");
    }
    script.push_str("COMMIT;\n");
    script
}

/// Runs the PostgreSQL ceiling with pgbench on `database_url`.
pub fn pgbench(
    database_url: &str,
    tenant_id: &str,
    work: &Work,
    concurrency: usize,
    duration: Duration,
    scratch: &Path,
) -> anyhow::Result<Measurement> {
    let script_path = scratch.join("ceiling.sql");
    std::fs::write(&script_path, pgbench_script(work))?;
    let product = match work {
        Work::Purchase { value } => value.clone(),
        // pgbench refuses an empty definition; Redeem's script does not use it.
        Work::Redeem { .. } => "unused".to_owned(),
    };
    let output = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2"])
        .arg(format!("-c{concurrency}"))
        .arg(format!("-T{}", duration.as_secs().max(1)))
        .arg(format!("-Dtenant={tenant_id}"))
        .arg(format!("-Dproduct={product}"))
        .arg("-f")
        .arg(&script_path)
        .arg(database_url)
        .output()
        .context("running pgbench (apt-get install postgresql-client)")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let number_after = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    let tps = number_after("tps = ").context("pgbench printed no tps")?;
    let mean_ms = number_after("latency average = ").context("pgbench printed no latency")?;
    let processed = number_after("number of transactions actually processed:").unwrap_or(0.0);
    let failed = number_after("number of failed transactions:").unwrap_or(0.0);
    let mut statuses = BTreeMap::new();
    statuses.insert("OK".to_owned(), processed as u64);
    if failed > 0.0 {
        statuses.insert("FAILED".to_owned(), failed as u64);
    }
    Ok(Measurement {
        calls: processed as u64,
        statuses,
        seconds: duration.as_secs_f64(),
        throughput: tps,
        ok_per_second: tps,
        mean_ms,
        p50_ms: f64::NAN,
        p90_ms: f64::NAN,
        p99_ms: f64::NAN,
        p999_ms: f64::NAN,
        max_ms: f64::NAN,
    })
}

/// Renders a template for SQLite: numbered parameters ?1 tenant, ?2 code, ?3 uid, ?4 product.
fn sqlite_statement(template: &str) -> Option<(String, usize)> {
    if template == "{notify}" {
        return None;
    }
    let sql = template
        .replace("{tenant}", "?1")
        .replace("{code}", "?2")
        .replace("{uid}", "?3")
        .replace("{product}", "?4")
        .replace("{txid}", "0")
        .replace("{lock}", "");
    let highest = (1..=4).rev().find(|n| sql.contains(&format!("?{n}")))?;
    Some((sql, highest))
}

/// Runs the SQLite ceiling: `concurrency` workers each running the transaction in a loop, on a
/// pool of `pool_size` connections set up as the service sets up its own.
pub async fn sqlite_loop(
    database_url: &str,
    tenant_id: &str,
    work: &Work,
    settings: &LoadSettings,
    pool_size: u32,
) -> anyhow::Result<Measurement> {
    let mut options = ConnectOptions::new(database_url.to_owned());
    options
        .max_connections(pool_size)
        .sqlx_logging(false)
        // As the service's store connects (WAL, synchronous=NORMAL, 10 s busy timeout).
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    let db = Database::connect(options).await?;
    let statements: Arc<Vec<(String, usize)>> = Arc::new(
        templates(work)
            .into_iter()
            .filter_map(sqlite_statement)
            .collect(),
    );
    let tenant = tenant_id.to_owned();
    let work = work.clone();
    let measurement = {
        let db = db.clone();
        load::run(settings, move |_, sequence| {
            let db = db.clone();
            let statements = statements.clone();
            let code = match &work {
                Work::Redeem { hot: Some(hot), .. } => hot.clone(),
                Work::Redeem { coupons, .. } => {
                    format!("RDM-{:03}", sequence % (*coupons).max(1) as u64)
                }
                Work::Purchase { .. } => String::new(),
            };
            let product = match &work {
                Work::Purchase { value } => value.clone(),
                Work::Redeem { .. } => String::new(),
            };
            let values: Vec<sea_orm::Value> = vec![
                tenant.clone().into(),
                code.into(),
                format!("{}-{sequence}", uuid::Uuid::new_v4().simple()).into(),
                product.into(),
            ];
            async move {
                let transaction = async {
                    let txn = db.begin().await?;
                    for (sql, highest) in statements.iter() {
                        txn.execute_raw(Statement::from_sql_and_values(
                            DbBackend::Sqlite,
                            sql.as_str(),
                            values[..*highest].to_vec(),
                        ))
                        .await?;
                    }
                    txn.commit().await
                };
                match transaction.await {
                    Ok(()) => "OK",
                    Err(_) => "DB_ERROR",
                }
            }
        })
        .await?
    };
    db.close().await.ok();
    Ok(measurement)
}

/// The tenant id of the tenant owning coupon `code` (the ceiling writes rows for it).
pub async fn tenant_of(database_url: &str, code: &str) -> anyhow::Result<String> {
    let db = Database::connect(database_url).await?;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT tenant_id FROM coupons WHERE code = $1",
        _ => "SELECT tenant_id FROM coupons WHERE code = ?1",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            vec![code.into()],
        ))
        .await?
        .with_context(|| format!("no coupon {code}"))?;
    let tenant: String = row.try_get("", "tenant_id")?;
    db.close().await.ok();
    Ok(tenant)
}

/// Checks the ledger after the load: the hot coupon's usage counter minus its active
/// redemptions, and the purchases whose PIN is also another purchase's (or not marked as theirs).
pub async fn ledger_integrity(
    database_url: &str,
    tenant_id: &str,
    hot_code: &str,
) -> anyhow::Result<(i64, i64)> {
    let db = Database::connect(database_url).await?;
    let backend = db.get_database_backend();
    let number = |sql: &str, values: Vec<sea_orm::Value>| {
        let sql = match backend {
            DbBackend::Postgres => sql.to_owned(),
            _ => sql.replace('$', "?"),
        };
        let statement = Statement::from_sql_and_values(backend, sql, values);
        let db = &db;
        async move {
            let row = db
                .query_one_raw(statement)
                .await?
                .context("an aggregate returns a row")?;
            anyhow::Ok(row.try_get::<i64>("", "n")?)
        }
    };
    let drift = number(
        "SELECT c.redemptions - (SELECT COUNT(*) FROM redemptions r WHERE r.coupon_id = c.id \
         AND r.status IN ('pending', 'completed')) AS n FROM coupons c \
         WHERE c.tenant_id = $1 AND c.code = $2",
        vec![tenant_id.into(), hot_code.into()],
    )
    .await?;
    let duplicated = number(
        "SELECT COUNT(*) - COUNT(DISTINCT pin_id) AS n FROM purchases WHERE tenant_id = $1",
        vec![tenant_id.into()],
    )
    .await?;
    let unmarked = number(
        "SELECT COUNT(*) AS n FROM purchases p LEFT JOIN voucher_pins v ON v.id = p.pin_id \
         WHERE p.tenant_id = $1 AND (v.purchase_id IS NULL OR v.purchase_id <> p.id)",
        vec![tenant_id.into()],
    )
    .await?;
    db.close().await.ok();
    Ok((drift, duplicated + unmarked))
}
