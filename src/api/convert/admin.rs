//! AdminService requests parsed into the use cases' commands, every invalid field reported at
//! once; and the answers only AdminService gives (keys, audit entries).

use super::{coupon, mask_paths, policy, quota, timestamp_from_pb, timestamp_to_pb, voucher};
use crate::{
    app::{
        campaigns::NewCampaign,
        coupons::{CouponRef, UpdateCoupon},
        credits::TopUpCommand,
        keys::DEFAULT_GRACE,
        products::UpdateProduct,
        settings::QuotaChange,
    },
    domain::{
        audit::RecordedAudit,
        campaign::{CodePattern, MAX_CODES_PER_CALL},
        coupon::NewCoupon,
        policy::{PolicyField, TenantPolicy},
        product::{PinToImport, ProductSpec},
        tenant::KeySummary,
        text::{parse_id, refuse_nul},
        Code, InvalidInput, Problem, Scopes, Timestamp, Violations,
    },
    pb,
};

const MAX_PINS_PER_IMPORT: usize = 10_000;
const MAX_REFERENCE_LEN: usize = 128;

/// A required identifier: present, bounded and free of NUL.
fn required_id(field: &str, raw: &str, violations: &mut Violations) -> String {
    if raw.trim().is_empty() {
        violations.add(field, Problem::Required);
        return String::new();
    }
    parse_id(field, raw).unwrap_or_else(|invalid| {
        violations.merge(invalid);
        String::new()
    })
}

/// The id a request names in `field`, which it must.
pub fn id(field: &str, raw: &str) -> Result<String, InvalidInput> {
    let mut violations = Violations::new();
    let id = required_id(field, raw, &mut violations);
    violations.finish(id)
}

