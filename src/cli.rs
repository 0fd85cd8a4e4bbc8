//! The command line's actions. Output meant for the person at the terminal goes to stdout.

use anyhow::Context;

use crate::{
    config::{Cli, Command, DatabaseArgs, TenantCommand},
    domain::api_key::IssuedKey,
    server::{shutdown_signal, Application},
    store::{DatabaseSettings, Store},
    telemetry,
};

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(&cli.log)?;
    match cli.command {
        Command::Serve(settings) => {
            let app = Application::build(*settings).await?;
            if let Some(key) = app.demo_key() {
                println!("demo tenant ready; API key: {key}");
                println!(
                    "  grpcurl -plaintext -H 'authorization: Bearer {key}' {} list",
                    app.local_addr()
                );
            }
            println!("listening on {}", app.local_addr());
            tracing::info!(addr = %app.local_addr(), "serving gRPC");
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate { database } => {
            let store = connect(&database).await?;
            store.migrate().await?;
            store.close().await;
            println!("migrations applied");
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
            println!(
                "tenant {} ({}) created with scopes {scopes}",
                tenant.name, tenant.id
            );
            println!("API key (shown once): {}", key.token());
            println!("Basic auth: user {} password {}", key.key_id, key.secret);
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
