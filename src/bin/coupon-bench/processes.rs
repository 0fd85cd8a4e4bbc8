//! The processes the suite starts: release binaries of the service and the no-op ceiling, each
//! on a free port it reports on stdout, each killed when its handle is dropped.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

/// A fixed PIN key for the benchmark's databases (base64 of 32 bytes); they hold no real PINs.
pub const BENCH_PIN_KEY: &str = "YmVuY2htYXJrLW9ubHktcGluLWtleS0zMi1ieXRlcyE=";

/// A binary built beside this one (the suite runs from `target/release`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release --bins`",
            path.display()
        );
    }
    Ok(path)
}

/// A running child process serving gRPC at `addr`.
pub struct Running {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// From spawn to its `listening on` line.
    pub startup: Duration,
}

impl Running {
    /// Its resident memory in KiB, from /proc (None where there is no /proc).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The operating system's process id (for `perf record -p`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn wait_listening(mut command: Command, what: &str) -> anyhow::Result<Running> {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("listening on ").map(str::to_owned));
    let startup = started.elapsed();
    let Some(addr) = addr else {
        child.kill().ok();
        child.wait().ok();
        bail!("{what} exited before listening");
    };
    // Keep reading so the child never writes into a full or closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Running {
        child,
        addr: addr
            .parse()
            .with_context(|| format!("{what} address {addr:?}"))?,
        startup,
    })
}

/// Starts `coupon-service serve` on `database_url`, migrating unless another process already did.
pub fn start_service(database_url: &str, migrate: bool, log: &Path) -> anyhow::Result<Running> {
    let mut command = Command::new(sibling_binary("coupon-service")?);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("DATABASE_URL", database_url)
        .env("COUPON_PIN_KEY", BENCH_PIN_KEY)
        .env("RUST_LOG", "warn")
        // The bench measures the service's capacity, not the tenant quota or the throttle.
        .env("COUPON_QUOTA_REQUESTS_PER_SECOND", "0")
        .env("COUPON_UNKNOWN_CODE_LIMIT", "0")
        .stderr(Stdio::from(std::fs::File::create(log)?));
    if !migrate {
        command.arg("--no-migrate");
    }
    wait_listening(command, "coupon-service")
}

/// Starts the no-op ceiling serving the answers captured in `captures`.
pub fn start_noop(captures: &Path) -> anyhow::Result<Running> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["noop-server", "--listen", "127.0.0.1:0", "--captures"])
        .arg(captures)
        .stderr(Stdio::inherit());
    wait_listening(command, "the no-op server")
}

/// Creates a tenant with every scope through the command line and returns its bearer token.
pub fn create_tenant(database_url: &str, name: &str) -> anyhow::Result<String> {
    let output = Command::new(sibling_binary("coupon-service")?)
        .args(["tenant", "create", name])
        .env("DATABASE_URL", database_url)
        .env("COUPON_PIN_KEY", BENCH_PIN_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .context("running coupon-service tenant create")?;
    if !output.status.success() {
        bail!(
            "tenant create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            line.strip_prefix("API key (shown once): ")
                .map(str::to_owned)
        })
        .context("tenant create printed no API key")
}
