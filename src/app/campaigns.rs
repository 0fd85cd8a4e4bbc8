//! AdminService's campaign use cases: a campaign is a template of rules and a code pattern,
//! and drawing codes makes one coupon per code. Audited in the transactions that make them;
//! generated codes are bearer values and never reach the audit log.

use super::{coupons::rules_json, AppError, StoreResultExt};
use crate::{
    domain::{
        audit::AuditEntry,
        campaign::{Campaign, CodePattern},
        coupon::CouponRules,
        Code, InvalidInput, Problem, TenantId,
    },
    store::Store,
};

/// How much larger than its codes a pattern's space must stay, so drawing stays fast and codes
/// stay hard to guess.
const SPACE_PER_CODE: u128 = 1_000;

/// CreateCampaign as parsed: a name, checked template rules and a code pattern.
#[derive(Debug)]
pub(crate) struct NewCampaign {
    pub(crate) name: String,
    pub(crate) rules: CouponRules,
    pub(crate) pattern: CodePattern,
}

/// CreateCampaign: stores the campaign; it has no codes yet.
pub(crate) async fn create(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    campaign: &NewCampaign,
) -> Result<Campaign, AppError> {
    let audit = AuditEntry::new(actor, "CreateCampaign", "campaign")
        .with("name", campaign.name.as_str())
        .with("template", rules_json(&campaign.rules))
        .with(
            "code_pattern",
            serde_json::to_value(&campaign.pattern).unwrap_or_default(),
        );
    Ok(store
        .insert_campaign(
            tenant,
            &campaign.name,
            &campaign.rules,
            &campaign.pattern,
            &audit,
        )
        .await?)
}

/// GenerateCodes: `count` (1 to `MAX_CODES_PER_CALL`, checked when parsed) new unique codes
/// of the campaign, each a coupon with its template.
pub(crate) async fn generate_codes(
    store: &Store,
    tenant: &TenantId,
    actor: &str,
    campaign_id: &str,
    count: usize,
) -> Result<Vec<Code>, AppError> {
    let campaign = store
        .get_campaign(tenant, campaign_id)
        .await
        .about("campaign", campaign_id)?;
    let wanted = (u128::from(campaign.code_count.unsigned_abs()) + count as u128) * SPACE_PER_CODE;
    if campaign.pattern.capacity() < wanted {
        return Err(InvalidInput::field("count", Problem::PatternTooShortForCount).into());
    }
    // The count only: generated codes are bearer values, kept out of the log.
    let audit = AuditEntry::new(actor, "GenerateCodes", "campaign").with("generated", count);
    Ok(store
        .generate_codes(tenant, &campaign, count, &audit)
        .await?)
}
