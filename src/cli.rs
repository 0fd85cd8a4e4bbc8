//! The command line's actions. Output meant for the person at the terminal goes to stdout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context;

use crate::{
    app::keys,
    config::{Cli, Command, DatabaseArgs, KeyCommand, TenantCommand},
    domain::{
        api_key::IssuedKey,
        audit::{rfc3339, AuditEntry, COMMAND_LINE_ACTOR},
        quota::{QuotaField, TenantQuota},
        tenant::{KeySummary, Tenant},
        Timestamp, Violations,
    },
    server::{shutdown_signal, Application},
    store::{DatabaseSettings, Store},
    telemetry,
};

/// Prints a line for the person at the terminal. A closed stdout (a supervisor that stopped
/// reading) is not a reason for a server to crash, so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let telemetry = telemetry::init(&cli.log)?;
    let outcome = execute(cli.command).await;
    telemetry.shutdown().await;
    outcome
}

async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Key { command } => manage_keys(command).await,
        Command::Tenant {
            command: TenantCommand::List { database },
        } => {
            let store = connect(&database).await?;
            store.migrate().await?;
            let tenants = store.list_tenants().await?;
            store.close().await;
            for tenant in tenants {
                say!("{}\t{}", tenant.id, tenant.name);
            }
            Ok(())
        }
        Command::Serve(settings) => {
            let app = Application::build(*settings).await?;
            let grpc = reachable(app.local_addr());
            if let Some(key) = app.demo_key() {
                say!("demo tenant ready; API key: {key}");
                say!("  grpcurl -plaintext -H 'authorization: Bearer {key}' {grpc} list");
            }
            say!(
                "metrics on http://{}/metrics",
                reachable(app.metrics_addr())
            );
            if let Some(health) = app.health_addr() {
                say!("plaintext health on {}", reachable(health));
            }
            say!("listening on {grpc}");
            tracing::info!(addr = %app.local_addr(), metrics = %app.metrics_addr(), "serving gRPC");
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate { database } => {
            let store = connect(&database).await?;
            store.migrate().await?;
            store.close().await;
            say!("migrations applied");
            Ok(())
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    scopes,
                    database,
                },
        } => {
            let store = connect(&database).await?;
            store.migrate().await?;
            let key = IssuedKey::generate();
            let tenant = store
                .create_tenant(name.trim(), &scopes, &key)
                .await
                .with_context(|| format!("cannot create tenant {name:?}"))?;
            store.close().await;
            say!(
                "tenant {} ({}) created with scopes {scopes}",
                tenant.name,
                tenant.id
            );
            say!("API key (shown once): {}", key.token());
            say!("Basic auth: user {} password {}", key.key_id, key.secret);
            Ok(())
        }
        Command::Tenant {
            command:
                TenantCommand::Quota {
                    name,
                    requests_per_second,
                    burst,
                    unknown_code_limit,
                    unknown_code_window,
                    database,
                },
        } => {
            let window = unknown_code_window
                .map(|window| u32::try_from(window.as_secs()))
                .transpose()
                .context("--unknown-code-window is too long")?;
            let changes = [
                (QuotaField::RequestsPerSecond, requests_per_second),
                (QuotaField::Burst, burst),
                (QuotaField::UnknownCodeLimit, unknown_code_limit),
                (QuotaField::UnknownCodeWindow, window),
            ];
            set_tenant_quota(&database, name.trim(), &changes).await
        }
    }
}

/// The `key` subcommands: the AdminService key use cases, audited under the actor "cli".
async fn manage_keys(command: KeyCommand) -> anyhow::Result<()> {
    let (KeyCommand::Create {
        tenant, database, ..
    }
    | KeyCommand::List { tenant, database }
    | KeyCommand::Revoke {
        tenant, database, ..
    }
    | KeyCommand::Rotate {
        tenant, database, ..
    }) = &command;
    let store = connect(database).await?;
    store.migrate().await?;
    let outcome = run_key_command(&store, &find_tenant(&store, tenant).await?, &command).await;
    store.close().await;
    outcome
}

async fn find_tenant(store: &Store, name: &str) -> anyhow::Result<Tenant> {
    store
        .find_tenant_by_name(name.trim())
        .await?
        .with_context(|| format!("no tenant named {name:?}"))
}

