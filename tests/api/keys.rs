//! API key lifecycle: create, list, revoke and rotate through AdminService and the command
//! line; revocation across server processes; the negative cache; coarse "last used".

use std::time::{Duration, Instant};

use coupon_service::pb::{self, admin_service_client::AdminServiceClient};
use tonic::{transport::Channel, Code};

use crate::common::{
    connect, error_reason, spawn_app, spawn_app_with, violated_fields, Auth, Backend,
    ServerProcess, TestApp,
};

/// The longest a replica may keep accepting a key another replica revoked ("a few seconds").
const REVOCATION_BOUND: Duration = Duration::from_secs(10);

async fn create_key(app: &TestApp, scopes: &[&str]) -> pb::CreateApiKeyResponse {
    app.admin(&app.token)
        .create_api_key(pb::CreateApiKeyRequest {
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expire_time: None,
        })
        .await
        .expect("create key")
        .into_inner()
}

async fn list_keys(app: &TestApp) -> Vec<pb::ApiKey> {
    app.admin(&app.token)
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .expect("list keys")
        .into_inner()
        .keys
}

/// The status of one admin call made with `token` (OK as `Code::Ok`).
async fn admin_call(channel: Channel, token: &str) -> Code {
    AdminServiceClient::with_interceptor(channel, Auth::bearer(token))
        .get_tenant_policy(pb::GetTenantPolicyRequest {})
        .await
        .map_or_else(|status| status.code(), |_| Code::Ok)
}

