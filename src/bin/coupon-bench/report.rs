//! The suite's report: `benchmarks.md` (machine, commands, a table with ratios to the same-run
//! ceilings) and `benchmarks.svg` (throughput and p99 against concurrency, service beside
//! ceiling), both written from the measurements of one run.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::Measurement;

/// One measured scenario and its ceiling.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub database: String,
    pub concurrency: usize,
    pub service: Measurement,
    /// `no-op` (framework) or `storage` (pgbench / SQLite loop), with its measurement.
    pub ceiling: Option<(String, Measurement)>,
    pub note: String,
}

/// One point of the chart.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub series: String,
    pub concurrency: usize,
    pub throughput: f64,
    pub p99_ms: f64,
}

/// Everything the report says.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub machine: Vec<(String, String)>,
    pub command: String,
    pub settings: Vec<(String, String)>,
    pub rows: Vec<Row>,
    pub sweep: Vec<Point>,
    pub facts: Vec<(String, String)>,
    pub servers: Vec<ServerFacts>,
    pub elapsed_seconds: f64,
}

/// What one database's server process showed, and what its ledger says after the load.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ServerFacts {
    pub database: String,
    pub startup_ms: u128,
    pub idle_rss_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    /// Hot coupon: its usage counter minus its active redemptions (0 = exact, > 0 would mean a
    /// redemption was counted twice, < 0 that one escaped the limit's counter).
    pub hot_counter_drift: Option<i64>,
    /// Purchases whose PIN another purchase also got.
    pub pins_sold_twice: Option<i64>,
}

/// One measurement on one line, for `coupon-bench run`.
pub fn one_line(name: &str, m: &Measurement) -> String {
    format!(
        "{name}: {} calls in {:.1} s = {:.0}/s; p50 {} p90 {} p99 {} p99.9 {} max {} ms; {}",
        m.calls,
        m.seconds,
        m.throughput,
        ms(m.p50_ms),
        ms(m.p90_ms),
        ms(m.p99_ms),
        ms(m.p999_ms),
        ms(m.max_ms),
        statuses(m)
    )
}

fn ms(value: f64) -> String {
    if value.is_nan() {
        "–".to_owned()
    } else if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.0}")
    }
}

