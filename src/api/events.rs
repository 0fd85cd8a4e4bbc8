//! WatchRedemptions: cursors, where a watch starts, and events as proto messages.

use std::{pin::Pin, sync::Arc};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

use super::{convert::ledger::redemption_to_pb, ApiError, Caller, InLocale};
use crate::{
    domain::{
        event::{EventFilter, EventKind, EventPosition, RedemptionEvent},
        Code as CouponCode, Problem, Violations,
    },
    events::{EventFeed, WatchEnd},
    pb,
    store::Store,
};

/// The stream WatchRedemptions answers with.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RedemptionEvent, Status>> + Send>>;

/// An event's opaque cursor.
pub fn encode_cursor(position: EventPosition) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", position.txid, position.id))
}

fn decode_cursor(cursor: &str) -> Option<EventPosition> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let mut parts = text.strip_prefix("v1:")?.split(':');
    let position = EventPosition {
        txid: parts.next()?.parse().ok()?,
        id: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(position)
}

/// Starts a watch for `caller`.
pub async fn watch(
    feed: &Arc<EventFeed>,
    store: &Store,
    caller: &Caller,
    request: pb::WatchRedemptionsRequest,
) -> Result<EventStream, ApiError> {
    // Errors, also those the stream ends with later, are described in the caller's language.
    let locale = caller.locale;
    let mut violations = Violations::new();
    let cursor = match request.after_cursor.trim() {
        "" => None,
        text => {
            let position = decode_cursor(text);
            if position.is_none() {
                violations.add("after_cursor", Problem::UnknownCursor);
            }
            position
        }
    };
    let start = pb::WatchStart::try_from(request.start).unwrap_or_else(|_| {
        violations.add("start", Problem::UnknownValue);
        pb::WatchStart::Unspecified
    });
    let mut kinds = Vec::new();
    for (index, kind) in request.kinds.iter().enumerate() {
        match pb::RedemptionEventKind::try_from(*kind)
            .ok()
            .and_then(kind_from_pb)
        {
            Some(kind) => kinds.push(kind),
            None => violations.add(format!("kinds[{index}]"), Problem::UnknownEventKind),
        }
    }
    let mut codes = Vec::new();
    for (index, code) in request.codes.iter().enumerate() {
        if let Some(code) = violations.take(&format!("codes[{index}]"), CouponCode::parse(code)) {
            codes.push(code.to_string());
        }
    }
    violations.finish(()).in_locale(locale)?;
    let present = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = EventFilter {
        coupon_ids: request
            .coupon_ids
            .iter()
            .map(|c| c.trim().to_owned())
            .collect(),
        codes,
        campaign_id: present(&request.campaign_id),
        kinds,
        customer_id: present(&request.customer_id),
    };

    let pruned = store.events_pruned_through().await.in_locale(locale)?;
    let after = match (cursor, start) {
        (Some(position), _) => {
            if pruned.is_some_and(|horizon| position < horizon) {
                return Err(ApiError::OutOfRange {
                    oldest_cursor: pruned.map(encode_cursor).unwrap_or_default(),
                });
            }
            position
        }
        (None, pb::WatchStart::Now) => store.latest_event_position().await.in_locale(locale)?,
        (None, _) => pruned.unwrap_or_default(),
    };
    let stream = feed
        .watch(caller.tenant.clone(), after, filter)
        .map(move |item| match item {
            Ok(event) => Ok(event_to_pb(&event)),
            Err(WatchEnd::ShuttingDown) => Err(ApiError::ShuttingDown.into()),
            Err(WatchEnd::Store(error)) => Err(ApiError::from_store(error, locale).into()),
        });
    Ok(Box::pin(stream))
}

fn kind_from_pb(kind: pb::RedemptionEventKind) -> Option<EventKind> {
    match kind {
        pb::RedemptionEventKind::Unspecified => None,
        pb::RedemptionEventKind::RedeemedPending => Some(EventKind::RedeemedPending),
        pb::RedemptionEventKind::RedeemedCompleted => Some(EventKind::RedeemedCompleted),
        pb::RedemptionEventKind::Confirmed => Some(EventKind::Confirmed),
        pb::RedemptionEventKind::Reverted => Some(EventKind::Reverted),
        pb::RedemptionEventKind::Expired => Some(EventKind::Expired),
    }
}

fn event_to_pb(event: &RedemptionEvent) -> pb::RedemptionEvent {
    let kind = match event.kind {
        EventKind::RedeemedPending => pb::RedemptionEventKind::RedeemedPending,
        EventKind::RedeemedCompleted => pb::RedemptionEventKind::RedeemedCompleted,
        EventKind::Confirmed => pb::RedemptionEventKind::Confirmed,
        EventKind::Reverted => pb::RedemptionEventKind::Reverted,
        EventKind::Expired => pb::RedemptionEventKind::Expired,
    };
    pb::RedemptionEvent {
        cursor: encode_cursor(event.position),
        kind: kind as i32,
        occurred_time: Some(super::convert::timestamp_to_pb(event.occurred_at)),
        redemption: Some(redemption_to_pb(&event.redemption)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let position = EventPosition { txid: 812, id: 44 };
        assert_eq!(decode_cursor(&encode_cursor(position)), Some(position));
        assert_eq!(decode_cursor("nope"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("v1:1:2:3")), None);
    }
}
