//! The audit log: every admin change leaves one entry, written with the change, and a refused
//! change leaves none.

use coupon_service::pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::{
    admin_coupons::save200,
    common::{spawn_app, Backend, TestApp},
};

const PIN: &str = "PIN-4711-SECRET";

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

fn product(value: &str) -> pb::Product {
    pb::Product {
        name: "Fifa-2026".into(),
        value: value.into(),
        amount: 50_000,
        currency: "NPR".into(),
        templates: Some(pb::NotificationTemplates {
            sms: "Your coupon code is {pin}.".into(),
            email_subject: "Purchase Confirmation".into(),
            email_body: "Your Coupon Code: {pin}".into(),
            company_name: "Khalti".into(),
        }),
        ..Default::default()
    }
}

/// Every entry of the tenant, newest first, read page by page.
async fn all_entries(app: &TestApp, resource_type: &str, resource_id: &str) -> Vec<pb::AuditEntry> {
    let mut admin = app.admin(&app.token);
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .list_audit_entries(pb::ListAuditEntriesRequest {
                page_size: 3,
                page_token,
                resource_type: resource_type.into(),
                resource_id: resource_id.into(),
            })
            .await
            .expect("list audit entries")
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return entries;
        }
        page_token = page.next_page_token;
    }
}

async fn every_kind_of_admin_change_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let actor = app.token.split_once('.').unwrap().0.to_owned();
    let mut admin = app.admin(&app.token);
    let coupon = admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(save200("SAVE200")),
        })
        .await
        .unwrap()
        .into_inner();
    admin
        .update_coupon(pb::UpdateCouponRequest {
            coupon: Some(pb::Coupon {
                id: coupon.id.clone(),
                description: "changed".into(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
        .unwrap();
    admin
        .deactivate_coupon(pb::DeactivateCouponRequest {
            id: coupon.id.clone(),
        })
        .await
        .unwrap();
    let campaign = admin
        .create_campaign(pb::CreateCampaignRequest {
            campaign: Some(pb::Campaign {
                name: "Diwali".into(),
                template: Some(save200("")),
                code_pattern: Some(pb::CodePattern {
                    prefix: "dw-".into(),
                    length: 8,
                    charset: String::new(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let codes = admin
        .generate_codes(pb::GenerateCodesRequest {
            campaign_id: campaign.id.clone(),
            count: 3,
        })
        .await
        .unwrap()
        .into_inner()
        .codes;
    let created = admin
        .create_product(pb::CreateProductRequest {
            product: Some(product("fifa-2026")),
        })
        .await
        .unwrap()
        .into_inner();
    admin
        .update_product(pb::UpdateProductRequest {
            product: Some(pb::Product {
                idx: created.idx.clone(),
                amount: 60_000,
                ..Default::default()
            }),
            update_mask: mask(&["amount"]),
        })
        .await
        .unwrap();
    admin
        .import_pins(pb::ImportPinsRequest {
            product_idx: created.idx.clone(),
            pins: vec![pb::PinInput {
                pin: PIN.into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    let top_up = admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 10_000,
            reference: "tx-1".into(),
            note: "first".into(),
        })
        .await
        .unwrap()
        .into_inner();
    admin
        .update_tenant_policy(pb::UpdateTenantPolicyRequest {
            policy: Some(pb::TenantPolicy {
                default_channel: "app".into(),
                ..Default::default()
            }),
            update_mask: mask(&["default_channel"]),
        })
        .await
        .unwrap();
    admin
        .update_tenant_quota(pb::UpdateTenantQuotaRequest {
            quota: Some(pb::TenantQuota {
                unknown_code_limit: 7,
                ..Default::default()
            }),
            update_mask: mask(&["unknown_code_limit"]),
        })
        .await
        .unwrap();
    let key = admin
        .create_api_key(pb::CreateApiKeyRequest {
            scopes: vec!["read".into()],
            expire_time: None,
        })
        .await
        .unwrap()
        .into_inner();
    let key_id = key.key.clone().unwrap().key_id;
    let rotated = admin
        .rotate_api_key(pb::RotateApiKeyRequest {
            key_id: key_id.clone(),
            grace_period: None,
        })
        .await
        .unwrap()
        .into_inner();
    let rotated_id = rotated.key.clone().unwrap().key_id;
    admin
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: rotated_id.clone(),
        })
        .await
        .unwrap();

    let entries = all_entries(&app, "", "").await;
    let mut seen: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e.rpc.as_str(),
                e.resource_type.as_str(),
                e.resource_id.as_str(),
            )
        })
        .collect();
    seen.reverse();
    let tenant_id = entries
        .iter()
        .find(|e| e.rpc == "UpdateTenantPolicy")
        .map(|e| e.resource_id.clone())
        .unwrap();
    let entry_id = top_up.entry.unwrap().id;
    assert_eq!(
        seen,
        vec![
            ("CreateCoupon", "coupon", coupon.id.as_str()),
            ("UpdateCoupon", "coupon", coupon.id.as_str()),
            ("DeactivateCoupon", "coupon", coupon.id.as_str()),
            ("CreateCampaign", "campaign", campaign.id.as_str()),
            ("GenerateCodes", "campaign", campaign.id.as_str()),
            ("CreateProduct", "product", created.idx.as_str()),
            ("UpdateProduct", "product", created.idx.as_str()),
            ("ImportPins", "product", created.idx.as_str()),
            ("TopUpCredits", "credit_entry", entry_id.as_str()),
            ("UpdateTenantPolicy", "tenant_policy", tenant_id.as_str()),
            ("UpdateTenantQuota", "tenant_quota", tenant_id.as_str()),
            ("CreateApiKey", "api_key", key_id.as_str()),
            ("RotateApiKey", "api_key", key_id.as_str()),
            ("RotateApiKey", "api_key", rotated_id.as_str()),
            ("RevokeApiKey", "api_key", rotated_id.as_str()),
        ]
    );
    for entry in &entries {
        assert_eq!(entry.key_id, actor, "who: the calling key");
        assert!(entry.create_time.is_some(), "when");
        let changes: serde_json::Value = serde_json::from_str(&entry.changes_json).unwrap();
        assert!(changes.is_object(), "{}", entry.changes_json);
        for secret in [PIN, key.secret.as_str(), rotated.secret.as_str()] {
            assert!(
                !entry.changes_json.contains(secret),
                "{}",
                entry.changes_json
            );
        }
        for code in &codes {
            assert!(
                !entry.changes_json.contains(code.as_str()),
                "generated codes stay out"
            );
        }
    }
    let changes = |rpc: &str| -> serde_json::Value {
        let entry = entries.iter().find(|e| e.rpc == rpc).unwrap();
        serde_json::from_str(&entry.changes_json).unwrap()
    };
    assert_eq!(changes("CreateCoupon")["code"], "SAVE200");
    assert_eq!(
        changes("UpdateCoupon")["update_mask"],
        serde_json::json!(["description"])
    );
    assert_eq!(changes("DeactivateCoupon")["active"], false);
    assert_eq!(changes("GenerateCodes")["generated"], 3);
    assert_eq!(changes("UpdateProduct")["amount"], 60_000);
    assert_eq!(changes("ImportPins")["imported"], 1);
    assert_eq!(changes("TopUpCredits")["amount"], 10_000);
    assert_eq!(
        changes("UpdateTenantPolicy"),
        serde_json::json!({"default_channel": "app"})
    );
    assert_eq!(
        changes("UpdateTenantQuota"),
        serde_json::json!({"unknown_code_limit": 7})
    );
    assert_eq!(changes("CreateApiKey")["scopes"], "read");
}

async fn refused_changes_leave_no_entry(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(save200("SAVE200")),
        })
        .await
        .unwrap();
    let duplicate = admin
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(save200("save200")),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let first = admin
        .create_product(pb::CreateProductRequest {
            product: Some(product("first")),
        })
        .await
        .unwrap()
        .into_inner();
    let duplicate = admin
        .create_product(pb::CreateProductRequest {
            product: Some(product("first")),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let second = admin
        .create_product(pb::CreateProductRequest {
            product: Some(product("second")),
        })
        .await
        .unwrap()
        .into_inner();
    let pins = |idx: &str| pb::ImportPinsRequest {
        product_idx: idx.into(),
        pins: vec![pb::PinInput {
            pin: PIN.into(),
            ..Default::default()
        }],
    };
    admin.import_pins(pins(&first.idx)).await.unwrap();
    // The same PIN in another product rolls the whole import back, entry included.
    let elsewhere = admin.import_pins(pins(&second.idx)).await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::AlreadyExists);
    let top_up = |amount| pb::TopUpCreditsRequest {
        amount,
        reference: "tx-1".into(),
        note: String::new(),
    };
    admin.top_up_credits(top_up(100)).await.unwrap();
    // An identical retry changes nothing and a different one is refused: neither is audited.
    admin.top_up_credits(top_up(100)).await.unwrap();
    let reused = admin.top_up_credits(top_up(200)).await.unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists);
    let invalid = admin.top_up_credits(top_up(-5)).await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let unknown = admin
        .deactivate_coupon(pb::DeactivateCouponRequest {
            id: "cpn_missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let entries = all_entries(&app, "", "").await;
    let mut rpcs: Vec<&str> = entries.iter().map(|e| e.rpc.as_str()).collect();
    rpcs.reverse();
    assert_eq!(
        rpcs,
        vec![
            "CreateCoupon",
            "CreateProduct",
            "CreateProduct",
            "ImportPins",
            "TopUpCredits"
        ]
    );
    assert!(all_entries(&app, "product", &second.idx)
        .await
        .iter()
        .all(|e| e.rpc != "ImportPins"));
}

async fn entries_are_paginated_filtered_and_per_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut admin = app.admin(&app.token);
    let mut ids = Vec::new();
    for code in ["A1", "B2", "C3", "D4"] {
        let coupon = admin
            .create_coupon(pb::CreateCouponRequest {
                coupon: Some(save200(code)),
            })
            .await
            .unwrap()
            .into_inner();
        ids.push(coupon.id);
    }
    admin
        .deactivate_coupon(pb::DeactivateCouponRequest { id: ids[1].clone() })
        .await
        .unwrap();
    // Pages of three, newest first.
    let all = all_entries(&app, "", "").await;
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].rpc, "DeactivateCoupon");
    let one = all_entries(&app, "coupon", &ids[1]).await;
    let rpcs: Vec<&str> = one.iter().map(|e| e.rpc.as_str()).collect();
    assert_eq!(rpcs, vec!["DeactivateCoupon", "CreateCoupon"]);
    assert!(all_entries(&app, "product", "").await.is_empty());
    let bad = admin
        .list_audit_entries(pb::ListAuditEntriesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    let other = app
        .new_tenant("globex", coupon_service::domain::Scopes::all())
        .await;
    let theirs = app
        .admin(&other)
        .list_audit_entries(pb::ListAuditEntriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        theirs.entries.is_empty(),
        "another tenant sees none of acme's entries"
    );
}

crate::on_both_databases!(
    every_kind_of_admin_change_is_audited,
    refused_changes_leave_no_entry,
    entries_are_paginated_filtered_and_per_tenant,
);