fn statuses(m: &Measurement) -> String {
    m.statuses
        .iter()
        .map(|(name, count)| format!("{name} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn not_ok(m: &Measurement) -> String {
    let others: Vec<String> = m
        .statuses
        .iter()
        .filter(|(name, _)| name.as_str() != "OK" && name.as_str() != "DELIVERED")
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    if others.is_empty() {
        "0".to_owned()
    } else {
        others.join(", ")
    }
}

fn ratio(service: &Measurement, ceiling: &Measurement) -> String {
    if ceiling.throughput > 0.0 {
        format!("{:.0}%", 100.0 * service.ok_per_second / ceiling.throughput)
    } else {
        "–".to_owned()
    }
}

/// The Markdown report.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `coupon-bench suite` from one run; every ceiling was measured in the same run \
         on the same machine. Regenerate with the command below (see the README's Benchmarks \
         section).\n"
    );
    let _ = writeln!(out, "## Machine\n");
    for (name, value) in &report.machine {
        let _ = writeln!(out, "- {name}: {value}");
    }
    let _ = writeln!(out, "\n## Command\n\n```\n{}\n```\n", report.command);
    for (name, value) in &report.settings {
        let _ = writeln!(out, "- {name}: {value}");
    }
    let _ = writeln!(out, "\n## Results\n");
    let _ = writeln!(
        out,
        "Calls/s counts OK answers only; every other gRPC status is listed under *not OK*. \
         Latencies are per call, from the client, in milliseconds. The ratio is the service's OK \
         calls/s over the ceiling's. *no-op* is the framework ceiling (a tonic server with the \
         same services answering captured answers of the same size, loaded by the same \
         generator at the same concurrency); *storage* is the minimal SQL doing the same durable \
         work in one transaction at the same concurrency (pgbench on PostgreSQL, which reports \
         only the mean latency, and an equivalent loop on SQLite).\n"
    );
    let _ = writeln!(
        out,
        "| scenario | database | in flight | calls/s | p50 | p90 | p99 | p99.9 | not OK | ceiling | ceiling calls/s | ceiling p99 (mean) | ratio | note |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|"
    );
    for row in &report.rows {
        let s = &row.service;
        let (kind, c_tput, c_lat, r) = match &row.ceiling {
            Some((kind, c)) => (
                kind.as_str(),
                format!("{:.0}", c.throughput),
                format!("{} ({})", ms(c.p99_ms), ms(c.mean_ms)),
                ratio(s, c),
            ),
            None => ("–", "–".to_owned(), "–".to_owned(), "–".to_owned()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.database,
            row.concurrency,
            s.ok_per_second,
            ms(s.p50_ms),
            ms(s.p90_ms),
            ms(s.p99_ms),
            ms(s.p999_ms),
            not_ok(s),
            kind,
            c_tput,
            c_lat,
            r,
            row.note
        );
    }
    let _ = writeln!(
        out,
        "\n![throughput and p99 against concurrency](benchmarks.svg)\n"
    );
    let _ = writeln!(out, "## Targets (issue 12)\n");
    let _ = writeln!(out, "| target | measured | met |\n|---|---|---|");
    for (target, measured, met) in targets(report) {
        let verdict = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(out, "| {target} | {measured} | {verdict} |");
    }
    let _ = writeln!(
        out,
        "\nProfile findings and the engine's micro-benchmarks: [profile.md](profile.md).\n"
    );
    let _ = writeln!(out, "## Other facts of the run\n");
    for (name, value) in &report.facts {
        let _ = writeln!(out, "- {name}: {value}");
    }
    let _ = writeln!(
        out,
        "\nThe suite took {:.0} s, setup included.",
        report.elapsed_seconds
    );
    out
}

/// Which figure of a point a panel draws.
type PointValue = fn(&Point) -> f64;

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// The chart: throughput (left) and p99 (right) against concurrency for each series.
pub fn svg(report: &Report, title: &str) -> String {
    let mut series: Vec<&str> = Vec::new();
    let mut levels: Vec<usize> = Vec::new();
    for p in &report.sweep {
        if !series.contains(&p.series.as_str()) {
            series.push(&p.series);
        }
        if !levels.contains(&p.concurrency) {
            levels.push(p.concurrency);
        }
    }
    levels.sort_unstable();
    let (width, height) = (960.0, 420.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="15">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    let panels: [(&str, PointValue); 2] = [
        ("calls/s (OK)", |p| p.throughput),
        ("p99 latency, ms", |p| p.p99_ms),
    ];
    for (panel, (label, value)) in panels.iter().enumerate() {
        let left = 70.0 + panel as f64 * 470.0;
        let (top, plot_w, plot_h) = (50.0, 360.0, 280.0);
        let max = report
            .sweep
            .iter()
            .map(value)
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max)
            .max(1e-9)
            * 1.1;
        let _ = writeln!(
            out,
            r##"<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            left + plot_w / 2.0,
            top - 8.0,
            escape(label)
        );
        for tick in 0..=4 {
            let v = max * tick as f64 / 4.0;
            let y = top + plot_h - plot_h * tick as f64 / 4.0;
            let _ = writeln!(
                out,
                r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + plot_w,
                left - 4.0,
                y + 4.0,
                if max >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            );
        }
        let x_of = |i: usize| left + plot_w * (i as f64 + 0.5) / levels.len().max(1) as f64;
        for (i, level) in levels.iter().enumerate() {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{level}</text>"#,
                x_of(i),
                top + plot_h + 16.0
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">calls in flight</text>"#,
            left + plot_w / 2.0,
            top + plot_h + 32.0
        );
        for (s, name) in series.iter().enumerate() {
            let color = COLORS[s % COLORS.len()];
            let points: Vec<String> = levels
                .iter()
                .enumerate()
                .filter_map(|(i, level)| {
                    report
                        .sweep
                        .iter()
                        .find(|p| p.series == *name && p.concurrency == *level)
                        .map(|p| {
                            let y = top + plot_h - plot_h * value(p) / max;
                            format!("{:.1},{:.1}", x_of(i), y)
                        })
                })
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
            for point in &points {
                if let Some((x, y)) = point.split_once(',') {
                    let _ = writeln!(out, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
                }
            }
        }
    }
    for (s, name) in series.iter().enumerate() {
        let x = 70.0 + s as f64 * 230.0;
        let color = COLORS[s % COLORS.len()];
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{}" width="14" height="4" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            height - 24.0,
            x + 20.0,
            height - 18.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The row of a scenario, leaving out the run with a transaction held in another database.
fn find<'a>(
    report: &'a Report,
    scenario: &str,
    database: &str,
    concurrency: usize,
) -> Option<&'a Row> {
    report.rows.iter().find(|r| {
        r.scenario == scenario
            && r.database == database
            && r.concurrency == concurrency
            && !r.note.contains("another database")
    })
}

fn share(row: &Row) -> Option<f64> {
    row.ceiling
        .as_ref()
        .filter(|(_, c)| c.throughput > 0.0)
        .map(|(_, c)| row.service.ok_per_second / c.throughput)
}

/// Every target of the issue, what this run measured for it, and whether it was met.
pub fn targets(report: &Report) -> Vec<(String, String, Option<bool>)> {
    let mut out = Vec::new();
    for database in ["SQLite", "PostgreSQL"] {
        for scenario in ["apply-serial", "validate"] {
            let row = find(report, scenario, database, 1);
            out.push((
                format!("{scenario}, {database}, one call at a time: p50 ≤ 1 ms"),
                row.map(|r| format!("p50 {} ms", ms(r.service.p50_ms)))
                    .unwrap_or_default(),
                row.map(|r| r.service.p50_ms <= 1.0),
            ));
        }
    }
    let row = find(report, "validate", "SQLite", 64);
    out.push((
        "validate, SQLite, 64 in flight: ≥ 50% of the no-op ceiling, p99 ≤ 2× its p99".to_owned(),
        row.and_then(|r| {
            let (_, c) = r.ceiling.as_ref()?;
            Some(format!(
                "{:.0}%, p99 {} ms vs {} ms",
                100.0 * share(r)?,
                ms(r.service.p99_ms),
                ms(c.p99_ms)
            ))
        })
        .unwrap_or_default(),
        row.and_then(|r| {
            let (_, c) = r.ceiling.as_ref()?;
            Some(share(r)? >= 0.5 && r.service.p99_ms <= 2.0 * c.p99_ms)
        }),
    ));
    for (scenario, database, concurrency, at_least, label) in [
        ("validate", "PostgreSQL", 64, 0.35, "no-op"),
        ("apply", "SQLite", 64, 0.35, "no-op"),
        ("apply", "PostgreSQL", 64, 0.35, "no-op"),
        ("redeem-hot", "PostgreSQL", 32, 0.70, "one-row storage"),
    ] {
        let row = find(report, scenario, database, concurrency);
        out.push((
            format!(
                "{scenario}, {database}, {concurrency} in flight: ≥ {:.0}% of the {label} ceiling",
                at_least * 100.0
            ),
            row.and_then(share)
                .map(|x| format!("{:.0}%", 100.0 * x))
                .unwrap_or_default(),
            row.and_then(share).map(|x| x >= at_least),
        ));
    }
    // Automatic promotions that cannot match are never read, so they must cost next to nothing.
    for database in ["SQLite", "PostgreSQL"] {
        let ratio = find(report, "apply", database, 64)
            .zip(find(report, "apply-automatic", database, 64))
            .filter(|(without, _)| without.service.ok_per_second > 0.0)
            .map(|(without, with)| with.service.ok_per_second / without.service.ok_per_second);
        out.push((
            format!(
                "apply-automatic, {database}, 64 in flight: ≥ 80% of apply's throughput in the \
                 same run (200 automatic promotions, 2 match)"
            ),
            ratio
                .map(|x| format!("{:.0}%", 100.0 * x))
                .unwrap_or_default(),
            ratio.map(|x| x >= 0.8),
        ));
    }
    let row = find(report, "list-applicable", "PostgreSQL", 16);
    out.push((
        "list-applicable, 1 000 coupons, PostgreSQL, 16 in flight: ≥ 500 calls/s, p50 ≤ 20 ms"
            .to_owned(),
        row.map(|r| {
            format!(
                "{:.0}/s, p50 {} ms",
                r.service.ok_per_second,
                ms(r.service.p50_ms)
            )
        })
        .unwrap_or_default(),
        row.map(|r| r.service.ok_per_second >= 500.0 && r.service.p50_ms <= 20.0),
    ));
    let row = find(report, "redeem", "PostgreSQL", 32);
    out.push((
        "redeem, PostgreSQL, 32 in flight: ≥ 70% of the storage ceiling, p99 ≤ 3× its mean latency"
            .to_owned(),
        row.and_then(|r| {
            let (_, c) = r.ceiling.as_ref()?;
            Some(format!(
                "{:.0}%, p99 {} ms vs mean {} ms",
                100.0 * share(r)?,
                ms(r.service.p99_ms),
                ms(c.mean_ms)
            ))
        })
        .unwrap_or_default(),
        row.and_then(|r| {
            let (_, c) = r.ceiling.as_ref()?;
            Some(share(r)? >= 0.7 && r.service.p99_ms <= 3.0 * c.mean_ms)
        }),
    ));
    let purchases: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.scenario == "purchase" && r.database == "PostgreSQL")
        .collect();
    let first_share = purchases.first().and_then(|r| share(r));
    out.push((
        "purchase, PostgreSQL, 32 in flight: ≥ 60% of its storage ceiling".to_owned(),
        first_share
            .map(|x| format!("{:.0}%", 100.0 * x))
            .unwrap_or_default(),
        first_share.map(|x| x >= 0.6),
    ));
    for database in ["SQLite", "PostgreSQL"] {
        let stocks: Vec<&Row> = report
            .rows
            .iter()
            .filter(|r| r.scenario == "purchase" && r.database == database)
            .collect();
        if let [small, large, ..] = stocks.as_slice() {
            let change = large.service.ok_per_second / small.service.ok_per_second.max(1e-9) - 1.0;
            out.push((
                format!(
                    "purchase, {database}: throughput with the large stock within 15% of the small"
                ),
                format!(
                    "{:.0}/s vs {:.0}/s ({:+.0}%)",
                    large.service.ok_per_second,
                    small.service.ok_per_second,
                    change * 100.0
                ),
                Some(change.abs() <= 0.15),
            ));
        }
    }
    for server in &report.servers {
        out.push((
            format!(
                "{}: zero over-redemption of the hot coupon (usage counter = active redemptions)",
                server.database
            ),
            server
                .hot_counter_drift
                .map(|d| format!("drift {d}"))
                .unwrap_or_default(),
            server.hot_counter_drift.map(|d| d == 0),
        ));
        out.push((
            format!("{}: zero PIN sold twice", server.database),
            server
                .pins_sold_twice
                .map(|d| format!("{d} sold twice"))
                .unwrap_or_default(),
            server.pins_sold_twice.map(|d| d == 0),
        ));
    }
    let watch: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.scenario == "watch" && r.database == "PostgreSQL")
        .collect();
    if let Some(plain) = watch.iter().find(|r| !r.note.contains("another database")) {
        out.push((
            format!(
                "watch, PostgreSQL, {} watchers, two processes: commit-to-delivery p99 ≤ 100 ms (issue: 500 watchers at 1 000 events/s)",
                plain.concurrency
            ),
            format!("p99 {} ms", ms(plain.service.p99_ms)),
            Some(plain.service.p99_ms <= 100.0),
        ));
        if let Some(held) = watch.iter().find(|r| r.note.contains("another database")) {
            let added = held.service.p99_ms - plain.service.p99_ms;
            out.push((
                "watch, PostgreSQL: a 3 s transaction in another database adds ≤ 100 ms".to_owned(),
                format!(
                    "p99 {} ms with it, {:+.0} ms",
                    ms(held.service.p99_ms),
                    added
                ),
                Some(added <= 100.0),
            ));
        }
    }
    for server in &report.servers {
        out.push((
            format!(
                "{}: RSS ≤ 100 MiB under load, ≤ 30 MiB idle; listening ≤ 300 ms after start",
                server.database
            ),
            format!(
                "peak {} MiB, idle {} MiB, {} ms",
                server.peak_rss_kib.map(|k| k / 1024).unwrap_or_default(),
                server.idle_rss_kib.map(|k| k / 1024).unwrap_or_default(),
                server.startup_ms
            ),
            match (server.peak_rss_kib, server.idle_rss_kib) {
                (Some(peak), Some(idle)) => {
                    Some(peak <= 100 * 1024 && idle <= 30 * 1024 && server.startup_ms <= 300)
                }
                _ => None,
            },
        ));
    }
    out
}