/// An update's resource id and patch, parsed by `patch` from the mask's paths. Problems of the
/// mask or the id end the parse (with every problem of the patch); those of the patch alone
/// are returned, to be reported with the rules the updated resource would break.
fn masked_update<P>(
    mask: Option<&prost_types::FieldMask>,
    updatable: &[&'static str],
    (id_field, raw_id): (&str, &str),
    patch: impl FnOnce(&[String], &mut Violations) -> P,
) -> Result<(String, P, Violations), InvalidInput> {
    let mut violations = Violations::new();
    let paths = mask_paths(mask, updatable, &mut violations);
    let id = required_id(id_field, raw_id, &mut violations);
    let mut parse_problems = Violations::new();
    let patch = patch(&paths, &mut parse_problems);
    if !violations.is_empty() {
        violations.merge(parse_problems.into_error());
        return Err(violations.into_error());
    }
    Ok((id, patch, parse_problems))
}

impl TryFrom<pb::CreateCouponRequest> for NewCoupon {
    type Error = InvalidInput;

    fn try_from(request: pb::CreateCouponRequest) -> Result<Self, InvalidInput> {
        let coupon = request
            .coupon
            .ok_or_else(|| InvalidInput::field("coupon", Problem::Required))?;
        let mut violations = Violations::new();
        let code = violations.take("coupon.code", Code::parse(&coupon.code));
        let rules = coupon::rules_from_pb(&coupon, &mut violations);
        NewCoupon::new(
            code,
            rules,
            coupon.active.unwrap_or(true),
            coupon.automatic,
            violations,
        )
    }
}

impl TryFrom<pb::GetCouponRequest> for CouponRef {
    type Error = InvalidInput;

    fn try_from(request: pb::GetCouponRequest) -> Result<Self, InvalidInput> {
        if !request.id.trim().is_empty() {
            Ok(CouponRef::Id(parse_id("id", &request.id)?))
        } else if !request.code.trim().is_empty() {
            let code = Code::parse(&request.code).map_err(|e| InvalidInput::field("code", e))?;
            Ok(CouponRef::Code(code))
        } else {
            Err(InvalidInput::field("id", Problem::IdOrCodeRequired))
        }
    }
}

impl TryFrom<pb::UpdateCouponRequest> for UpdateCoupon {
    type Error = InvalidInput;

    fn try_from(request: pb::UpdateCouponRequest) -> Result<Self, InvalidInput> {
        let update = request
            .coupon
            .ok_or_else(|| InvalidInput::field("coupon", Problem::Required))?;
        let (id, patch, parse_problems) = masked_update(
            request.update_mask.as_ref(),
            coupon::UPDATABLE,
            ("coupon.id", &update.id),
            |paths, problems| coupon::patch_from_pb(&update, paths, problems),
        )?;
        Ok(UpdateCoupon {
            id,
            patch,
            parse_problems,
        })
    }
}

impl TryFrom<pb::CreateCampaignRequest> for NewCampaign {
    type Error = InvalidInput;

    fn try_from(request: pb::CreateCampaignRequest) -> Result<Self, InvalidInput> {
        let campaign = request
            .campaign
            .ok_or_else(|| InvalidInput::field("campaign", Problem::Required))?;
        let mut violations = Violations::new();
        let name = campaign.name.trim();
        violations.require(!name.is_empty(), "campaign.name", Problem::Required);
        refuse_nul("campaign.name", name, &mut violations);
        let template = campaign.template.unwrap_or_default();
        let mut template_violations = Violations::new();
        let rules = coupon::rules_from_pb(&template, &mut template_violations);
        rules.check("coupon", &mut template_violations);
        violations.absorb(template_violations, "coupon", "campaign.template");
        let pattern = campaign.code_pattern.unwrap_or_default();
        let pattern = CodePattern::parse(
            &pattern.prefix,
            pattern.length,
            &pattern.charset,
            &mut violations,
        );
        violations.finish(NewCampaign {
            name: name.to_owned(),
            rules,
            pattern,
        })
    }
}

/// GenerateCodes: the campaign and how many codes to draw.
pub fn codes_wanted(request: &pb::GenerateCodesRequest) -> Result<(String, usize), InvalidInput> {
    let mut violations = Violations::new();
    let id = required_id("campaign_id", &request.campaign_id, &mut violations);
    let count = usize::try_from(request.count).unwrap_or(0);
    violations.require(
        (1..=MAX_CODES_PER_CALL).contains(&count),
        "count",
        Problem::OutOfRange {
            min: 1,
            max: MAX_CODES_PER_CALL as i64,
        },
    );
    violations.finish((id, count))
}

/// CreateProduct: the new product's checked definition.
pub fn new_product(request: pb::CreateProductRequest) -> Result<ProductSpec, InvalidInput> {
    let product = request
        .product
        .ok_or_else(|| InvalidInput::field("product", Problem::Required))?;
    let mut violations = Violations::new();
    let spec = voucher::spec_from_pb(&product, &mut violations);
    spec.check("product", &mut violations);
    violations.finish(spec)
}

impl TryFrom<pb::UpdateProductRequest> for UpdateProduct {
    type Error = InvalidInput;

    fn try_from(request: pb::UpdateProductRequest) -> Result<Self, InvalidInput> {
        let update = request
            .product
            .ok_or_else(|| InvalidInput::field("product", Problem::Required))?;
        let (idx, patch, parse_problems) = masked_update(
            request.update_mask.as_ref(),
            voucher::UPDATABLE,
            ("product.idx", &update.idx),
            |paths, problems| voucher::patch_from_pb(&update, paths, problems),
        )?;
        Ok(UpdateProduct {
            idx,
            patch,
            parse_problems,
        })
    }
}

/// ImportPins: the product and its new PINs, each checked.
pub fn pins_to_import(
    request: &pb::ImportPinsRequest,
) -> Result<(String, Vec<PinToImport>), InvalidInput> {
    let mut violations = Violations::new();
    let idx = required_id("product_idx", &request.product_idx, &mut violations);
    violations.require(
        (1..=MAX_PINS_PER_IMPORT).contains(&request.pins.len()),
        "pins",
        Problem::PinCount {
            min: 1,
            max: MAX_PINS_PER_IMPORT,
        },
    );
    let pins = voucher::pins_from_pb(&request.pins, &mut violations);
    violations.finish((idx, pins))
}

impl TryFrom<pb::TopUpCreditsRequest> for TopUpCommand {
    type Error = InvalidInput;

    fn try_from(request: pb::TopUpCreditsRequest) -> Result<Self, InvalidInput> {
        let mut violations = Violations::new();
        violations.require(request.amount > 0, "amount", Problem::NotPositive);
        violations.require(
            request.reference.trim().len() <= MAX_REFERENCE_LEN,
            "reference",
            Problem::TooLong {
                max: MAX_REFERENCE_LEN,
            },
        );
        refuse_nul("reference", &request.reference, &mut violations);
        refuse_nul("note", &request.note, &mut violations);
        violations.finish(TopUpCommand {
            amount: request.amount,
            reference: Some(request.reference.trim().to_owned()).filter(|r| !r.is_empty()),
            note: request.note.trim().to_owned(),
        })
    }
}

/// UpdateTenantPolicy: the checked new values and the fields the mask names.
pub fn policy_change(
    request: &pb::UpdateTenantPolicyRequest,
) -> Result<(TenantPolicy, Vec<PolicyField>), InvalidInput> {
    let mut violations = Violations::new();
    let paths = mask_paths(
        request.update_mask.as_ref(),
        &policy::updatable(),
        &mut violations,
    );
    let values = match request.policy.as_ref() {
        Some(values) => policy::policy_from_pb(values),
        None => {
            violations.add("policy", Problem::Required);
            TenantPolicy::default()
        }
    };
    values.check("policy", &mut violations);
    violations.finish((values, policy::fields(&paths)))
}

impl From<&pb::UpdateTenantQuotaRequest> for QuotaChange {
    /// Every problem travels with the command: whether a limit is allowed depends on the
    /// service's defaults, which the use case knows.
    fn from(request: &pb::UpdateTenantQuotaRequest) -> Self {
        let mut parse_problems = Violations::new();
        let paths = mask_paths(
            request.update_mask.as_ref(),
            &quota::updatable(),
            &mut parse_problems,
        );
        let fields = quota::fields(&paths);
        let limits = match request.quota.as_ref() {
            Some(limits) => quota::quota_from_pb(limits, &fields),
            None => {
                parse_problems.add("quota", Problem::Required);
                Default::default()
            }
        };
        QuotaChange {
            limits,
            fields,
            parse_problems,
        }
    }
}

/// CreateApiKey: the new key's scopes and expiry.
pub fn key_to_create(
    request: &pb::CreateApiKeyRequest,
) -> Result<(Scopes, Option<Timestamp>), InvalidInput> {
    let mut violations = Violations::new();
    let scopes = violations.take("scopes", request.scopes.join(",").parse::<Scopes>());
    let expires_at = request.expire_time.as_ref().and_then(|ts| {
        let parsed = timestamp_from_pb(ts);
        violations.require(parsed.is_some(), "expire_time", Problem::NotATimestamp);
        parsed
    });
    violations.finish((scopes.unwrap_or_default(), expires_at))
}

/// RotateApiKey: the key to rotate and how long the old one keeps working.
pub fn key_to_rotate(
    request: &pb::RotateApiKeyRequest,
) -> Result<(String, std::time::Duration), InvalidInput> {
    let mut violations = Violations::new();
    let key_id = required_id("key_id", &request.key_id, &mut violations);
    let grace = match request.grace_period {
        None => DEFAULT_GRACE,
        Some(duration) => std::time::Duration::try_from(duration).unwrap_or_else(|_| {
            violations.add("grace_period", Problem::GracePeriodOutOfRange);
            DEFAULT_GRACE
        }),
    };
    violations.finish((key_id, grace))
}

/// A key as listings show it: never its secret.
pub fn key_to_pb(key: &KeySummary) -> pb::ApiKey {
    pb::ApiKey {
        key_id: key.key_id.clone(),
        scopes: key.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        create_time: Some(timestamp_to_pb(key.created_at)),
        last_use_time: key.last_used_at.map(timestamp_to_pb),
        expire_time: key.expires_at.map(timestamp_to_pb),
        revoke_time: key.revoked_at.map(timestamp_to_pb),
    }
}

pub fn audit_to_pb(entry: &RecordedAudit) -> pb::AuditEntry {
    pb::AuditEntry {
        id: entry.id.clone(),
        key_id: entry.actor.clone(),
        rpc: entry.rpc.clone(),
        resource_type: entry.resource_type.clone(),
        resource_id: entry.resource_id.clone(),
        create_time: Some(timestamp_to_pb(entry.at)),
        changes_json: serde_json::Value::Object(entry.changes.clone()).to_string(),
    }
}