async fn run_key_command(
    store: &Store,
    tenant: &Tenant,
    command: &KeyCommand,
) -> anyhow::Result<()> {
    let now = Timestamp::now();
    match command {
        KeyCommand::Create {
            scopes, expires_in, ..
        } => {
            let expires_at = expires_in
                .map(|lifetime| {
                    i64::try_from(lifetime.as_micros())
                        .ok()
                        .and_then(|micros| now.micros().checked_add(micros))
                        .map(Timestamp)
                        .context("--expires-in is too long")
                })
                .transpose()?;
            let issued = keys::create(
                store,
                &tenant.id,
                COMMAND_LINE_ACTOR,
                scopes.clone(),
                expires_at,
                now,
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the key: {e}"))?;
            say!("{}", describe(&issued.summary));
            say!("API key (shown once): {}", issued.key.token());
        }
        KeyCommand::List { .. } => {
            let mut after: Option<String> = None;
            loop {
                let page = store.list_keys(&tenant.id, after.as_deref(), 500).await?;
                for key in &page.items {
                    say!("{}", describe(key));
                }
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        KeyCommand::Revoke { key_id, .. } => {
            let revoked = keys::revoke(store, &tenant.id, COMMAND_LINE_ACTOR, key_id.trim())
                .await
                .map_err(|e| anyhow::anyhow!("cannot revoke the key: {e}"))?;
            say!("{}", describe(&revoked));
        }
        KeyCommand::Rotate { key_id, grace, .. } => {
            let (issued, previous) = keys::rotate(
                store,
                &tenant.id,
                COMMAND_LINE_ACTOR,
                key_id.trim(),
                *grace,
                now,
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot rotate the key: {e}"))?;
            say!("{}", describe(&previous));
            say!("{}", describe(&issued.summary));
            say!("API key (shown once): {}", issued.key.token());
        }
    }
    Ok(())
}

/// One line per key: id, scopes and its instants; never a secret.
fn describe(key: &KeySummary) -> String {
    let when = |at: Option<Timestamp>| at.map_or_else(|| "-".to_owned(), rfc3339);
    format!(
        "{}\tscopes={}\tcreated={}\tlast_used={}\texpires={}\trevoked={}",
        key.key_id,
        key.scopes,
        rfc3339(key.created_at),
        when(key.last_used_at),
        when(key.expires_at),
        when(key.revoked_at)
    )
}

/// Sets the `changes` given (0 is the service default again) and prints the tenant's own limits.
async fn set_tenant_quota(
    database: &DatabaseArgs,
    name: &str,
    changes: &[(QuotaField, Option<u32>)],
) -> anyhow::Result<()> {
    let value = |field: QuotaField| {
        changes
            .iter()
            .find(|(f, _)| *f == field)
            .and_then(|(_, v)| *v)
            .filter(|v| *v != 0)
    };
    let update = TenantQuota {
        requests_per_second: value(QuotaField::RequestsPerSecond),
        burst: value(QuotaField::Burst),
        unknown_code_limit: value(QuotaField::UnknownCodeLimit),
        unknown_code_window_secs: value(QuotaField::UnknownCodeWindow),
        updated_at: None,
    };
    let mut violations = Violations::new();
    update.check("quota", &mut violations);
    violations.finish(()).context("invalid quota")?;
    let fields: Vec<QuotaField> = changes
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(f, _)| *f)
        .collect();
    let store = connect(database).await?;
    store.migrate().await?;
    let tenant = store
        .find_tenant_by_name(name)
        .await?
        .with_context(|| format!("no tenant called {name:?}"))?;
    let quota = if fields.is_empty() {
        store.tenant_quota(&tenant.id).await?
    } else {
        let audit = update.audited(
            AuditEntry::new(COMMAND_LINE_ACTOR, "tenant quota", "tenant_quota"),
            &fields,
        );
        store
            .update_tenant_quota(&tenant.id, &update, &fields, &audit)
            .await?
    };
    store.close().await;
    let show = |value: Option<u32>| value.map_or("default".to_owned(), |v| v.to_string());
    say!("tenant {} ({}) quota:", tenant.name, tenant.id);
    say!("  requests per second: {}", show(quota.requests_per_second));
    say!("  burst: {}", show(quota.burst));
    say!("  unknown-code limit: {}", show(quota.unknown_code_limit));
    say!(
        "  unknown-code window (s): {}",
        show(quota.unknown_code_window_secs)
    );
    Ok(())
}

/// An address a client on this machine can dial: a socket bound to every interface
/// (`0.0.0.0`, `[::]`) answers on loopback, which, unlike the unspecified address, is one.
fn reachable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, bound.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, bound.port()).into(),
        _ => bound,
    }
}

async fn connect(database: &DatabaseArgs) -> anyhow::Result<Store> {
    Ok(Store::connect(&DatabaseSettings {
        url: database.database_url.clone(),
        pool_size: database.pool_size,
        sqlite_synchronous: database.sqlite_synchronous,
    })
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_addresses_a_client_can_dial() {
        let all: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        assert_eq!(reachable(all), "127.0.0.1:50051".parse().unwrap());
        let all_v6: SocketAddr = "[::]:9090".parse().unwrap();
        assert_eq!(reachable(all_v6), "[::1]:9090".parse().unwrap());
        let one: SocketAddr = "10.1.2.3:50051".parse().unwrap();
        assert_eq!(reachable(one), one);
    }
}
