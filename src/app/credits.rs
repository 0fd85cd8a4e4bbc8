//! A tenant's prepaid credits: top-ups, idempotent by reference like every keyed request, the
//! balance and the ledger of entries.

use serde::Serialize;

use super::{
    idempotency::{replay, Conflict, Fingerprint},
    AppError, ErrorReason,
};
use crate::{
    domain::{
        audit::AuditEntry,
        credit::{Balance, CreditEntry},
        TenantId, Timestamp,
    },
    store::{credits::TopUp, new_id, Page, Store, StoreError},
};

const DUPLICATE_REFERENCE: Conflict = Conflict {
    reason: ErrorReason::DuplicateReference,
    message: "this reference was used for a different top-up",
};

/// TopUpCredits' command, parsed at the edge.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TopUpCommand {
    /// Positive.
    pub(crate) amount: i64,
    /// `None` makes every call a new top-up.
    pub(crate) reference: Option<String>,
    pub(crate) note: String,
}

/// Adds credits; a retry with the same reference and content adds nothing and answers as the
/// first call did (and is not audited again: it changed nothing).
pub(crate) async fn top_up(
    store: &Store,
    tenant: &TenantId,
    command: TopUpCommand,
    now: Timestamp,
    actor: &str,
) -> Result<TopUp, AppError> {
    let audit = AuditEntry::new(actor, "TopUpCredits", "credit_entry")
        .with("amount", command.amount)
        .with("reference", command.reference.clone().unwrap_or_default())
        .with("note", command.note.as_str());
    let Some(reference) = command.reference.clone() else {
        return Ok(store
            .add_credits(
                tenant,
                command.amount,
                &new_id("topup"),
                &command.note,
                now,
                &audit,
            )
            .await?);
    };
    let fingerprint = Fingerprint::of("top-up", &command)?;
    if let Some(earlier) = store.find_top_up(tenant, &reference).await? {
        return replayed(store, tenant, earlier, &fingerprint).await;
    }
    match store
        .add_credits(
            tenant,
            command.amount,
            &reference,
            &command.note,
            now,
            &audit,
        )
        .await
    {
        Ok(top_up) => Ok(top_up),
        // A concurrent retry of the same reference committed first: answer as it did.
        Err(StoreError::AlreadyExists) => {
            let earlier =
                store
                    .find_top_up(tenant, &reference)
                    .await?
                    .ok_or(StoreError::Contention(sea_orm::DbErr::Custom(
                        "the reference's top-up vanished during the call".into(),
                    )))?;
            replayed(store, tenant, earlier, &fingerprint).await
        }
        Err(other) => Err(other.into()),
    }
}

async fn replayed(
    store: &Store,
    tenant: &TenantId,
    earlier: CreditEntry,
    fingerprint: &Fingerprint,
) -> Result<TopUp, AppError> {
    // A ledger entry keeps every field of the command that made it, so its fingerprint is
    // recomputed rather than stored.
    let earlier_fingerprint = Fingerprint::of(
        "top-up",
        &TopUpCommand {
            amount: earlier.amount,
            reference: Some(earlier.reference.clone()),
            note: earlier.note.clone(),
        },
    )?;
    let entry = replay(
        earlier,
        &earlier_fingerprint,
        fingerprint,
        DUPLICATE_REFERENCE,
    )?;
    let balance = store.balance(tenant).await?.available;
    Ok(TopUp { entry, balance })
}

/// GetBalance: what the tenant can still spend, and what it has spent.
pub(crate) async fn balance(store: &Store, tenant: &TenantId) -> Result<Balance, AppError> {
    Ok(store.balance(tenant).await?)
}

/// ListCreditEntries: a page of the tenant's credit ledger, newest first.
pub(crate) async fn entries(
    store: &Store,
    tenant: &TenantId,
    before: Option<&str>,
    limit: u64,
) -> Result<Page<CreditEntry>, AppError> {
    Ok(store.list_credit_entries(tenant, before, limit).await?)
}
