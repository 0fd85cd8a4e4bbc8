//! The command line's actions. Output meant for the person at the terminal goes to stdout.

use anyhow::Context;

use crate::{
    config::{Cli, Command, DatabaseArgs, TenantCommand},
    domain::api_key::IssuedKey,
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
        Command::Serve(settings) => {
            let app = Application::build(*settings).await?;
            if let Some(key) = app.demo_key() {
                say!("demo tenant ready; API key: {key}");
                say!(
                    "  grpcurl -plaintext -H 'authorization: Bearer {key}' {} list",
                    app.local_addr()
                );
            }
            say!("metrics on http://{}/metrics", app.metrics_addr());
            if let Some(health) = app.health_addr() {
                say!("plaintext health on {health}");
            }
            say!("listening on {}", app.local_addr());
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
    }
}

async fn connect(database: &DatabaseArgs) -> anyhow::Result<Store> {
    Ok(Store::connect(&DatabaseSettings {
        url: database.database_url.clone(),
        pool_size: database.pool_size,
    })
    .await?)
}