async fn created_keys_carry_their_scopes_and_list_without_secrets(backend: Backend) {
    let app = spawn_app(backend).await;
    let reader = create_key(&app, &["read"]).await;
    let admin = create_key(&app, &["admin", "read"]).await;
    let reader_key = reader.key.clone().unwrap();
    assert_eq!(reader_key.scopes, vec!["read"]);
    assert!(reader_key.create_time.is_some());
    assert_eq!(
        reader.token,
        format!("{}.{}", reader_key.key_id, reader.secret)
    );

    // The read key authenticates but may not administer; the admin key may.
    let status = app
        .admin(&reader.token)
        .get_tenant_policy(pb::GetTenantPolicyRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(error_reason(&status).as_deref(), Some("MISSING_SCOPE"));
    assert_eq!(
        admin_call(app.channel.clone(), &admin.token).await,
        Code::Ok
    );

    let keys = list_keys(&app).await;
    assert_eq!(keys.len(), 3, "acme's first key and the two new ones");
    let listed = keys.iter().find(|k| k.key_id == reader_key.key_id).unwrap();
    assert_eq!(
        (
            &listed.scopes,
            &listed.create_time,
            &listed.expire_time,
            &listed.revoke_time
        ),
        (&reader_key.scopes, &reader_key.create_time, &None, &None)
    );
    let listing = format!("{keys:?}");
    for secret in [&reader.secret, &admin.secret] {
        assert!(
            !listing.contains(secret.as_str()),
            "a listing never shows a secret"
        );
    }
}

async fn bad_key_requests_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let past = prost_types::Timestamp {
        seconds: 1_000,
        nanos: 0,
    };
    let cases = [
        (vec!["owner".to_owned()], None, "scopes"),
        (vec![], None, "scopes"),
        (vec!["read".to_owned()], Some(past), "expire_time"),
    ];
    for (scopes, expire_time, field) in cases {
        let status = admin
            .create_api_key(pb::CreateApiKeyRequest {
                scopes,
                expire_time,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violated_fields(&status), vec![field]);
    }
    let status = admin
        .rotate_api_key(pb::RotateApiKeyRequest {
            key_id: app.token.split_once('.').unwrap().0.to_owned(),
            grace_period: Some(prost_types::Duration {
                seconds: 31 * 24 * 3600,
                nanos: 0,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), vec!["grace_period"]);
    for key_id in ["", "key_0000000000000000"] {
        let status = admin
            .revoke_api_key(pb::RevokeApiKeyRequest {
                key_id: key_id.into(),
            })
            .await
            .unwrap_err();
        let expected = if key_id.is_empty() {
            Code::InvalidArgument
        } else {
            Code::NotFound
        };
        assert_eq!(status.code(), expected);
    }
    assert_eq!(list_keys(&app).await.len(), 1, "nothing was created");
    assert_eq!(admin_call(app.channel.clone(), &app.token).await, Code::Ok);
}

async fn a_tenant_cannot_touch_another_tenants_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app
        .new_tenant("globex", coupon_service::domain::Scopes::all())
        .await;
    let other_key_id = other.split_once('.').unwrap().0.to_owned();
    let mut admin = app.admin(&app.token);
    let status = admin
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: other_key_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = admin
        .rotate_api_key(pb::RotateApiKeyRequest {
            key_id: other_key_id,
            grace_period: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(admin_call(app.channel.clone(), &other).await, Code::Ok);
    assert_eq!(
        list_keys(&app).await.len(),
        1,
        "only acme's own key is listed"
    );
}

async fn a_revoked_key_is_refused_at_once_where_it_was_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let doomed = create_key(&app, &["admin"]).await;
    let doomed_id = doomed.key.unwrap().key_id;
    // Used first, so this process holds it in its cache.
    assert_eq!(
        admin_call(app.channel.clone(), &doomed.token).await,
        Code::Ok
    );
    let revoked = app
        .admin(&app.token)
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: doomed_id.clone(),
        })
        .await
        .expect("revoke")
        .into_inner();
    assert!(revoked.revoke_time.is_some());
    assert_eq!(
        admin_call(app.channel.clone(), &doomed.token).await,
        Code::Unauthenticated
    );
    // Revoking again is harmless and keeps the first instant.
    let again = app
        .admin(&app.token)
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: doomed_id.clone(),
        })
        .await
        .expect("revoke again")
        .into_inner();
    assert_eq!(again.revoke_time, revoked.revoke_time);
    // A revoked key cannot be rotated back to life.
    let status = app
        .admin(&app.token)
        .rotate_api_key(pb::RotateApiKeyRequest {
            key_id: doomed_id,
            grace_period: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn rotation_keeps_the_old_key_for_its_grace_period(backend: Backend) {
    let app = spawn_app(backend).await;
    let old = create_key(&app, &["admin", "redeem"]).await;
    let old_id = old.key.unwrap().key_id;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let rotated = app
        .admin(&app.token)
        .rotate_api_key(pb::RotateApiKeyRequest {
            key_id: old_id.clone(),
            grace_period: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
        })
        .await
        .expect("rotate")
        .into_inner();
    let new_key = rotated.key.unwrap();
    let previous = rotated.previous_key.unwrap();
    assert_ne!(new_key.key_id, old_id);
    assert_eq!(previous.key_id, old_id);
    assert_eq!(
        new_key.scopes,
        vec!["admin", "redeem"],
        "the old key's scopes"
    );
    let expiry = previous.expire_time.unwrap().seconds;
    assert!(
        (before + 3599..=before + 3700).contains(&expiry),
        "the old key expires an hour from now: {expiry} vs {before}"
    );
    // Both keys work during the grace period.
    assert_eq!(admin_call(app.channel.clone(), &old.token).await, Code::Ok);
    assert_eq!(
        admin_call(app.channel.clone(), &rotated.token).await,
        Code::Ok
    );

    // Rotating again without grace: the previous key expires now and is refused, the newest
    // works.
    let immediate = app
        .admin(&app.token)
        .rotate_api_key(pb::RotateApiKeyRequest {
            key_id: new_key.key_id.clone(),
            grace_period: Some(prost_types::Duration::default()),
        })
        .await
        .expect("rotate without grace")
        .into_inner();
    assert_eq!(
        admin_call(app.channel.clone(), &rotated.token).await,
        Code::Unauthenticated
    );
    assert_eq!(
        admin_call(app.channel.clone(), &immediate.token).await,
        Code::Ok
    );
    let listed = list_keys(&app).await;
    let listed_old = listed.iter().find(|k| k.key_id == old_id).unwrap();
    assert_eq!(
        listed_old.expire_time.as_ref().map(|t| t.seconds),
        Some(expiry)
    );
}

async fn revocation_reaches_every_replica_within_seconds(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = ServerProcess::spawn(&app.database_url);
    let second = ServerProcess::spawn(&app.database_url);
    let first_channel = connect(first.addr).await;
    let second_channel = connect(second.addr).await;
    let key = AdminServiceClient::with_interceptor(first_channel.clone(), Auth::bearer(&app.token))
        .create_api_key(pb::CreateApiKeyRequest {
            scopes: vec!["admin".into()],
            expire_time: None,
        })
        .await
        .expect("create on the first replica")
        .into_inner();
    // The second replica learns the key and caches it.
    assert_eq!(
        admin_call(second_channel.clone(), &key.token).await,
        Code::Ok
    );
    AdminServiceClient::with_interceptor(first_channel.clone(), Auth::bearer(&app.token))
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: key.key.unwrap().key_id,
        })
        .await
        .expect("revoke on the first replica");
    assert_eq!(
        admin_call(first_channel, &key.token).await,
        Code::Unauthenticated,
        "the revoking replica refuses at once"
    );
    let revoked_at = Instant::now();
    let mut refused = false;
    while revoked_at.elapsed() < REVOCATION_BOUND {
        if admin_call(second_channel.clone(), &key.token).await == Code::Unauthenticated {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "the other replica still accepted the revoked key after {REVOCATION_BOUND:?}"
    );
    // And it keeps refusing: the key does not come back from a stale cache.
    assert_eq!(
        admin_call(second_channel.clone(), &key.token).await,
        Code::Unauthenticated
    );
    assert_eq!(admin_call(second_channel, &app.token).await, Code::Ok);
}

async fn unknown_key_ids_are_answered_from_memory(backend: Backend) {
    // Quiet background loops, so the count is the calls' own.
    let app = spawn_app_with(backend, |settings| {
        settings.expiry_sweep_interval = Duration::from_secs(3600);
        settings.event_poll_interval = Duration::from_secs(3600);
    })
    .await;
    let made_up = "Bearer key_0123456789abcdef.not-a-secret";
    let before = app.server_store.statements_executed();
    for _ in 0..50 {
        let status =
            AdminServiceClient::with_interceptor(app.channel.clone(), Auth::header(made_up))
                .get_tenant_policy(pb::GetTenantPolicyRequest {})
                .await
                .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let spent = app.server_store.statements_executed() - before;
    // One lookup, plus the database health probe's (one a second); without the negative cache
    // this is at least 50.
    assert!(
        spent <= 8,
        "50 calls with one unknown key id cost {spent} statements"
    );
}

async fn last_use_is_recorded_coarsely(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = create_key(&app, &["admin"]).await;
    let key_id = key.key.unwrap().key_id;
    assert_eq!(
        list_keys(&app)
            .await
            .iter()
            .find(|k| k.key_id == key_id)
            .unwrap()
            .last_use_time,
        None,
        "never used yet"
    );
    assert_eq!(admin_call(app.channel.clone(), &key.token).await, Code::Ok);
    // The write is made off the call's path; wait until it lands.
    let started = Instant::now();
    let first_use = loop {
        let listed = list_keys(&app).await;
        let found = listed.into_iter().find(|k| k.key_id == key_id).unwrap();
        if let Some(at) = found.last_use_time {
            break at;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "last use never recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for _ in 0..10 {
        assert_eq!(admin_call(app.channel.clone(), &key.token).await, Code::Ok);
    }
    let listed = list_keys(&app).await;
    let found = listed.into_iter().find(|k| k.key_id == key_id).unwrap();
    assert_eq!(
        found.last_use_time,
        Some(first_use),
        "later calls within the minute write nothing"
    );
}

async fn the_command_line_lists_tenants_and_manages_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_coupon-service"))
            .args(args)
            .env("DATABASE_URL", &app.database_url)
            .env("RUST_LOG", "error")
            .output()
            .expect("run the command line");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(run(&["tenant", "list"]).contains("\tacme"));
    let created = run(&["key", "create", "--tenant", "acme", "--scopes", "admin"]);
    let token = created
        .lines()
        .find_map(|line| line.strip_prefix("API key (shown once): "))
        .expect("the key is printed once")
        .to_owned();
    assert_eq!(admin_call(app.channel.clone(), &token).await, Code::Ok);
    let key_id = token.split_once('.').unwrap().0.to_owned();
    let listed = run(&["key", "list", "--tenant", "acme"]);
    assert!(listed.contains(&key_id));
    assert!(
        !listed.contains(token.split_once('.').unwrap().1),
        "no secret in a listing"
    );
    run(&["key", "revoke", "--tenant", "acme", &key_id]);
    let started = Instant::now();
    while admin_call(app.channel.clone(), &token).await != Code::Unauthenticated {
        assert!(
            started.elapsed() < REVOCATION_BOUND,
            "revoked key still accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audit = app
        .admin(&app.token)
        .list_audit_entries(pb::ListAuditEntriesRequest {
            resource_id: key_id,
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .entries;
    let rpcs: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.rpc.as_str(), e.key_id.as_str()))
        .collect();
    assert_eq!(rpcs, vec![("RevokeApiKey", "cli"), ("CreateApiKey", "cli")]);
}

crate::on_both_databases!(
    created_keys_carry_their_scopes_and_list_without_secrets,
    bad_key_requests_are_refused_and_change_nothing,
    a_tenant_cannot_touch_another_tenants_keys,
    a_revoked_key_is_refused_at_once_where_it_was_revoked,
    rotation_keeps_the_old_key_for_its_grace_period,
    revocation_reaches_every_replica_within_seconds,
    unknown_key_ids_are_answered_from_memory,
    last_use_is_recorded_coarsely,
    the_command_line_lists_tenants_and_manages_keys,
);
